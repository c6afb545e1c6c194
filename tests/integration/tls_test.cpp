// The TLS layer (TlsCredentials, TlsTransport, ConnectionFactory) between two
// real processes: tests/support/transport_peer as server and client, a
// throwaway PKI made with certtool, and GnuTLS's own gnutls-cli as a
// foreign peer. Every failure is checked on both sides: the exit code and the
// cause each side names.
//
// Everything listens on and connects to 127.0.0.1, ::1 or localhost only.
#include "build_config.h"

#if FERRY_HAVE_GNUTLS

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace ferry::tls_test {
namespace {

using ferry::test::BackgroundProcess;
using ferry::test::ProcessResult;
using ferry::test::RunOptions;
using ferry::test::TempDir;
using Args = std::vector<std::string>;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Generous bounds: the ASan build starts processes slowly.
constexpr milliseconds kStartTimeout{20000};
constexpr milliseconds kRunTimeout{30000};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string show(const char* who, const ProcessResult& r) {
  return std::string("\n--- ") + who + " (exit " + std::to_string(r.exit_code) + (r.timed_out ? ", timed out" : "") +
         ")\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// A socket bound to the loopback address of `family`, port 0 unless given.
int loopback_socket(int family, uint16_t port = 0) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(port);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

// A loopback port that was free a moment ago (the peer cannot take port 0:
// the client must be told the number). 0 if the family is not available.
uint16_t pick_port(int family = AF_INET) {
  int fd = loopback_socket(family);
  if (fd < 0) return 0;
  uint16_t port = local_port(fd);
  ::close(fd);
  return port;
}

// True if something accepts connections on 127.0.0.1:port.
bool accepts_connections(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A transport_peer server (or any program given --status-fd), started with a
// pipe whose write end it inherits as --status-fd.
class PeerServer {
 public:
  // argv must not contain --status-fd; it is appended.
  PeerServer(Args argv, const std::vector<std::string>& env = {}) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    status_read_ = p[0];
    argv.insert(argv.end(), {"--status-fd", std::to_string(p[1])});
    RunOptions o;
    o.extra_env = env;
    o.keep_fds = {p[1]};
    process_ = std::make_unique<BackgroundProcess>(argv, o);
    ::close(p[1]);  // now only the child holds the write end
  }
  ~PeerServer() {
    if (status_read_ >= 0) ::close(status_read_);
  }
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  // Waits for the byte the server writes once it listens; false if the pipe
  // ended (the server exited first) or nothing came within the timeout.
  bool wait_listening(milliseconds timeout = kStartTimeout) {
    pollfd p{status_read_, POLLIN, 0};
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      char byte;
      ssize_t n = ::read(status_read_, &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      return n == 1;
    }
  }

  ProcessResult wait(milliseconds timeout = kRunTimeout) { return process_->wait(timeout); }

 private:
  int status_read_ = -1;
  std::unique_ptr<BackgroundProcess> process_;
};

Args peer(const std::string& mode, uint16_t port, const Args& options) {
  Args argv{TRANSPORT_PEER_BINARY, mode, "--port", std::to_string(port)};
  argv.insert(argv.end(), options.begin(), options.end());
  return argv;
}

Args operator+(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Session {
  bool server_listened = false;
  ProcessResult server, client;
  milliseconds client_time{0};
  std::string shown() const { return show("server", server) + show("client", client); }
};

struct SessionSpec {
  Args server;  // transport_peer options of the server (--port and --status-fd are added)
  Args client;  // ... of the client (--port is added)
  std::string server_mode = "server";
  std::string client_mode = "client";
  std::vector<std::string> server_env;
  int family = AF_INET;  // of the port picked
};

// Starts the server, waits until it listens, runs the client against it and
// collects both.
Session run_session(const SessionSpec& spec) {
  Session s;
  uint16_t port = pick_port(spec.family);
  PeerServer server(peer(spec.server_mode, port, spec.server), spec.server_env);
  s.server_listened = server.wait_listening();
  if (s.server_listened) {
    RunOptions o;
    o.timeout = kRunTimeout;
    auto start = Clock::now();
    s.client = ferry::test::run(peer(spec.client_mode, port, spec.client), o);
    s.client_time = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  }
  s.server = server.wait();
  return s;
}

// ---------------------------------------------------------------------------
// The PKI, made once per test program with certtool.

class TlsTest : public ::testing::Test {
 public:
  // A file of the PKI.
  static std::string path(const std::string& name) { return dir_->file(name); }

 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    try {
      make_pki();
    } catch (const std::exception& e) {
      pki_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(pki_error_.empty()) << "making the test PKI failed: " << pki_error_; }

  static std::string cert(const std::string& name) { return path(name + ".pem"); }
  static std::string key(const std::string& name) { return path(name + ".key"); }

  // --tls with our CA, `name`.pem and `name`.key.
  static Args tls(const std::string& name, const Args& extra = {}) {
    return Args{"--tls", "--tls-cacert", cert("ca"), "--tls-cert", cert(name), "--tls-key", key(name)} + extra;
  }
  // The usual server: on 127.0.0.1, not checking the client against its own
  // address (that CRIU behaviour has tests of its own).
  static Args server_on_127(const std::string& name, const Args& extra = {}) {
    return tls(name, {"--address", "127.0.0.1", "--tls-no-cn-verify"}) + extra;
  }
  static Args client_to_127(const std::string& name, const Args& extra = {}) {
    return tls(name, {"--address", "127.0.0.1"}) + extra;
  }

 private:
  static void certtool(const Args& args) {
    Args argv{"certtool"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = ferry::test::run(argv);
    if (r.exit_code != 0)
      throw std::runtime_error("certtool " + args[0] + " failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
  }
  static void make_key(const std::string& name) {
    certtool({"--generate-privkey", "--key-type=ecdsa", "--outfile", key(name)});
    if (::chmod(key(name).c_str(), 0600) != 0) throw std::runtime_error("chmod " + key(name));
  }
  static void make_ca(const std::string& name, const std::string& cn) {
    ferry::test::write_file(path(name + ".tmpl"), "cn = \"" + cn +
                                                      "\"\nca\ncert_signing_key\ncrl_signing_key\n"
                                                      "expiration_days = 3650\n");
    make_key(name);
    certtool({"--generate-self-signed", "--load-privkey", key(name), "--template", path(name + ".tmpl"), "--outfile",
              cert(name)});
  }
  static void make_cert(const std::string& name, const std::string& issuer, const std::string& body,
                        const std::string& dates = "expiration_days = 3650\n") {
    ferry::test::write_file(path(name + ".tmpl"), body + dates);
    make_key(name);
    certtool({"--generate-certificate", "--load-privkey", key(name), "--load-ca-certificate", cert(issuer),
              "--load-ca-privkey", key(issuer), "--template", path(name + ".tmpl"), "--outfile", cert(name)});
  }

  static void make_pki() {
    const std::string server = "tls_www_server\nencryption_key\nsigning_key\n";
    const std::string client = "tls_www_client\nsigning_key\n";
    const std::string both = "tls_www_server\ntls_www_client\nencryption_key\nsigning_key\n";
    // A certificate either side may present in the date tests: it would pass
    // every other check of both sides.
    const std::string anywhere =
        "cn = \"localhost\"\ndns_name = \"localhost\"\ndns_name = \"client.ferry.test\"\n"
        "ip_address = \"127.0.0.1\"\nip_address = \"::1\"\n" +
        both;

    make_ca("ca", "Ferry Test CA");
    make_ca("ca2", "Unrelated Test CA");
    make_cert("server", "ca",
              "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\nip_address = \"::1\"\n" +
                  server);
    make_cert("client", "ca", "cn = \"client.ferry.test\"\ndns_name = \"client.ferry.test\"\n" + client);
    make_cert("client-127", "ca",
              "cn = \"client.ferry.test\"\ndns_name = \"client.ferry.test\"\nip_address = \"127.0.0.1\"\n" + client);
    make_cert("server-noip", "ca", "cn = \"localhost\"\ndns_name = \"localhost\"\n" + server);
    make_cert("other", "ca", "cn = \"other.ferry.test\"\ndns_name = \"other.ferry.test\"\n" + both);
    make_cert("foreign", "ca2", anywhere);
    make_cert("revoked-client", "ca", "cn = \"revoked.ferry.test\"\ndns_name = \"client.ferry.test\"\n" + client);
    make_cert("revoked-server", "ca",
              "cn = \"revoked-server\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\n" + server);
    make_cert("expired", "ca", anywhere,
              "activation_date = \"2001-01-01 00:00:00 UTC\"\nexpiration_date = \"2002-01-01 00:00:00 UTC\"\n");
    make_cert("notyet", "ca", anywhere,
              "activation_date = \"2099-01-01 00:00:00 UTC\"\nexpiration_date = \"2100-01-01 00:00:00 UTC\"\n");

    ferry::test::write_file(path("revoked.pem"), ferry::test::read_file(cert("revoked-client")) +
                                                     ferry::test::read_file(cert("revoked-server")));
    ferry::test::write_file(path("crl.tmpl"), "crl_next_update = 3650\ncrl_number = 1\n");
    certtool({"--generate-crl", "--load-ca-privkey", key("ca"), "--load-ca-certificate", cert("ca"),
              "--load-certificate", path("revoked.pem"), "--template", path("crl.tmpl"), "--outfile", path("crl.pem")});

    ferry::test::write_file(path("empty.pem"), "");
    ferry::test::write_file(path("loose.key"), ferry::test::read_file(key("server")), 0644);
  }

  static TempDir* dir_;
  static std::string pki_error_;
};

TempDir* TlsTest::dir_ = nullptr;
std::string TlsTest::pki_error_;

// ---------------------------------------------------------------------------
// Sessions that work.

TEST_F(TlsTest, GoodSessionNegotiatesTls13AndEchoesEveryMessage) {
  Session s = run_session({server_on_127("server", {"-v3"}), client_to_127("client", {"-v3"})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.out, "exchanged 4 messages over TLS1.3 ")) << s.shown();
  // Each side verified the other: the client by its address, the server by
  // the chain only (--tls-no-cn-verify).
  EXPECT_TRUE(contains(s.client.err, "verified for '127.0.0.1'")) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "peer CN=localhost")) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "peer CN=client.ferry.test")) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "(TLS1.3)")) << s.shown();
  // Keys are 0600: no warning, and nothing else went wrong.
  EXPECT_FALSE(contains(s.server.err, "Warn:")) << s.shown();
  EXPECT_FALSE(contains(s.client.err, "Warn:")) << s.shown();
}

TEST_F(TlsTest, GoodSessionOverIpv6LoopbackMatchesIpv6San) {
  if (pick_port(AF_INET6) == 0) GTEST_SKIP() << "no IPv6 loopback here";
  SessionSpec spec{tls("server", {"--address", "::1", "--tls-no-cn-verify"}), tls("client", {"--address", "::1"})};
  spec.family = AF_INET6;
  Session s = run_session(spec);
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.out, "exchanged 4 messages over TLS1.3")) << s.shown();
}

TEST_F(TlsTest, GoodSessionByHostNameMatchesDnsSan) {
  Session s = run_session({tls("server", {"--address", "localhost", "--tls-no-cn-verify"}),
                           tls("client", {"--address", "localhost", "-v3"})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "verified for 'localhost'")) << s.shown();
}

TEST_F(TlsTest, Tls12WhenTheServerAllowsNothingNewer) {
  Session s = run_session({server_on_127("server", {"--tls-priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2"}),
                           client_to_127("client")});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.out, "exchanged 4 messages over TLS1.2 ")) << s.shown();
}

TEST_F(TlsTest, Tls12WhenTheClientAllowsNothingNewer) {
  Session s = run_session(
      {server_on_127("server"), client_to_127("client", {"--tls-priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2"})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.out, "exchanged 4 messages over TLS1.2 ")) << s.shown();
}

TEST_F(TlsTest, NoCommonTlsVersionPointsBothSidesAtTlsPriority) {
  Session s = run_session({server_on_127("server", {"--tls-priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2"}),
                           client_to_127("client", {"--tls-priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3"})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "check --tls-priority")) << s.shown();
  // The server says so with an alert, not by just hanging up.
  EXPECT_TRUE(contains(s.client.err, "the peer sent alert")) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "check --tls-priority")) << s.shown();
}

// ---------------------------------------------------------------------------
// Certificates one side refuses. The refusing side names the reason; the
// refused side learns it from the alert.

struct Refusal {
  std::string name;
  bool server_refuses;  // else the client refuses the server's certificate
  Args server, client;  // options after the common ones
  std::string server_cert = "server", client_cert = "client";
  std::vector<std::string> refuser_says;  // each must appear on the refusing side's stderr
  std::vector<std::string> refused_says;  // ... on the refused side's
};

// Names, not bytes, in test listings.
void PrintTo(const Refusal& r, std::ostream* os) { *os << r.name; }

class TlsRefusal : public TlsTest, public ::testing::WithParamInterface<Refusal> {};

// "@file" in a table stands for that file of the PKI (made at run time).
Args with_paths(Args args) {
  for (std::string& a : args)
    if (!a.empty() && a.front() == '@') a = TlsTest::path(a.substr(1));
  return args;
}

TEST_P(TlsRefusal, BothSidesFailAndNameTheCause) {
  const Refusal& r = GetParam();
  Args server_args = tls(r.server_cert, with_paths(r.server));
  Args client_args = tls(r.client_cert, with_paths(r.client));
  Session s = run_session({server_args, client_args});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  const std::string& refuser = r.server_refuses ? s.server.err : s.client.err;
  const std::string& refused = r.server_refuses ? s.client.err : s.server.err;
  for (const std::string& text : r.refuser_says)
    EXPECT_TRUE(contains(refuser, text)) << "'" << text << "'" << s.shown();
  for (const std::string& text : r.refused_says)
    EXPECT_TRUE(contains(refused, text)) << "'" << text << "'" << s.shown();
  // Neither side got as far as exchanging messages.
  EXPECT_FALSE(contains(s.client.out, "exchanged")) << s.shown();
}

const Args kServer127{"--address", "127.0.0.1", "--tls-no-cn-verify"};
const Args kClient127{"--address", "127.0.0.1"};

INSTANTIATE_TEST_SUITE_P(
    Certificates, TlsRefusal,
    ::testing::Values(
        Refusal{"UntrustedCaOfClient", true, kServer127, kClient127, "server", "foreign",
                {"not accepted", "The certificate issuer is unknown"},
                {"alert 48", "does not trust the CA"}},
        Refusal{"UntrustedCaOfServer", false, kServer127, kClient127, "foreign", "client",
                {"not accepted", "The certificate issuer is unknown"},
                {"alert 48", "does not trust the CA"}},
        Refusal{"RevokedClient", true, kServer127 + Args{"--tls-cacrl", "@crl.pem"}, kClient127, "server",
                "revoked-client",
                {"CN=revoked.ferry.test", "The certificate chain is revoked"},
                {"alert 44", "our certificate is revoked"}},
        Refusal{"RevokedServer", false, kServer127, kClient127 + Args{"--tls-cacrl", "@crl.pem"}, "revoked-server",
                "client",
                {"CN=revoked-server", "The certificate chain is revoked"},
                {"alert 44", "our certificate is revoked"}},
        Refusal{"ExpiredClient", true, kServer127, kClient127, "server", "expired",
                {"expired"},
                {"alert 45", "expired"}},
        Refusal{"ExpiredServer", false, kServer127, kClient127, "expired", "client",
                {"expired"},
                {"alert 45", "expired"}},
        Refusal{"NotYetValidClient", true, kServer127, kClient127, "server", "notyet",
                {"not yet valid"},
                {"alert 46"}},
        Refusal{"NotYetValidServer", false, kServer127, kClient127, "notyet", "client",
                {"not yet valid"},
                {"alert 46"}},
        // The client checks the server's certificate against --address.
        Refusal{"NameMismatch", false, {"--address", "localhost", "--tls-no-cn-verify"},
                {"--address", "localhost"}, "other", "client",
                {"CN=other.ferry.test", "does not match", "expected 'localhost'"},
                {"alert 42", "rejected our certificate"}},
        Refusal{"IpAddressWithoutIpSan", false, kServer127, kClient127, "server-noip", "client",
                {"does not match", "expected '127.0.0.1'"},
                {"alert 42", "rejected our certificate"}},
        // --tls-no-cn-verify drops the name check only, not the chain.
        Refusal{"NoCnVerifyStillChecksTheChain", false, {"--address", "localhost", "--tls-no-cn-verify"},
                {"--address", "localhost", "--tls-no-cn-verify"}, "foreign", "client",
                {"The certificate issuer is unknown"},
                {"alert 48"}},
        Refusal{"PeerNameAllowListOfClient", false, kServer127,
                kClient127 + Args{"--tls-peer-name", "other.ferry.test", "--tls-peer-name", "10.1.2.3"}, "server",
                "client",
                {"tls-peer-name", "other.ferry.test, 10.1.2.3", "CN=localhost"},
                {"alert 49", "tls-peer-name"}},
        Refusal{"PeerNameAllowListOfServer", true, kServer127 + Args{"--tls-peer-name", "other.ferry.test"},
                kClient127, "server", "client",
                {"tls-peer-name", "other.ferry.test", "CN=client.ferry.test"},
                {"alert 49", "tls-peer-name"}},
        // CRIU: a server with --address checks the CLIENT's certificate
        // against its own listen address.
        Refusal{"ServerChecksClientAgainstItsOwnAddress", true, {"--address", "127.0.0.1", "-v3"}, kClient127,
                "server", "client",
                {"checking client certificates against --address 127.0.0.1", "CN=client.ferry.test",
                 "does not match", "expected '127.0.0.1'"},
                {"alert 42"}}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// Checks that let a peer in.

TEST_F(TlsTest, NoCnVerifyLetsANameMismatchThrough) {
  Session s = run_session({tls("other", {"--address", "localhost", "--tls-no-cn-verify"}),
                           tls("client", {"--address", "localhost", "--tls-no-cn-verify", "-v3"})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "peer CN=other.ferry.test")) << s.shown();
}

TEST_F(TlsTest, PeerNameAllowListsLetAMatchThrough) {
  Session s = run_session(
      {server_on_127("server", {"--tls-peer-name", "nobody.ferry.test", "--tls-peer-name", "client.ferry.test"}),
       client_to_127("client", {"--tls-peer-name", "other.ferry.test", "--tls-peer-name", "localhost"})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.client.out, "exchanged 4 messages")) << s.shown();
}

TEST_F(TlsTest, ServerWithAddressAcceptsAClientCertificateForThatAddress) {
  Session s = run_session({tls("server", {"--address", "127.0.0.1", "-v3"}), client_to_127("client-127")});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  // Said at info level, and done.
  EXPECT_TRUE(contains(s.server.err, "net: checking client certificates against --address 127.0.0.1")) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "verified for '127.0.0.1'")) << s.shown();
}

TEST_F(TlsTest, ServerWithAddressAndNoCnVerifySaysItDoesNotCheck) {
  Session s = run_session({server_on_127("server", {"-v3"}), client_to_127("client")});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "not checking client certificates against --address")) << s.shown();
}

// ---------------------------------------------------------------------------
// Revocation: the refusals are in the table above.

TEST_F(TlsTest, CrlDoesNotAffectCertificatesItDoesNotList) {
  Session s = run_session({server_on_127("server", {"--tls-cacrl", path("crl.pem")}),
                           client_to_127("client", {"--tls-cacrl", path("crl.pem")})});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
}

// ---------------------------------------------------------------------------
// Credentials that do not load: the server fails before it listens.

struct BadFile {
  std::string name;
  std::string option;  // the option whose file is bad
  bool missing;        // else empty
};

void PrintTo(const BadFile& b, std::ostream* os) { *os << b.name; }

class TlsBadFile : public TlsTest, public ::testing::WithParamInterface<BadFile> {};

TEST_P(TlsBadFile, ServerFailsBeforeListeningNamingOptionAndFile) {
  const BadFile& b = GetParam();
  std::string bad = b.missing ? path("no-such-file.pem") : path("empty.pem");
  Args options{"--address", "127.0.0.1", "--tls-no-cn-verify", "--tls"};
  for (const char* o : {"--tls-cacert", "--tls-cacrl", "--tls-cert", "--tls-key"}) {
    std::string good = o == std::string("--tls-cacert")  ? cert("ca")
                       : o == std::string("--tls-cacrl") ? path("crl.pem")
                       : o == std::string("--tls-cert")  ? cert("server")
                                                         : key("server");
    options.insert(options.end(), {o, o == b.option ? bad : good});
  }
  uint16_t port = pick_port();
  auto start = Clock::now();
  PeerServer server(peer("server", port, options));
  bool listened = server.wait_listening();
  ProcessResult r = server.wait();
  auto took = Clock::now() - start;
  EXPECT_FALSE(listened) << show("server", r);
  EXPECT_FALSE(accepts_connections(port));
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(took, seconds(10)) << show("server", r);
  EXPECT_TRUE(contains(r.err, b.option + " " + bad)) << show("server", r);
  EXPECT_TRUE(contains(r.err, b.missing ? "No such file or directory" : "is empty")) << show("server", r);
}

INSTANTIATE_TEST_SUITE_P(Files, TlsBadFile,
                         ::testing::Values(BadFile{"MissingCacert", "--tls-cacert", true},
                                           BadFile{"EmptyCacert", "--tls-cacert", false},
                                           BadFile{"MissingCacrl", "--tls-cacrl", true},
                                           BadFile{"EmptyCacrl", "--tls-cacrl", false},
                                           BadFile{"MissingCert", "--tls-cert", true},
                                           BadFile{"EmptyCert", "--tls-cert", false},
                                           BadFile{"MissingKey", "--tls-key", true},
                                           BadFile{"EmptyKey", "--tls-key", false}),
                         [](const ::testing::TestParamInfo<BadFile>& info) { return info.param.name; });

// Starts a server that is expected not to come up; returns how it ended.
ProcessResult server_that_fails(const Args& options, bool& listened, const std::vector<std::string>& env = {}) {
  PeerServer server(peer("server", pick_port(), options), env);
  listened = server.wait_listening();
  return server.wait();
}

TEST_F(TlsTest, KeyOfAnotherCertificateFailsBeforeListening) {
  bool listened = true;
  ProcessResult r = server_that_fails(Args{"--address", "127.0.0.1", "--tls", "--tls-cacert", cert("ca"),
                                           "--tls-cert", cert("server"), "--tls-key", key("client")},
                                      listened);
  EXPECT_FALSE(listened) << show("server", r);
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_TRUE(contains(r.err, "--tls-key " + key("client") + " does not belong to --tls-cert " + cert("server")))
      << show("server", r);
}

TEST_F(TlsTest, KeyFileThatHoldsNoKeyIsNamed) {
  bool listened = true;
  ProcessResult r = server_that_fails(Args{"--address", "127.0.0.1", "--tls", "--tls-cacert", cert("ca"),
                                           "--tls-cert", cert("server"), "--tls-key", cert("server")},
                                      listened);
  EXPECT_FALSE(listened) << show("server", r);
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_TRUE(contains(r.err, "cannot load --tls-key " + cert("server"))) << show("server", r);
}

TEST_F(TlsTest, CaFileThatHoldsNoCertificateIsAnError) {
  bool listened = true;
  ProcessResult r = server_that_fails(Args{"--address", "127.0.0.1", "--tls", "--tls-cacert", key("ca"),
                                           "--tls-cert", cert("server"), "--tls-key", key("server")},
                                      listened);
  EXPECT_FALSE(listened) << show("server", r);
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_TRUE(contains(r.err, "--tls-cacert " + key("ca") + " holds no certificate")) << show("server", r);
}

TEST_F(TlsTest, BadPriorityStringNamesTheBadPart) {
  bool listened = true;
  ProcessResult r = server_that_fails(
      tls("server", {"--address", "127.0.0.1", "--tls-priority", "NORMAL:-VERS-TLS1.0:+BOGUS-THING:+AES-128-GCM"}),
      listened);
  EXPECT_FALSE(listened) << show("server", r);
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_TRUE(contains(r.err, "invalid --tls-priority")) << show("server", r);
  EXPECT_TRUE(contains(r.err, "at '+BOGUS-THING")) << show("server", r);
}

TEST_F(TlsTest, BadPriorityStringFailsTheClientToo) {
  RunOptions o;
  o.timeout = kRunTimeout;
  // Nothing listens on this port: the client must fail before connecting.
  ProcessResult r =
      ferry::test::run(peer("client", pick_port(), client_to_127("client", {"--tls-priority", "NORMAL:%NO-SUCH"})), o);
  EXPECT_EQ(r.exit_code, 1) << show("client", r);
  EXPECT_TRUE(contains(r.err, "invalid --tls-priority")) << show("client", r);
  EXPECT_TRUE(contains(r.err, "at '%NO-SUCH")) << show("client", r);
  EXPECT_FALSE(contains(r.err, "connect")) << show("client", r);
}

TEST_F(TlsTest, PrivateKeyReadableByOthersGivesAWarningButWorks) {
  Session s = run_session({{"--tls", "--tls-cacert", cert("ca"), "--tls-cert", cert("server"), "--tls-key",
                            path("loose.key"), "--address", "127.0.0.1", "--tls-no-cn-verify"},
                           client_to_127("client")});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "Warn: private key " + path("loose.key") + " is readable by group or others"))
      << s.shown();
  EXPECT_TRUE(contains(s.server.err, "mode 0644")) << s.shown();
}

// ---------------------------------------------------------------------------
// Default paths ($SYSCONFDIR/pki/...), pointed into a temporary directory
// through the test peer's FERRY_TEST_SYSCONFDIR instead of /etc.

TEST_F(TlsTest, DefaultPathFilesAreUsedWhenPresent) {
  TempDir etc;
  std::filesystem::create_directories(etc.file("pki/CA"));
  std::filesystem::create_directories(etc.file("pki/criu/private"));
  ferry::test::write_file(etc.file("pki/CA/cacert.pem"), ferry::test::read_file(cert("ca")));
  ferry::test::write_file(etc.file("pki/CA/cacrl.pem"), ferry::test::read_file(path("crl.pem")));
  ferry::test::write_file(etc.file("pki/criu/cert.pem"), ferry::test::read_file(cert("server")));
  ferry::test::write_file(etc.file("pki/criu/private/key.pem"), ferry::test::read_file(key("server")), 0600);
  SessionSpec spec{{"--tls", "--address", "127.0.0.1", "--tls-no-cn-verify", "-v3"},
                   client_to_127("revoked-client")};
  spec.server_env = {"FERRY_TEST_SYSCONFDIR=" + etc.path()};
  Session s = run_session(spec);
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "from " + etc.file("pki/CA/cacert.pem"))) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "own certificate " + etc.file("pki/criu/cert.pem"))) << s.shown();
  // The default CRL was loaded and applies.
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "The certificate chain is revoked")) << s.shown();
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "alert 44")) << s.shown();
}

TEST_F(TlsTest, DefaultPathCaThatDoesNotParseIsAnError) {
  TempDir etc;
  std::filesystem::create_directories(etc.file("pki/CA"));
  ferry::test::write_file(etc.file("pki/CA/cacert.pem"), "this is not a certificate\n");
  bool listened = true;
  ProcessResult r = server_that_fails(Args{"--tls", "--address", "127.0.0.1", "--tls-cert", cert("server"),
                                           "--tls-key", key("server")},
                                      listened, {"FERRY_TEST_SYSCONFDIR=" + etc.path()});
  EXPECT_FALSE(listened) << show("server", r);
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_TRUE(contains(r.err, "--tls-cacert " + etc.file("pki/CA/cacert.pem") + " holds no certificate"))
      << show("server", r);
}

TEST_F(TlsTest, DefaultPathCaAndCrlThatAreAbsentAreSkipped) {
  TempDir etc;  // empty: no pki/ at all
  SessionSpec spec{{"--tls", "--address", "127.0.0.1", "--tls-no-cn-verify", "--tls-cert", cert("server"),
                    "--tls-key", key("server"), "-v3"},
                   client_to_127("client")};
  spec.server_env = {"FERRY_TEST_SYSCONFDIR=" + etc.path()};
  Session s = run_session(spec);
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "no CA file at the default " + etc.file("pki/CA/cacert.pem"))) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "no CRL at the default " + etc.file("pki/CA/cacrl.pem"))) << s.shown();
  // Only the system store is trusted now, which does not hold our test CA.
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "The certificate issuer is unknown")) << s.shown();
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "alert 48")) << s.shown();
}

// ---------------------------------------------------------------------------
// The wrong kind of peer, and peers that stop: clear errors, bounded times.

TEST_F(TlsTest, PlainClientToTlsServerFailsAtOnceOnBothSides) {
  // Default --io-timeout (60 s): only a clear failure ends this quickly.
  Session s = run_session({server_on_127("server"), {"--address", "127.0.0.1"}});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  EXPECT_LT(s.client_time, seconds(5)) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "the peer does not speak TLS (is it running without --tls?)")) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "does it expect TLS? --tls must be given on both sides")) << s.shown();
}

TEST_F(TlsTest, TlsClientToPlainServerFailsAtOnceOnBothSides) {
  Session s = run_session({{"--address", "127.0.0.1"}, client_to_127("client")});
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  EXPECT_LT(s.client_time, seconds(5)) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "the peer speaks TLS (is it running with --tls?")) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "TLS handshake with 127.0.0.1:")) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "is it running without --tls")) << s.shown();
}

// A listener that completes TCP connections (the kernel does, from the
// backlog) but never says a word.
class SilentListener {
 public:
  SilentListener() : fd_(loopback_socket(AF_INET)) {
    if (fd_ < 0 || ::listen(fd_, 4) != 0) throw std::runtime_error("silent listener");
  }
  ~SilentListener() { ::close(fd_); }
  uint16_t port() const { return local_port(fd_); }

 private:
  int fd_;
};

TEST_F(TlsTest, ServerThatStallsInTheHandshakeTimesTheClientOut) {
  SilentListener silent;
  RunOptions o;
  o.timeout = milliseconds(20000);
  auto start = Clock::now();
  ProcessResult r = ferry::test::run(peer("client", silent.port(), client_to_127("client", {"--io-timeout", "2"})), o);
  auto took = Clock::now() - start;
  EXPECT_EQ(r.exit_code, 1) << show("client", r);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(contains(r.err, "TLS handshake with 127.0.0.1:" + std::to_string(silent.port()) + " timed out after 2 s"))
      << show("client", r);
  EXPECT_GE(took, milliseconds(1500)) << show("client", r);
  EXPECT_LT(took, seconds(5)) << show("client", r);
}

TEST_F(TlsTest, ClientThatStallsInTheHandshakeTimesTheServerOut) {
  uint16_t port = pick_port();
  PeerServer server(peer("server", port, server_on_127("server", {"--io-timeout", "2"})));
  ASSERT_TRUE(server.wait_listening());
  auto start = Clock::now();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ProcessResult r = server.wait(milliseconds(20000));
  auto took = Clock::now() - start;
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << show("server", r);
  EXPECT_TRUE(contains(r.err, "timed out after 2 s")) << show("server", r);
  EXPECT_GE(took, milliseconds(1500)) << show("server", r);
  EXPECT_LT(took, seconds(5)) << show("server", r);
}

TEST_F(TlsTest, ServerCuttingTheStreamWithoutCloseNotifyFailsTheClient) {
  SessionSpec spec{server_on_127("server"), client_to_127("client")};
  spec.server_mode = "server-cut";
  Session s = run_session(spec);
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();  // it cut on purpose
  EXPECT_EQ(s.client.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "without a TLS close_notify")) << s.shown();
  EXPECT_TRUE(contains(s.client.err, "incomplete")) << s.shown();
  EXPECT_FALSE(contains(s.client.out, "exchanged")) << s.shown();
}

TEST_F(TlsTest, ClientCuttingTheStreamWithoutCloseNotifyFailsTheServer) {
  SessionSpec spec{server_on_127("server"), client_to_127("client")};
  spec.client_mode = "client-cut";
  Session s = run_session(spec);
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();  // it cut on purpose
  EXPECT_EQ(s.server.exit_code, 1) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "without a TLS close_notify")) << s.shown();
  EXPECT_TRUE(contains(s.server.err, "incomplete")) << s.shown();
}

// ---------------------------------------------------------------------------
// GNUTLS_DEBUG_LEVEL reaches the -o log file (CRIU leaves it on stderr).

TEST_F(TlsTest, GnutlsDebugLinesGoToTheLogFile) {
  TempDir logs;
  SessionSpec spec{server_on_127("server", {"-D", logs.path(), "-o", "server.log"}), client_to_127("client")};
  spec.server_env = {"GNUTLS_DEBUG_LEVEL=3"};
  Session s = run_session(spec);
  ASSERT_TRUE(s.server_listened) << s.shown();
  EXPECT_EQ(s.server.exit_code, 0) << s.shown();
  EXPECT_EQ(s.client.exit_code, 0) << s.shown();
  ASSERT_TRUE(std::filesystem::exists(logs.file("server.log"))) << s.shown();
  std::string log = ferry::test::read_file(logs.file("server.log"));
  EXPECT_TRUE(contains(log, ") gnutls: [")) << log;
  // They went to the file, not to stderr (GnuTLS prints a few lines there
  // itself while it initialises, before Ferry takes its log over).
  EXPECT_FALSE(contains(s.server.err, ") gnutls: [")) << s.shown();
  // Only what was asked for: Ferry's info lines stay out at the default -v2.
  EXPECT_FALSE(contains(log, "tls: own certificate")) << log;
  struct stat st {};
  ASSERT_EQ(::stat(logs.file("server.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// ---------------------------------------------------------------------------
// Interoperability with GnuTLS's own client.

// gnutls-cli with stdin from `input` (a file: sent, then end of input).
Args gnutls_cli(uint16_t port, const std::string& input, const Args& options) {
  Args argv{"sh", "-c", "exec gnutls-cli \"$@\" < \"$0\"", input, "--port", std::to_string(port)};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("127.0.0.1");
  return argv;
}

TEST_F(TlsTest, GnutlsCliTalksToFerryServer) {
  TempDir work;
  const std::string body = "hello from gnutls-cli";
  std::string message(4, '\0');
  message[0] = static_cast<char>(body.size());  // u32 little-endian length
  ferry::test::write_file(work.file("message"), message + body);
  uint16_t port = pick_port();
  PeerServer server(peer("server", port, server_on_127("server", {"-v3"})));
  ASSERT_TRUE(server.wait_listening());
  RunOptions o;
  o.timeout = kRunTimeout;
  ProcessResult cli = ferry::test::run(
      gnutls_cli(port, work.file("message"),
                 {"--x509cafile", cert("ca"), "--x509certfile", cert("client"), "--x509keyfile", key("client")}),
      o);
  ProcessResult srv = server.wait();
  std::string shown = show("server", srv) + show("gnutls-cli", cli);
  EXPECT_EQ(cli.exit_code, 0) << shown;
  EXPECT_EQ(srv.exit_code, 0) << shown;
  // gnutls-cli checked Ferry's certificate against 127.0.0.1 ...
  EXPECT_TRUE(contains(cli.out, "The certificate is trusted")) << shown;
  EXPECT_TRUE(contains(cli.out, "(TLS1.3")) << shown;
  // ... Ferry checked gnutls-cli's, and echoed the message back.
  EXPECT_TRUE(contains(srv.err, "peer CN=client.ferry.test")) << shown;
  EXPECT_TRUE(contains(cli.out, body)) << shown;
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  TempDir work;
  ferry::test::write_file(work.file("message"), "");
  uint16_t port = pick_port();
  PeerServer server(peer("server", port, server_on_127("server")));
  ASSERT_TRUE(server.wait_listening());
  RunOptions o;
  o.timeout = kRunTimeout;
  ProcessResult cli = ferry::test::run(gnutls_cli(port, work.file("message"), {"--x509cafile", cert("ca")}), o);
  ProcessResult srv = server.wait();
  std::string shown = show("server", srv) + show("gnutls-cli", cli);
  EXPECT_EQ(srv.exit_code, 1) << shown;
  EXPECT_TRUE(contains(srv.err, "the peer sent no certificate")) << shown;
  EXPECT_NE(cli.exit_code, 0) << shown;
  // The server told it why (alert 116).
  EXPECT_TRUE(contains(cli.out + cli.err, "Certificate is required")) << shown;
}

}  // namespace
}  // namespace ferry::tls_test

#endif  // FERRY_HAVE_GNUTLS
