#include "restore/memory_restorer.h"

#include <limits.h>
#include <sys/uio.h>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"

#include <sys/syscall.h>

namespace ferry {
namespace {

const Logger kLog{"restore"};
constexpr size_t kBatchBytes = 16u << 20;
constexpr size_t kMaxIov = IOV_MAX;

// Collects pages into one buffer and writes them with one
// process_vm_writev per batch.
class BatchWriter {
 public:
  BatchWriter(pid_t pid, MemoryRestoreStats& stats) : pid_(pid), stats_(stats), buffer_(kBatchBytes) {}

  // Room for up to this many more pages in the batch (at least one after flush()).
  std::span<std::byte> room() { return std::span(buffer_).subspan(used_); }

  Status add(uint64_t vaddr, uint64_t bytes) {
    if (!remote_.empty()) {
      iovec& last = remote_.back();
      if (reinterpret_cast<uint64_t>(last.iov_base) + last.iov_len == vaddr) {
        last.iov_len += bytes;
        used_ += bytes;
        return {};
      }
    }
    remote_.push_back({reinterpret_cast<void*>(vaddr), bytes});
    used_ += bytes;
    if (remote_.size() == kMaxIov) return flush();
    return {};
  }

  Status flush() {
    size_t done = 0;
    size_t first = 0;
    while (done < used_) {
      iovec local{buffer_.data() + done, used_ - done};
      ssize_t n = ::process_vm_writev(pid_, &local, 1, remote_.data() + first, remote_.size() - first, 0);
      if (n < 0)
        return fail_errno("write {} bytes of memory into process {} at {:#x}", used_ - done, pid_,
                          reinterpret_cast<uint64_t>(remote_[first].iov_base));
      if (n == 0) return fail("process {}: memory write at {:#x} made no progress", pid_,
                              reinterpret_cast<uint64_t>(remote_[first].iov_base));
      done += static_cast<size_t>(n);
      // A partial write stops at an iovec boundary or inside one: skip what went.
      size_t skip = static_cast<size_t>(n);
      while (skip > 0 && skip >= remote_[first].iov_len) skip -= remote_[first++].iov_len;
      if (skip > 0) {
        remote_[first].iov_base = static_cast<std::byte*>(remote_[first].iov_base) + skip;
        remote_[first].iov_len -= skip;
      }
    }
    if (used_ > 0) ++stats_.batches;
    used_ = 0;
    remote_.clear();
    return {};
  }

 private:
  pid_t pid_;
  MemoryRestoreStats& stats_;
  std::vector<std::byte> buffer_;
  size_t used_ = 0;
  std::vector<iovec> remote_;
};

// Writes views of memory the page source already holds (a mapped pages
// file) into the process: pairs of local/remote iovecs, one
// process_vm_writev per batch, no copy through a buffer.
class ViewWriter {
 public:
  ViewWriter(pid_t pid, MemoryRestoreStats& stats) : pid_(pid), stats_(stats) {}

  Status add(uint64_t vaddr, std::span<const std::byte> bytes) {
    if (!remote_.empty()) {
      iovec& r = remote_.back();
      iovec& l = local_.back();
      if (reinterpret_cast<uint64_t>(r.iov_base) + r.iov_len == vaddr &&
          static_cast<const std::byte*>(l.iov_base) + l.iov_len == bytes.data()) {
        r.iov_len += bytes.size();
        l.iov_len += bytes.size();
        pending_ += bytes.size();
        return pending_ >= kBatchBytes * 4 ? flush() : Status{};
      }
    }
    local_.push_back({const_cast<std::byte*>(bytes.data()), bytes.size()});
    remote_.push_back({reinterpret_cast<void*>(vaddr), bytes.size()});
    pending_ += bytes.size();
    if (remote_.size() == kMaxIov || pending_ >= kBatchBytes * 4) return flush();
    return {};
  }

  Status flush() {
    size_t first = 0;
    while (first < remote_.size()) {
      ssize_t n = ::process_vm_writev(pid_, local_.data() + first, local_.size() - first, remote_.data() + first,
                                      remote_.size() - first, 0);
      if (n <= 0)
        return fail_errno("write memory into process {} at {:#x}", pid_, reinterpret_cast<uint64_t>(remote_[first].iov_base));
      // Local and remote pieces pair up one to one: advance both by n.
      size_t skip = static_cast<size_t>(n);
      while (first < remote_.size() && skip >= remote_[first].iov_len) skip -= remote_[first++].iov_len;
      if (skip > 0) {
        remote_[first].iov_base = static_cast<std::byte*>(remote_[first].iov_base) + skip;
        remote_[first].iov_len -= skip;
        local_[first].iov_base = static_cast<std::byte*>(local_[first].iov_base) + skip;
        local_[first].iov_len -= skip;
      }
    }
    if (pending_ > 0) ++stats_.batches;
    pending_ = 0;
    local_.clear();
    remote_.clear();
    return {};
  }

 private:
  pid_t pid_;
  MemoryRestoreStats& stats_;
  std::vector<iovec> local_, remote_;
  size_t pending_ = 0;
};

// The parts of [start, end) that are not in a vdso/vvar VMA.
std::vector<std::pair<uint64_t, uint64_t>> writable_parts(const TaskImages& task, uint64_t start, uint64_t end) {
  std::vector<std::pair<uint64_t, uint64_t>> parts{{start, end}};
  for (const images::VmaEntry& v : task.mm.vmas()) {
    if (!vma_is_kernel_special(v) || v.end() <= start || v.start() >= end) continue;
    std::vector<std::pair<uint64_t, uint64_t>> next;
    for (auto [s, e] : parts) {
      if (v.end() <= s || v.start() >= e) {
        next.emplace_back(s, e);
        continue;
      }
      if (s < v.start()) next.emplace_back(s, v.start());
      if (v.end() < e) next.emplace_back(v.end(), e);
    }
    parts = std::move(next);
  }
  return parts;
}

}  // namespace

Status prefault_memory(Trampoline& tr, const TaskImages& task) {
  constexpr int kMadvPopulateWrite = 23;  // Linux 5.14
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  for (const PagemapEntry& e : task.pagemap.entries) {
    if (!e.has_data()) continue;
    for (auto [start, end] : writable_parts(task, e.vaddr, e.end())) {
      if (!runs.empty() && runs.back().second == start)
        runs.back().second = end;
      else
        runs.emplace_back(start, end);
    }
  }
  for (auto [start, end] : runs) {
    int64_t r = FERRY_TRY(tr.call(SYS_madvise, start, end - start, kMadvPopulateWrite));
    if (r == -EINVAL) return {};  // no MADV_POPULATE_WRITE here: the writes fault the pages in
    // Other failures (e.g. -ENOMEM) are left to the writes to report precisely.
  }
  return {};
}

Result<MemoryRestoreStats> restore_memory(pid_t pid, const TaskImages& task, PageSource& source) {
  MemoryRestoreStats stats;
  BatchWriter writer(pid, stats);
  ViewWriter views(pid, stats);
  const uint64_t dumped_pid = task.pstree.pid();
  uint64_t pages_with_data = 0;
  for (const PagemapEntry& e : task.pagemap.entries) {
    if (!e.has_data()) continue;
    pages_with_data += e.nr_pages;
    for (auto [start, end] : writable_parts(task, e.vaddr, e.end())) {
      for (uint64_t addr = start; addr < end;) {
        std::span<const std::byte> view = source.view_pages(dumped_pid, addr, end - addr);
        if (!view.empty()) {
          FERRY_TRY(views.add(addr, view));
          stats.pages += view.size() / kPageSize;
          addr += view.size();
          continue;
        }
        if (writer.room().size() < kPageSize) FERRY_TRY(writer.flush());
        std::span<std::byte> room = writer.room();
        size_t want = std::min<uint64_t>(room.size(), end - addr);
        uint64_t pages = FERRY_TRY_CTX(source.read_pages(dumped_pid, addr, room.first(want)),
                                       "read the page at {:#x} of process {}", addr, dumped_pid);
        if (pages == 0) return fail("page source gave no page at {:#x} of process {}", addr, dumped_pid);
        FERRY_TRY(writer.add(addr, pages * kPageSize));
        stats.pages += pages;
        addr += pages * kPageSize;
      }
    }
  }
  FERRY_TRY(writer.flush());
  FERRY_TRY(views.flush());
  stats.pages_skipped_special = pages_with_data - stats.pages;
  kLog.debug("process {}: {} pages written in {} batches", pid, stats.pages, stats.batches);
  return stats;
}

}  // namespace ferry
