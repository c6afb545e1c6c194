#include "tls/tls_credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "base/log.h"
#include "base/unique_fd.h"
#include "tls/tls_library.h"

namespace ferry {
namespace {

const Logger kLog{"tls"};

// The whole file, or an error with errno naming the option and the path.
Result<std::string> read_pem(const std::string& path, std::string_view option) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("cannot read {} {}", option, path);
  std::string data;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read {} {}", option, path);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  if (data.empty()) return fail("{} {} is empty", option, path);
  return data;
}

gnutls_datum_t datum(const std::string& s) {
  return gnutls_datum_t{reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())), static_cast<unsigned>(s.size())};
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Status load_trusted_cas(gnutls_certificate_credentials_t cred, const TlsOptions& o) {
  auto add_file = [&](const std::string& path) -> Status {
    std::string pem = FERRY_TRY(read_pem(path, "--tls-cacert"));
    gnutls_datum_t d = datum(pem);
    int n = gnutls_certificate_set_x509_trust_mem(cred, &d, GNUTLS_X509_FMT_PEM);
    if (n < 0) return fail("cannot load --tls-cacert {}: {}", path, gnutls_strerror(n));
    if (n == 0) return fail("--tls-cacert {} holds no certificate", path);
    kLog.info("trusting {} CA certificate(s) from {}", n, path);
    return {};
  };
  if (o.cacert_given) return add_file(o.cacert);
  int n = gnutls_certificate_set_x509_system_trust(cred);
  if (n < 0) return fail("cannot load the system's trusted CAs: {}", gnutls_strerror(n));
  kLog.info("trusting {} CA certificate(s) of the system store", n);
  if (exists(o.cacert)) return add_file(o.cacert);
  kLog.info("no CA file at the default {}: skipped", o.cacert);
  return {};
}

Status load_crl(gnutls_certificate_credentials_t cred, const TlsOptions& o) {
  if (!o.cacrl_given && !exists(o.cacrl)) {
    kLog.info("no CRL at the default {}: skipped", o.cacrl);
    return {};
  }
  std::string pem = FERRY_TRY(read_pem(o.cacrl, "--tls-cacrl"));
  gnutls_datum_t d = datum(pem);
  int n = gnutls_certificate_set_x509_crl_mem(cred, &d, GNUTLS_X509_FMT_PEM);
  if (n < 0) return fail("cannot load --tls-cacrl {}: {}", o.cacrl, gnutls_strerror(n));
  if (n == 0) return fail("--tls-cacrl {} holds no CRL signed by a trusted CA", o.cacrl);
  kLog.info("loaded {} CRL(s) from {}", n, o.cacrl);
  return {};
}

void warn_if_key_is_exposed(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    kLog.warn("private key {} is readable by group or others (mode {:04o}); chmod 600 it", path, st.st_mode & 07777);
  }
}

// Parses certificate and key apart first, so the message names the file that
// is wrong, then installs them as a pair (which checks that they match).
Status load_own_certificate(gnutls_certificate_credentials_t cred, const TlsOptions& o) {
  std::string cert_pem = FERRY_TRY(read_pem(o.cert, "--tls-cert"));
  std::string key_pem = FERRY_TRY(read_pem(o.key, "--tls-key"));
  gnutls_datum_t cert = datum(cert_pem), key = datum(key_pem);

  gnutls_x509_crt_t* list = nullptr;
  unsigned count = 0;
  int rc = gnutls_x509_crt_list_import2(&list, &count, &cert, GNUTLS_X509_FMT_PEM, 0);
  if (rc < 0) return fail("cannot load --tls-cert {}: {}", o.cert, gnutls_strerror(rc));
  for (unsigned i = 0; i < count; ++i) gnutls_x509_crt_deinit(list[i]);
  gnutls_free(list);

  gnutls_x509_privkey_t pk = nullptr;
  gnutls_x509_privkey_init(&pk);
  rc = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, nullptr, 0);
  gnutls_x509_privkey_deinit(pk);
  if (rc < 0) return fail("cannot load --tls-key {}: {}", o.key, gnutls_strerror(rc));
  warn_if_key_is_exposed(o.key);

  rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
    return fail("--tls-key {} does not belong to --tls-cert {}: {}", o.key, o.cert, gnutls_strerror(rc));
  if (rc < 0) return fail("cannot use --tls-cert {} with --tls-key {}: {}", o.cert, o.key, gnutls_strerror(rc));
  kLog.info("own certificate {} (key {})", o.cert, o.key);
  return {};
}

}  // namespace

Result<std::shared_ptr<const TlsCredentials>> TlsCredentials::load(const TlsOptions& o) {
  tls_library_init();
  std::shared_ptr<TlsCredentials> c(new TlsCredentials());
  if (!o.priority.empty()) {
    const char* where = nullptr;
    int rc = gnutls_priority_init(&c->priority_, o.priority.c_str(), &where);
    if (rc < 0) {
      c->priority_ = nullptr;
      std::string at = where ? std::string(where) : o.priority;
      return fail("invalid --tls-priority '{}': {} at '{}'", o.priority, gnutls_strerror(rc), at);
    }
  }
  int rc = gnutls_certificate_allocate_credentials(&c->cred_);
  if (rc < 0) return fail("gnutls_certificate_allocate_credentials: {}", gnutls_strerror(rc));
  FERRY_TRY(load_trusted_cas(c->cred_, o));
  FERRY_TRY(load_crl(c->cred_, o));
  FERRY_TRY(load_own_certificate(c->cred_, o));
  return std::shared_ptr<const TlsCredentials>(std::move(c));
}

TlsCredentials::~TlsCredentials() {
  if (cred_) gnutls_certificate_free_credentials(cred_);
  if (priority_) gnutls_priority_deinit(priority_);
}

}  // namespace ferry
