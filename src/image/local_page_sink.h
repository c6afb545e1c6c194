// A PageSink that writes pagemap-*.img and pages-*.img into an images
// directory. Files stay under temporary names until commit(); abort() or
// destruction without commit() removes them. Also the storage behind the
// page server.
#pragma once

#include <optional>
#include <vector>

#include "image/image_dir.h"
#include "image/page_sink.h"

namespace ferry {

struct PageSinkTotals {
  uint64_t pagemaps = 0;
  uint64_t entries = 0;
  uint64_t pages_with_data = 0;
  uint64_t data_bytes = 0;
};

class LocalPageSink final : public PageSink {
 public:
  // `first_pages_id` numbers the first pages file: 1 for a dump, 65537 for a
  // page server (so both can write into one directory).
  LocalPageSink(const ImageDir& dir, uint32_t first_pages_id);
  ~LocalPageSink() override;

  Result<bool> begin(const PagemapId& id) override;
  Status add_entry(const PagemapEntry& entry) override;
  Status write_data(std::span<const std::byte> bytes) override;
  Status commit() override;
  void abort() override;

  // write_data for bytes that come straight from a peer: they go from the
  // transport into the pages file, without a copy where it allows.
  Status write_data_from(Transport& transport, uint64_t bytes, std::span<std::byte> scratch);

  // Whether the parent snapshot has an image of this name (PARENT requests).
  Result<bool> parent_has(const std::string& image_name);

  const PageSinkTotals& totals() const { return totals_; }
  // Names of the files written so far (published or not), for messages.
  std::vector<std::string> file_names() const;
  bool has_current() const { return current_.has_value(); }

 private:
  struct OpenPagemap {
    PagemapImageWriter pagemap;
    ImageFileWriter pages;
    std::optional<PagemapImage> parent;
    uint64_t data_due = 0;  // bytes still owed to the last PE_PRESENT entry
  };
  Status end_current();
  Result<const ImageDir*> parent_dir();

  const ImageDir& dir_;
  uint32_t next_pages_id_;
  std::optional<std::optional<ImageDir>> parent_;  // outer: looked up yet?
  std::optional<OpenPagemap> current_;
  std::vector<PagemapImageWriter> finished_pagemaps_;
  std::vector<ImageFileWriter> finished_pages_;
  std::vector<PagemapId> begun_;
  PageSinkTotals totals_;
  bool ended_ = false;
};

}  // namespace ferry
