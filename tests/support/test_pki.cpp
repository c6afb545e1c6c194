#include "support/test_pki.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

namespace ferry::test {

void certtool(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"certtool"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = run(argv);
  if (r.exit_code != 0) throw std::runtime_error("certtool failed: " + r.err + r.out);
}

TestPki::TestPki() {
  std::string d = dir_.path();
  write_file(d + "/ca.tmpl", "cn = \"Ferry Test CA\"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n");
  write_file(d + "/host.tmpl",
             "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\nip_address = \"::1\"\n"
             "tls_www_server\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 30\n");
  cacert_ = d + "/cacert.pem";
  cert_ = d + "/cert.pem";
  key_ = d + "/key.pem";
  certtool({"--generate-privkey", "--key-type=ecdsa", "--outfile", d + "/ca-key.pem"});
  certtool({"--generate-self-signed", "--load-privkey", d + "/ca-key.pem", "--template", d + "/ca.tmpl", "--outfile",
            cacert_});
  certtool({"--generate-privkey", "--key-type=ecdsa", "--outfile", key_});
  ::chmod(key_.c_str(), 0600);
  certtool({"--generate-certificate", "--load-privkey", key_, "--load-ca-certificate", cacert_, "--load-ca-privkey",
            d + "/ca-key.pem", "--template", d + "/host.tmpl", "--outfile", cert_});
}

std::vector<std::string> TestPki::tls_args() const {
  return {"--tls", "--tls-cacert", cacert_, "--tls-cert", cert_, "--tls-key", key_};
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind port 0");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace ferry::test
