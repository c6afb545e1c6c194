// Where dumped pages go: local image files (LocalPageSink) or a page server
// (PageServerClient). Dump code writes through this interface only.
#pragma once

#include <cstdint>
#include <span>

#include "base/error.h"
#include "image/pagemap_image.h"

namespace ferry {

class PageSink {
 public:
  virtual ~PageSink() = default;

  // Starts the pagemap of one process or shared memory segment, ending the
  // previous one. True if the parent snapshot has a pagemap for it (then
  // unchanged pages may be added as PE_PARENT entries).
  virtual Result<bool> begin(const PagemapId& id) = 0;

  // Adds one entry to the current pagemap (ascending, non-overlapping). An
  // entry with PE_PRESENT must be followed by exactly its
  // nr_pages * kPageSize bytes, through write_data, before the next call.
  virtual Status add_entry(const PagemapEntry& entry) = 0;
  virtual Status write_data(std::span<const std::byte> bytes) = 0;

  // Everything was sent: makes the images complete (published locally, or
  // confirmed by the page server). Nothing may be added afterwards.
  virtual Status commit() = 0;

  // Gives up: nothing written so far may look like a complete snapshot.
  virtual void abort() = 0;

  // An entry and all its data in one call.
  Status write_pages(const PagemapEntry& entry, std::span<const std::byte> data) {
    FERRY_TRY(add_entry(entry));
    return write_data(data);
  }
};

}  // namespace ferry
