// The trampoline through which the restoring tracer drives a new process:
// a few pages the process mapped for itself (task_setup) at an address that
// neither Ferry nor the restored program uses, holding `syscall; int3` and
// scratch memory for arguments. Unlike RemoteSyscall (which borrows code of
// the process and puts everything back), nothing of the process is
// preserved: its memory is being replaced, and the last call unmaps the
// trampoline itself, leaving the task at that call's syscall-exit stop where
// the final registers are written.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "base/error.h"
#include "proc/syscall_registers.h"
#include "proc/proc_maps.h"
#include "proc/seized_task.h"
#include "restore/restore_images.h"

namespace ferry {

// Default size: one code page plus scratch for paths, prctl_mm_map + auxv,
// siginfos, group lists.
constexpr uint64_t kTrampolineSize = 4 * 4096;

// An address for the trampoline, `size` bytes free in both `own` (Ferry's
// mappings, which the new process inherits) and `target` (the restored
// VMAs), with a gap of a page to each.
Result<uint64_t> choose_trampoline_address(const std::vector<MapsEntry>& own,
                                           const google::protobuf::RepeatedPtrField<images::VmaEntry>& target,
                                           uint64_t size = kTrampolineSize);

class Trampoline {
 public:
  // `task` is stopped (seize() leaves it in an interrupt stop) and has the
  // trampoline mapped at `address`.
  static Result<Trampoline> attach(SeizedTask& task, uint64_t address, uint64_t size);

  template <class... Args>
  Result<int64_t> call(long nr, Args... args) {
    static_assert(sizeof...(Args) <= 6, "a system call takes at most six arguments");
    return call_with(nr, {syscall_word(args)...});
  }
  // Like call(), but -errno becomes an Error naming `what`.
  template <class... Args>
  Result<uint64_t> call_checked(std::string_view what, long nr, Args... args) {
    int64_t r = FERRY_TRY(call(nr, args...));
    if (r < 0 && r >= -4095) return fail(Error::from_errno(static_cast<int>(-r), fmt::format("{} in process {}", what, pid())));
    return static_cast<uint64_t>(r);
  }

  // Copies bytes into the scratch area and returns their address in the
  // task; valid until clear_scratch().
  Result<uint64_t> put(std::span<const std::byte> bytes);
  Result<uint64_t> put_string(std::string_view text);  // NUL-terminated
  template <class T>
    requires std::is_trivially_copyable_v<T>
  Result<uint64_t> put_object(const T& value) {
    return put(std::as_bytes(std::span(&value, 1)));
  }
  void clear_scratch() { scratch_used_ = 0; }

  // The last call: munmap of the trampoline. The task is left at its
  // syscall-exit stop; further calls fail.
  Status unmap_self();

  uint64_t address() const { return address_; }
  uint64_t size() const { return size_; }
  pid_t pid() const { return task_->tid(); }
  uint64_t calls() const { return calls_; }
  // Registers at attach time (segment selectors, flags of the task).
  const user_regs_struct& initial_regs() const { return initial_regs_; }

 private:
  Trampoline(SeizedTask& task, uint64_t address, uint64_t size) : task_(&task), address_(address), size_(size) {}
  Result<int64_t> call_with(long nr, const std::array<uint64_t, 6>& args);
  Result<SyscallStop> run_to_syscall_stop();

  SeizedTask* task_;
  uint64_t address_;
  uint64_t size_;
  uint64_t scratch_used_ = 0;
  uint64_t calls_ = 0;
  bool gone_ = false;  // unmapped
  user_regs_struct initial_regs_{};
};

}  // namespace ferry
