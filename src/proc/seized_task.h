// One thread held by ptrace: seized, stopped, and released exactly as it was.
//
// SeizedTask::seize() attaches with PTRACE_SEIZE and stops the thread with
// PTRACE_INTERRUPT, so no signal is sent and none is lost: the thread sits in
// a PTRACE_EVENT_STOP inside the kernel's signal path, and a system call it
// was blocked in is restarted by the kernel when it is detached. While
// seized, its registers, FPU/xstate, signal mask and pending signals can be
// read and written.
//
// ptrace makes a thread, not a process, the tracer: a SeizedTask must be used
// from the thread that seized it (other threads get an error).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace ferry {

// How long a thread may take to reach a ptrace stop before Ferry gives up.
inline constexpr std::chrono::milliseconds kTaskStopTimeout{10000};

// Why a seized thread stopped (or that it is gone), from its wait status.
struct TaskStop {
  enum class Kind {
    kEvent,    // PTRACE_EVENT_STOP: our interrupt (signal SIGTRAP) or a group stop (the stop signal)
    kSyscall,  // syscall-enter or syscall-exit stop (SIGTRAP | 0x80)
    kSignal,   // signal-delivery stop: `signal` is about to be delivered
    kOther,    // another PTRACE_EVENT_* (`event`)
    kExited,   // exited (`signal` 0, `exit_status`) or was killed (`signal`)
  };
  Kind kind = Kind::kEvent;
  int signal = 0;
  int event = 0;
  int exit_status = 0;
  int wait_status = 0;  // as waitpid returned it

  static TaskStop from_wait_status(int status);
  // "group stop (SIGSTOP)", "signal-delivery stop (SIGSEGV)", "exited with status 1", ...
  std::string describe() const;
};

// What a syscall stop is about (PTRACE_GET_SYSCALL_INFO).
struct SyscallStop {
  bool entry = false;  // syscall-enter stop; else syscall-exit stop
  long nr = -1;        // the system call (entry stops only)
  int64_t result = 0;  // its return value, -errno on failure (exit stops only)
  uint64_t instruction_pointer = 0;
};

// Which queue of pending signals to read.
enum class SignalQueue {
  kThread,  // sent to this thread (tgkill, faults)
  kShared,  // sent to the thread group (kill)
};

// The kernel's NT_X86_XSTATE register set: a standard-format XSAVE area
// (legacy FXSAVE region, XSAVE header, extended components), as long as the
// kernel made it; set_xstate() must be given back that same length.
struct XSaveArea {
  std::vector<uint8_t> bytes;

  static constexpr size_t kLegacySize = 512;
  static constexpr size_t kHeaderSize = 64;
  static constexpr size_t kXmmOffset = 160;  // xmm0..15, 16 bytes each, in the legacy region
  // XSTATE_BV from the header: which components hold state.
  uint64_t xstate_bv() const;
};

class SeizedTask {
 public:
  // Seizes thread `tid` and waits (up to `timeout`) until it stops. A signal
  // that is delivered meanwhile is let through, as it would have been. A
  // thread that is gone fails with ESRCH as the error's errno.
  static Result<SeizedTask> seize(pid_t tid, std::chrono::milliseconds timeout = kTaskStopTimeout);

  SeizedTask(SeizedTask&& other) noexcept;
  SeizedTask& operator=(SeizedTask&& other) noexcept;
  SeizedTask(const SeizedTask&) = delete;
  SeizedTask& operator=(const SeizedTask&) = delete;
  // Detaches (see detach()), logging a failure.
  ~SeizedTask();

  pid_t tid() const { return tid_; }
  // The stop signal when the thread was in a job-control stop when seized
  // (it is stopped again after detach); 0 when it was running.
  int group_stop_signal() const { return group_stop_signal_; }
  // The last stop seen by wait_stop() (or seize()).
  const TaskStop& last_stop() const { return last_stop_; }

  // General registers, fs_base and gs_base included (PTRACE_GETREGS).
  Result<user_regs_struct> regs() const;
  Status set_regs(const user_regs_struct& regs);
  // The FXSAVE region alone (NT_PRFPREG).
  Result<user_fpregs_struct> fpregs() const;
  Status set_fpregs(const user_fpregs_struct& fpregs);
  // All of the extended state (NT_X86_XSTATE).
  Result<XSaveArea> xstate() const;
  Status set_xstate(const XSaveArea& area);

  // Blocked signals, bit (signo - 1) per signal. Inside sigsuspend/ppoll the
  // kernel reports the mask the thread returns to, not the temporary one.
  Result<uint64_t> signal_mask() const;
  // SIGKILL and SIGSTOP cannot be blocked; the kernel drops them silently.
  Status set_signal_mask(uint64_t mask);
  // Pending signals with their siginfo, oldest first; they stay pending.
  Result<std::vector<siginfo_t>> pending_signals(SignalQueue queue) const;

  // The siginfo of the current signal-delivery stop (PTRACE_GETSIGINFO).
  Result<siginfo_t> stop_siginfo() const;
  // Entry or exit, and what, at a syscall stop.
  Result<SyscallStop> syscall_stop() const;

  // One word of the thread's memory; writes even read-only mappings (a
  // private mapping gets its own copy of the page).
  Result<uint64_t> peek(uint64_t address) const;
  Status poke(uint64_t address, uint64_t word);

  // Low-level control, for RemoteSyscall and the like. resume() takes
  // PTRACE_CONT or PTRACE_SYSCALL and the signal to deliver (0: none).
  Status resume(int request, int signal = 0);
  Status interrupt();
  // Waits for the next stop (or the exit) of a resumed thread. An exit is
  // collected by this wait: for a child of the caller, its status is then
  // in TaskStop, not left for the caller's own waitpid.
  Result<TaskStop> wait_stop(std::chrono::milliseconds timeout = kTaskStopTimeout);
  // True while the thread sits in a ptrace stop.
  bool stopped() const { return stopped_; }

  // Lets the thread go on as it was: a pending interrupted system call is
  // restarted, a group-stopped thread stays stopped, a signal it was stopped
  // for (signal-delivery stop) is delivered. A thread that is running (after
  // resume()) is interrupted first (see wait_stop() for one that exits then).
  Status detach();
  // Stops managing the thread without detaching it; returns its TID.
  pid_t release();

 private:
  explicit SeizedTask(pid_t tid);
  Status check_usable() const;
  void detach_or_warn();

  pid_t tid_ = 0;
  pid_t tracer_ = 0;  // the thread that seized
  bool stopped_ = false;
  bool exited_ = false;
  int group_stop_signal_ = 0;
  TaskStop last_stop_;
};

}  // namespace ferry
