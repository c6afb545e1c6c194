// Probes of the memory-tracking features lazy restore and iterative migration
// build on. They work on ferry's own anonymous mappings, which each probe
// unmaps before it returns.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "check/kernel_probes.h"

// Debian 12's headers are Linux 6.1's; these arrived later.
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#include "proc/pagemap_scan.h"

namespace ferry::probes {
namespace {


constexpr uint64_t kPagemapSoftDirty = uint64_t{1} << 55;
constexpr uint64_t kPagemapPresent = uint64_t{1} << 63;

size_t page_size() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

// Private anonymous pages, unmapped on destruction.
class Mapping {
 public:
  explicit Mapping(size_t pages)
      : len_(pages * page_size()),
        addr_(::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (ok()) ::munmap(addr_, len_);
  }
  bool ok() const { return addr_ != MAP_FAILED; }
  char* page(size_t i) const { return static_cast<char*>(addr_) + i * page_size(); }
  uint64_t start() const { return reinterpret_cast<uintptr_t>(addr_); }
  size_t size() const { return len_; }

 private:
  size_t len_;
  void* addr_;
};

// The userfaultfd feature bits in UFFDIO_API order (bit i is kUffdFeatureNames[i]).
constexpr const char* kUffdFeatureNames[] = {
    "PAGEFAULT_FLAG_WP", "EVENT_FORK",      "EVENT_REMAP",     "EVENT_REMOVE",       "MISSING_HUGETLBFS",
    "MISSING_SHMEM",     "EVENT_UNMAP",     "SIGBUS",          "THREAD_ID",          "MINOR_HUGETLBFS",
    "MINOR_SHMEM",       "EXACT_ADDRESS",   "WP_HUGETLBFS_SHMEM", "WP_UNPOPULATED",  "POISON",
    "WP_ASYNC",          "MOVE",
};

std::string feature_names(uint64_t features) {
  std::string out;
  for (int bit = 0; bit < 64; ++bit) {
    if (!((features >> bit) & 1)) continue;
    if (!out.empty()) out += ' ';
    if (bit < static_cast<int>(std::size(kUffdFeatureNames)))
      out += kUffdFeatureNames[bit];
    else
      out += fmt::format("bit{}", bit);
  }
  return out.empty() ? "none" : out;
}

UniqueFd uffd_by_syscall(int flags) {
  return UniqueFd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags)));
}

UniqueFd uffd_by_device() {
  UniqueFd dev(::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
  if (!dev) return UniqueFd();
  UniqueFd fd(::ioctl(dev.get(), USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK));
  int e = errno;
  dev.reset();
  errno = e;  // the caller reports why the ioctl failed, not the close
  return fd;
}

// Any working way to get a userfaultfd; user-mode-only is enough for ferry.
UniqueFd any_uffd() {
  if (UniqueFd fd = uffd_by_syscall(UFFD_USER_MODE_ONLY)) return fd;
  if (UniqueFd fd = uffd_by_syscall(0)) return fd;
  return uffd_by_device();
}

// The UFFDIO_API handshake, which a userfaultfd takes once.
Result<uffdio_api> uffd_api(int fd, uint64_t features) {
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (::ioctl(fd, UFFDIO_API, &api) != 0) return fail_errno("UFFDIO_API");
  return api;
}

std::vector<ProbeResult> probe_userfaultfd() {
  const char* kDirtyTracking = "iterative migration (dirty tracking without soft-dirty)";
  ProbeResult uffd{"userfaultfd", "lazy restore (post-copy)", false, "", false};
  ProbeResult wp{"uffd write-protect", kDirtyTracking, false, "", false};
  ProbeResult async{"uffd WP_ASYNC", kDirtyTracking, false, "", false};

  std::string ways;
  int failures = 0;
  auto note = [&](const char* how, UniqueFd fd) {
    std::string outcome = fd ? "ok" : errno_text(errno);
    failures += fd ? 0 : 1;
    ways += fmt::format("{}{}: {}", ways.empty() ? "" : "; ", how, outcome);
  };
  note("syscall (user-mode-only)", uffd_by_syscall(UFFD_USER_MODE_ONLY));
  note("syscall", uffd_by_syscall(0));
  note("/dev/userfaultfd", uffd_by_device());
  if (failures == 0) ways = "syscall (also user-mode-only) and /dev/userfaultfd work";
  UniqueFd fd = any_uffd();
  if (!fd) {
    uffd.detail = ways;
    wp.detail = async.detail = "no userfaultfd";
    return {uffd, wp, async};
  }
  Result<uffdio_api> api = uffd_api(fd.get(), 0);
  if (!api) {
    uffd.detail = ways + "; " + api.error().message();
    wp.detail = async.detail = "UFFDIO_API failed";
    return {uffd, wp, async};
  }
  uffd.present = true;
  uffd.detail = fmt::format("{}; features: {}", ways, feature_names(api->features));

  // Write-protect: what the kernel offers on an anonymous range registered
  // with MODE_WP, and whether protecting and unprotecting it works.
  Mapping m(2);
  if (!m.ok()) {
    wp.detail = async.detail = "mmap: " + errno_text(errno);
    return {uffd, wp, async};
  }
  m.page(0)[0] = 1;
  m.page(1)[0] = 1;
  uffdio_register reg{};
  reg.range = {m.start(), m.size()};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  uffdio_writeprotect protect{};
  protect.range = reg.range;
  protect.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(fd.get(), UFFDIO_REGISTER, &reg) != 0) {
    wp.detail = "UFFDIO_REGISTER MODE_WP: " + errno_text(errno);
  } else if (!((reg.ioctls >> _UFFDIO_WRITEPROTECT) & 1)) {
    wp.detail = "MODE_WP registers but UFFDIO_WRITEPROTECT is not offered";
  } else if (::ioctl(fd.get(), UFFDIO_WRITEPROTECT, &protect) != 0) {
    wp.detail = "UFFDIO_WRITEPROTECT: " + errno_text(errno);
  } else {
    protect.mode = 0;
    if (::ioctl(fd.get(), UFFDIO_WRITEPROTECT, &protect) != 0) {
      wp.detail = "UFFDIO_WRITEPROTECT (unprotect): " + errno_text(errno);
    } else {
      wp.present = true;
      wp.detail = "MODE_WP on anonymous memory; UFFDIO_WRITEPROTECT works";
    }
  }
  fd.reset();  // closing unregisters the range

  if (!(api->features & UFFD_FEATURE_WP_ASYNC)) {
    async.detail = "not among the features (Linux < 6.7 or no PTE markers): writes need a fault handler";
    return {uffd, wp, async};
  }
  // The real use: protect written pages, write one, and find exactly that
  // one with PAGEMAP_SCAN. With WP_ASYNC the kernel resolves the write fault
  // itself, so writing here cannot block on a handler.
  UniqueFd afd = any_uffd();
  if (!afd) {
    async.detail = "listed, but a second userfaultfd: " + errno_text(errno);
    return {uffd, wp, async};
  }
  if (Result<uffdio_api> aapi = uffd_api(afd.get(), UFFD_FEATURE_WP_ASYNC); !aapi) {
    async.detail = "listed, but " + aapi.error().message();
    return {uffd, wp, async};
  }
  reg = {};
  reg.range = {m.start(), m.size()};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  protect.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(afd.get(), UFFDIO_REGISTER, &reg) != 0 || ::ioctl(afd.get(), UFFDIO_WRITEPROTECT, &protect) != 0) {
    async.detail = "accepted, but registering/protecting: " + errno_text(errno);
    return {uffd, wp, async};
  }
  async.present = true;
  m.page(1)[0] = 2;
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  PageRegion regions[4] = {};
  PmScanArg scan{};
  scan.size = sizeof scan;
  scan.start = m.start();
  scan.end = m.start() + m.size();
  scan.vec = reinterpret_cast<uintptr_t>(regions);
  scan.vec_len = std::size(regions);
  scan.category_mask = kPageIsWritten;
  scan.return_mask = kPageIsWritten;
  int n = pagemap ? ::ioctl(pagemap.get(), kPagemapScan, &scan) : -1;
  if (n < 0)
    async.detail = "accepted; PAGEMAP_SCAN to read written pages: " + errno_text(errno);
  else if (n == 1 && regions[0].start == reinterpret_cast<uintptr_t>(m.page(1)) &&
           regions[0].end == regions[0].start + page_size())
    async.detail = "accepted; PAGEMAP_SCAN finds exactly the page written after write-protecting";
  else
    async.detail = fmt::format("accepted, but PAGEMAP_SCAN found {} written region(s), expected the 1 page written", n);
  return {uffd, wp, async};
}

ProbeResult probe_pagemap_scan() {
  ProbeResult r{"PAGEMAP_SCAN", "iterative migration", false, "", false};
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap) {
    r.detail = "open /proc/self/pagemap: " + errno_text(errno);
    return r;
  }
  Mapping m(2);
  if (!m.ok()) {
    r.detail = "mmap: " + errno_text(errno);
    return r;
  }
  m.page(0)[0] = 1;  // only the first page becomes present
  PageRegion regions[4] = {};
  PmScanArg scan{};
  scan.size = sizeof scan;
  scan.start = m.start();
  scan.end = m.start() + m.size();
  scan.vec = reinterpret_cast<uintptr_t>(regions);
  scan.vec_len = std::size(regions);
  scan.category_mask = kPageIsPresent;
  scan.return_mask = kPageIsPresent;
  int n = ::ioctl(pagemap.get(), kPagemapScan, &scan);
  if (n < 0) {
    int e = errno;
    r.detail = "ioctl: " + errno_text(e);
    if (e == ENOTTY || e == EINVAL) r.detail += " (no PAGEMAP_SCAN: Linux < 6.7)";
  } else if (n == 1 && regions[0].start == m.start() && regions[0].end == m.start() + page_size()) {
    r.present = true;
    r.detail = "ioctl on /proc/PID/pagemap finds the one present page";
  } else {
    r.detail = fmt::format("ioctl returned {} region(s), expected the 1 present page", n);
  }
  return r;
}

Result<uint64_t> pagemap_entry(int pagemap, const void* addr) {
  uint64_t entry = 0;
  off_t offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / page_size() * sizeof entry);
  ssize_t n = ::pread(pagemap, &entry, sizeof entry, offset);
  if (n != sizeof entry) return n < 0 ? fail_errno("read /proc/self/pagemap") : fail("short read of /proc/self/pagemap");
  return entry;
}

ProbeResult probe_soft_dirty() {
  ProbeResult r{"soft-dirty", "--track-mem (CRIU-style)", false, "", false};
  const std::string instead = "dirty tracking uses userfaultfd write-protect / PAGEMAP_SCAN instead";
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap) {
    r.detail = "open /proc/self/pagemap: " + errno_text(errno);
    return r;
  }
  Mapping m(1);
  if (!m.ok()) {
    r.detail = "mmap: " + errno_text(errno);
    return r;
  }
  volatile char* p = m.page(0);
  p[0] = 1;
  Result<uint64_t> entry = pagemap_entry(pagemap.get(), m.page(0));
  if (!entry) {
    r.detail = entry.error().message();
    return r;
  }
  if (!(*entry & kPagemapSoftDirty)) {
    r.detail = fmt::format("bit 55 clear on a written page{} (CONFIG_MEM_SOFT_DIRTY unset): {}",
                           (*entry & kPagemapPresent) ? "" : " (not present)", instead);
    return r;
  }
  // Clearing affects the whole of ferry's address space; harmless, it only
  // costs a write fault per page afterwards.
  UniqueFd clear(::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC));
  if (!clear || ::write(clear.get(), "4", 1) != 1) {
    r.detail = "bit 55 set, but writing 4 to /proc/self/clear_refs: " + errno_text(errno);
    return r;
  }
  Result<uint64_t> cleared = pagemap_entry(pagemap.get(), m.page(0));
  p[0] = 2;
  Result<uint64_t> again = pagemap_entry(pagemap.get(), m.page(0));
  if (!cleared || !again) {
    r.detail = (!cleared ? cleared.error() : again.error()).message();
  } else if (*cleared & kPagemapSoftDirty) {
    r.detail = "bit 55 stays set after clear_refs: " + instead;
  } else if (!(*again & kPagemapSoftDirty)) {
    r.detail = "bit 55 does not come back after a write: " + instead;
  } else {
    r.present = true;
    r.detail = "bit 55 set by a write, cleared by clear_refs 4, set again by the next write";
  }
  return r;
}

}  // namespace

std::vector<ProbeResult> memory_probes() {
  std::vector<ProbeResult> rows = probe_userfaultfd();
  rows.push_back(probe_pagemap_scan());
  rows.push_back(probe_soft_dirty());
  return rows;
}

}  // namespace ferry::probes
