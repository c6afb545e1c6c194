#include "proc/remote_syscall.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "proc/proc_maps.h"

namespace ferry {
namespace {

const Logger kLog{"proc"};

// `syscall` (0f 05) then `int3` (cc), little-endian in the low bytes of a word.
constexpr uint64_t kCodeBlob = 0xcc050f;
constexpr uint64_t kCodeMask = 0xffffff;
constexpr uint64_t kSyscallLength = 2;
constexpr uint64_t kUserCodeSegment64 = 0x33;
// Stops that may come between two syscall stops (group stops, stop signals)
// before Ferry calls the thread unmanageable.
constexpr int kMaxDetours = 16;

// A signal the kernel raised because of what the thread executed.
bool is_fault(const siginfo_t& info) {
  if (info.si_code <= 0) return false;  // sent by a process (kill, tgkill, sigqueue)
  switch (info.si_signo) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGTRAP:
    case SIGFPE:
    case SIGSYS:
      return true;
    default:
      return false;
  }
}

std::string describe_fault(const siginfo_t& info) {
  const char* abbrev = ::sigabbrev_np(info.si_signo);
  return fmt::format("SIG{} (si_code {}, address {:#x})", abbrev ? abbrev : "?", info.si_code,
                     reinterpret_cast<uintptr_t>(info.si_addr));
}

// The code blob must sit in executable memory of the thread, whole.
Status check_code_address(pid_t tid, uint64_t address) {
  std::vector<MapsEntry> maps = FERRY_TRY(read_maps(tid));
  for (const MapsEntry& vma : maps) {
    if (address < vma.start || address >= vma.end) continue;
    if (!(vma.prot & PROT_EXEC) || vma.is_vsyscall())
      return fail("{:#x} is not in executable memory ({})", address, vma.describe());
    if (address + sizeof(uint64_t) > vma.end) return fail("{:#x} is too close to the end of {}", address, vma.describe());
    return {};
  }
  return fail("{:#x} is not mapped", address);
}

}  // namespace

Result<RemoteSyscall> RemoteSyscall::start(SeizedTask& task, std::optional<uint64_t> code_address) {
  pid_t tid = task.tid();
  auto context = [tid] { return fmt::format("prepare remote syscalls in task {}", tid); };
  if (!task.stopped()) return fail("{}: it is not stopped", context());
  RemoteSyscall rs(task);
  rs.saved_regs_ = FERRY_TRY_CTX(task.regs(), "{}", context());
  if (rs.saved_regs_.cs != kUserCodeSegment64)
    return fail("{}: it runs 32-bit code (cs {:#x}); only 64-bit tasks are supported", context(), rs.saved_regs_.cs);
  rs.code_address_ = code_address.value_or(rs.saved_regs_.rip & ~uint64_t{4095});
  FERRY_TRY_CTX(check_code_address(tid, rs.code_address_), "{}: code address", context());
  rs.saved_mask_ = FERRY_TRY_CTX(task.signal_mask(), "{}", context());
  rs.saved_code_ = FERRY_TRY_CTX(task.peek(rs.code_address_), "{}", context());
  FERRY_TRY_CTX(task.poke(rs.code_address_, (rs.saved_code_ & ~kCodeMask) | kCodeBlob), "{}", context());
  rs.code_written_ = true;
  // The kernel leaves SIGKILL and SIGSTOP out of any mask.
  FERRY_TRY_CTX(task.set_signal_mask(~uint64_t{0}), "{}", context());
  rs.mask_set_ = true;
  kLog.debug("task {}: remote syscalls through {:#x}", tid, rs.code_address_);
  return rs;
}

RemoteSyscall::RemoteSyscall(RemoteSyscall&& other) noexcept
    : task_(std::exchange(other.task_, nullptr)),
      saved_regs_(other.saved_regs_),
      saved_mask_(other.saved_mask_),
      code_address_(other.code_address_),
      saved_code_(other.saved_code_),
      code_written_(other.code_written_),
      mask_set_(other.mask_set_),
      regs_changed_(other.regs_changed_),
      left_interrupt_stop_(other.left_interrupt_stop_),
      broken_(other.broken_) {}

RemoteSyscall::~RemoteSyscall() {
  if (!task_) return;
  pid_t tid = task_->tid();
  if (Status s = finish(); !s) kLog.error("task {} not restored after remote syscalls: {}", tid, s.error().message());
}

Result<SyscallStop> RemoteSyscall::run_to_syscall_stop(long nr) {
  SeizedTask& task = *task_;
  int signal = 0;
  for (int detour = 0; detour <= kMaxDetours; ++detour) {
    FERRY_TRY(task.resume(PTRACE_SYSCALL, signal));
    signal = 0;
    TaskStop stop = FERRY_TRY(task.wait_stop());
    switch (stop.kind) {
      case TaskStop::Kind::kSyscall:
        return task.syscall_stop();
      case TaskStop::Kind::kEvent:
        continue;  // a group stop: it is set up again when the thread is detached
      case TaskStop::Kind::kSignal: {
        // Every signal that can be blocked is: this is SIGSTOP (passed on, to
        // become a group stop), or a fault of the code we run.
        siginfo_t info = FERRY_TRY(task.stop_siginfo());
        if (is_fault(info)) return fail("the thread got {} at the syscall code", describe_fault(info));
        signal = stop.signal;
        continue;
      }
      default:
        return fail("the thread {}", stop.describe());
    }
  }
  return fail("syscall {}: the thread kept stopping for other reasons", nr);
}

Result<int64_t> RemoteSyscall::call_with(long nr, const std::array<uint64_t, 6>& args) {
  if (!task_) return fail("remote syscall {}: finish() was called", nr);
  pid_t tid = task_->tid();
  auto context = [&] { return fmt::format("remote syscall {} in task {}", nr, tid); };
  if (broken_) return fail("{}: an earlier call failed half-way", context());

  user_regs_struct regs = syscall_registers(saved_regs_, code_address_, nr, args);
  regs_changed_ = true;
  FERRY_TRY_CTX(task_->set_regs(regs), "{}", context());

  // From here on the thread is away from the stop it was in.
  left_interrupt_stop_ = true;
  broken_ = true;
  SyscallStop entry = FERRY_TRY_CTX(run_to_syscall_stop(nr), "{}", context());
  if (!entry.entry || entry.nr != nr || entry.instruction_pointer != code_address_ + kSyscallLength)
    return fail("{}: stopped at syscall {} ({}) at {:#x}, not at the injected one", context(), entry.nr,
                entry.entry ? "entry" : "exit", entry.instruction_pointer);
  SyscallStop exit = FERRY_TRY_CTX(run_to_syscall_stop(nr), "{}", context());
  if (exit.entry) return fail("{}: entered syscall {} instead of returning", context(), exit.nr);
  broken_ = false;
  kLog.debug("task {}: syscall {}({:#x}, {:#x}, {:#x}, ...) = {}", tid, nr, args[0], args[1], args[2], exit.result);
  return exit.result;
}

Result<uint64_t> RemoteSyscall::check_result(long nr, int64_t result) const {
  if (result < 0 && result >= -4095)
    return fail(Error::from_errno(static_cast<int>(-result),
                                  fmt::format("remote syscall {} in task {}", nr, task_ ? task_->tid() : 0)));
  return static_cast<uint64_t>(result);
}

Result<uint64_t> RemoteSyscall::map_scratch(size_t length, int prot) {
  return call_checked(SYS_mmap, 0, length, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

Status RemoteSyscall::unmap(uint64_t address, size_t length) {
  FERRY_TRY(call_checked(SYS_munmap, address, length));
  return {};
}

// The thread is at a syscall stop (or, after a fault, a signal-delivery
// stop). An interrupt queued now is taken in the signal path before the
// thread would return to user space: it stops where seize() stopped it.
Status RemoteSyscall::return_to_interrupt_stop() {
  SeizedTask& task = *task_;
  FERRY_TRY(task.interrupt());
  int signal = 0;
  bool running = !task.stopped();
  for (int detour = 0; detour <= kMaxDetours; ++detour) {
    if (!running) FERRY_TRY(task.resume(PTRACE_CONT, signal));
    running = false;
    signal = 0;
    TaskStop stop = FERRY_TRY(task.wait_stop());
    switch (stop.kind) {
      case TaskStop::Kind::kEvent:
        return {};
      case TaskStop::Kind::kSyscall:
        continue;
      case TaskStop::Kind::kSignal: {
        // A fault of our code is dropped (it was reported); SIGSTOP is passed on.
        siginfo_t info = FERRY_TRY(task.stop_siginfo());
        if (!is_fault(info)) signal = stop.signal;
        continue;
      }
      default:
        return fail("the thread {}", stop.describe());
    }
  }
  return fail("the thread did not reach an interrupt stop");
}

Status RemoteSyscall::finish() {
  if (!task_) return {};
  SeizedTask& task = *task_;
  auto context = [&] { return fmt::format("restore task {} after remote syscalls", task.tid()); };
  Status first;
  auto keep = [&](Status s) {
    if (!s && first) first = fail(std::move(s).error().with_context(context()));
  };
  if (left_interrupt_stop_) keep(return_to_interrupt_stop());
  if (code_written_) keep(task.poke(code_address_, saved_code_));
  if (regs_changed_) keep(task.set_regs(saved_regs_));
  if (mask_set_) keep(task.set_signal_mask(saved_mask_));
  task_ = nullptr;
  return first;
}

}  // namespace ferry
