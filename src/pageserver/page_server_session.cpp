#include "pageserver/page_server_session.h"

#include <algorithm>

#include "base/log.h"

namespace ferry {
namespace {

const Logger kLog{"page-server"};

// Page data moves through a buffer of this size, whatever a request claims.
constexpr size_t kDataBuffer = 1 << 20;

}  // namespace

PageServerSession::PageServerSession(Transport& t, LocalPageSink& sink, PageServerSettings s)
    : transport_(t), sink_(&sink), settings_(s), layout_(s.layout) {}

PageServerSession::PageServerSession(Transport& t, LazyPageStore& store, PageServerSettings s)
    : transport_(t), store_(&store), settings_(s), layout_(s.layout) {}

Result<std::optional<ps::Header>> PageServerSession::read_header() {
  std::array<std::byte, ps::kMaxHeaderSize> raw{};
  if (layout_) {
    size_t size = ps::header_size(*layout_);
    if (!FERRY_TRY(transport_.read_exact_or_end(std::span(raw).first(size)))) return std::optional<ps::Header>();
    return std::optional<ps::Header>(ps::decode_header(std::span(raw).first(size), *layout_));
  }
  // First request: 24 bytes are common to both layouts; they tell which.
  if (!FERRY_TRY(transport_.read_exact_or_end(std::span(raw).first(24)))) return std::optional<ps::Header>();
  std::optional<ps::Layout> guessed = FERRY_TRY(ps::guess_layout(std::span(raw).first<24>()));
  layout_ = guessed.value_or(settings_.fallback);
  kLog.info("{} speaks the page-server protocol of {}{}", transport_.peer(), ps::layout_name(*layout_),
            guessed ? "" : " (assumed: a first CLOSE does not tell)");
  if (*layout_ == ps::Layout::kCriu42) FERRY_TRY(transport_.read_exact(std::span(raw).subspan(24, 8)));
  return std::optional<ps::Header>(ps::decode_header(std::span(raw).first(ps::header_size(*layout_)), *layout_));
}

Result<PageServerOutcome> PageServerSession::run() {
  bool closed = false;
  while (!closed) {
    Result<std::optional<ps::Header>> h = read_header();
    if (!h) {
      discard_received();
      return fail(std::move(h).error().with_context(fmt::format("after request {}", outcome_.requests)));
    }
    if (!*h) {
      if (store_) break;  // a lazy client may simply hang up when done
      discard_received();
      return fail("{} ended the session without CLOSE after {} requests: the data were not all sent",
                  transport_.peer(), outcome_.requests);
    }
    ++outcome_.requests;
    if (Status s = handle(**h, closed); !s) {
      discard_received();
      return fail(std::move(s).error().with_context(
          fmt::format("request {} from {}, {}", outcome_.requests, transport_.peer(), ps::describe(**h))));
    }
  }
  outcome_.layout = layout_.value_or(settings_.fallback);
  if (sink_) outcome_.received = sink_->totals();
  if (Status s = transport_.close(); !s) kLog.warn("{}", s.error().message());
  return outcome_;
}

Status PageServerSession::handle(const ps::Header& h, bool& closed) {
  switch (h.command) {
    case ps::kOpen:
    case ps::kOpen2:
      return handle_open(h);
    case ps::kParent:
      return handle_parent(h);
    case ps::kAdd:
    case ps::kAddF:
    case ps::kHole:
      return handle_add(h);
    case ps::kGet:
      return handle_get(h);
    case ps::kClose:
    case ps::kForceClose:
      closed = true;
      return handle_close();
    default:
      return fail("unknown command");
  }
}

Status PageServerSession::handle_open(const ps::Header& h) {
  if (!sink_) return fail("this page server serves lazy pages (--lazy-pages) and stores none");
  PagemapId id = FERRY_TRY(ps::decode_dst_id(h.dst_id));
  bool has_parent = FERRY_TRY(sink_->begin(id));
  open_ = id;
  if (h.command == ps::kOpen2) {
    std::byte answer{static_cast<unsigned char>(has_parent ? 1 : 0)};
    FERRY_TRY(reply(std::span(&answer, 1)));
  }
  return {};
}

Status PageServerSession::handle_parent(const ps::Header& h) {
  if (!sink_) return fail("this page server serves lazy pages (--lazy-pages) and stores none");
  PagemapId id = FERRY_TRY(ps::decode_dst_id(h.dst_id));
  int32_t answer = FERRY_TRY(sink_->parent_has(id.image_name())) ? 1 : 0;
  return reply(std::as_bytes(std::span(&answer, 1)));
}

Status PageServerSession::handle_add(const ps::Header& h) {
  if (!sink_) return fail("this page server serves lazy pages (--lazy-pages) and stores none");
  if (!open_) return fail("pages sent before any OPEN2");
  PagemapId id = FERRY_TRY(ps::decode_dst_id(h.dst_id));
  if (!(id == *open_)) return fail("pages for {} while the open pagemap is that of {}", id.describe(), open_->describe());
  PagemapEntry e;
  e.vaddr = h.vaddr;
  e.nr_pages = h.nr_pages;
  e.flags = h.command == ps::kAdd ? uint32_t{kPePresent} : h.command == ps::kHole ? uint32_t{kPeParent} : uint32_t{h.flags};
  FERRY_TRY(sink_->add_entry(e));
  if (!e.has_data()) return {};
  if (buffer_.empty()) buffer_.resize(kDataBuffer);
  uint64_t bytes = e.nr_pages * kPageSize;
  Status s = sink_->write_data_from(transport_, bytes, buffer_);
  if (!s) return fail(std::move(s).error().with_context(fmt::format("page data ended short of the {} bytes announced", bytes)));
  return {};
}

Status PageServerSession::handle_get(const ps::Header& h) {
  if (!store_) return fail("GET sent to a receiving page server (start it with --lazy-pages to serve pages)");
  uint64_t pid = h.dst_id;
  uint64_t count = FERRY_TRY(store_->servable(pid, h.vaddr, h.nr_pages));
  ps::Header answer{ps::kAddF, kPePresent, count, h.vaddr, h.dst_id};
  std::array<std::byte, ps::kMaxHeaderSize> raw{};
  FERRY_TRY(ps::encode_header(answer, *layout_, raw));
  FERRY_TRY(reply(std::span(raw).first(ps::header_size(*layout_))));
  if (buffer_.empty()) buffer_.resize(kDataBuffer);
  uint64_t vaddr = h.vaddr, left = count * kPageSize;
  while (left > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, buffer_.size()));
    std::span<std::byte> piece(buffer_.data(), chunk);
    FERRY_TRY(store_->read(pid, vaddr, piece));
    FERRY_TRY(transport_.write_all(piece));
    vaddr += chunk;
    left -= chunk;
  }
  ++outcome_.gets;
  outcome_.pages_served += count;
  return {};
}

Status PageServerSession::handle_close() {
  int32_t status = 0;
  if (sink_) {
    Status s = sink_->commit();
    if (!s) {
      // Ferry says so (CRIU always answers 0): the client must not think
      // its pages are safe.
      status = -1;
      (void)reply(std::as_bytes(std::span(&status, 1)));
      return s;
    }
  }
  return reply(std::as_bytes(std::span(&status, 1)));
}

Status PageServerSession::reply(std::span<const std::byte> bytes) { return transport_.write_all(bytes); }

void PageServerSession::discard_received() {
  transport_.abort();
  if (!sink_) return;
  std::vector<std::string> names = sink_->file_names();
  sink_->abort();
  if (!names.empty()) {
    std::string list;
    for (const auto& n : names) {
      if (!list.empty()) list += ", ";
      list += n;
    }
    kLog.warn("discarded the incomplete images {} ({} pages received)", list, sink_->totals().pages_with_data);
  }
}

}  // namespace ferry
