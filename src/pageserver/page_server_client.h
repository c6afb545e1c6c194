// The client end of a page-server session: a PageSink that streams pages to
// `ferry page-server` or `criu page-server`, framed so a CRIU receiver
// accepts it under TLS (each header in its own record; page data in records
// that end on every 16 KiB boundary counted from the entry's first byte).
#pragma once

#include <memory>

#include "image/page_sink.h"
#include "image/page_source.h"
#include "net/transport.h"
#include "pageserver/ps_wire.h"

namespace ferry {

class PageServerClient final : public PageSink {
 public:
  PageServerClient(std::unique_ptr<Transport> transport, ps::Layout layout);
  ~PageServerClient() override;

  Result<bool> begin(const PagemapId& id) override;   // OPEN2
  Status add_entry(const PagemapEntry& entry) override;  // ADD_F
  Status write_data(std::span<const std::byte> bytes) override;
  Status commit() override;  // CLOSE, its status, then a clean TLS/TCP close
  void abort() override;     // drops the connection: the server discards everything

  // PARENT: whether the server's parent snapshot has this pagemap.
  Result<bool> parent_has(const PagemapId& id);

  const std::string& peer() const { return transport_->peer(); }
  std::string description() const { return transport_->description(); }
  uint64_t data_bytes() const { return data_bytes_; }

 private:
  Status send_header(const ps::Header& h);

  std::unique_ptr<Transport> transport_;
  ps::Layout layout_;
  std::optional<PagemapId> open_;
  uint64_t data_due_ = 0;
  uint64_t data_sent_in_entry_ = 0;
  uint64_t data_bytes_ = 0;
  bool ended_ = false;
};

// Pages fetched with GET from a lazy page server (page-server --lazy-pages
// or dump --lazy-pages): what the lazy-pages daemon reads from.
class RemotePageSource final : public PageSource {
 public:
  RemotePageSource(std::unique_ptr<Transport> transport, ps::Layout layout);
  ~RemotePageSource() override;

  Result<uint64_t> read_pages(uint64_t pid, uint64_t vaddr, std::span<std::byte> out) override;
  // Sends CLOSE, reads its status and closes the connection.
  Status close();

 private:
  std::unique_ptr<Transport> transport_;
  ps::Layout layout_;
  bool closed_ = false;
};

}  // namespace ferry
