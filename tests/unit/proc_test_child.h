// A forked copy of the test process that sets up some state and waits, for
// the tests of src/proc: they read and seize it. It talks to the test through
// two pipes, dies with the test (PR_SET_PDEATHSIG), and is killed (SIGKILL,
// by PID) and reaped when the TestChild goes away.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>

#include "proc/proc_file.h"

namespace ferry::test {

// The child's ends of the pipes.
struct ChildLink {
  int to_test = -1;
  int from_test = -1;

  template <class T>
    requires std::is_trivially_copyable_v<T>
  void report(const T& value) const {
    if (::write(to_test, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) ::_exit(120);
  }
  // Blocks until the test sends a byte; returns it.
  char await() const {
    char c = 0;
    for (;;) {
      ssize_t n = ::read(from_test, &c, 1);
      if (n == 1) return c;
      if (n < 0 && errno == EINTR) continue;
      ::_exit(121);
    }
  }
};

class TestChild {
 public:
  // Forks; the child runs body and exits with what it returns.
  explicit TestChild(const std::function<int(const ChildLink&)>& body) {
    int up[2], down[2];
    if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0) return;
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(122);
      ::close(up[0]);
      ::close(down[1]);
      ::_exit(body(ChildLink{up[1], down[0]}));
    }
    ::close(up[1]);
    ::close(down[0]);
    from_child_ = up[0];
    to_child_ = down[1];
  }
  TestChild(const TestChild&) = delete;
  TestChild& operator=(const TestChild&) = delete;
  ~TestChild() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status;
      while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
      }
    }
    if (from_child_ >= 0) ::close(from_child_);
    if (to_child_ >= 0) ::close(to_child_);
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // One value the child report()ed; nullopt after the timeout or at EOF.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  std::optional<T> receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    T value{};
    auto* bytes = reinterpret_cast<char*>(&value);
    size_t got = 0;
    while (got < sizeof value) {
      pollfd p{from_child_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
      ssize_t n = ::read(from_child_, bytes + got, sizeof value - got);
      if (n <= 0) return std::nullopt;
      got += static_cast<size_t>(n);
    }
    return value;
  }

  // The child was reaped elsewhere (its tracer's waitpid): nothing to kill.
  void forget() { reaped_ = true; }

  void send(char c = 'g') { (void)!::write(to_child_, &c, 1); }

  // The exit code (128 + signal when killed), or nullopt after the timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ && (WIFEXITED(status) || WIFSIGNALED(status))) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (r < 0) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return std::nullopt;
  }

  // Waits until thread `tid` (default: the main thread) is blocked in system
  // call `nr`, as /proc/PID/task/TID/syscall shows.
  bool wait_in_syscall(long nr, pid_t tid = 0, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    std::string path = proc_dir(pid_, tid == 0 ? pid_ : tid) + "/syscall";
    std::string prefix = std::to_string(nr) + " ";
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Result<std::string> text = read_proc_file(path);
      if (text && text->starts_with(prefix)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  int from_child_ = -1;
  int to_child_ = -1;
  bool reaped_ = false;
};

}  // namespace ferry::test
