// One page-server session, server side: reads requests from a Transport,
// checks each before acting, and either stores pages (into a LocalPageSink)
// or serves them (GET, from a LazyPageStore). Memory use is bounded whatever
// the peer announces.
#pragma once

#include <optional>

#include "image/local_page_sink.h"
#include "net/transport.h"
#include "pageserver/lazy_page_store.h"
#include "pageserver/ps_wire.h"

namespace ferry {

struct PageServerSettings {
  std::optional<ps::Layout> layout;         // nullopt: detect from the first request
  ps::Layout fallback = ps::Layout::kCriu42;  // when the first request cannot tell (a lone CLOSE)
};

struct PageServerOutcome {
  ps::Layout layout = ps::Layout::kCriu42;
  uint64_t requests = 0;
  PageSinkTotals received;
  uint64_t gets = 0;
  uint64_t pages_served = 0;
};

class PageServerSession {
 public:
  // Receiving session: pages go into `sink`. Published only at CLOSE.
  PageServerSession(Transport& transport, LocalPageSink& sink, PageServerSettings settings);
  // Lazy session: GET requests are answered from `store`.
  PageServerSession(Transport& transport, LazyPageStore& store, PageServerSettings settings);

  // Serves until CLOSE (or, for a lazy session, the peer's clean end). On
  // failure nothing received is published, and the log says what was
  // discarded.
  Result<PageServerOutcome> run();

 private:
  Result<std::optional<ps::Header>> read_header();
  Status handle(const ps::Header& h, bool& closed);
  Status handle_open(const ps::Header& h);
  Status handle_parent(const ps::Header& h);
  Status handle_add(const ps::Header& h);
  Status handle_get(const ps::Header& h);
  Status handle_close();
  Status reply(std::span<const std::byte> bytes);
  void discard_received();

  Transport& transport_;
  LocalPageSink* sink_ = nullptr;
  LazyPageStore* store_ = nullptr;
  PageServerSettings settings_;
  std::optional<ps::Layout> layout_;
  std::optional<PagemapId> open_;  // the pagemap ADD requests go to
  std::vector<std::byte> buffer_;  // page data in transit, bounded
  PageServerOutcome outcome_;
};

}  // namespace ferry
