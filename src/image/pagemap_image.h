// Pagemap images: which pages of a process (or shared memory segment) the
// snapshot holds, and where their data is (image-format.md §5). Entries
// carry the page count in both the CRIU <= 4.1 and the CRIU >= 4.2 field, so
// every CRIU and crit reads them right.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image_dir.h"
#include "image/image_file.h"

namespace ferry {

constexpr uint64_t kPageSize = 4096;  // x86_64: the only architecture Ferry dumps
// No user address (or shared-memory offset) reaches this: 57 bits is the
// limit of 5-level paging.
constexpr uint64_t kAddressLimit = uint64_t{1} << 57;

// Flags of a pagemap entry (and of the page-server ADD_F command).
enum PagemapFlag : uint32_t {
  kPeParent = 1,   // unchanged since the parent snapshot; no data here
  kPeLazy = 2,     // may be restored lazily
  kPePresent = 4,  // data is in the pages file
};

struct PagemapEntry {
  uint64_t vaddr = 0;
  uint64_t nr_pages = 0;
  uint32_t flags = kPePresent;

  uint64_t end() const { return vaddr + nr_pages * kPageSize; }
  bool has_data() const { return (flags & kPePresent) != 0; }
  bool operator==(const PagemapEntry&) const = default;
};

// "4 PRESENT", "6 PRESENT|LAZY": for messages.
std::string describe_flags(uint32_t flags);

// Whose pages a pagemap holds: a process (by PID) or a shared anonymous
// memory segment (by CRIU's shmid).
struct PagemapId {
  enum class Kind { kProcess, kShmem };
  Kind kind = Kind::kProcess;
  uint64_t id = 0;

  // "pagemap-1234.img" or "pagemap-shmem-7.img".
  std::string image_name() const;
  // "process 1234" or "shared memory segment 7".
  std::string describe() const;
  bool operator==(const PagemapId&) const = default;
};

// Checks one entry on its own: aligned, non-empty, inside the address
// limit, and a flag combination CRIU writes (4, 6, 2 or 1).
Status check_pagemap_entry(const PagemapEntry& e);

// Writes pagemap-*.img: the head naming pages-<pages_id>.img, then entries
// in ascending, non-overlapping order (each checked before it is written).
class PagemapImageWriter {
 public:
  static Result<PagemapImageWriter> create(const ImageDir& dir, const PagemapId& id, uint32_t pages_id);

  Status add(const PagemapEntry& e);
  Status publish() { return file_.publish(); }
  void discard() { file_.discard(); }

  const PagemapId& id() const { return id_; }
  uint32_t pages_id() const { return pages_id_; }
  uint64_t entries() const { return entries_; }
  uint64_t pages_with_data() const { return pages_with_data_; }
  const std::string& name() const { return file_.name(); }

 private:
  PagemapImageWriter(ImageFileWriter f, PagemapId id, uint32_t pages_id)
      : file_(std::move(f)), id_(id), pages_id_(pages_id) {}
  ImageFileWriter file_;
  PagemapId id_;
  uint32_t pages_id_;
  uint64_t next_free_ = 0;  // entries must start at or after this address
  uint64_t entries_ = 0;
  uint64_t pages_with_data_ = 0;
};

struct PagemapImage {
  uint32_t pages_id = 0;
  std::vector<PagemapEntry> entries;  // checked, ascending, non-overlapping

  // The page count of all entries with data (the pages file holds this many).
  uint64_t pages_with_data() const;
  // True if every page of [vaddr, vaddr + nr_pages pages) is in some entry.
  bool covers(uint64_t vaddr, uint64_t nr_pages) const;
};

// Reads and checks a pagemap image, as written by Ferry or by any CRIU.
Result<PagemapImage> read_pagemap_image(const ImageDir& dir, const std::string& name);
Result<PagemapImage> parse_pagemap_image(ImageFileReader reader, const std::string& where);

// The pages file that belongs with a pagemap: "pages-<pages_id>.img".
std::string pages_image_name(uint32_t pages_id);

}  // namespace ferry
