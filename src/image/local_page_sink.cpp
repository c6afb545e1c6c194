#include "image/local_page_sink.h"

#include <algorithm>

#include "base/log.h"

namespace ferry {
namespace {
const Logger kLog{"image"};
}

LocalPageSink::LocalPageSink(const ImageDir& dir, uint32_t first_pages_id) : dir_(dir), next_pages_id_(first_pages_id) {}

LocalPageSink::~LocalPageSink() {
  if (!ended_) abort();
}

Result<const ImageDir*> LocalPageSink::parent_dir() {
  if (!parent_) parent_ = FERRY_TRY(dir_.open_parent());
  return parent_->has_value() ? &**parent_ : nullptr;
}

Result<bool> LocalPageSink::parent_has(const std::string& image_name) {
  const ImageDir* parent = FERRY_TRY(parent_dir());
  if (!parent) return false;
  return parent->exists(image_name);
}

Result<bool> LocalPageSink::begin(const PagemapId& id) {
  if (ended_) return fail("{}: pages added after the snapshot was finished", dir_.path());
  FERRY_TRY(end_current());
  if (std::find(begun_.begin(), begun_.end(), id) != begun_.end())
    return fail("the pagemap of {} was opened a second time", id.describe());
  if (next_pages_id_ == UINT32_MAX) return fail("{}: out of pages file numbers", dir_.path());

  std::optional<PagemapImage> parent;
  const ImageDir* parent_dir_ptr = FERRY_TRY(parent_dir());
  if (parent_dir_ptr && FERRY_TRY(parent_dir_ptr->exists(id.image_name()))) {
    PagemapImage p = FERRY_TRY(read_pagemap_image(*parent_dir_ptr, id.image_name()));
    if (!p.entries.empty()) parent = std::move(p);
  }
  uint32_t pages_id = next_pages_id_++;
  PagemapImageWriter pagemap = FERRY_TRY(PagemapImageWriter::create(dir_, id, pages_id));
  ImageFileWriter pages = FERRY_TRY(ImageFileWriter::create(dir_, pages_image_name(pages_id)));
  begun_.push_back(id);
  bool has_parent = parent.has_value();
  current_.emplace(OpenPagemap{std::move(pagemap), std::move(pages), std::move(parent), 0});
  ++totals_.pagemaps;
  kLog.debug("{}: {} with pages-{}.img{}", dir_.path(), id.image_name(), pages_id, has_parent ? " (has a parent)" : "");
  return has_parent;
}

Status LocalPageSink::add_entry(const PagemapEntry& e) {
  if (!current_) return fail("an entry at {:#x} arrived before any pagemap was opened", e.vaddr);
  OpenPagemap& c = *current_;
  if (c.data_due != 0)
    return fail("{}: a new entry at {:#x} arrived while {} bytes of the previous one's data were still due",
                c.pagemap.name(), e.vaddr, c.data_due);
  if (e.flags == kPeParent) {
    FERRY_TRY_CTX(check_pagemap_entry(e), "{}", c.pagemap.name());
    if (!c.parent || !c.parent->covers(e.vaddr, e.nr_pages))
      return fail("{}: {} pages at {:#x} are marked as in the parent snapshot, which does not have them",
                  c.pagemap.name(), e.nr_pages, e.vaddr);
  }
  FERRY_TRY(c.pagemap.add(e));
  ++totals_.entries;
  if (e.has_data()) {
    c.data_due = e.nr_pages * kPageSize;
    totals_.pages_with_data += e.nr_pages;
  }
  return {};
}

Status LocalPageSink::write_data(std::span<const std::byte> bytes) {
  if (!current_) return fail("page data arrived before any pagemap was opened");
  OpenPagemap& c = *current_;
  if (bytes.size() > c.data_due)
    return fail("{}: {} bytes of page data where only {} were announced", c.pagemap.name(), bytes.size(), c.data_due);
  FERRY_TRY(c.pages.write_raw(bytes));
  c.data_due -= bytes.size();
  totals_.data_bytes += bytes.size();
  return {};
}

Status LocalPageSink::write_data_from(Transport& transport, uint64_t bytes, std::span<std::byte> scratch) {
  if (!current_) return fail("page data arrived before any pagemap was opened");
  OpenPagemap& c = *current_;
  if (bytes > c.data_due)
    return fail("{}: {} bytes of page data where only {} were announced", c.pagemap.name(), bytes, c.data_due);
  FERRY_TRY(c.pages.write_from(transport, bytes, scratch));
  c.data_due -= bytes;
  totals_.data_bytes += bytes;
  return {};
}

Status LocalPageSink::end_current() {
  if (!current_) return {};
  if (current_->data_due != 0)
    return fail("{}: {} bytes of page data are missing", current_->pagemap.name(), current_->data_due);
  finished_pagemaps_.push_back(std::move(current_->pagemap));
  finished_pages_.push_back(std::move(current_->pages));
  current_.reset();
  return {};
}

Status LocalPageSink::commit() {
  if (ended_) return fail("{}: snapshot committed twice", dir_.path());
  Status s = end_current();
  // Pages first: a published pagemap always has its pages file beside it.
  for (size_t i = 0; s && i < finished_pages_.size(); ++i) s = finished_pages_[i].publish();
  for (size_t i = 0; s && i < finished_pagemaps_.size(); ++i) s = finished_pagemaps_[i].publish();
  if (!s) {
    abort();
    return s;
  }
  ended_ = true;
  kLog.info("{}: wrote {} pagemap(s), {} entries, {} pages ({} bytes)", dir_.path(), totals_.pagemaps,
            totals_.entries, totals_.pages_with_data, totals_.data_bytes);
  return {};
}

std::vector<std::string> LocalPageSink::file_names() const {
  std::vector<std::string> names;
  for (const auto& p : finished_pagemaps_) names.push_back(p.name());
  for (const auto& p : finished_pages_) names.push_back(p.name());
  if (current_) {
    names.push_back(current_->pagemap.name());
    names.push_back(current_->pages.name());
  }
  return names;
}

void LocalPageSink::abort() {
  if (ended_) return;
  ended_ = true;
  if (current_) {
    current_->pagemap.discard();
    current_->pages.discard();
    current_.reset();
  }
  for (auto& p : finished_pagemaps_) p.discard();
  for (auto& p : finished_pages_) p.discard();
}

}  // namespace ferry
