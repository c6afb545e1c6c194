#include "restore/process_creator.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace ferry {
namespace {

constexpr std::chrono::seconds kSetupTimeout{30};

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return fmt::format("wait status {:#x}", status);
}

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

struct ChildArgs {
  const TaskSetupPlan* plan;
  int report_fd;
};

// The restored process, still Ferry: set up, report, wait for the tracer.
int child_body(void* raw) {
  auto* args = static_cast<ChildArgs*>(raw);
  int report_fd = args->report_fd;
  std::vector<std::string> warnings;
  Status s = set_up_task(*args->plan, report_fd, warnings);
  std::string report;
  for (const std::string& w : warnings) report += "W " + one_line(w) + "\n";
  report += s ? std::string("OK\n") : "E " + one_line(s.error().message()) + "\n";
  write_all(report_fd, report);
  ::close(report_fd);
  if (!s) return 1;
  for (;;) ::syscall(SYS_pause);
}

// Everything the child wrote, until it closed the pipe.
Result<std::string> read_report(int fd, pid_t pid) {
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + kSetupTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail("process {} did not finish its setup within {} s", pid, kSetupTimeout.count());
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail_errno("poll the setup report of process {}", pid);
    if (r == 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read the setup report of process {}", pid);
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

RestoredChild& RestoredChild::operator=(RestoredChild&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, 0);
  }
  return *this;
}

void RestoredChild::kill_and_reap() {
  pid_t pid = std::exchange(pid_, 0);
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
}

Result<pid_t> clone_with_pid(pid_t pid, int (*body)(void*), void* arg) {
  pid_t tids[1] = {pid};
  clone_args args{};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uintptr_t>(tids);
  args.set_tid_size = 1;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r < 0) {
    if (errno == EEXIST) return fail(Error(fmt::format("PID {} is already in use: cannot restore the process with it", pid), EEXIST));
    if (errno == EINVAL) return fail_errno("clone3 with PID {} (above this kernel's pid_max?)", pid);
    return fail_errno("clone3 with PID {}", pid);
  }
  if (r == 0) ::_exit(body(arg));
  return static_cast<pid_t>(r);
}

Result<CreatedTask> create_task(pid_t pid, const TaskSetupPlan& plan) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe for the setup report");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  ChildArgs args{&plan, write_end.get()};
  CreatedTask created;
  created.child = RestoredChild(FERRY_TRY(clone_with_pid(pid, child_body, &args)));
  write_end.reset();

  std::string report = FERRY_TRY(read_report(read_end.get(), pid));
  bool ok = false;
  std::string error;
  std::string_view rest = report;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.starts_with("W ")) created.warnings.emplace_back(line.substr(2));
    else if (line.starts_with("E ")) error = line.substr(2);
    else if (line == "OK") ok = true;
  }
  if (ok) return created;
  if (!error.empty()) return fail("process {} could not set itself up: {}", pid, error);
  int status = 0;
  pid_t child = created.child.release();
  while (::waitpid(child, &status, __WALL) < 0 && errno == EINTR) {
  }
  return fail("process {} {} during its setup", pid, describe_wait_status(status));
}

}  // namespace ferry
