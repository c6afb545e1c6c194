// The address space of a process as /proc/PID/maps and /proc/PID/smaps show
// it: one MapsEntry per VMA, with the kernel's classification of the special
// ones (vdso, vvar, vsyscall, stack, heap) and the VmFlags that dump and
// restore need (growsdown, locked, dontdump, hugetlb, ...).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ferry {

// The two-letter VmFlags of /proc/PID/smaps, one bit each. Bits are Ferry's
// own (not the kernel's VM_* values, which change between versions).
enum VmFlag : uint64_t {
  kVmRead = 1ull << 0,         // rd
  kVmWrite = 1ull << 1,        // wr
  kVmExec = 1ull << 2,         // ex
  kVmShared = 1ull << 3,       // sh
  kVmMayRead = 1ull << 4,      // mr
  kVmMayWrite = 1ull << 5,     // mw
  kVmMayExec = 1ull << 6,      // me
  kVmMayShare = 1ull << 7,     // ms
  kVmGrowsDown = 1ull << 8,    // gd
  kVmPfnMap = 1ull << 9,       // pf
  kVmLocked = 1ull << 10,      // lo
  kVmIo = 1ull << 11,          // io
  kVmSeqRead = 1ull << 12,     // sr
  kVmRandRead = 1ull << 13,    // rr
  kVmDontCopy = 1ull << 14,    // dc (MADV_DONTFORK)
  kVmDontExpand = 1ull << 15,  // de
  kVmLockOnFault = 1ull << 16, // lf
  kVmAccount = 1ull << 17,     // ac
  kVmNoReserve = 1ull << 18,   // nr
  kVmHugetlb = 1ull << 19,     // ht
  kVmSync = 1ull << 20,        // sf
  kVmArch1 = 1ull << 21,       // ar
  kVmWipeOnFork = 1ull << 22,  // wf
  kVmDontDump = 1ull << 23,    // dd
  kVmSoftDirty = 1ull << 24,   // sd
  kVmMixedMap = 1ull << 25,    // mm
  kVmHugePage = 1ull << 26,    // hg (MADV_HUGEPAGE)
  kVmNoHugePage = 1ull << 27,  // nh (MADV_NOHUGEPAGE)
  kVmMergeable = 1ull << 28,   // mg (KSM)
  kVmUffdMissing = 1ull << 29, // um
  kVmUffdWp = 1ull << 30,      // uw
  kVmShadowStack = 1ull << 31, // ss
  kVmSealed = 1ull << 32,      // sl (mseal)
  kVmUffdMinor = 1ull << 33,   // ui
};

// Bits for a space-separated VmFlags list; mnemonics Ferry does not know are
// appended to *unknown (space-separated) when it is given.
uint64_t parse_vm_flags(std::string_view mnemonics, std::string* unknown = nullptr);

// One VMA.
struct MapsEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  int prot = 0;         // PROT_READ | PROT_WRITE | PROT_EXEC
  // 's' (MAP_SHARED, the kernel's VM_MAYSHARE) rather than 'p'. A MAP_SHARED
  // mapping of a file opened read-only has no VM_SHARED (no "sh" VmFlag).
  bool shared = false;
  uint64_t pgoff = 0;   // offset into the file, in bytes
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  // As the kernel prints it: may hold spaces; " (deleted)" ends it when the
  // file was unlinked; a '\n' in a file name is printed as "\012" (and a
  // name holding the four characters "\012" looks the same).
  std::string path;
  uint64_t vm_flags = 0;         // VmFlag bits; from smaps only, 0 when read from maps
  std::string unknown_vm_flags;  // smaps mnemonics Ferry has no bit for

  uint64_t size() const { return end - start; }
  bool has(VmFlag f) const { return (vm_flags & f) != 0; }

  bool is_vdso() const { return path == "[vdso]"; }
  // "[vvar]", and "[vvar_vclock]" (the clock pages, apart since Linux 6.13).
  bool is_vvar() const { return path == "[vvar]" || path == "[vvar_vclock]"; }
  bool is_vsyscall() const { return path == "[vsyscall]"; }
  // The main thread's stack; other threads' stacks are plain anonymous memory.
  bool is_stack() const { return path == "[stack]"; }
  bool is_heap() const { return path == "[heap]"; }
  // Mapped by the kernel, not by the process: restored by other means than mmap.
  bool is_special() const { return is_vdso() || is_vvar() || is_vsyscall(); }
  // No file behind it: heap, stack, "[anon:NAME]" and unnamed mappings.
  bool is_anonymous() const { return inode == 0 && !is_special(); }
  // A file is behind it. That includes MAP_SHARED|MAP_ANONYMOUS memory, which
  // the kernel backs with an unlinked shmem file ("/dev/zero (deleted)").
  bool is_file_backed() const { return inode != 0; }
  bool is_deleted() const { return std::string_view(path).ends_with(" (deleted)"); }
  // The path without " (deleted)".
  std::string_view file_path() const;
  // "7f00..-7f00.. rw-p /path": for messages.
  std::string describe() const;
};

// One line of /proc/PID/maps (or the header line of an smaps block).
Result<MapsEntry> parse_maps_line(std::string_view line);
// All of /proc/PID/maps.
Result<std::vector<MapsEntry>> parse_maps(std::string_view text);
// All of /proc/PID/smaps: the maps lines with each VMA's VmFlags.
Result<std::vector<MapsEntry>> parse_smaps(std::string_view text);

// /proc/PID/maps: fast, without VmFlags.
Result<std::vector<MapsEntry>> read_maps(pid_t pid);
// /proc/PID/smaps: slower (the kernel walks page tables), with VmFlags.
Result<std::vector<MapsEntry>> read_smaps(pid_t pid);

}  // namespace ferry
