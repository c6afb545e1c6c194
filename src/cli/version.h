#pragma once

#include <string>

namespace ferry {

// "ferry 0.1.0" plus whether TLS is built in, and with which GnuTLS.
std::string version_text();
bool tls_built_in();

}  // namespace ferry
