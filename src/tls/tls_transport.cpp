#include "tls/tls_transport.h"

#include <sys/socket.h>

#include <algorithm>

#include <gnutls/x509.h>

#include "base/log.h"
#include "tls/tls_library.h"

namespace ferry {
namespace {

const Logger kLog{"tls"};

// GnuTLS's maximum plaintext per record; one send per record keeps page data
// records on 16 KiB boundaries of every write_all call.
constexpr size_t kMaxRecord = 16384;

bool retryable(int rc) { return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED; }

// Whether the peer should hear an alert about a failed handshake: not when it
// does not speak TLS (it could not read one) or the connection itself failed.
bool worth_an_alert(int rc) {
  switch (rc) {
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
    case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
    case GNUTLS_E_UNEXPECTED_PACKET:
    case GNUTLS_E_RECORD_OVERFLOW:
    case GNUTLS_E_PREMATURE_TERMINATION:
    case GNUTLS_E_PUSH_ERROR:
    case GNUTLS_E_PULL_ERROR:
    case GNUTLS_E_TIMEDOUT:
      return false;
    default:
      return gnutls_error_is_fatal(rc) != 0;
  }
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// The subject of the peer's leaf certificate, for the log.
std::string peer_subject(gnutls_session_t session) {
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
  if (!certs || n == 0) return "(none)";
  gnutls_x509_crt_t crt;
  gnutls_x509_crt_init(&crt);
  std::string dn = "(unparsable)";
  if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
    gnutls_datum_t d{};
    if (gnutls_x509_crt_get_dn3(crt, &d, 0) >= 0) {
      dn.assign(reinterpret_cast<const char*>(d.data), d.size);
      gnutls_free(d.data);
    }
  }
  gnutls_x509_crt_deinit(crt);
  return dn;
}

bool peer_matches_any(gnutls_session_t session, const std::vector<std::string>& names) {
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
  if (!certs || n == 0) return false;
  gnutls_x509_crt_t crt;
  gnutls_x509_crt_init(&crt);
  bool match = false;
  if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
    for (const auto& name : names) {
      if (gnutls_x509_crt_check_hostname2(crt, name.c_str(), 0)) {
        match = true;
        break;
      }
    }
  }
  gnutls_x509_crt_deinit(crt);
  return match;
}

}  // namespace

TlsTransport::TlsTransport(TcpConnection c, std::shared_ptr<const TlsCredentials> cred, Settings s)
    : fd_(std::move(c.fd)), peer_(std::move(c.peer)), credentials_(std::move(cred)), settings_(std::move(s)) {}

TlsTransport::~TlsTransport() {
  if (session_) gnutls_deinit(session_);
}

Result<std::unique_ptr<TlsTransport>> TlsTransport::establish(TcpConnection connection,
                                                              std::shared_ptr<const TlsCredentials> credentials,
                                                              Settings settings) {
  FERRY_TRY(set_io_timeout(connection.fd.get(), settings.io_timeout));
  std::unique_ptr<TlsTransport> t(new TlsTransport(std::move(connection), std::move(credentials), std::move(settings)));
  FERRY_TRY(t->handshake());
  return t;
}

Status TlsTransport::handshake() {
  bool server = settings_.role == TlsRole::kServer;
  // GNUTLS_NO_SIGNAL: a send to a peer that has gone must fail with EPIPE,
  // not kill the process with SIGPIPE (PlainTransport sends MSG_NOSIGNAL too).
  int rc = gnutls_init(&session_, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL);
  if (rc < 0) return fail("gnutls_init: {}", gnutls_strerror(rc));
  rc = credentials_->priority() ? gnutls_priority_set(session_, credentials_->priority())
                                : gnutls_set_default_priority(session_);
  if (rc < 0) return fail("setting TLS priorities: {}", gnutls_strerror(rc));
  rc = gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, credentials_->certificates());
  if (rc < 0) return fail("setting TLS credentials: {}", gnutls_strerror(rc));
  if (server) {
    gnutls_certificate_server_set_request(session_, GNUTLS_CERT_REQUIRE);
    // As CRIU: no list of acceptable CAs in the request, so a client sends
    // its certificate whatever its issuer and learns why it was refused.
    gnutls_certificate_send_x509_rdn_sequence(session_, 1);
  } else if (!settings_.server_name.empty()) {
    gnutls_server_name_set(session_, GNUTLS_NAME_DNS, settings_.server_name.data(), settings_.server_name.size());
  }
  gnutls_session_set_ptr(session_, this);
  gnutls_session_set_verify_function(session_, &TlsTransport::verify_callback);
  gnutls_transport_set_int(session_, fd_.get());
  unsigned timeout_ms = static_cast<unsigned>(settings_.io_timeout.count() * 1000);
  gnutls_handshake_set_timeout(session_, timeout_ms);
  // No gnutls_record_set_timeout: with one, GnuTLS polls the socket before
  // every read (two extra syscalls per record). The socket's SO_RCVTIMEO /
  // SO_SNDTIMEO (set_io_timeout) bound each read and write the same way and
  // surface as GNUTLS_E_AGAIN, which io_error reports as a stalled peer.

  auto deadline = std::chrono::steady_clock::now() + settings_.io_timeout;
  do {
    rc = gnutls_handshake(session_);
  } while (retryable(rc) && (settings_.io_timeout.count() == 0 || std::chrono::steady_clock::now() < deadline));

  if (rc < 0) {
    if (!rejection_.empty()) {
      // Our verification refused the peer: make sure it hears why.
      gnutls_alert_send(session_, GNUTLS_AL_FATAL, rejection_alert_);
      return fail("TLS handshake with {}: {}", peer_, rejection_);
    }
    if (rc == GNUTLS_E_TIMEDOUT || retryable(rc))
      return fail("TLS handshake with {} timed out after {} s (is the peer running with --tls?)", peer_,
                  settings_.io_timeout.count());
    // E.g. no common TLS version or cipher, no client certificate: tell the
    // peer, or all it sees is the connection closing.
    if (worth_an_alert(rc)) gnutls_alert_send_appropriate(session_, rc);
    if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR)
      return fail("TLS handshake with {} failed: the peer closed the connection in the middle of the handshake "
                  "({}); is it running without --tls, or did it refuse us without an alert?",
                  peer_, gnutls_strerror(rc));
    return fail("TLS handshake with {} failed: {}", peer_, explain_tls_error(session_, rc));
  }
  char* desc = gnutls_session_get_desc(session_);
  kLog.info("TLS handshake with {} completed: {}, peer {}", peer_, desc ? desc : "?", peer_subject(session_));
  gnutls_free(desc);
  return {};
}

int TlsTransport::verify_callback(gnutls_session_t session) {
  return static_cast<TlsTransport*>(gnutls_session_get_ptr(session))->verify_peer();
}

int TlsTransport::verify_peer() {
  const std::string& name = settings_.check.expected_name;
  unsigned status = 0;
  int rc = gnutls_certificate_verify_peers3(session_, name.empty() ? nullptr : name.c_str(), &status);
  if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND) {
    rejection_ = "the peer sent no certificate";
    rejection_alert_ = GNUTLS_A_CERTIFICATE_REQUIRED;
    return -1;
  }
  if (rc < 0) {
    rejection_ = fmt::format("cannot verify the peer's certificate: {}", gnutls_strerror(rc));
    return -1;
  }
  if (status != 0) {
    rejection_ = fmt::format("the peer's certificate ({}) is not accepted: {}", peer_subject(session_),
                             describe_verify_status(status));
    if (status & GNUTLS_CERT_UNEXPECTED_OWNER) rejection_ += fmt::format(" (expected '{}')", name);
    rejection_alert_ = alert_for_verify_status(status);
    return -1;
  }
  if (!settings_.check.allowed_names.empty() && !peer_matches_any(session_, settings_.check.allowed_names)) {
    rejection_ = fmt::format("the peer's certificate ({}) matches none of --tls-peer-name {}", peer_subject(session_),
                             join(settings_.check.allowed_names));
    rejection_alert_ = GNUTLS_A_ACCESS_DENIED;
    return -1;
  }
  kLog.info("peer certificate of {} verified{}", peer_, name.empty() ? "" : fmt::format(" for '{}'", name));
  return 0;
}

Error TlsTransport::io_error(std::string_view what, int code) const {
  if (code == GNUTLS_E_TIMEDOUT || code == GNUTLS_E_AGAIN)
    return Error(fmt::format("{} {}: peer stalled for {} s", what, peer_, settings_.io_timeout.count()));
  return Error(fmt::format("{} {}: {}", what, peer_, explain_tls_error(session_, code)));
}

Error TlsTransport::write_error(int code) {
  // In TLS 1.3 a server refuses our certificate after our handshake has
  // completed; its alert is waiting to be read, and says more than the
  // broken pipe does.
  gnutls_record_set_timeout(session_, 1000);
  char scratch[256];
  ssize_t n = gnutls_record_recv(session_, scratch, sizeof scratch);
  if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) return io_error("send to", static_cast<int>(n));
  return io_error("send to", code);
}

Status TlsTransport::write_all(std::span<const std::byte> data) {
  if (!fd_) return fail("send to {}: connection already closed", peer_);
  size_t done = 0;
  while (done < data.size()) {
    size_t chunk = std::min(kMaxRecord, data.size() - done);
    ssize_t n = gnutls_record_send(session_, data.data() + done, chunk);
    if (n == GNUTLS_E_INTERRUPTED) continue;
    if (n < 0) return fail(write_error(static_cast<int>(n)));
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<bool> TlsTransport::read_exact_or_end(std::span<std::byte> data) {
  if (!fd_) return fail("receive from {}: connection already closed", peer_);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = gnutls_record_recv(session_, data.data() + done, data.size() - done);
    if (n == GNUTLS_E_INTERRUPTED) continue;
    if (n == 0) {
      if (done == 0) return false;
      return fail("receive from {}: the peer ended the TLS session after {} of {} bytes", peer_, done, data.size());
    }
    if (n == GNUTLS_E_PREMATURE_TERMINATION)
      return fail("receive from {}: the stream was cut without a TLS close_notify after {} of {} bytes "
                  "(the transfer is incomplete)",
                  peer_, done, data.size());
    if (n < 0) return fail(io_error("receive from", static_cast<int>(n)));
    done += static_cast<size_t>(n);
  }
  return true;
}

Status TlsTransport::read_exact(std::span<std::byte> data) {
  bool got = FERRY_TRY(read_exact_or_end(data));
  if (!got) return fail("receive from {}: the peer ended the TLS session before {} expected bytes", peer_, data.size());
  return {};
}

Status TlsTransport::close() {
  if (!fd_) return {};
  int rc;
  auto deadline = std::chrono::steady_clock::now() + settings_.io_timeout;
  do {
    rc = gnutls_bye(session_, GNUTLS_SHUT_RDWR);
  } while (retryable(rc) && std::chrono::steady_clock::now() < deadline);
  Status result;
  if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR) {
    // Our close_notify went out; the peer hung up without answering it.
    kLog.warn("{} closed the connection without answering our close_notify", peer_);
  } else if (rc < 0) {
    result = fail(io_error("closing the TLS session with", rc));
  }
  ::shutdown(fd_.get(), SHUT_RDWR);
  fd_.reset();
  return result;
}

void TlsTransport::abort() {
  // No close_notify: the reader must see an incomplete stream, not a clean end.
  fd_.reset();
}

std::string TlsTransport::description() const {
  const char* version = gnutls_protocol_get_name(gnutls_protocol_get_version(session_));
  const char* cipher = gnutls_cipher_get_name(gnutls_cipher_get(session_));
  return fmt::format("{} {}", version ? version : "TLS", cipher ? cipher : "");
}

}  // namespace ferry
