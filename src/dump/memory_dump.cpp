#include "dump/memory_dump.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/file_io.h"
#include "base/unique_fd.h"
#include "proc/pagemap_scan.h"
#include "proc/task_memory.h"

namespace ferry {
namespace {

// /proc/PID/pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFileOrSharedAnon = 1ull << 61;

// Pages read per batch: large enough for few syscalls, small enough to keep
// the buffer modest whatever the process's size.
constexpr size_t kBatchPages = 1024;  // 4 MiB

bool all_zero(std::span<const std::byte> page) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(page.data());
  for (size_t i = 0; i < page.size() / 8; ++i)
    if (w[i] != 0) return false;
  return true;
}

class MemoryReader {
 public:
  MemoryReader(pid_t pid) : pid_(pid) {}
  // Reads [vaddr, vaddr + out.size()) of the process.
  Status read(uint64_t vaddr, std::span<std::byte> out, bool readable) {
    // /proc/PID/mem also reads what the process itself may not (PROT_NONE).
    if (readable && read_task_memory(pid_, vaddr, out)) return {};
    if (!mem_) {
      mem_.reset(::open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDONLY | O_CLOEXEC));
      if (!mem_) return fail_errno("cannot open /proc/{}/mem", pid_);
    }
    return pread_exact(mem_.get(), vaddr, out, fmt::format("the memory of process {}", pid_));
  }

 private:
  pid_t pid_;
  UniqueFd mem_;
};

}  // namespace

bool vma_holds_private_pages(const MapsEntry& vma) {
  if (vma.is_special() || vma.shared) return false;
  return true;
}

bool vma_is_lazy_capable(const MapsEntry& vma) {
  return vma.is_anonymous() && !vma.shared && !vma.has(kVmLocked) && !vma.has(kVmHugetlb);
}

namespace {

// A run of pages to save: [start, start + pages * kPageSize).
struct PageRun {
  uint64_t start;
  uint64_t pages;
};

// Which pages of `vma` hold private data: present or swapped, and in a
// private file mapping only those the process changed (anonymous copies).
// PAGEMAP_SCAN answers in runs; without it, /proc/PID/pagemap is read
// 8 bytes a page.
Result<std::vector<PageRun>> pages_to_save(int pagemap, const MapsEntry& vma, MemoryDumpStats& stats) {
  bool anonymous = vma.is_anonymous();
  std::vector<PageRun> runs;
  auto add = [&](uint64_t start, uint64_t pages) {
    if (!runs.empty() && runs.back().start + runs.back().pages * kPageSize == start)
      runs.back().pages += pages;
    else
      runs.push_back({start, pages});
  };
  stats.pages_scanned += vma.size() / kPageSize;
  auto scanned = FERRY_TRY(scan_pagemap(pagemap, vma.start, vma.end, kPageIsPresent | kPageIsSwapped, kPageIsFile));
  if (scanned) {
    for (const PageRegion& r : *scanned) {
      uint64_t pages = (r.end - r.start) / kPageSize;
      if (!anonymous && (r.categories & kPageIsFile)) {
        stats.pages_skipped_file += pages;
        continue;
      }
      add(r.start, pages);
    }
    return runs;
  }
  std::vector<uint64_t> pm(kBatchPages);
  for (uint64_t at = vma.start; at < vma.end; at += kBatchPages * kPageSize) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBatchPages, (vma.end - at) / kPageSize));
    FERRY_TRY(pread_exact(pagemap, at / kPageSize * 8, std::as_writable_bytes(std::span(pm).first(n)),
                              "/proc/PID/pagemap"));
    for (size_t i = 0; i < n; ++i) {
      if (!(pm[i] & (kPmPresent | kPmSwapped))) continue;
      if (!anonymous && (pm[i] & kPmFileOrSharedAnon)) {
        ++stats.pages_skipped_file;
        continue;
      }
      add(at + i * kPageSize, 1);
    }
  }
  return runs;
}

}  // namespace

Result<MemoryDumpStats> dump_memory(pid_t pid, const std::vector<MapsEntry>& vmas, PageSink& sink) {
  MemoryDumpStats stats;
  FERRY_TRY(sink.begin(PagemapId{PagemapId::Kind::kProcess, static_cast<uint64_t>(pid)}));
  UniqueFd pagemap(::open(fmt::format("/proc/{}/pagemap", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return fail_errno("cannot open /proc/{}/pagemap", pid);
  MemoryReader reader(pid);
  std::vector<std::byte> data(kBatchPages * kPageSize);

  for (const MapsEntry& vma : vmas) {
    if (!vma_holds_private_pages(vma)) continue;
    bool anonymous = vma.is_anonymous();
    uint32_t flags = kPePresent | (vma_is_lazy_capable(vma) ? uint32_t{kPeLazy} : 0u);
    bool readable = (vma.prot & PROT_READ) != 0;
    std::vector<PageRun> runs = FERRY_TRY_CTX(pages_to_save(pagemap.get(), vma, stats), "process {}, VMA {}", pid, vma.describe());
    for (const PageRun& whole : runs) {
      // Read each run in batches of at most kBatchPages.
      for (uint64_t done = 0; done < whole.pages; done += kBatchPages) {
        uint64_t run_start = whole.start + done * kPageSize;
        size_t n = static_cast<size_t>(std::min<uint64_t>(kBatchPages, whole.pages - done));
        std::span<std::byte> run(data.data(), n * kPageSize);
        FERRY_TRY_CTX(reader.read(run_start, run, readable), "VMA {}", vma.describe());
        // Entries without the zero pages of anonymous memory.
        auto zero = [&](size_t k) { return anonymous && all_zero(run.subspan(k * kPageSize, kPageSize)); };
        size_t k = 0;
        while (k < n) {
          if (zero(k)) {
            ++stats.pages_skipped_zero;
            ++k;
            continue;
          }
          size_t m = k;
          while (m < n && !zero(m)) ++m;
          FERRY_TRY(sink.write_pages(PagemapEntry{run_start + k * kPageSize, m - k, flags},
                                     run.subspan(k * kPageSize, (m - k) * kPageSize)));
          stats.pages_written += m - k;
          ++stats.entries;
          k = m;
        }
      }
    }
  }
  return stats;
}

}  // namespace ferry
