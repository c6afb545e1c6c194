// The pages a lazy page server hands out: every pagemap-<pid>.img of its
// images directory with its pages file, indexed for GET requests.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "image/image_dir.h"
#include "image/page_source.h"
#include "image/pagemap_image.h"

namespace ferry {

class LazyPageStore final : public PageSource {
 public:
  // Loads and checks every process pagemap in `dir` (and that each pages
  // file holds exactly the data its pagemap announces).
  static Result<LazyPageStore> load(const ImageDir& dir);

  // Any page with data can be served (CRIU serves only PE_LAZY ones and
  // hangs on others). The count is clamped where the stored data stops
  // being contiguous.
  Result<uint64_t> read_pages(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) override;
  // From the pages files, mapped read-only at load.
  std::span<const std::byte> view_pages(uint64_t pid, uint64_t vaddr, uint64_t max_bytes) override;

  // How many pages from `vaddr` on can be served in one reply (at most
  // `wanted`); an error if none.
  Result<uint64_t> servable(uint64_t pid, uint64_t vaddr, uint64_t wanted) const;
  // Reads `out.size()` bytes of the pages of `pid` from `vaddr` on (which
  // servable() said are there).
  Status read(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) const;

  size_t processes() const { return processes_.size(); }
  uint64_t pages() const;

 private:
  struct Extent {
    uint64_t vaddr;
    uint64_t nr_pages;
    uint64_t file_offset;
    uint64_t end() const { return vaddr + nr_pages * kPageSize; }
  };
  // A read-only private mapping of a pages file, unmapped on destruction.
  struct MappedFile {
    const std::byte* data = nullptr;
    size_t size = 0;
    MappedFile() = default;
    MappedFile(MappedFile&& o) noexcept : data(std::exchange(o.data, nullptr)), size(std::exchange(o.size, 0)) {}
    MappedFile& operator=(MappedFile&& o) noexcept {
      std::swap(data, o.data);
      std::swap(size, o.size);
      return *this;
    }
    ~MappedFile();
  };
  struct Process {
    UniqueFd pages;
    MappedFile mapped;  // empty if mapping failed: read() still works
    std::string pages_name;
    std::vector<Extent> extents;  // entries with data, merged where contiguous
  };
  Result<const Extent*> find(uint64_t pid, uint64_t vaddr) const;

  std::map<uint64_t, Process> processes_;
};

}  // namespace ferry
