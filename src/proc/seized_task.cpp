#include "proc/seized_task.h"

#include <cpuid.h>
#include <elf.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "base/log.h"

namespace ferry {
namespace {

const Logger kLog{"proc"};

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// waitpid for one traced thread, with a deadline. Polls: a blocking waitpid
// cannot time out, and a thread stuck in the kernel (D state, vfork) never
// reaches a ptrace stop. Stops of injected system calls arrive within
// microseconds, so the first rounds only yield the CPU.
Result<int> wait_for_status(pid_t tid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int round = 0;; ++round) {
    int status = 0;
    pid_t r = ::waitpid(tid, &status, __WALL | WNOHANG);
    if (r == tid) return status;
    if (r < 0 && errno != EINTR) return fail_errno("waitpid {}", tid);
    if (std::chrono::steady_clock::now() > deadline)
      return fail("task {} did not stop within {} ms", tid, timeout.count());
    if (round < 32) {
      ::sched_yield();
    } else {
      auto pause = std::chrono::microseconds(10) * (round - 31);
      std::this_thread::sleep_for(std::min<std::chrono::microseconds>(pause, std::chrono::milliseconds(2)));
    }
  }
}

// The XSAVE area of this CPU with every feature XCR0 enables (CPUID leaf 0xd,
// ECX), which is what the kernel's NT_X86_XSTATE regset holds at most.
size_t xsave_area_size_hint() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx) == 0) return 4096;
  return std::max<size_t>({ecx, ebx, 4096});
}

void* as_addr(uint64_t value) { return reinterpret_cast<void*>(static_cast<uintptr_t>(value)); }

}  // namespace

TaskStop TaskStop::from_wait_status(int status) {
  TaskStop s;
  s.wait_status = status;
  if (WIFEXITED(status)) {
    s.kind = Kind::kExited;
    s.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.kind = Kind::kExited;
    s.signal = WTERMSIG(status);
  } else {
    s.signal = WSTOPSIG(status);
    s.event = (status >> 16) & 0xff;
    if (s.event == PTRACE_EVENT_STOP) s.kind = Kind::kEvent;
    else if (s.event != 0) s.kind = Kind::kOther;
    else if (s.signal == (SIGTRAP | 0x80)) s.kind = Kind::kSyscall;
    else s.kind = Kind::kSignal;
  }
  return s;
}

std::string TaskStop::describe() const {
  switch (kind) {
    case Kind::kEvent:
      return signal == SIGTRAP ? "interrupt stop" : fmt::format("group stop ({})", signal_name(signal));
    case Kind::kSyscall:
      return "syscall stop";
    case Kind::kSignal:
      return fmt::format("signal-delivery stop ({})", signal_name(signal));
    case Kind::kOther:
      return fmt::format("ptrace event {} stop", event);
    case Kind::kExited:
      return signal != 0 ? fmt::format("was killed by {}", signal_name(signal))
                         : fmt::format("exited with status {}", exit_status);
  }
  return "unknown stop";
}

uint64_t XSaveArea::xstate_bv() const {
  uint64_t bv = 0;
  if (bytes.size() >= kLegacySize + sizeof bv) std::memcpy(&bv, bytes.data() + kLegacySize, sizeof bv);
  return bv;
}

SeizedTask::SeizedTask(pid_t tid) : tid_(tid), tracer_(::gettid()) {}

SeizedTask::SeizedTask(SeizedTask&& other) noexcept
    : tid_(std::exchange(other.tid_, 0)),
      tracer_(other.tracer_),
      stopped_(other.stopped_),
      exited_(other.exited_),
      group_stop_signal_(other.group_stop_signal_),
      last_stop_(other.last_stop_) {}

SeizedTask& SeizedTask::operator=(SeizedTask&& other) noexcept {
  if (this != &other) {
    detach_or_warn();
    tid_ = std::exchange(other.tid_, 0);
    tracer_ = other.tracer_;
    stopped_ = other.stopped_;
    exited_ = other.exited_;
    group_stop_signal_ = other.group_stop_signal_;
    last_stop_ = other.last_stop_;
  }
  return *this;
}

SeizedTask::~SeizedTask() { detach_or_warn(); }

void SeizedTask::detach_or_warn() {
  if (tid_ == 0) return;
  pid_t tid = tid_;
  if (Status s = detach(); !s) kLog.warn("task {} stays traced: {}", tid, s.error().message());
}

Result<SeizedTask> SeizedTask::seize(pid_t tid, std::chrono::milliseconds timeout) {
  if (tid <= 0) return fail("seize task {}: not a task ID", tid);
  // TRACESYSGOOD: syscall stops (PTRACE_SYSCALL) report SIGTRAP|0x80, so they
  // cannot be mistaken for a real SIGTRAP. No EXITKILL: a dump must not take
  // its target down if ferry dies.
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, as_addr(PTRACE_O_TRACESYSGOOD)) != 0)
    return fail_errno("seize task {}", tid);
  SeizedTask task(tid);
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return fail_errno("interrupt task {}", tid);
  // Signals dequeued before our interrupt trap are let through: delivering
  // them is what would have happened without us.
  for (int round = 0; round < 64; ++round) {
    Result<TaskStop> stop = task.wait_stop(timeout);
    if (!stop) {
      // A running tracee cannot be detached: it stops when it leaves the
      // kernel and stays traced by ferry until ferry exits.
      task.release();
      return fail(std::move(stop).error().with_context(fmt::format("seize task {}", tid)));
    }
    switch (stop->kind) {
      case TaskStop::Kind::kEvent:
        task.group_stop_signal_ = stop->signal == SIGTRAP ? 0 : stop->signal;
        kLog.debug("seized task {} ({})", tid, stop->describe());
        return task;
      case TaskStop::Kind::kSignal:
        FERRY_TRY_CTX(task.resume(PTRACE_CONT, stop->signal), "seize task {}", tid);
        continue;
      case TaskStop::Kind::kExited:
        return fail(Error(fmt::format("seize task {}: it {} before it stopped", tid, stop->describe()), ESRCH));
      default:
        return fail("seize task {}: unexpected {}", tid, stop->describe());
    }
  }
  return fail("seize task {}: signals kept arriving, it never reached the interrupt stop", tid);
}

Status SeizedTask::check_usable() const {
  if (tid_ == 0) return fail("no task: detached, released or moved from");
  if (exited_) return fail(Error(fmt::format("task {} {}", tid_, last_stop_.describe()), ESRCH));
  if (pid_t self = ::gettid(); self != tracer_)
    return fail("task {} is traced by thread {}, not by the calling thread {}", tid_, tracer_, self);
  return {};
}

Result<user_regs_struct> SeizedTask::regs() const {
  FERRY_TRY(check_usable());
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, tid_, nullptr, &regs) != 0) return fail_errno("PTRACE_GETREGS task {}", tid_);
  return regs;
}

Status SeizedTask::set_regs(const user_regs_struct& regs) {
  FERRY_TRY(check_usable());
  if (::ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return fail_errno("PTRACE_SETREGS task {}", tid_);
  return {};
}

Result<user_fpregs_struct> SeizedTask::fpregs() const {
  FERRY_TRY(check_usable());
  user_fpregs_struct fp{};
  iovec iov{&fp, sizeof fp};
  if (::ptrace(PTRACE_GETREGSET, tid_, as_addr(NT_PRFPREG), &iov) != 0)
    return fail_errno("PTRACE_GETREGSET NT_PRFPREG task {}", tid_);
  if (iov.iov_len != sizeof fp) return fail("NT_PRFPREG of task {}: {} bytes, expected {}", tid_, iov.iov_len, sizeof fp);
  return fp;
}

Status SeizedTask::set_fpregs(const user_fpregs_struct& fpregs) {
  FERRY_TRY(check_usable());
  user_fpregs_struct fp = fpregs;
  iovec iov{&fp, sizeof fp};
  if (::ptrace(PTRACE_SETREGSET, tid_, as_addr(NT_PRFPREG), &iov) != 0)
    return fail_errno("PTRACE_SETREGSET NT_PRFPREG task {}", tid_);
  return {};
}

Result<XSaveArea> SeizedTask::xstate() const {
  FERRY_TRY(check_usable());
  XSaveArea area;
  // The kernel shortens iov_len to its regset size; a buffer it filled to the
  // last byte may have been too small, so that one is tried again larger.
  for (size_t size = xsave_area_size_hint(); size <= (1u << 20); size *= 2) {
    area.bytes.assign(size, 0);
    iovec iov{area.bytes.data(), area.bytes.size()};
    if (::ptrace(PTRACE_GETREGSET, tid_, as_addr(NT_X86_XSTATE), &iov) != 0)
      return fail_errno("PTRACE_GETREGSET NT_X86_XSTATE task {}", tid_);
    if (iov.iov_len < size) {
      area.bytes.resize(iov.iov_len);
      if (area.bytes.size() < XSaveArea::kLegacySize + XSaveArea::kHeaderSize)
        return fail("NT_X86_XSTATE of task {}: only {} bytes", tid_, area.bytes.size());
      return area;
    }
  }
  return fail("NT_X86_XSTATE of task {}: larger than 1 MiB", tid_);
}

Status SeizedTask::set_xstate(const XSaveArea& area) {
  FERRY_TRY(check_usable());
  std::vector<uint8_t> bytes = area.bytes;  // the kernel takes a non-const iovec
  iovec iov{bytes.data(), bytes.size()};
  if (::ptrace(PTRACE_SETREGSET, tid_, as_addr(NT_X86_XSTATE), &iov) != 0)
    return fail_errno("PTRACE_SETREGSET NT_X86_XSTATE task {} ({} bytes)", tid_, bytes.size());
  return {};
}

Result<uint64_t> SeizedTask::signal_mask() const {
  FERRY_TRY(check_usable());
  uint64_t mask = 0;
  if (::ptrace(PTRACE_GETSIGMASK, tid_, as_addr(sizeof mask), &mask) != 0)
    return fail_errno("PTRACE_GETSIGMASK task {}", tid_);
  return mask;
}

Status SeizedTask::set_signal_mask(uint64_t mask) {
  FERRY_TRY(check_usable());
  if (::ptrace(PTRACE_SETSIGMASK, tid_, as_addr(sizeof mask), &mask) != 0)
    return fail_errno("PTRACE_SETSIGMASK task {}", tid_);
  return {};
}

Result<std::vector<siginfo_t>> SeizedTask::pending_signals(SignalQueue queue) const {
  FERRY_TRY(check_usable());
  std::vector<siginfo_t> all;
  constexpr int kBatch = 32;
  siginfo_t batch[kBatch];
  for (;;) {
    uint32_t flags = queue == SignalQueue::kShared ? static_cast<uint32_t>(PTRACE_PEEKSIGINFO_SHARED) : 0;
    __ptrace_peeksiginfo_args args{all.size(), flags, kBatch};
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid_, &args, batch);
    if (n < 0) return fail_errno("PTRACE_PEEKSIGINFO task {}", tid_);
    if (n == 0) return all;
    all.insert(all.end(), batch, batch + n);
  }
}

Result<siginfo_t> SeizedTask::stop_siginfo() const {
  FERRY_TRY(check_usable());
  siginfo_t info{};
  if (::ptrace(PTRACE_GETSIGINFO, tid_, nullptr, &info) != 0) return fail_errno("PTRACE_GETSIGINFO task {}", tid_);
  return info;
}

Result<SyscallStop> SeizedTask::syscall_stop() const {
  FERRY_TRY(check_usable());
  __ptrace_syscall_info info{};
  long n = ::ptrace(PTRACE_GET_SYSCALL_INFO, tid_, as_addr(sizeof info), &info);
  if (n < 0) return fail_errno("PTRACE_GET_SYSCALL_INFO task {}", tid_);
  SyscallStop stop;
  stop.instruction_pointer = info.instruction_pointer;
  if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
    stop.entry = true;
    stop.nr = static_cast<long>(info.entry.nr);
  } else if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
    stop.result = info.exit.rval;
  } else {
    return fail("task {} is not in a syscall stop (PTRACE_GET_SYSCALL_INFO op {})", tid_, info.op);
  }
  return stop;
}

Result<uint64_t> SeizedTask::peek(uint64_t address) const {
  FERRY_TRY(check_usable());
  errno = 0;
  long word = ::ptrace(PTRACE_PEEKDATA, tid_, as_addr(address), nullptr);
  if (word == -1 && errno != 0) return fail_errno("PTRACE_PEEKDATA task {} at {:#x}", tid_, address);
  return static_cast<uint64_t>(word);
}

Status SeizedTask::poke(uint64_t address, uint64_t word) {
  FERRY_TRY(check_usable());
  if (::ptrace(PTRACE_POKEDATA, tid_, as_addr(address), as_addr(word)) != 0)
    return fail_errno("PTRACE_POKEDATA task {} at {:#x}", tid_, address);
  return {};
}

Status SeizedTask::resume(int request, int signal) {
  FERRY_TRY(check_usable());
  if (!stopped_) return fail("resume task {}: it is not stopped", tid_);
  auto req = static_cast<__ptrace_request>(request);
  if (::ptrace(req, tid_, nullptr, as_addr(static_cast<uint64_t>(signal))) != 0)
    return fail_errno("resume task {} (ptrace request {:#x})", tid_, request);
  stopped_ = false;
  return {};
}

Status SeizedTask::interrupt() {
  FERRY_TRY(check_usable());
  if (::ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) return fail_errno("PTRACE_INTERRUPT task {}", tid_);
  return {};
}

Result<TaskStop> SeizedTask::wait_stop(std::chrono::milliseconds timeout) {
  FERRY_TRY(check_usable());
  int status = FERRY_TRY(wait_for_status(tid_, timeout));
  last_stop_ = TaskStop::from_wait_status(status);
  exited_ = last_stop_.kind == TaskStop::Kind::kExited;
  stopped_ = !exited_;
  return last_stop_;
}

Status SeizedTask::detach() {
  if (tid_ == 0) return {};
  if (exited_) {
    tid_ = 0;
    return {};
  }
  FERRY_TRY(check_usable());
  if (!stopped_) {
    FERRY_TRY_CTX(interrupt(), "detach");
    FERRY_TRY_CTX(wait_stop(), "detach task {}", tid_);
    if (exited_) {
      tid_ = 0;
      return {};
    }
  }
  // From a signal-delivery stop the signal is passed on, not lost.
  int signal = last_stop_.kind == TaskStop::Kind::kSignal ? last_stop_.signal : 0;
  pid_t tid = std::exchange(tid_, 0);
  if (::ptrace(PTRACE_DETACH, tid, nullptr, as_addr(static_cast<uint64_t>(signal))) == 0) {
    kLog.debug("detached task {}", tid);
    return {};
  }
  Error error = Error::from_errno(errno, fmt::format("detach task {}", tid));
  // ESRCH: it was killed while stopped. Its exit is reported to us, the
  // tracer, first; collect it so that its parent can reap it.
  if (error.sys_errno() == ESRCH) {
    Result<int> status = wait_for_status(tid, std::chrono::milliseconds(1000));
    if (status && (WIFEXITED(*status) || WIFSIGNALED(*status))) return {};
  }
  return fail(std::move(error));
}

pid_t SeizedTask::release() { return std::exchange(tid_, 0); }

}  // namespace ferry
