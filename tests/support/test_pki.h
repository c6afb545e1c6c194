// A throwaway PKI made with certtool at test time: one CA and one
// certificate for localhost / 127.0.0.1 / ::1 that both ends of a test
// connection can use.
#pragma once

#include <string>
#include <vector>

#include "support/subprocess.h"

namespace ferry::test {

class TestPki {
 public:
  // Makes the CA and the host certificate in a fresh directory; throws if
  // certtool fails.
  TestPki();
  const std::string& cacert() const { return cacert_; }
  const std::string& cert() const { return cert_; }
  const std::string& key() const { return key_; }
  // --tls and the three file options, for either side.
  std::vector<std::string> tls_args() const;

 private:
  TempDir dir_;
  std::string cacert_, cert_, key_;
};

// Runs certtool with `args`; throws with its output on failure.
void certtool(const std::vector<std::string>& args);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

}  // namespace ferry::test
