#include "dump/file_table.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ferry {
namespace {

// Character devices a process may hold that need nothing but their path.
bool is_plain_device(const std::string& path) {
  return path == "/dev/null" || path == "/dev/zero" || path == "/dev/urandom" || path == "/dev/random" ||
         path == "/dev/full";
}

// What an fd's link says it is, for "not supported" messages.
std::string kind_of(const std::string& target) {
  if (target.starts_with("pipe:")) return "a pipe";
  if (target.starts_with("socket:")) return "a socket";
  if (target.starts_with("anon_inode:")) return "an " + target.substr(11) + " (anon inode)";
  if (target.ends_with(" (deleted)")) return "a deleted file";
  if (target.starts_with("/dev/pts/") || target.starts_with("/dev/tty")) return "a terminal";
  return "'" + target + "'";
}

bool same_open_file(pid_t pid, int fd1, int fd2) {
  return ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd1, fd2) == 0;
}

}  // namespace

Result<uint32_t> FileTable::add_regular(const std::string& path, uint32_t flags, uint64_t pos, const std::string& how) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno("process {}: cannot stat {} {}", pid_, how, path);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !(S_ISCHR(st.st_mode) && is_plain_device(path)))
    return fail("process {}: {} {} is not a regular file, directory or plain device: not supported yet", pid_, how, path);
  uint32_t id = next_id_++;
  images::FileEntry f;
  f.set_type(images::REG);
  f.set_id(id);
  images::RegFileEntry* reg = f.mutable_reg();
  reg->set_id(id);
  reg->set_flags(flags);
  reg->set_pos(pos);
  images::FownEntry* fown = reg->mutable_fown();
  fown->set_uid(0);
  fown->set_euid(0);
  fown->set_signum(0);
  fown->set_pid_type(0);
  fown->set_pid(0);
  reg->set_name(path);
  if (S_ISREG(st.st_mode)) reg->set_size(static_cast<uint64_t>(st.st_size));
  reg->set_mode(st.st_mode);
  files_.push_back(std::move(f));
  return id;
}

Result<uint32_t> FileTable::add_path(const std::string& path, uint32_t open_flags, const std::string& how) {
  if (path.ends_with(" (deleted)")) return fail("process {}: its {} {} was deleted: not supported yet", pid_, how, path);
  if (path.empty() || path.front() != '/') return fail("process {}: its {} is '{}': not supported yet", pid_, how, path);
  auto key = std::make_pair(path, open_flags);
  if (auto it = by_path_.find(key); it != by_path_.end()) return it->second;
  uint32_t id = FERRY_TRY(add_regular(path, open_flags, 0, how));
  by_path_[key] = id;
  return id;
}

Status FileTable::add_open_fds(const std::vector<OpenFd>& fds) {
  std::vector<std::pair<int, uint32_t>> seen;  // fd -> file id
  for (const OpenFd& fd : fds) {
    bool plain_path = !fd.target.empty() && fd.target.front() == '/' && !fd.target.ends_with(" (deleted)") &&
                      !fd.target.starts_with("/dev/pts/") && !fd.target.starts_with("/dev/tty");
    if (!plain_path) return fail("process {}: fd {} is {}: not supported yet", pid_, fd.fd, kind_of(fd.target));
    uint32_t id = 0;
    for (const auto& [other_fd, other_id] : seen) {
      if (same_open_file(pid_, fd.fd, other_fd)) {
        id = other_id;
        break;
      }
    }
    if (id == 0) {
      uint32_t flags = fd.flags & ~static_cast<uint32_t>(O_CLOEXEC);
      id = FERRY_TRY(add_regular(fd.target, flags, fd.pos, fmt::format("fd {}", fd.fd)));
    }
    seen.emplace_back(fd.fd, id);
    images::FdinfoEntry e;
    e.set_id(id);
    e.set_flags((fd.flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
    e.set_type(images::REG);
    e.set_fd(static_cast<uint32_t>(fd.fd));
    fdinfo_.push_back(std::move(e));
  }
  return {};
}

}  // namespace ferry
