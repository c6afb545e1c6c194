// How an injected system call is set up in a stopped thread's registers:
// the argument words and the register file, shared by RemoteSyscall (dump)
// and the restore trampoline.
#pragma once

#include <sys/user.h>

#include <array>
#include <cstdint>
#include <type_traits>

namespace ferry {

// One system call argument as the register word the kernel reads: pointers
// as addresses, signed integers and enums sign-extended.
template <class T>
uint64_t syscall_word(T value) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<uintptr_t>(value);
  } else if constexpr (std::is_enum_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(value));
  } else {
    static_assert(std::is_integral_v<T>, "system call arguments are integers or pointers");
    if constexpr (std::is_signed_v<T>) return static_cast<uint64_t>(static_cast<int64_t>(value));
    else return static_cast<uint64_t>(value);
  }
}

// `base` set up to run system call `nr` from the syscall instruction at
// `instruction`: orig_rax -1, so the kernel's syscall-restart fix-up leaves
// these registers alone on the way back to user space.
inline user_regs_struct syscall_registers(const user_regs_struct& base, uint64_t instruction, long nr,
                                          const std::array<uint64_t, 6>& args) {
  user_regs_struct regs = base;
  regs.rip = instruction;
  regs.rax = static_cast<unsigned long long>(nr);
  regs.orig_rax = ~0ull;
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  regs.r10 = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
  return regs;
}

}  // namespace ferry
