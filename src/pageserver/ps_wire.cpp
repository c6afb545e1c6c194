#include "pageserver/ps_wire.h"

#include <algorithm>
#include <cstring>

namespace ferry::ps {
namespace {

template <class T>
void put(std::span<std::byte, kMaxHeaderSize> out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}

template <class T>
T get(std::span<const std::byte> in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

bool all_zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace

const char* layout_name(Layout l) { return l == Layout::kCriu42 ? "CRIU 4.2 (32-byte headers)" : "CRIU 4.1 (24-byte headers)"; }

Status encode_header(const Header& h, Layout layout, std::span<std::byte, kMaxHeaderSize> out) {
  std::fill(out.begin(), out.end(), std::byte{0});
  uint32_t cmd = (uint32_t{h.flags} << 16) | h.command;
  put(out, 0, cmd);
  if (layout == Layout::kCriu42) {
    put(out, 8, h.nr_pages);
    put(out, 16, h.vaddr);
    put(out, 24, h.dst_id);
  } else {
    if (h.nr_pages > UINT32_MAX) return fail("{} pages do not fit a CRIU 4.1 header", h.nr_pages);
    put(out, 4, static_cast<uint32_t>(h.nr_pages));
    put(out, 8, h.vaddr);
    put(out, 16, h.dst_id);
  }
  return {};
}

Header decode_header(std::span<const std::byte> in, Layout layout) {
  Header h;
  uint32_t cmd = get<uint32_t>(in, 0);
  h.command = static_cast<uint16_t>(cmd & 0xffff);
  h.flags = static_cast<uint16_t>(cmd >> 16);
  if (layout == Layout::kCriu42) {
    h.nr_pages = get<uint64_t>(in, 8);
    h.vaddr = get<uint64_t>(in, 16);
    h.dst_id = get<uint64_t>(in, 24);
  } else {
    h.nr_pages = get<uint32_t>(in, 4);
    h.vaddr = get<uint64_t>(in, 8);
    h.dst_id = get<uint64_t>(in, 16);
  }
  return h;
}

Result<std::optional<Layout>> guess_layout(std::span<const std::byte, 24> first) {
  uint16_t command = static_cast<uint16_t>(get<uint32_t>(first, 0) & 0xffff);
  switch (command) {
    case kOpen:
    case kOpen2:
    case kParent:
      // Legacy: bytes 16-23 are dst_id (type byte never 0); 4.2: vaddr, 0 here.
      return std::optional<Layout>(all_zero(first.subspan(16, 8)) ? Layout::kCriu42 : Layout::kCriu41);
    case kAdd:
    case kAddF:
    case kHole:
    case kGet:
      // Legacy: bytes 4-7 are nr_pages (>= 1); 4.2: padding, 0.
      return std::optional<Layout>(all_zero(first.subspan(4, 4)) ? Layout::kCriu42 : Layout::kCriu41);
    case kClose:
    case kForceClose:
      return std::optional<Layout>();
    default:
      return fail("the first request is not a page-server command (command word {:#010x}): "
                  "the peer does not speak the page-server protocol",
                  get<uint32_t>(first, 0));
  }
}

std::string command_name(uint16_t command) {
  switch (command) {
    case kAdd: return "ADD";
    case kHole: return "HOLE";
    case kOpen: return "OPEN";
    case kOpen2: return "OPEN2";
    case kParent: return "PARENT";
    case kAddF: return "ADD_F";
    case kGet: return "GET";
    case kClose: return "CLOSE";
    case kForceClose: return "FORCE_CLOSE";
    default: return fmt::format("command {:#x}", command);
  }
}

std::string describe(const Header& h) {
  return fmt::format("{} (flags {}, {} pages at {:#x}, dst_id {:#x})", command_name(h.command), describe_flags(h.flags),
                     h.nr_pages, h.vaddr, h.dst_id);
}

uint64_t encode_dst_id(const PagemapId& id) { return (id.id << 8) | (id.kind == PagemapId::Kind::kProcess ? 1 : 2); }

Result<PagemapId> decode_dst_id(uint64_t dst_id) {
  uint64_t type = dst_id & 0xff, id = dst_id >> 8;
  switch (type) {
    case 1: case 10: case 11: case 16: case 17:
      if (id == 0 || id > INT32_MAX) return fail("dst_id {:#x} names PID {}, which cannot exist", dst_id, id);
      return PagemapId{PagemapId::Kind::kProcess, id};
    case 2: case 27: case 28: case 29: case 32: case 33: case 34:
      return PagemapId{PagemapId::Kind::kShmem, id};
    default:
      return fail("dst_id {:#x} has unknown pagemap type {}", dst_id, type);
  }
}

}  // namespace ferry::ps
