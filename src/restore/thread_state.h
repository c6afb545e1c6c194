// The state of a restored thread that is not memory and not per-process:
// what the thread sets up by system calls (robust futex list, clear-TID
// address, sigaltstack, rseq, pending signals), injected through the
// trampoline; and what the tracer writes at the very end (general
// registers with fs/gs base, FPU/SSE/AVX state, blocked signals).
//
// A thread dumped while inside an interruptible system call has rax set to
// one of the kernel's internal restart codes. The kernel would have turned
// that into a restart (or -EINTR) on its way back to user space; restore
// does it itself: for -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND and
// also -ERESTART_RESTARTBLOCK it rewinds rip to the syscall instruction and
// puts the syscall number back into rax, so the original call is issued
// again with its original arguments. The restart block of
// -ERESTART_RESTARTBLOCK (e.g. the remaining time of nanosleep) does not
// survive a restore, so restart_syscall is not an option: a relative sleep
// thus starts over with its full duration, the choice that keeps the
// program's logic intact (CRIU returns -EINTR instead, which many programs
// treat as an error). orig_rax is then set to -1 so the kernel does not
// apply a second fix-up.
#pragma once

#include <sys/user.h>

#include "base/error.h"
#include "core.pb.h"
#include "proc/seized_task.h"
#include "restore/trampoline.h"

namespace ferry {

// The general registers to restore, with the restart fix-up above applied.
user_regs_struct registers_from_image(const images::UserX86RegsEntry& gp);

// An XSAVE area in the kernel's NT_X86_XSTATE layout: `current` (the
// thread's own, for size and layout) with the dumped state written in.
Result<XSaveArea> xsave_from_image(const images::UserX86FpregsEntry& fp, XSaveArea current);

// Injected before the trampoline goes.
Status restore_thread_calls(Trampoline& t, const images::CoreEntry& core);

// At the syscall-exit stop of the last injected call: registers, FPU
// state and signal mask. The thread runs them when it is detached.
Status restore_registers(SeizedTask& task, const images::CoreEntry& core);

}  // namespace ferry
