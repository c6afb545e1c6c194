// Probes of what dump and restore do to other processes: each one runs
// against a child forked for it, which is killed by PID and reaped before the
// probe returns.
#include <fcntl.h>
#include <linux/sched.h>  // struct clone_args, CLONE_ARGS_SIZE_VER2
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>  // also struct prctl_mm_map
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "check/kernel_probes.h"

namespace ferry::probes {
namespace {

constexpr std::chrono::milliseconds kWaitLimit{3000};

// A forked child that is SIGKILLed and reaped when this goes away, so a probe
// that fails half-way leaves no process behind.
class ScopedChild {
 public:
  explicit ScopedChild(pid_t pid) : pid_(pid) {}
  ScopedChild(ScopedChild&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ScopedChild& operator=(ScopedChild&&) = delete;
  ~ScopedChild() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
    }
  }
  pid_t pid() const { return pid_; }
  // The child has been reaped by the caller: nothing left to kill.
  void forget() { pid_ = -1; }

 private:
  pid_t pid_;
};

// waitpid with a deadline, so a probe of a misbehaving kernel reports
// instead of hanging.
Result<int> wait_status(pid_t pid, int options) {
  auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, options | WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return fail_errno("waitpid {}", pid);
    if (std::chrono::steady_clock::now() > deadline) return fail("pid {} did not change state within {} ms", pid, kWaitLimit.count());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Reaps a child expected to exit by itself.
Result<int> reap(ScopedChild& child) {
  int status = FERRY_TRY(wait_status(child.pid(), __WALL));
  if (WIFEXITED(status) || WIFSIGNALED(status)) child.forget();
  return status;
}

// Forks a child that runs body() and then _exits. The body must only make
// async-signal-safe calls: it runs in a copy of ferry.
template <class Body>
Result<ScopedChild> fork_child(Body&& body) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    // If ferry dies mid-probe, the child must not outlive it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    body();
    ::_exit(0);
  }
  return ScopedChild(pid);
}

[[noreturn]] void pause_forever() {
  for (;;) ::pause();
}

// A word at the same address in ferry and in every child it forks.
uint64_t g_probe_word = 0;

ProbeResult probe_ptrace() {
  ProbeResult r{"ptrace seize/interrupt", "dump, restore", false, "", true};
  Result<ScopedChild> child = fork_child(pause_forever);
  if (!child) {
    r.detail = child.error().message();
    return r;
  }
  pid_t pid = child->pid();
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) {
    r.detail = "PTRACE_SEIZE: " + errno_text(errno);
    if (Result<std::string> scope = read_text_file("/proc/sys/kernel/yama/ptrace_scope"))
      r.detail += fmt::format("; yama ptrace_scope is {}", scope->substr(0, scope->find('\n')));
    return r;
  }
  if (::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0) {
    r.detail = "PTRACE_INTERRUPT: " + errno_text(errno);
    return r;
  }
  Result<int> status = wait_status(pid, __WALL);
  if (!status) {
    r.detail = "after PTRACE_INTERRUPT: " + status.error().message();
    return r;
  }
  if (!WIFSTOPPED(*status) || (*status >> 16) != PTRACE_EVENT_STOP) {
    r.detail = fmt::format("PTRACE_INTERRUPT gave wait status {:#x}, not PTRACE_EVENT_STOP", *status);
    return r;
  }
  if (::ptrace(PTRACE_DETACH, pid, nullptr, nullptr) != 0) {
    r.detail = "PTRACE_DETACH: " + errno_text(errno);
    return r;
  }
  r.present = true;
  r.detail = "SEIZE, INTERRUPT (event stop) and DETACH work on a child";
  return r;
}

// One child serves both process_vm_* and pagemap: both read a child's memory.
std::vector<ProbeResult> probe_memory_access() {
  ProbeResult vm{"process_vm_readv/writev", "dump, restore (memory)", false, "", true};
  ProbeResult pm{"/proc/PID/pagemap", "dump (memory)", false, "", true};
  // Written before the fork, so the child has the page present (copied on fork).
  g_probe_word = 0x1111111111111111;
  Result<ScopedChild> child = fork_child(pause_forever);
  if (!child) {
    vm.detail = pm.detail = child.error().message();
    return {vm, pm};
  }
  pid_t pid = child->pid();

  const uint64_t written = 0x2222222222222222;
  uint64_t local = written;
  iovec local_iov{&local, sizeof local};
  iovec remote_iov{&g_probe_word, sizeof g_probe_word};
  ssize_t n = ::process_vm_writev(pid, &local_iov, 1, &remote_iov, 1, 0);
  if (n != static_cast<ssize_t>(sizeof local)) {
    vm.detail = "process_vm_writev: " + (n < 0 ? errno_text(errno) : fmt::format("wrote {} of 8 bytes", n));
  } else {
    local = 0;
    n = ::process_vm_readv(pid, &local_iov, 1, &remote_iov, 1, 0);
    if (n != static_cast<ssize_t>(sizeof local)) {
      vm.detail = "process_vm_readv: " + (n < 0 ? errno_text(errno) : fmt::format("read {} of 8 bytes", n));
    } else if (local != written) {
      vm.detail = fmt::format("read back {:#x}, wrote {:#x}", local, written);
    } else {
      vm.present = true;
      vm.detail = "wrote a word into a child and read it back";
    }
  }

  std::string path = fmt::format("/proc/{}/pagemap", pid);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  uint64_t entry = 0;
  long page = ::sysconf(_SC_PAGESIZE);
  off_t offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(&g_probe_word) / page * sizeof entry);
  if (!fd) {
    pm.detail = "open: " + errno_text(errno);
    // Under `unshare --pid` without --mount-proc, /proc shows PIDs of another namespace.
    char self[32] = {};
    if (::readlink("/proc/self", self, sizeof self - 1) > 0 && std::strtol(self, nullptr, 10) != ::getpid())
      pm.detail += "; /proc belongs to another PID namespace: mount one for ferry's (unshare --mount-proc)";
  } else if (ssize_t got = ::pread(fd.get(), &entry, sizeof entry, offset); got != sizeof entry) {
    pm.detail = "read: " + (got < 0 ? errno_text(errno) : "short read");
  } else {
    pm.present = true;
    bool page_present = (entry >> 63) & 1;
    uint64_t pfn = entry & ((uint64_t{1} << 55) - 1);
    if (!page_present)
      pm.detail = "readable (probe page not present, PFN visibility unknown)";
    else if (pfn != 0)
      pm.detail = "readable; PFNs visible";
    else
      pm.detail = "readable; PFNs hidden (they need CAP_SYS_ADMIN)";
  }
  return {vm, pm};
}

Result<long> read_long(const std::string& path) {
  std::string text = FERRY_TRY(read_text_file(path));
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str()) return fail("{}: not a number", path);
  return v;
}

ProbeResult probe_clone3_set_tid() {
  ProbeResult r{"clone3 set_tid", "restore (PIDs)", false, "", true};
  Result<long> last = read_long("/proc/sys/kernel/ns_last_pid");
  Result<long> pid_max = read_long("/proc/sys/kernel/pid_max");
  if (!last || !pid_max) {
    r.detail = (!last ? last.error() : pid_max.error()).message();
    return r;
  }
  // Well above the last PID handed out, so a concurrent fork elsewhere is
  // unlikely to race us for it; an EEXIST just moves to the next one.
  pid_t want = static_cast<pid_t>(*last + 100);
  int taken = 0;
  for (int attempt = 0; attempt < 64; ++attempt, ++want) {
    if (want >= *pid_max) want = 300;  // the kernel's own wrap-around point (RESERVED_PIDS)
    pid_t tid = want;
    clone_args args{};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uintptr_t>(&tid);
    args.set_tid_size = 1;
    long got = ::syscall(SYS_clone3, &args, CLONE_ARGS_SIZE_VER2);
    if (got == 0) ::_exit(0);  // the child: a raw clone3 leaves libc's state stale, touch nothing
    if (got < 0) {
      int e = errno;
      if (e == EEXIST) {
        ++taken;
        continue;
      }
      r.detail = "clone3: " + errno_text(e);
      if (e == ENOSYS) r.detail += " (no clone3: Linux < 5.3)";
      if (e == E2BIG || e == EINVAL) r.detail += " (no set_tid: Linux < 5.5)";
      if (e == EPERM) r.detail += " (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)";
      return r;
    }
    ScopedChild child(static_cast<pid_t>(got));
    Result<int> status = reap(child);
    if (got != want) {
      r.detail = fmt::format("asked for PID {}, child got {}", want, got);
    } else if (!status) {
      r.detail = status.error().message();
    } else {
      r.present = true;
      r.detail = fmt::format("child created with the chosen PID {}", want);
      if (taken > 0) r.detail += fmt::format(" ({} busy PIDs skipped)", taken);
    }
    return r;
  }
  r.detail = fmt::format("64 candidate PIDs from {} were all taken", *last + 100);
  return r;
}

// Fields of /proc/PID/stat by their 1-based number in proc(5).
Result<std::vector<uint64_t>> read_stat_fields() {
  std::string stat = FERRY_TRY(read_text_file("/proc/self/stat"));
  // comm (field 2) may hold spaces and parentheses; field 3 follows the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return fail("/proc/self/stat: no ')' after comm");
  std::vector<uint64_t> fields(3, 0);
  const char* p = stat.c_str() + close + 1;
  while (*p) {
    while (*p == ' ') ++p;
    if (!*p || *p == '\n') break;
    char* end = nullptr;
    fields.push_back(std::strtoull(p, &end, 10));  // state (field 3) parses as 0: unused
    while (*end && *end != ' ') ++end;
    p = end;
  }
  if (fields.size() <= 51) return fail("/proc/self/stat: {} fields, need 51", fields.size() - 1);
  return fields;
}

ProbeResult probe_prctl_mm_map() {
  ProbeResult r{"PR_SET_MM_MAP", "restore (mm layout)", false, "", true};
  unsigned int kernel_size = 0;
  if (::prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &kernel_size, 0, 0) != 0) {
    r.detail = "PR_SET_MM_MAP_SIZE: " + errno_text(errno);
    if (errno == EINVAL) r.detail += " (CONFIG_CHECKPOINT_RESTORE unset?)";
    return r;
  }
  std::string size_note = fmt::format("PR_SET_MM_MAP_SIZE is {}", kernel_size);
  if (kernel_size != sizeof(prctl_mm_map)) {
    r.detail = fmt::format("{}, ferry's struct prctl_mm_map is {}", size_note, sizeof(prctl_mm_map));
    return r;
  }
  // Read before the fork (allocating is unsafe after it); a forked child has
  // the same layout, so these are the child's values too.
  Result<std::vector<uint64_t>> f = read_stat_fields();
  Result<std::string> auxv = read_text_file("/proc/self/auxv");
  if (!f || !auxv) {
    r.detail = (!f ? f.error() : auxv.error()).message();
    return r;
  }
  prctl_mm_map map{};
  map.start_code = (*f)[26];
  map.end_code = (*f)[27];
  map.start_stack = (*f)[28];
  map.start_data = (*f)[45];
  map.end_data = (*f)[46];
  map.start_brk = (*f)[47];
  map.arg_start = (*f)[48];
  map.arg_end = (*f)[49];
  map.env_start = (*f)[50];
  map.env_end = (*f)[51];
  std::vector<__u64> auxv_words((auxv->size() + sizeof(__u64) - 1) / sizeof(__u64));
  std::memcpy(auxv_words.data(), auxv->data(), auxv->size());
  map.auxv = auxv_words.data();
  map.auxv_size = static_cast<uint32_t>(auxv->size());
  map.exe_fd = static_cast<uint32_t>(-1);  // keep /proc/PID/exe as it is

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.detail = "pipe: " + errno_text(errno);
    return r;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // The kernel checks for CAP_CHECKPOINT_RESTORE/CAP_SYS_ADMIN only when the
  // map also replaces /proc/PID/exe, which a restore does; so a second call
  // passes an exe_fd. Ferry's own binary is still mapped in the child, so a
  // permitted replacement fails with EBUSY, never EPERM.
  UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) {
    r.detail = "open /proc/self/exe: " + errno_text(errno);
    return r;
  }
  // Run in a child: a wrong map would break the address space it is set on.
  Result<ScopedChild> child = fork_child([&] {
    map.brk = reinterpret_cast<uintptr_t>(::sbrk(0));
    int errs[2];
    errs[0] = ::prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) == 0 ? 0 : errno;
    map.exe_fd = static_cast<uint32_t>(exe.get());
    errs[1] = ::prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) == 0 ? 0 : errno;
    (void)!::write(write_end.get(), errs, sizeof errs);
  });
  write_end.reset();
  if (!child) {
    r.detail = child.error().message();
    return r;
  }
  int errs[2] = {-1, -1};
  pollfd pfd{read_end.get(), POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(kWaitLimit.count())) != 1 ||
      ::read(read_end.get(), errs, sizeof errs) != sizeof errs) {
    r.detail = "the child did not report";
  } else if (errs[0] != 0) {
    r.detail = "PR_SET_MM_MAP: " + errno_text(errs[0]);
  } else if (errs[1] == EPERM) {
    r.detail = "mm fields and auxv can be set, but not exe_fd: EPERM (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)";
  } else {
    r.present = true;
    r.detail = fmt::format("set a child's mm fields and auxv; exe_fd {}; {}",
                           errs[1] == 0 || errs[1] == EBUSY ? "permitted" : "gave " + errno_text(errs[1]),
                           size_note);
  }
  (void)reap(*child);
  return r;
}

ProbeResult probe_pidfd_getfd() {
  ProbeResult r{"pidfd_open/pidfd_getfd", "lazy restore (fetch a task's uffd)", false, "", false};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.detail = "pipe: " + errno_text(errno);
    return r;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  Result<ScopedChild> child = fork_child(pause_forever);
  if (!child) {
    r.detail = child.error().message();
    return r;
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child->pid(), 0)));
  if (!pidfd) {
    r.detail = "pidfd_open: " + errno_text(errno);
    return r;
  }
  // The child inherited read_end at the same number.
  UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), read_end.get(), 0)));
  if (!copy) {
    r.detail = "pidfd_getfd: " + errno_text(errno);
    return r;
  }
  struct stat mine, theirs;
  if (::fstat(read_end.get(), &mine) != 0 || ::fstat(copy.get(), &theirs) != 0) {
    r.detail = "fstat: " + errno_text(errno);
  } else if (mine.st_dev != theirs.st_dev || mine.st_ino != theirs.st_ino) {
    r.detail = "pidfd_getfd returned a different file";
  } else {
    r.present = true;
    r.detail = "copied a child's fd through its pidfd";
  }
  return r;
}

}  // namespace

std::vector<ProbeResult> process_probes() {
  std::vector<ProbeResult> rows;
  rows.push_back(probe_ptrace());
  for (ProbeResult& r : probe_memory_access()) rows.push_back(std::move(r));
  rows.push_back(probe_clone3_set_tid());
  rows.push_back(probe_prctl_mm_map());
  rows.push_back(probe_pidfd_getfd());
  return rows;
}

}  // namespace ferry::probes
