// PAGEMAP_SCAN (Linux 6.7): asks the kernel which pages of a range are
// present, swapped, file-backed, ... in one ioctl on /proc/PID/pagemap,
// returning runs of pages instead of 8 bytes per page, so huge sparse
// mappings (reservations of terabytes) cost nothing to walk.
#pragma once

#include <sys/ioctl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "base/error.h"

namespace ferry {

// The kernel's structures and flags, spelled out because Debian 12's headers
// predate them (and <linux/fs.h> clashes with glibc's <sys/mount.h>).
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct PageRegion {
  uint64_t start, end, categories;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsWritten = 1 << 1;
constexpr uint64_t kPageIsFile = 1 << 2;
constexpr uint64_t kPageIsPresent = 1 << 3;
constexpr uint64_t kPageIsSwapped = 1 << 4;
constexpr uint64_t kPageIsPfnZero = 1 << 5;

// Regions of [start, end) having any of `anyof` categories, with their
// `returned` categories. nullopt if the kernel has no PAGEMAP_SCAN.
Result<std::optional<std::vector<PageRegion>>> scan_pagemap(int pagemap_fd, uint64_t start, uint64_t end,
                                                            uint64_t anyof, uint64_t returned);

}  // namespace ferry
