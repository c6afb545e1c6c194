#include "proc/proc_fds.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include <fmt/format.h>

#include "proc/proc_file.h"

namespace ferry {

Result<OpenFd> parse_fdinfo(std::string_view text) {
  OpenFd fd;
  bool have_pos = false, have_flags = false, have_mnt = false;
  while (!text.empty()) {
    std::string_view line = next_line(text);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    value.remove_prefix(std::min(value.find_first_not_of(" \t"), value.size()));
    if (key == "pos") {
      fd.pos = FERRY_TRY_CTX(parse_u64(value), "pos");
      have_pos = true;
    } else if (key == "flags") {
      fd.flags = static_cast<uint32_t>(FERRY_TRY_CTX(parse_u64(value, 8), "flags"));
      have_flags = true;
    } else if (key == "mnt_id") {
      fd.mnt_id = static_cast<int>(FERRY_TRY_CTX(parse_u64(value), "mnt_id"));
      have_mnt = true;
    } else if (key == "ino") {
      fd.inode = FERRY_TRY_CTX(parse_u64(value), "ino");
    }
  }
  if (!have_pos || !have_flags || !have_mnt) return fail("no pos, flags or mnt_id line");
  return fd;
}

Result<std::vector<OpenFd>> list_open_fds(pid_t pid) {
  std::string dir_path = proc_dir(pid) + "/fd";
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_path.c_str()), ::closedir);
  if (!dir) return fail_errno("opendir {}", dir_path);
  std::vector<int> numbers;
  errno = 0;
  while (dirent* e = ::readdir(dir.get())) {
    if (e->d_name[0] == '.') continue;
    numbers.push_back(static_cast<int>(FERRY_TRY_CTX(parse_u64(e->d_name), "{}", dir_path)));
    errno = 0;
  }
  if (errno != 0) return fail_errno("readdir {}", dir_path);
  std::sort(numbers.begin(), numbers.end());

  std::vector<OpenFd> fds;
  for (int n : numbers) {
    // ENOENT: the fd was closed after the directory was read.
    Result<std::string> target = read_proc_link(fmt::format("{}/{}", dir_path, n));
    if (!target && target.error().sys_errno() == ENOENT) continue;
    if (!target) return fail(std::move(target).error());
    std::string info_path = fmt::format("{}/fdinfo/{}", proc_dir(pid), n);
    Result<std::string> info = read_proc_file(info_path);
    if (!info && info.error().sys_errno() == ENOENT) continue;
    if (!info) return fail(std::move(info).error());
    OpenFd fd = FERRY_TRY_CTX(parse_fdinfo(*info), "{}", info_path);
    fd.fd = n;
    fd.target = std::move(*target);
    fds.push_back(std::move(fd));
  }
  return fds;
}

}  // namespace ferry
