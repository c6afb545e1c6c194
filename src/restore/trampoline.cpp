#include "restore/trampoline.h"

#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "proc/task_memory.h"
#include "restore/task_setup.h"

namespace ferry {
namespace {

const Logger kLog{"restore"};
constexpr uint64_t kSyscallInsnLength = 2;
constexpr uint64_t kLowestTrampoline = 0x10000000;  // well above mmap_min_addr and classic ELF bases
constexpr uint64_t kHighestUserAddress = 0x7ffffffff000;
constexpr int kMaxDetours = 16;

}  // namespace

Result<uint64_t> choose_trampoline_address(const std::vector<MapsEntry>& own,
                                           const google::protobuf::RepeatedPtrField<images::VmaEntry>& target,
                                           uint64_t size) {
  // The first gap at or above kLowestTrampoline with a page to spare on
  // each side (sanitizer builds reserve terabytes, so gaps are searched,
  // not candidate addresses).
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (const MapsEntry& m : own) used.emplace_back(m.start, m.end);
  for (const images::VmaEntry& v : target) used.emplace_back(v.start(), v.end());
  std::sort(used.begin(), used.end());
  uint64_t candidate = kLowestTrampoline;
  for (const auto& [s, e] : used) {
    if (e + 4096 <= candidate) continue;
    if (candidate + size + 4096 <= s) break;
    candidate = std::max(candidate, e + 4096);
  }
  if (candidate + size >= kHighestUserAddress) return fail("no free address for the restore trampoline");
  return candidate;
}

Result<Trampoline> Trampoline::attach(SeizedTask& task, uint64_t address, uint64_t size) {
  if (!task.stopped()) return fail("drive process {}: it is not stopped", task.tid());
  if (size <= kTrampolineCodeSize) return fail("trampoline of {} bytes is too small", size);
  Trampoline t(task, address, size);
  t.initial_regs_ = FERRY_TRY_CTX(task.regs(), "drive process {}", task.tid());
  return t;
}

Result<SyscallStop> Trampoline::run_to_syscall_stop() {
  for (int detour = 0; detour <= kMaxDetours; ++detour) {
    FERRY_TRY(task_->resume(PTRACE_SYSCALL, 0));
    TaskStop stop = FERRY_TRY(task_->wait_stop());
    switch (stop.kind) {
      case TaskStop::Kind::kSyscall:
        return task_->syscall_stop();
      case TaskStop::Kind::kEvent:
        continue;  // a stray interrupt or group stop: go on
      case TaskStop::Kind::kSignal: {
        siginfo_t info = FERRY_TRY(task_->stop_siginfo());
        return fail("the process got signal {} (si_code {}, address {}) at the trampoline", info.si_signo, info.si_code,
                    info.si_addr);
      }
      default:
        return fail("the process {}", stop.describe());
    }
  }
  return fail("the process kept stopping for other reasons");
}

Result<int64_t> Trampoline::call_with(long nr, const std::array<uint64_t, 6>& args) {
  if (gone_) return fail("syscall {} in process {}: the trampoline is gone", nr, pid());
  auto context = [&] { return fmt::format("injected syscall {} in process {}", nr, pid()); };
  user_regs_struct regs = syscall_registers(initial_regs_, address_, nr, args);
  FERRY_TRY_CTX(task_->set_regs(regs), "{}", context());
  SyscallStop entry = FERRY_TRY_CTX(run_to_syscall_stop(), "{}", context());
  if (!entry.entry || entry.nr != nr || entry.instruction_pointer != address_ + kSyscallInsnLength)
    return fail("{}: stopped at syscall {} at {:#x} instead", context(), entry.nr, entry.instruction_pointer);
  SyscallStop exit = FERRY_TRY_CTX(run_to_syscall_stop(), "{}", context());
  if (exit.entry) return fail("{}: entered syscall {} instead of returning", context(), exit.nr);
  ++calls_;
  kLog.debug("process {}: syscall {}({:#x}, {:#x}, {:#x}, {:#x}) = {}", pid(), nr, args[0], args[1], args[2], args[3],
             exit.result);
  return exit.result;
}

Result<uint64_t> Trampoline::put(std::span<const std::byte> bytes) {
  uint64_t offset = kTrampolineCodeSize + ((scratch_used_ + 15) & ~uint64_t{15});
  if (offset + bytes.size() > size_)
    return fail("process {}: {} bytes of arguments do not fit the trampoline ({} bytes)", pid(), bytes.size(), size_);
  FERRY_TRY(write_task_memory(pid(), address_ + offset, bytes));
  scratch_used_ = offset + bytes.size() - kTrampolineCodeSize;
  return address_ + offset;
}

Result<uint64_t> Trampoline::put_string(std::string_view text) {
  std::vector<std::byte> bytes(text.size() + 1);
  std::memcpy(bytes.data(), text.data(), text.size());
  return put(bytes);
}

Status Trampoline::unmap_self() {
  FERRY_TRY(call_checked("unmap the trampoline", SYS_munmap, address_, size_));
  gone_ = true;
  return {};
}

}  // namespace ferry
