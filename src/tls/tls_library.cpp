#include "tls/tls_library.h"

#include <cstdlib>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "base/log.h"

namespace ferry {
namespace {

const Logger kGnutlsLog{"gnutls"};

void forward_gnutls_line(int level, const char* text) {
  std::string_view line(text);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  // The user asked for these lines with GNUTLS_DEBUG_LEVEL: print them at
  // any -v.
  kGnutlsLog.msg("[{}] {}", level, line);
}

std::string explain_alert(gnutls_alert_description_t alert) {
  const char* name = gnutls_alert_get_name(alert);
  std::string base = fmt::format("the peer sent alert {} ({})", static_cast<int>(alert), name ? name : "unknown");
  switch (alert) {
    case GNUTLS_A_UNKNOWN_CA: return base + ": it does not trust the CA that issued our certificate";
    case GNUTLS_A_CERTIFICATE_REVOKED: return base + ": it says our certificate is revoked";
    case GNUTLS_A_CERTIFICATE_EXPIRED: return base + ": it says our certificate has expired";
    case GNUTLS_A_CERTIFICATE_UNKNOWN: return base + ": it could not accept our certificate (e.g. not yet valid)";
    case GNUTLS_A_BAD_CERTIFICATE:
      return base + ": it rejected our certificate (e.g. the name does not match what it expects)";
    case GNUTLS_A_ACCESS_DENIED: return base + ": our certificate is not on its --tls-peer-name list";
    case GNUTLS_A_CERTIFICATE_REQUIRED: return base + ": it requires a certificate from us";
    case GNUTLS_A_PROTOCOL_VERSION:
    case GNUTLS_A_HANDSHAKE_FAILURE:
    case GNUTLS_A_INSUFFICIENT_SECURITY:
      return base + ": no TLS version or cipher acceptable to both sides (check --tls-priority)";
    default: return base;
  }
}

}  // namespace

void tls_library_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* level = std::getenv("GNUTLS_DEBUG_LEVEL");
    if (level && *level) {
      gnutls_global_set_log_function(forward_gnutls_line);
      gnutls_global_set_log_level(std::atoi(level));
    }
  });
}

std::string describe_verify_status(unsigned status) {
  gnutls_datum_t out{};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0) return "verification failed";
  std::string text(reinterpret_cast<const char*>(out.data), out.size);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  gnutls_free(out.data);
  return text;
}

gnutls_alert_description_t alert_for_verify_status(unsigned status) {
  if (status & GNUTLS_CERT_REVOKED) return GNUTLS_A_CERTIFICATE_REVOKED;
  if (status & GNUTLS_CERT_EXPIRED) return GNUTLS_A_CERTIFICATE_EXPIRED;
  if (status & GNUTLS_CERT_NOT_ACTIVATED) return GNUTLS_A_CERTIFICATE_UNKNOWN;
  if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) return GNUTLS_A_UNKNOWN_CA;
  return GNUTLS_A_BAD_CERTIFICATE;
}

std::string explain_tls_error(gnutls_session_t session, int code) {
  std::string text = fmt::format("{} ({})", gnutls_strerror(code), code);
  switch (code) {
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
    case GNUTLS_E_WARNING_ALERT_RECEIVED:
      return explain_alert(gnutls_alert_get(session));
    case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
    case GNUTLS_E_UNEXPECTED_PACKET:
    case GNUTLS_E_RECORD_OVERFLOW:
      return text + ": the peer does not speak TLS (is it running without --tls?)";
    case GNUTLS_E_PREMATURE_TERMINATION:
      return text + ": the peer closed the connection without a TLS close_notify";
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
    case GNUTLS_E_CERTIFICATE_REQUIRED:
      return text + ": the peer sent no certificate";
    case GNUTLS_E_NO_CIPHER_SUITES:
      return text + ": no TLS version or cipher acceptable to both sides (check --tls-priority)";
    case GNUTLS_E_PUSH_ERROR:
    case GNUTLS_E_PULL_ERROR:
      return text + ": the connection failed";
    default:
      return text;
  }
}

}  // namespace ferry
