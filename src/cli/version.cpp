#include "cli/version.h"

#include <fmt/format.h>

#include "build_config.h"
#if FERRY_HAVE_GNUTLS
#include <gnutls/gnutls.h>
#endif

namespace ferry {

bool tls_built_in() { return FERRY_HAVE_GNUTLS != 0; }

std::string version_text() {
#if FERRY_HAVE_GNUTLS
  return fmt::format("ferry {}\nTLS: built in (GnuTLS {}, compiled against {})\n", FERRY_VERSION,
                     gnutls_check_version(nullptr), GNUTLS_VERSION);
#else
  return fmt::format("ferry {}\nTLS: not built in (built with NO_GNUTLS)\n", FERRY_VERSION);
#endif
}

}  // namespace ferry
