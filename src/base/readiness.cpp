#include "base/readiness.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace ferry {

Status write_pid_file(const std::string& path, pid_t pid) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("cannot create pidfile {}", path);
  std::string text = std::to_string(pid) + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail_errno("cannot write pidfile {}", path);
  return {};
}

Status signal_ready(const ReadinessSettings& s) {
  if (s.daemon) {
    // A pipe tells the parent whether the child could start, so the parent's
    // exit status means "the daemon runs".
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe for --daemon");
    UniqueFd read_end(p[0]), write_end(p[1]);
    pid_t child = ::fork();
    if (child < 0) return fail_errno("fork for --daemon");
    if (child > 0) {
      write_end.reset();
      char ok = 0;
      ssize_t n = ::read(read_end.get(), &ok, 1);
      if (n != 1) ::_exit(1);
      if (!s.pidfile.empty()) {
        if (Status w = write_pid_file(s.pidfile, child); !w) {
          ::kill(child, SIGTERM);
          return w;
        }
      }
      ::_exit(0);
    }
    read_end.reset();
    ::setsid();
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      if (devnull > 2) ::close(devnull);
    }
    char ok = 1;
    if (::write(write_end.get(), &ok, 1) != 1) ::_exit(1);
  } else if (!s.pidfile.empty()) {
    FERRY_TRY(write_pid_file(s.pidfile, ::getpid()));
  }
  if (s.status_fd >= 0) {
    char zero = 0;
    ssize_t n = ::write(s.status_fd, &zero, 1);
    int e = errno;
    ::close(s.status_fd);
    if (n != 1) return Failure{Error::from_errno(e, fmt::format("cannot write to --status-fd {}", s.status_fd))};
  }
  return {};
}

}  // namespace ferry
