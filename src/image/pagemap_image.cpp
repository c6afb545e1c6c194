#include "image/pagemap_image.h"

#include <algorithm>

#include "image/image_magic.h"
#include "pagemap.pb.h"

namespace ferry {
namespace {

// A pagemap entry is ~20 bytes; anything much larger is not one.
constexpr uint32_t kMaxPagemapEntrySize = 256;

}  // namespace

std::string describe_flags(uint32_t flags) {
  std::string names;
  auto add = [&](uint32_t bit, const char* name) {
    if (!(flags & bit)) return;
    if (!names.empty()) names += '|';
    names += name;
  };
  add(kPePresent, "PRESENT");
  add(kPeLazy, "LAZY");
  add(kPeParent, "PARENT");
  if (flags & ~uint32_t{7}) {
    if (!names.empty()) names += '|';
    names += fmt::format("{:#x}", flags & ~uint32_t{7});
  }
  return fmt::format("{} {}", flags, names.empty() ? "none" : names);
}

std::string PagemapId::image_name() const {
  return kind == Kind::kProcess ? fmt::format("pagemap-{}.img", id) : fmt::format("pagemap-shmem-{}.img", id);
}

std::string PagemapId::describe() const {
  return kind == Kind::kProcess ? fmt::format("process {}", id) : fmt::format("shared memory segment {}", id);
}

std::string pages_image_name(uint32_t pages_id) { return fmt::format("pages-{}.img", pages_id); }

Status check_pagemap_entry(const PagemapEntry& e) {
  if (e.vaddr % kPageSize != 0) return fail("address {:#x} is not page aligned", e.vaddr);
  if (e.nr_pages == 0) return fail("entry at {:#x} has no pages", e.vaddr);
  if (e.vaddr >= kAddressLimit || e.nr_pages > (kAddressLimit - e.vaddr) / kPageSize)
    return fail("{} pages at {:#x} run past the end of the address space", e.nr_pages, e.vaddr);
  switch (e.flags) {
    case kPePresent:
    case kPePresent | kPeLazy:
    case kPeLazy:
    case kPeParent:
      return {};
    default:
      return fail("entry at {:#x} has flags {}, not one of 4 PRESENT, 6 PRESENT|LAZY, 2 LAZY, 1 PARENT", e.vaddr,
                  describe_flags(e.flags));
  }
}

Result<PagemapImageWriter> PagemapImageWriter::create(const ImageDir& dir, const PagemapId& id, uint32_t pages_id) {
  ImageFileWriter file = FERRY_TRY(ImageFileWriter::create(dir, id.image_name()));
  FERRY_TRY(file.write_magic(magic::kPagemap));
  images::PagemapHead head;
  head.set_pages_id(pages_id);
  FERRY_TRY(file.write_entry(head));
  return PagemapImageWriter(std::move(file), id, pages_id);
}

Status PagemapImageWriter::add(const PagemapEntry& e) {
  FERRY_TRY_CTX(check_pagemap_entry(e), "{}", id_.image_name());
  if (e.vaddr < next_free_)
    return fail("{}: entry at {:#x} overlaps or precedes the previous one (which ends at {:#x})", id_.image_name(),
                e.vaddr, next_free_);
  images::PagemapEntry m;
  m.set_vaddr(e.vaddr);
  m.set_compat_nr_pages(e.nr_pages <= UINT32_MAX ? static_cast<uint32_t>(e.nr_pages) : 0);
  m.set_flags(e.flags);
  m.set_nr_pages(e.nr_pages);
  FERRY_TRY(file_.write_entry(m));
  next_free_ = e.end();
  ++entries_;
  if (e.has_data()) pages_with_data_ += e.nr_pages;
  return {};
}

uint64_t PagemapImage::pages_with_data() const {
  uint64_t n = 0;
  for (const PagemapEntry& e : entries)
    if (e.has_data()) n += e.nr_pages;
  return n;
}

bool PagemapImage::covers(uint64_t vaddr, uint64_t nr_pages) const {
  uint64_t at = vaddr, end = vaddr + nr_pages * kPageSize;
  // Entries are sorted: find the first that ends after `at`, then walk.
  auto it = std::partition_point(entries.begin(), entries.end(), [&](const PagemapEntry& e) { return e.end() <= at; });
  for (; it != entries.end() && at < end; ++it) {
    if (it->vaddr > at) return false;
    at = it->end();
  }
  return at >= end;
}

Result<PagemapImage> parse_pagemap_image(ImageFileReader reader, const std::string& where) {
  PagemapImage image;
  images::PagemapHead head;
  if (!FERRY_TRY(reader.next_entry(head))) return fail("{}: no pagemap head", where);
  image.pages_id = head.pages_id();
  images::PagemapEntry m;
  uint64_t next_free = 0;
  while (FERRY_TRY(reader.next_entry(m))) {
    PagemapEntry e;
    e.vaddr = m.vaddr();
    e.nr_pages = m.has_nr_pages() ? m.nr_pages() : m.compat_nr_pages();
    if (m.has_in_parent() && m.in_parent())
      e.flags = kPeParent;
    else
      e.flags = m.has_flags() ? m.flags() : kPePresent;
    FERRY_TRY_CTX(check_pagemap_entry(e), "{}: entry {}", where, image.entries.size());
    if (e.vaddr < next_free)
      return fail("{}: entry {} at {:#x} overlaps or precedes the previous one", where, image.entries.size(), e.vaddr);
    next_free = e.end();
    image.entries.push_back(e);
  }
  return image;
}

Result<PagemapImage> read_pagemap_image(const ImageDir& dir, const std::string& name) {
  ImageFileReader reader = FERRY_TRY(ImageFileReader::open(dir, name, magic::kPagemap, kMaxPagemapEntrySize));
  return parse_pagemap_image(std::move(reader), dir.describe(name));
}

}  // namespace ferry
