// Rebuilds the address space of a restored process through its trampoline:
// Ferry's inherited mappings go, the dumped VMAs come back at their
// addresses (anonymous, private and shared file mappings, the stack with
// MAP_GROWSDOWN, PROT_NONE guards), the vdso is placed where it was, and
// the mm fields (code/data/brk/stack/args/env bounds, auxv, exe file) are
// set with PR_SET_MM_MAP.
//
// Private VMAs are mapped writable so their pages can be filled
// (memory_restorer); finish_address_space() then sets each VMA's own
// protection and madvise advice.
#pragma once

#include "base/error.h"
#include "restore/restore_images.h"
#include "restore/trampoline.h"

namespace ferry {

struct AddressSpaceStats {
  uint64_t vmas = 0;
  uint64_t file_vmas = 0;
};

// Everything up to the memory contents. The task must run nothing of its
// own meanwhile (it is driven by `t` only).
Result<AddressSpaceStats> build_address_space(Trampoline& t, const RestoreImages& images, const TaskImages& task);

// After the pages are written: final protections and madvise advice.
Status finish_address_space(Trampoline& t, const TaskImages& task);

}  // namespace ferry
