// The page-server wire format (page-server-protocol.md §4–7): request
// headers in the 32-byte layout of CRIU >= 4.2 or the 24-byte one of
// CRIU <= 4.1.1, command words, flags and dst_id. Host byte order, as CRIU.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/error.h"
#include "image/pagemap_image.h"

namespace ferry::ps {

enum Command : uint16_t {
  kAdd = 1,
  kHole = 2,
  kOpen = 3,
  kOpen2 = 4,
  kParent = 5,
  kAddF = 6,
  kGet = 7,
  kClose = 0x1023,
  kForceClose = 0x1024,
};

enum class Layout { kCriu42, kCriu41 };

constexpr size_t kMaxHeaderSize = 32;
constexpr size_t header_size(Layout l) { return l == Layout::kCriu42 ? 32 : 24; }
const char* layout_name(Layout l);

struct Header {
  uint16_t command = 0;
  uint16_t flags = 0;  // the high half of the command word
  uint64_t nr_pages = 0;
  uint64_t vaddr = 0;
  uint64_t dst_id = 0;
};

// Writes `h` into `out` (header_size(layout) bytes). Fails if the page count
// does not fit the 24-byte layout.
Status encode_header(const Header& h, Layout layout, std::span<std::byte, kMaxHeaderSize> out);
// Reads header_size(layout) bytes. Never fails: checking is the receiver's.
Header decode_header(std::span<const std::byte> in, Layout layout);

// Which layout a peer speaks, from the first 24 bytes it sent (see the
// spec's §13 suggestion); nullopt if they cannot tell (a first CLOSE).
Result<std::optional<Layout>> guess_layout(std::span<const std::byte, 24> first);

// "ADD_F" etc.; "command 0x99" for unknown ones.
std::string command_name(uint16_t command);
// A whole request, for messages: "ADD_F flags 4 PRESENT, 2 pages at 0x7f.., dst_id 0x4d201".
std::string describe(const Header& h);

// dst_id: (id << 8) | type, type 1 = process, 2 = shmem; older CRIUs' type
// numbers are accepted too.
uint64_t encode_dst_id(const PagemapId& id);
Result<PagemapId> decode_dst_id(uint64_t dst_id);

}  // namespace ferry::ps
