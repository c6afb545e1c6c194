// Where restored pages come from: local images, or a page server answering
// GET requests (lazy migration). Restore and the lazy-pages daemon read
// through this interface only.
#pragma once

#include <cstdint>
#include <span>

#include "base/error.h"

namespace ferry {

class PageSource {
 public:
  virtual ~PageSource() = default;

  // Fills `out` with the pages of process `pid` from `vaddr` on, at most
  // out.size() / kPageSize of them, and returns how many it filled (at least
  // one; fewer where the stored range ends). Fails if the source has no
  // page at `vaddr`.
  virtual Result<uint64_t> read_pages(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) = 0;

  // The bytes of the pages of `pid` from `vaddr` on (at most `max_bytes`,
  // whole pages) where the source holds them in memory already (e.g. a
  // mapped pages file), so they can be written out without a copy; an empty
  // span where it does not (then use read_pages).
  virtual std::span<const std::byte> view_pages(uint64_t /*pid*/, uint64_t /*vaddr*/, uint64_t /*max_bytes*/) {
    return {};
  }
};

}  // namespace ferry
