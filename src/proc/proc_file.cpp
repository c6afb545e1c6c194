#include "proc/proc_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace ferry {

std::string proc_dir(pid_t pid, pid_t tid) {
  if (tid == 0) return fmt::format("/proc/{}", pid);
  return fmt::format("/proc/{}/task/{}", pid, tid);
}

Result<std::string> read_proc_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open {}", path);
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read {}", path);
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

Result<std::string> read_proc_link(const std::string& path) {
  // PATH_MAX bounds what the kernel returns for a /proc link.
  std::string target(PATH_MAX, '\0');
  ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
  if (n < 0) return fail_errno("readlink {}", path);
  target.resize(static_cast<size_t>(n));
  return target;
}

Result<uint64_t> parse_u64(std::string_view text, int base) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || ec != std::errc() || ptr != end) return fail("'{}' is not a base-{} number", text, base);
  return value;
}

std::string_view next_line(std::string_view& text) {
  size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  return line;
}

}  // namespace ferry
