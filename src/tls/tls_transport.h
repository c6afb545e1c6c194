// Transport over TLS (GnuTLS). GnuTLS owns the socket through
// gnutls_transport_set_int, so kernel TLS can engage where the kernel and the
// GnuTLS build offer it. The peer's certificate is verified inside the
// handshake, so a rejected peer receives an alert saying why.
#pragma once

#include <gnutls/gnutls.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "net/tcp.h"
#include "net/transport.h"
#include "tls/tls_credentials.h"

namespace ferry {

// Whom we accept at the other end, beyond a chain to a trusted CA, valid
// dates and no revocation.
struct TlsPeerCheck {
  std::string expected_name;               // must match the certificate; empty: no name check
  std::vector<std::string> allowed_names;  // one must match; empty: no allow-list
};

class TlsTransport final : public Transport {
 public:
  struct Settings {
    TlsRole role = TlsRole::kClient;
    TlsPeerCheck check;
    std::string server_name;  // SNI sent by a client; empty: none
    std::chrono::seconds io_timeout{60};
  };

  // Runs the handshake on `connection`; fails with the reason (ours or the
  // peer's alert) if it does not complete within the timeout.
  static Result<std::unique_ptr<TlsTransport>> establish(TcpConnection connection,
                                                         std::shared_ptr<const TlsCredentials> credentials,
                                                         Settings settings);
  ~TlsTransport() override;

  Status write_all(std::span<const std::byte> data) override;
  Status read_exact(std::span<std::byte> data) override;
  Result<bool> read_exact_or_end(std::span<std::byte> data) override;
  Status close() override;
  void abort() override;
  const std::string& peer() const override { return peer_; }
  std::string description() const override;

 private:
  TlsTransport(TcpConnection c, std::shared_ptr<const TlsCredentials> cred, Settings s);
  Status handshake();
  static int verify_callback(gnutls_session_t session);
  int verify_peer();
  Error io_error(std::string_view what, int code) const;
  Error write_error(int code);

  UniqueFd fd_;
  std::string peer_;
  std::shared_ptr<const TlsCredentials> credentials_;
  Settings settings_;
  gnutls_session_t session_ = nullptr;
  std::string rejection_;  // why verify_peer refused the peer
  gnutls_alert_description_t rejection_alert_ = GNUTLS_A_BAD_CERTIFICATE;
};

}  // namespace ferry
