// Process-wide GnuTLS set-up and the words for what GnuTLS reports.
#pragma once

#include <gnutls/gnutls.h>

#include <string>

namespace ferry {

// Once per process: routes GnuTLS's debug lines (GNUTLS_DEBUG_LEVEL=0..9)
// into Ferry's log, so they reach the -o file and survive --daemon.
void tls_library_init();

// A sentence for a GnuTLS error code, with what it usually means for a
// page-server connection (no TLS on the other side, the peer's alert, ...).
std::string explain_tls_error(gnutls_session_t session, int code);

// The alert to send a peer whose certificate failed with `status`.
gnutls_alert_description_t alert_for_verify_status(unsigned status);

// GnuTLS's description of a verification status, e.g. "The certificate
// issuer is unknown."
std::string describe_verify_status(unsigned status);

}  // namespace ferry
