// System calls made inside a seized thread, as if it had made them itself:
// the primitive with which dump reads state only the thread can report
// (sigactions, timers) and restore rebuilds an address space.
//
// How: a code blob `syscall; int3` is written at an executable address of the
// thread (by default the start of the page its instruction pointer is in;
// the original bytes are kept). For each call the registers are set (rip at
// the blob, rax the number, rdi rsi rdx r10 r8 r9 the arguments, orig_rax -1
// so the kernel's syscall-restart logic leaves them alone) and the thread runs
// under PTRACE_SYSCALL to its syscall-exit stop, where the result is read.
// No signal is involved (the int3 only catches a thread that would run past
// the syscall), so the thread's SIGTRAP disposition is never touched.
//
// While calls run, every signal is blocked in the thread: a pending signal,
// or one that arrives, stays pending and is delivered after the thread is
// let go, under its own mask. finish() puts back the code, the registers and
// the mask and returns the thread to an interrupt stop inside the kernel's
// signal path, where SeizedTask::seize() left it (a syscall-exit stop would
// do for PTRACE_DETACH, which makes the kernel look at restarts, but not for
// PTRACE_CONT). So whether the thread is then detached or resumed still
// traced, a system call it had been interrupted in is restarted by the kernel
// as after any signal (nanosleep with the remaining time, read on a pipe,
// sigsuspend with its temporary mask).
//
// Limits: 64-bit threads only; one RemoteSyscall at a time per thread. The
// blob's page is shared by all threads of the process: freeze all of them
// (FrozenProcess) or choose an address no other thread executes. Writing the blob into a private file mapping (the
// default page is usually program or library text) gives that mapping an
// anonymous copy of the page with the same content. An injected call must
// not block for long (kTaskStopTimeout).
#pragma once

#include <sys/mman.h>
#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "base/error.h"
#include "proc/seized_task.h"
#include "proc/syscall_registers.h"

namespace ferry {

class RemoteSyscall {
 public:
  // Prepares a stopped thread (as seize() leaves it) for calls. `task` must
  // outlive this object.
  static Result<RemoteSyscall> start(SeizedTask& task, std::optional<uint64_t> code_address = std::nullopt);

  RemoteSyscall(RemoteSyscall&& other) noexcept;
  RemoteSyscall& operator=(RemoteSyscall&&) = delete;
  RemoteSyscall(const RemoteSyscall&) = delete;
  // finish(), logging a failure.
  ~RemoteSyscall();

  // Runs system call `nr` with up to six arguments (integers, pointers into
  // the thread's address space, enums); signed arguments are sign-extended.
  // The value is what the kernel returned, -errno included; the Result fails
  // only when the call could not be made.
  template <class... Args>
  Result<int64_t> call(long nr, Args... args) {
    static_assert(sizeof...(Args) <= 6, "a system call takes at most six arguments");
    return call_with(nr, {syscall_word(args)...});
  }

  // Like call(), but -errno becomes an Error naming the call.
  template <class... Args>
  Result<uint64_t> call_checked(long nr, Args... args) {
    int64_t r = FERRY_TRY(call(nr, args...));
    return check_result(nr, r);
  }

  // Maps fresh private anonymous memory in the thread (e.g. to receive what
  // rt_sigaction or getitimer write; read it with read_task_memory).
  Result<uint64_t> map_scratch(size_t length = 4096, int prot = PROT_READ | PROT_WRITE);
  Status unmap(uint64_t address, size_t length);

  // Puts back code, registers and signal mask and leaves the thread in an
  // interrupt stop. Every later call fails.
  Status finish();

  uint64_t code_address() const { return code_address_; }

 private:
  explicit RemoteSyscall(SeizedTask& task) : task_(&task) {}

  Result<int64_t> call_with(long nr, const std::array<uint64_t, 6>& args);
  Result<uint64_t> check_result(long nr, int64_t result) const;
  // Runs the thread (set up for `nr`) from one stop to the next syscall
  // stop, passing on stop signals and failing on a fault.
  Result<SyscallStop> run_to_syscall_stop(long nr);
  Status return_to_interrupt_stop();

  SeizedTask* task_ = nullptr;  // null once finished
  user_regs_struct saved_regs_{};
  uint64_t saved_mask_ = 0;
  uint64_t code_address_ = 0;
  uint64_t saved_code_ = 0;
  bool code_written_ = false;
  bool mask_set_ = false;
  bool regs_changed_ = false;
  bool left_interrupt_stop_ = false;  // resumed since start(): finish() must stop it again
  bool broken_ = false;               // a call failed half-way: only finish() is left
};

}  // namespace ferry
