// Everything a TLS endpoint loads before it listens or connects: trusted CAs,
// CRL, own certificate and key, priorities. Loading fails on any file that
// was given and does not load, and on a default-path file that exists but
// does not parse; a default CA or CRL that is absent is skipped.
#pragma once

#include <gnutls/gnutls.h>

#include <memory>
#include <string>

#include "base/error.h"
#include "cli/options.h"

namespace ferry {

enum class TlsRole { kClient, kServer };

class TlsCredentials {
 public:
  static Result<std::shared_ptr<const TlsCredentials>> load(const TlsOptions& options);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  gnutls_certificate_credentials_t certificates() const { return cred_; }
  // nullptr: use the library default.
  gnutls_priority_t priority() const { return priority_; }

 private:
  TlsCredentials() = default;
  gnutls_certificate_credentials_t cred_ = nullptr;
  gnutls_priority_t priority_ = nullptr;
};

}  // namespace ferry
