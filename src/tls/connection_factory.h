// Builds the Transport a command's options ask for: plain TCP, or TLS with
// credentials loaded up front, so a wrong file fails before any socket is
// made (CRIU loads them only after accept()).
#pragma once

#include <memory>

#include "cli/options.h"
#include "net/tcp.h"
#include "net/transport.h"

namespace ferry {

class TlsCredentials;

class ConnectionFactory {
 public:
  enum class Side { kClient, kServer };

  // With --tls, loads and checks every TLS file now.
  static Result<ConnectionFactory> create(const Options& options, Side side);

  // Client: resolves --address, connects to --port and runs the handshake.
  Result<std::unique_ptr<Transport>> connect() const;
  // Server: waits for one connection on `listener` and runs the handshake.
  Result<std::unique_ptr<Transport>> accept(TcpListener& listener) const;
  // Either side: runs over an already connected socket (e.g. --ps-socket).
  Result<std::unique_ptr<Transport>> wrap(TcpConnection connection) const;

  bool tls() const { return credentials_ != nullptr; }

 private:
  ConnectionFactory(const Options& o, Side s) : options_(&o), side_(s) {}
  const Options* options_;
  Side side_;
  std::shared_ptr<const TlsCredentials> credentials_;
};

}  // namespace ferry
