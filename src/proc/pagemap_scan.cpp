#include "proc/pagemap_scan.h"

#include <cerrno>

namespace ferry {

Result<std::optional<std::vector<PageRegion>>> scan_pagemap(int pagemap_fd, uint64_t start, uint64_t end,
                                                            uint64_t anyof, uint64_t returned) {
  std::vector<PageRegion> regions;
  std::vector<PageRegion> vec(512);
  uint64_t at = start;
  while (at < end) {
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = at;
    arg.end = end;
    arg.vec = reinterpret_cast<uintptr_t>(vec.data());
    arg.vec_len = vec.size();
    arg.category_anyof_mask = anyof;
    arg.return_mask = returned;
    long n = ::ioctl(pagemap_fd, kPagemapScan, &arg);
    if (n < 0) {
      if (errno == EINTR) continue;
      if ((errno == ENOTTY || errno == EINVAL) && regions.empty() && at == start) return std::optional<std::vector<PageRegion>>();
      return fail_errno("PAGEMAP_SCAN of {:#x}-{:#x}", at, end);
    }
    for (long i = 0; i < n; ++i) {
      const PageRegion& r = vec[static_cast<size_t>(i)];
      // Adjacent regions of the same categories may come back split.
      if (!regions.empty() && regions.back().end == r.start && regions.back().categories == r.categories)
        regions.back().end = r.end;
      else
        regions.push_back(r);
    }
    if (arg.walk_end <= at) break;  // no progress: the kernel walked it all
    at = arg.walk_end;
  }
  return std::optional<std::vector<PageRegion>>(std::move(regions));
}

}  // namespace ferry
