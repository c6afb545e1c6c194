// Copies the memory of a frozen process into a PageSink: which pages to save
// comes from /proc/PID/pagemap (present or swapped, and for private file
// mappings only the pages the process changed), the bytes from large
// vectored process_vm_readv calls (or /proc/PID/mem for memory the process
// itself may not read). Zero pages of anonymous memory are not saved: they
// come back as zero pages anyway.
#pragma once

#include <sys/types.h>

#include <vector>

#include "image/page_sink.h"
#include "proc/proc_maps.h"

namespace ferry {

struct MemoryDumpStats {
  uint64_t pages_scanned = 0;  // pages of the VMAs that hold private memory
  uint64_t pages_written = 0;
  uint64_t pages_skipped_zero = 0;
  uint64_t pages_skipped_file = 0;  // unchanged pages of private file mappings
  uint64_t entries = 0;
};

// Whether the memory of this VMA is saved in the pagemap (private memory
// that the kernel does not recreate: not vdso/vvar/vsyscall, not MAP_SHARED).
bool vma_holds_private_pages(const MapsEntry& vma);
// Whether its pages may be restored lazily (private anonymous, not locked).
bool vma_is_lazy_capable(const MapsEntry& vma);

// Writes the pagemap of `pid` (begun here) with the pages of `vmas`.
Result<MemoryDumpStats> dump_memory(pid_t pid, const std::vector<MapsEntry>& vmas, PageSink& sink);

}  // namespace ferry
