#include "tls/connection_factory.h"

#include "base/log.h"
#include "build_config.h"
#include "net/plain_transport.h"
#if FERRY_HAVE_GNUTLS
#include "tls/tls_credentials.h"
#include "tls/tls_transport.h"
#endif

namespace ferry {
namespace {
const Logger kLog{"net"};
}

Result<ConnectionFactory> ConnectionFactory::create(const Options& options, Side side) {
  ConnectionFactory f(options, side);
  if (!options.tls.enabled) return f;
#if FERRY_HAVE_GNUTLS
  f.credentials_ = FERRY_TRY(TlsCredentials::load(options.tls));
  if (side == Side::kServer && !options.address.empty()) {
    if (options.tls.no_cn_verify) {
      kLog.info("not checking client certificates against --address (--tls-no-cn-verify)");
    } else {
      kLog.info("checking client certificates against --address {} (as CRIU does; --tls-no-cn-verify turns this off)",
                options.address);
    }
  }
  return f;
#else
  return fail("--tls: ferry was built without TLS support (NO_GNUTLS)");
#endif
}

Result<std::unique_ptr<Transport>> ConnectionFactory::wrap(TcpConnection connection) const {
  std::chrono::seconds timeout(options_->io_timeout);
  if (!credentials_) return FERRY_TRY(PlainTransport::create(std::move(connection), timeout));
#if FERRY_HAVE_GNUTLS
  const Options& o = *options_;
  TlsTransport::Settings s;
  s.role = side_ == Side::kServer ? TlsRole::kServer : TlsRole::kClient;
  s.io_timeout = timeout;
  s.check.allowed_names = o.tls.peer_names;
  if (!o.tls.no_cn_verify) s.check.expected_name = o.address;
  if (side_ == Side::kClient && !o.address.empty() && !is_ip_literal(o.address)) s.server_name = o.address;
  return FERRY_TRY(TlsTransport::establish(std::move(connection), credentials_, std::move(s)));
#else
  return fail("--tls: ferry was built without TLS support (NO_GNUTLS)");
#endif
}

Result<std::unique_ptr<Transport>> ConnectionFactory::connect() const {
  TcpConnection c = FERRY_TRY(tcp_connect(options_->address, options_->port, std::chrono::seconds(options_->io_timeout)));
  return wrap(std::move(c));
}

Result<std::unique_ptr<Transport>> ConnectionFactory::accept(TcpListener& listener) const {
  TcpConnection c = FERRY_TRY(listener.accept_one(std::chrono::seconds(0)));
  listener.close();  // one session per server, as CRIU
  return wrap(std::move(c));
}

}  // namespace ferry
