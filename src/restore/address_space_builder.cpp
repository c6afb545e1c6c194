#include "restore/address_space_builder.h"

#include <asm/prctl.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <linux/rseq.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <map>
#include <optional>

#include <fmt/format.h>

#include "base/log.h"
#include "proc/proc_maps.h"

namespace ferry {
namespace {

const Logger kLog{"restore"};
constexpr uint64_t kTaskSizeMax = 0x7ffffffff000;  // 47-bit user space
constexpr int kWritable = PROT_READ | PROT_WRITE;
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
constexpr int PTRACE_GET_RSEQ_CONFIGURATION = 0x420f;
#endif
struct RseqConfiguration {  // struct ptrace_rseq_configuration
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

// struct prctl_mm_map of <linux/prctl.h>.
struct MmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
      env_end;
  uint64_t auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};

bool is_file_vma(const images::VmaEntry& v) { return (v.status() & (kVmaFilePrivate | kVmaFileShared)) != 0; }
bool is_shared_file_vma(const images::VmaEntry& v) { return (v.status() & kVmaFileShared) != 0; }

// The new process inherited Ferry's rseq registration; the kernel would
// write into Ferry's (soon unmapped) TLS on every preemption, and kill the
// task when that fails. It is dropped before the unmap.
Status unregister_inherited_rseq(Trampoline& t) {
  RseqConfiguration conf{};
  if (::ptrace(static_cast<__ptrace_request>(PTRACE_GET_RSEQ_CONFIGURATION), t.pid(), sizeof conf, &conf) < 0)
    return fail_errno("PTRACE_GET_RSEQ_CONFIGURATION process {}", t.pid());
  if (conf.rseq_abi_pointer == 0) return {};
  FERRY_TRY(t.call_checked("unregister Ferry's rseq area", SYS_rseq, conf.rseq_abi_pointer, conf.rseq_abi_size,
                           RSEQ_FLAG_UNREGISTER, conf.signature));
  return {};
}

Status unmap_everything_but_trampoline(Trampoline& t) {
  FERRY_TRY(t.call_checked("unmap Ferry's memory below the trampoline", SYS_munmap, 0, t.address()));
  uint64_t above = t.address() + t.size();
  FERRY_TRY(t.call_checked("unmap Ferry's memory above the trampoline", SYS_munmap, above, kTaskSizeMax - above));
  return {};
}

// The vdso and its vvar pages come as one block from ARCH_MAP_VDSO_64, whose
// argument is the start of the block (the vvar pages come first). Their
// layout is the kernel's: a different kernel gives a different one, and the
// dumped code may have pointers into the old vdso, so it must match.
Status place_vdso(Trampoline& t, const TaskImages& task) {
  std::optional<uint64_t> block_start, block_end;
  std::vector<const images::VmaEntry*> parts;
  for (const images::VmaEntry& v : task.mm.vmas()) {
    if (!(v.status() & (kVmaVdso | kVmaVvar))) continue;
    block_start = std::min(block_start.value_or(v.start()), v.start());
    block_end = std::max(block_end.value_or(v.end()), v.end());
    parts.push_back(&v);
  }
  if (!block_start) return {};  // dumped without a vdso (vdso=0): none now either
  FERRY_TRY(t.call_checked(fmt::format("map the vdso at {:#x}", *block_start), SYS_arch_prctl, ARCH_MAP_VDSO_64,
                           *block_start));
  std::vector<MapsEntry> now = FERRY_TRY(read_maps(t.pid()));
  std::vector<const MapsEntry*> got;
  for (const MapsEntry& m : now)
    if (m.is_vdso() || m.is_vvar()) got.push_back(&m);
  auto describe_dumped = [&] {
    std::string s;
    for (const auto* v : parts)
      s += fmt::format("{}{:x}-{:x}{}", s.empty() ? "" : ", ", v->start(), v->end(), (v->status() & kVmaVdso) ? " vdso" : " vvar");
    return s;
  };
  auto describe_now = [&] {
    std::string s;
    for (const auto* m : got) s += fmt::format("{}{:x}-{:x} {}", s.empty() ? "" : ", ", m->start, m->end, m->path);
    return s;
  };
  bool same = got.size() == parts.size();
  for (size_t i = 0; same && i < got.size(); ++i) {
    bool dumped_vdso = (parts[i]->status() & kVmaVdso) != 0;
    same = got[i]->start == parts[i]->start() && got[i]->end == parts[i]->end() && got[i]->is_vdso() == dumped_vdso;
  }
  if (!same)
    return fail("the vdso of this kernel does not match the dumped one (dumped: {}; here: {}): restore needs the "
                "kernel the process was dumped on",
                describe_dumped(), describe_now());
  return {};
}

// Opens files in the task, once per file and access mode, for mmap and exe_fd.
class RemoteFiles {
 public:
  explicit RemoteFiles(Trampoline& t) : t_(t) {}
  Result<int> open(const std::string& path, int flags) {
    auto key = std::make_pair(path, flags);
    if (auto it = fds_.find(key); it != fds_.end()) return it->second;
    t_.clear_scratch();
    uint64_t remote_path = FERRY_TRY(t_.put_string(path));
    int fd = static_cast<int>(FERRY_TRY(
        t_.call_checked(fmt::format("open {}", path), SYS_openat, AT_FDCWD, remote_path, flags | O_CLOEXEC, 0)));
    fds_[key] = fd;
    return fd;
  }
  Status close_all() {
    for (const auto& [key, fd] : fds_) FERRY_TRY(t_.call_checked(fmt::format("close {}", key.first), SYS_close, fd));
    fds_.clear();
    return {};
  }

 private:
  Trampoline& t_;
  std::map<std::pair<std::string, int>, int> fds_;
};

Status map_vma(Trampoline& t, RemoteFiles& files, const RestoreImages& images, const images::VmaEntry& v) {
  uint64_t length = v.end() - v.start();
  int extra = static_cast<int>(v.flags()) & (MAP_GROWSDOWN | MAP_NORESERVE);
  int prot = kWritable;
  int flags = MAP_FIXED | extra;
  int fd = -1;
  uint64_t pgoff = 0;
  if (is_file_vma(v)) {
    const images::RegFileEntry& reg = images.reg_file(static_cast<uint32_t>(v.shmid()));
    if (is_shared_file_vma(v)) {
      // The file holds the contents: mapped as it was, never written here.
      prot = static_cast<int>(v.prot());
      flags |= MAP_SHARED;
      fd = FERRY_TRY(files.open(reg.name(), (v.prot() & PROT_WRITE) ? O_RDWR : O_RDONLY));
    } else {
      flags |= MAP_PRIVATE;
      fd = FERRY_TRY(files.open(reg.name(), O_RDONLY));
    }
    pgoff = v.pgoff();
  } else {
    flags |= MAP_PRIVATE | MAP_ANONYMOUS;
  }
  uint64_t got = FERRY_TRY(t.call_checked(fmt::format("map VMA {}", describe_vma(v)), SYS_mmap, v.start(), length, prot,
                                          flags, fd, pgoff));
  if (got != v.start()) return fail("map VMA {}: the kernel placed it at {:#x}", describe_vma(v), got);
  return {};
}

Status set_mm_fields(Trampoline& t, RemoteFiles& files, const RestoreImages& images, const TaskImages& task) {
  const images::MmEntry& mm = task.mm;
  int exe_fd = FERRY_TRY(files.open(images.reg_file(mm.exe_file_id()).name(), O_RDONLY));
  t.clear_scratch();
  std::vector<uint64_t> auxv(mm.mm_saved_auxv().begin(), mm.mm_saved_auxv().end());
  uint64_t remote_auxv = FERRY_TRY(t.put(std::as_bytes(std::span(auxv))));
  MmMap map{mm.mm_start_code(), mm.mm_end_code(),  mm.mm_start_data(), mm.mm_end_data(),
            mm.mm_start_brk(),  mm.mm_brk(),       mm.mm_start_stack(), mm.mm_arg_start(),
            mm.mm_arg_end(),    mm.mm_env_start(), mm.mm_env_end(),    remote_auxv,
            static_cast<uint32_t>(auxv.size() * sizeof(uint64_t)), static_cast<uint32_t>(exe_fd)};
  uint64_t remote_map = FERRY_TRY(t.put_object(map));
  FERRY_TRY(t.call_checked(fmt::format("PR_SET_MM_MAP (code {:#x}-{:#x}, brk {:#x}-{:#x}, {} auxv words, exe {})",
                                       map.start_code, map.end_code, map.start_brk, map.brk, auxv.size(),
                                       images.reg_file(mm.exe_file_id()).name()),
                           SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, remote_map, sizeof map, 0));
  if (mm.has_dumpable() && (mm.dumpable() == 0 || mm.dumpable() == 1))
    FERRY_TRY(t.call_checked("PR_SET_DUMPABLE", SYS_prctl, PR_SET_DUMPABLE, mm.dumpable(), 0, 0, 0));
  if (mm.has_thp_disabled() && mm.thp_disabled())
    FERRY_TRY(t.call_checked("PR_SET_THP_DISABLE", SYS_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0));
  return {};
}

}  // namespace

Result<AddressSpaceStats> build_address_space(Trampoline& t, const RestoreImages& images, const TaskImages& task) {
  AddressSpaceStats stats;
  for (const images::VmaEntry& v : task.mm.vmas()) {
    if (v.start() < t.address() + t.size() && t.address() < v.end())
      return fail("VMA {} overlaps the trampoline at {:#x}", describe_vma(v), t.address());
  }
  FERRY_TRY(unregister_inherited_rseq(t));
  FERRY_TRY(unmap_everything_but_trampoline(t));
  FERRY_TRY(place_vdso(t, task));
  RemoteFiles files(t);
  for (const images::VmaEntry& v : task.mm.vmas()) {
    if (vma_is_kernel_special(v)) continue;
    FERRY_TRY(map_vma(t, files, images, v));
    ++stats.vmas;
    if (is_file_vma(v)) ++stats.file_vmas;
  }
  FERRY_TRY(set_mm_fields(t, files, images, task));
  FERRY_TRY(files.close_all());
  kLog.debug("process {}: {} VMAs mapped ({} file-backed)", t.pid(), stats.vmas, stats.file_vmas);
  return stats;
}

Status finish_address_space(Trampoline& t, const TaskImages& task) {
  for (const images::VmaEntry& v : task.mm.vmas()) {
    if (vma_is_kernel_special(v)) continue;
    uint64_t length = v.end() - v.start();
    if (!is_shared_file_vma(v) && static_cast<int>(v.prot()) != kWritable)
      FERRY_TRY(t.call_checked(fmt::format("mprotect VMA {}", describe_vma(v)), SYS_mprotect, v.start(), length, v.prot()));
    if (!v.has_madv()) continue;
    for (int advice = 0; advice < 64; ++advice) {
      if (!(v.madv() & (uint64_t{1} << advice))) continue;
      FERRY_TRY(t.call_checked(fmt::format("madvise({}) VMA {}", advice, describe_vma(v)), SYS_madvise, v.start(), length,
                               advice));
    }
  }
  return {};
}

}  // namespace ferry
