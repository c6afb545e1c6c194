#include "pageserver/page_server_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "base/log.h"
#include "base/readiness.h"
#include "image/image_dir.h"
#include "pageserver/page_server_session.h"
#include "tls/connection_factory.h"

namespace ferry {
namespace {

const Logger kLog{"page-server"};

// A page server's pages files are numbered from here, so they never clash
// with those of a dump writing into the same directory (as CRIU).
constexpr uint32_t kServerFirstPagesId = 65537;

// --prev-images-dir: the `parent` link of -D, relative to -D as in CRIU.
Status link_parent(const ImageDir& dir, const std::string& prev) {
  char target[4096];
  ssize_t n = ::readlinkat(dir.fd(), "parent", target, sizeof target - 1);
  if (n >= 0) {
    if (std::string(target, static_cast<size_t>(n)) == prev) return {};
    return fail("{} already links to {}, not to --prev-images-dir {}", dir.describe("parent"),
                std::string(target, static_cast<size_t>(n)), prev);
  }
  if (::symlinkat(prev.c_str(), dir.fd(), "parent") != 0) return fail_errno("cannot link {} to {}", dir.describe("parent"), prev);
  return {};
}

PageServerSettings session_settings(const Options& o) {
  PageServerSettings s;
  if (o.ps_layout == PsLayout::kModern32) s.layout = ps::Layout::kCriu42;
  if (o.ps_layout == PsLayout::kLegacy24) s.layout = ps::Layout::kCriu41;
  return s;
}

Result<std::unique_ptr<Transport>> connect_client(const Options& o, const ConnectionFactory& factory) {
  if (o.ps_socket >= 0) {
    kLog.info("using the inherited connected socket {} (--ps-socket)", o.ps_socket);
    return factory.wrap(TcpConnection{UniqueFd(o.ps_socket), fmt::format("socket {}", o.ps_socket)});
  }
  TcpListener listener = FERRY_TRY(TcpListener::listen_on(o.address, o.port));
  kLog.msg("page server listening on {} ({})", listener.local(), factory.tls() ? "TLS" : "plain TCP");
  FERRY_TRY(signal_ready(ReadinessSettings{o.detach, o.in_work_dir(o.pidfile), o.status_fd}));
  return factory.accept(listener);
}

}  // namespace

Result<int> run_page_server_command(const Options& o) {
  if (o.auto_dedup) return fail("--auto-dedup is not supported by ferry page-server yet");
  ImageDir dir = FERRY_TRY(ImageDir::open(o.images_dir));
  if (!o.prev_images_dir.empty()) FERRY_TRY(link_parent(dir, o.prev_images_dir));
  // Everything that can be wrong locally fails now, before anyone connects.
  ConnectionFactory factory = FERRY_TRY(ConnectionFactory::create(o, ConnectionFactory::Side::kServer));
  std::optional<LazyPageStore> store;
  if (o.lazy_pages) store = FERRY_TRY(LazyPageStore::load(dir));

  std::unique_ptr<Transport> transport = FERRY_TRY(connect_client(o, factory));
  auto start = std::chrono::steady_clock::now();
  kLog.info("session with {} over {}", transport->peer(), transport->description());

  std::optional<LocalPageSink> sink;
  std::optional<PageServerSession> session;
  if (store) {
    session.emplace(*transport, *store, session_settings(o));
  } else {
    sink.emplace(dir, kServerFirstPagesId);
    session.emplace(*transport, *sink, session_settings(o));
  }
  PageServerOutcome out = FERRY_TRY(session->run());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (store) {
    kLog.msg("served {} GET requests, {} pages, in {:.3f} s", out.gets, out.pages_served, seconds);
  } else {
    double gb = static_cast<double>(out.received.data_bytes) / 1e9;
    kLog.msg("received {} pagemap(s), {} pages ({:.3f} GB) in {:.3f} s ({:.2f} GB/s) into {}", out.received.pagemaps,
             out.received.pages_with_data, gb, seconds, seconds > 0 ? gb / seconds : 0.0, dir.path());
  }
  return 0;
}

}  // namespace ferry
