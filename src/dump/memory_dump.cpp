#include "dump/memory_dump.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/unique_fd.h"

namespace ferry {
namespace {

// /proc/PID/pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFileOrSharedAnon = 1ull << 61;

// Pages read per batch: large enough for few syscalls, small enough to keep
// the buffer modest whatever the process's size.
constexpr size_t kBatchPages = 1024;  // 4 MiB

Status read_exactly_at(int fd, uint64_t offset, std::span<std::byte> out, const std::string& what) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read {} at {:#x}", what, offset + done);
    if (n == 0) return fail("{} ends at {:#x}", what, offset + done);
    done += static_cast<size_t>(n);
  }
  return {};
}

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
    if (readable) {
      iovec local{out.data(), out.size()};
      iovec remote{reinterpret_cast<void*>(vaddr), out.size()};
      ssize_t n = ::process_vm_readv(pid_, &local, 1, &remote, 1, 0);
      if (n == static_cast<ssize_t>(out.size())) return {};
      // Fall back to /proc/PID/mem, which also reads what the process may not.
    }
    if (!mem_) {
      mem_.reset(::open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDONLY | O_CLOEXEC));
      if (!mem_) return fail_errno("cannot open /proc/{}/mem", pid_);
    }
    return read_exactly_at(mem_.get(), vaddr, out, fmt::format("the memory of process {}", pid_));
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

Result<MemoryDumpStats> dump_memory(pid_t pid, const std::vector<MapsEntry>& vmas, PageSink& sink) {
  MemoryDumpStats stats;
  FERRY_TRY(sink.begin(PagemapId{PagemapId::Kind::kProcess, static_cast<uint64_t>(pid)}));
  UniqueFd pagemap(::open(fmt::format("/proc/{}/pagemap", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return fail_errno("cannot open /proc/{}/pagemap", pid);
  MemoryReader reader(pid);
  std::vector<uint64_t> pm(kBatchPages);
  std::vector<std::byte> data(kBatchPages * kPageSize);

  for (const MapsEntry& vma : vmas) {
    if (!vma_holds_private_pages(vma)) continue;
    bool anonymous = vma.is_anonymous();
    uint32_t flags = kPePresent | (vma_is_lazy_capable(vma) ? uint32_t{kPeLazy} : 0u);
    bool readable = (vma.prot & PROT_READ) != 0;
    for (uint64_t at = vma.start; at < vma.end; at += kBatchPages * kPageSize) {
      size_t pages = static_cast<size_t>(std::min<uint64_t>(kBatchPages, (vma.end - at) / kPageSize));
      stats.pages_scanned += pages;
      FERRY_TRY_CTX(read_exactly_at(pagemap.get(), at / kPageSize * 8, std::as_writable_bytes(std::span(pm).first(pages)),
                                    fmt::format("/proc/{}/pagemap", pid)),
                    "VMA {}", vma.describe());
      // Runs of pages to save; read each run with one call.
      size_t i = 0;
      while (i < pages) {
        auto wanted = [&](size_t k) {
          uint64_t e = pm[k];
          if (!(e & (kPmPresent | kPmSwapped))) return false;
          // In a private file mapping a page the process never wrote is the
          // file's own page: the file brings it back.
          if (!anonymous && (e & kPmFileOrSharedAnon)) return false;
          return true;
        };
        if (!wanted(i)) {
          if (!anonymous && (pm[i] & (kPmPresent | kPmSwapped))) ++stats.pages_skipped_file;
          ++i;
          continue;
        }
        size_t j = i;
        while (j < pages && wanted(j)) ++j;
        uint64_t run_start = at + i * kPageSize;
        std::span<std::byte> run(data.data(), (j - i) * kPageSize);
        FERRY_TRY_CTX(reader.read(run_start, run, readable), "VMA {}", vma.describe());
        // Emit sub-runs without the zero pages of anonymous memory.
        size_t k = 0, n = j - i;
        while (k < n) {
          if (anonymous && all_zero(run.subspan(k * kPageSize, kPageSize))) {
            ++stats.pages_skipped_zero;
            ++k;
            continue;
          }
          size_t m = k;
          while (m < n && !(anonymous && all_zero(run.subspan(m * kPageSize, kPageSize)))) ++m;
          FERRY_TRY(sink.write_pages(PagemapEntry{run_start + k * kPageSize, m - k, flags},
                                     run.subspan(k * kPageSize, (m - k) * kPageSize)));
          stats.pages_written += m - k;
          ++stats.entries;
          k = m;
        }
        i = j;
      }
    }
  }
  return stats;
}

}  // namespace ferry
