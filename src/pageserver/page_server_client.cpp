#include "pageserver/page_server_client.h"

#include <algorithm>


namespace ferry {
namespace {

// TLS records carry at most this much; keeping record boundaries on its
// multiples from an entry's first data byte keeps them on a CRIU receiver's
// 64 KiB pipe chunks too.
constexpr uint64_t kRecordSize = 16384;

Status send(Transport& t, const ps::Header& h, ps::Layout layout) {
  std::array<std::byte, ps::kMaxHeaderSize> raw{};
  FERRY_TRY(ps::encode_header(h, layout, raw));
  return t.write_all(std::span(raw).first(ps::header_size(layout)));
}

Status close_session(Transport& t, ps::Layout layout) {
  FERRY_TRY(send(t, ps::Header{ps::kClose, 0, 0, 0, 0}, layout));
  int32_t status = -1;
  FERRY_TRY_CTX(t.read_exact(std::as_writable_bytes(std::span(&status, 1))), "waiting for the answer to CLOSE");
  if (status != 0) return fail("the page server {} answered CLOSE with status {}: it did not keep the pages", t.peer(), status);
  return t.close();
}

}  // namespace

PageServerClient::PageServerClient(std::unique_ptr<Transport> t, ps::Layout layout)
    : transport_(std::move(t)), layout_(layout) {}

PageServerClient::~PageServerClient() {
  if (!ended_) abort();
}

Status PageServerClient::send_header(const ps::Header& h) { return send(*transport_, h, layout_); }

Result<bool> PageServerClient::begin(const PagemapId& id) {
  if (ended_) return fail("page server session already ended");
  if (data_due_ != 0) return fail("{} bytes of page data still due before the next pagemap", data_due_);
  FERRY_TRY(send_header(ps::Header{ps::kOpen2, 0, 0, 0, ps::encode_dst_id(id)}));
  std::byte answer{};
  FERRY_TRY_CTX(transport_->read_exact(std::span(&answer, 1)), "waiting for the answer to OPEN2 of {}", id.describe());
  if (answer != std::byte{0} && answer != std::byte{1})
    return fail("the page server answered OPEN2 with {}, neither 0 nor 1", static_cast<int>(answer));
  open_ = id;
  return answer == std::byte{1};
}

Result<bool> PageServerClient::parent_has(const PagemapId& id) {
  FERRY_TRY(send_header(ps::Header{ps::kParent, 0, 0, 0, ps::encode_dst_id(id)}));
  int32_t answer = -1;
  FERRY_TRY_CTX(transport_->read_exact(std::as_writable_bytes(std::span(&answer, 1))), "waiting for the answer to PARENT");
  if (answer != 0 && answer != 1) return fail("the page server answered PARENT with {}, neither 0 nor 1", answer);
  return answer == 1;
}

Status PageServerClient::add_entry(const PagemapEntry& e) {
  if (!open_) return fail("page entry at {:#x} before any pagemap was opened", e.vaddr);
  if (data_due_ != 0) return fail("{} bytes of page data still due before the next entry", data_due_);
  FERRY_TRY(check_pagemap_entry(e));
  FERRY_TRY(send_header(ps::Header{ps::kAddF, static_cast<uint16_t>(e.flags), e.nr_pages, e.vaddr, ps::encode_dst_id(*open_)}));
  if (e.has_data()) {
    data_due_ = e.nr_pages * kPageSize;
    data_sent_in_entry_ = 0;
  }
  return {};
}

Status PageServerClient::write_data(std::span<const std::byte> bytes) {
  if (bytes.size() > data_due_) return fail("{} bytes of page data where {} are due", bytes.size(), data_due_);
  // Bring the record boundary back onto a 16 KiB multiple first; after that
  // every write_all call starts aligned and cuts its own records at 16 KiB.
  uint64_t misalignment = data_sent_in_entry_ % kRecordSize;
  if (misalignment != 0 && !bytes.empty()) {
    size_t head = static_cast<size_t>(std::min<uint64_t>(bytes.size(), kRecordSize - misalignment));
    FERRY_TRY(transport_->write_all(bytes.first(head)));
    bytes = bytes.subspan(head);
    data_sent_in_entry_ += head;
    data_due_ -= head;
    data_bytes_ += head;
  }
  if (!bytes.empty()) {
    FERRY_TRY(transport_->write_all(bytes));
    data_sent_in_entry_ += bytes.size();
    data_due_ -= bytes.size();
    data_bytes_ += bytes.size();
  }
  return {};
}

Status PageServerClient::commit() {
  if (ended_) return fail("page server session already ended");
  if (data_due_ != 0) return fail("{} bytes of page data still due at CLOSE", data_due_);
  ended_ = true;
  Status s = close_session(*transport_, layout_);
  if (!s) transport_->abort();
  return s;
}

void PageServerClient::abort() {
  if (ended_) return;
  ended_ = true;
  transport_->abort();
}

RemotePageSource::RemotePageSource(std::unique_ptr<Transport> t, ps::Layout layout)
    : transport_(std::move(t)), layout_(layout) {}

RemotePageSource::~RemotePageSource() {
  if (!closed_) transport_->abort();
}

Result<uint64_t> RemotePageSource::read_pages(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) {
  uint64_t wanted = out.size() / kPageSize;
  if (wanted == 0) return fail("GET of less than one page");
  FERRY_TRY(send(*transport_, ps::Header{ps::kGet, 0, wanted, vaddr, pid}, layout_));
  std::array<std::byte, ps::kMaxHeaderSize> raw{};
  size_t size = ps::header_size(layout_);
  FERRY_TRY_CTX(transport_->read_exact(std::span(raw).first(size)), "waiting for the answer to GET of PID {} at {:#x}",
                pid, vaddr);
  ps::Header h = ps::decode_header(std::span(raw).first(size), layout_);
  if (h.command != ps::kAddF || h.dst_id != pid || h.vaddr != vaddr || h.nr_pages == 0 || h.nr_pages > wanted)
    return fail("the page server answered GET of {} pages of PID {} at {:#x} with {}", wanted, pid, vaddr, ps::describe(h));
  FERRY_TRY(transport_->read_exact(out.first(h.nr_pages * kPageSize)));
  return h.nr_pages;
}

Status RemotePageSource::close() {
  if (closed_) return {};
  closed_ = true;
  Status s = close_session(*transport_, layout_);
  if (!s) transport_->abort();
  return s;
}

}  // namespace ferry
