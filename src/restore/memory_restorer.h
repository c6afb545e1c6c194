// Fills the private memory of a restored process from a PageSource: every
// page the pagemap has data for, written in large vectored
// process_vm_writev batches into VMAs that are still writable (the final
// protections come afterwards). Pages of the vdso/vvar are the kernel's and
// are left alone.
#pragma once

#include "restore/trampoline.h"

#include <sys/types.h>

#include <cstdint>

#include "base/error.h"
#include "image/page_source.h"
#include "restore/restore_images.h"

namespace ferry {

struct MemoryRestoreStats {
  uint64_t pages = 0;
  uint64_t batches = 0;
  uint64_t pages_skipped_special = 0;  // vdso/vvar pages in the pagemap
};

// Faults in, with one injected madvise(MADV_POPULATE_WRITE) per run of
// pages that have data, the memory restore_memory() is about to fill: the
// kernel allocates the pages in a batch instead of one fault per page
// during the writes. Older kernels without it are simply skipped.
Status prefault_memory(Trampoline& trampoline, const TaskImages& task);

Result<MemoryRestoreStats> restore_memory(pid_t pid, const TaskImages& task, PageSource& source);

}  // namespace ferry
