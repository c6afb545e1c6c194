// CRIU's classification of a VMA in mm images (vma_entry.status): which
// bits dump sets and restore reads.
#pragma once

#include <cstdint>

namespace ferry {

// VMA status bits (image-format.md §4.6).
enum VmaStatus : uint32_t {
  kVmaRegular = 1u << 0,
  kVmaStack = 1u << 1,
  kVmaVsyscall = 1u << 2,
  kVmaVdso = 1u << 3,
  kVmaHeap = 1u << 5,
  kVmaFilePrivate = 1u << 6,
  kVmaFileShared = 1u << 7,
  kVmaAnonShared = 1u << 8,
  kVmaAnonPrivate = 1u << 9,
  kVmaSysvIpc = 1u << 10,
  kVmaSocket = 1u << 11,
  kVmaVvar = 1u << 12,
  kVmaAioRing = 1u << 13,
  kVmaMemfd = 1u << 14,
  kVmaShadowStack = 1u << 15,
  kVmaUprobes = 1u << 17,
};

}  // namespace ferry
