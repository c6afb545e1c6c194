#include "pageserver/lazy_page_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "base/file_io.h"
#include "base/log.h"

namespace ferry {
namespace {

const Logger kLog{"lazy"};

// "pagemap-<pid>.img" -> pid.
std::optional<uint64_t> pid_of_pagemap_name(const std::string& name) {
  constexpr std::string_view prefix = "pagemap-", suffix = ".img";
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return std::nullopt;
  std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 10 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  return std::stoull(digits);
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

Result<std::vector<std::string>> list_names(const ImageDir& dir) {
  int fd = ::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno("cannot list {}", dir.path());
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));
  if (!d) {
    ::close(fd);
    return fail_errno("cannot list {}", dir.path());
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d.get())) names.emplace_back(e->d_name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Result<LazyPageStore> LazyPageStore::load(const ImageDir& dir) {
  LazyPageStore store;
  for (const std::string& name : FERRY_TRY(list_names(dir))) {
    std::optional<uint64_t> pid = pid_of_pagemap_name(name);
    if (!pid) continue;
    PagemapImage image = FERRY_TRY(read_pagemap_image(dir, name));
    Process p;
    p.pages_name = pages_image_name(image.pages_id);
    p.pages = FERRY_TRY(dir.open_for_reading(p.pages_name));
    struct stat st {};
    if (::fstat(p.pages.get(), &st) != 0) return fail_errno("cannot stat {}", dir.describe(p.pages_name));
    uint64_t expected = image.pages_with_data() * kPageSize;
    if (static_cast<uint64_t>(st.st_size) != expected)
      return fail("{} holds {} bytes, but {} announces {} pages ({} bytes)", dir.describe(p.pages_name), st.st_size,
                  name, image.pages_with_data(), expected);
    if (expected > 0) {
      void* m = ::mmap(nullptr, expected, PROT_READ, MAP_PRIVATE, p.pages.get(), 0);
      if (m != MAP_FAILED) {
        p.mapped.data = static_cast<const std::byte*>(m);
        p.mapped.size = expected;
      }
    }
    uint64_t offset = 0;
    for (const PagemapEntry& e : image.entries) {
      if (!e.has_data()) continue;
      if (!p.extents.empty() && p.extents.back().end() == e.vaddr)
        p.extents.back().nr_pages += e.nr_pages;
      else
        p.extents.push_back(Extent{e.vaddr, e.nr_pages, offset});
      offset += e.nr_pages * kPageSize;
    }
    kLog.info("serving {} pages of process {} from {}", offset / kPageSize, *pid, dir.describe(p.pages_name));
    store.processes_.emplace(*pid, std::move(p));
  }
  if (store.processes_.empty()) return fail("{} holds no pagemap-<pid>.img to serve lazy pages from", dir.path());
  return store;
}

uint64_t LazyPageStore::pages() const {
  uint64_t n = 0;
  for (const auto& [pid, p] : processes_)
    for (const Extent& e : p.extents) n += e.nr_pages;
  return n;
}

Result<const LazyPageStore::Extent*> LazyPageStore::find(uint64_t pid, uint64_t vaddr) const {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return fail("no pages of PID {} are stored here", pid);
  const std::vector<Extent>& ex = it->second.extents;
  auto e = std::partition_point(ex.begin(), ex.end(), [&](const Extent& x) { return x.end() <= vaddr; });
  if (e == ex.end() || e->vaddr > vaddr || vaddr % kPageSize != 0)
    return fail("PID {} has no stored page at {:#x}", pid, vaddr);
  return &*e;
}

Result<uint64_t> LazyPageStore::servable(uint64_t pid, uint64_t vaddr, uint64_t wanted) const {
  const Extent* e = FERRY_TRY(find(pid, vaddr));
  if (wanted == 0) return fail("a request for 0 pages of PID {} at {:#x}", pid, vaddr);
  return std::min(wanted, (e->end() - vaddr) / kPageSize);
}

Status LazyPageStore::read(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) const {
  const Extent* e = FERRY_TRY(find(pid, vaddr));
  if (out.size() > e->end() - vaddr) return fail("read past the stored pages of PID {} at {:#x}", pid, vaddr);
  const Process& p = processes_.at(pid);
  uint64_t offset = e->file_offset + (vaddr - e->vaddr);
  return pread_exact(p.pages.get(), offset, out, p.pages_name);
}

LazyPageStore::MappedFile::~MappedFile() {
  if (data) ::munmap(const_cast<std::byte*>(data), size);
}

std::span<const std::byte> LazyPageStore::view_pages(uint64_t pid, uint64_t vaddr, uint64_t max_bytes) {
  Result<const Extent*> e = find(pid, vaddr);
  if (!e) return {};
  const Process& p = processes_.at(pid);
  if (!p.mapped.data) return {};
  uint64_t offset = (*e)->file_offset + (vaddr - (*e)->vaddr);
  uint64_t bytes = std::min(max_bytes / kPageSize * kPageSize, (*e)->end() - vaddr);
  if (offset + bytes > p.mapped.size) return {};
  return {p.mapped.data + offset, static_cast<size_t>(bytes)};
}

Result<uint64_t> LazyPageStore::read_pages(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) {
  uint64_t n = FERRY_TRY(servable(pid, vaddr, out.size() / kPageSize));
  FERRY_TRY(read(pid, vaddr, out.first(n * kPageSize)));
  return n;
}

}  // namespace ferry
