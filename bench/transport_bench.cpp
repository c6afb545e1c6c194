// Transport throughput (issue 3): streams --bytes (default 2 GiB) over TCP on
// 127.0.0.1 between a sender and a receiver thread, in these ways, in the
// same run:
//
//   bare socket      send()/recv() loop on connected TCP sockets
//   PlainTransport   Ferry's write_all / read_exact over plain TCP
//   bare GnuTLS      gnutls_record_send in 16 KiB records / gnutls_record_recv,
//                    TLS 1.3 with the library's default priorities, mutual auth
//   TlsTransport     Ferry's write_all / read_exact over TLS, made by
//                    ConnectionFactory from an Options value (as a dump and a
//                    page server would), names checked against 127.0.0.1
//
// each with the sender writing (and the receiver reading) in calls of 1 MiB and
// of 64 KiB (about what the page server sends per message). Every chunk carries
// a stamp and the receiver checks an XOR of all its words, so data goes through
// the receiver's CPU and a lost, repeated or reordered chunk is an error.
//
// A small hand-written main rather than Google Benchmark: each measurement is
// one multi-second transfer between two threads over a connection set up (and
// for TLS, handshaken) outside the timed part, and what this benchmark is for
// are the ratios between modes measured in the same run (Ferry's transports
// against the bare loops, TLS against plain). Google Benchmark's calibrated
// iteration loop and its report fit neither; a plain table does.
//
// Timings on small shared VMs are noisy: every mode runs --repeat times (3),
// the runs of the modes interleaved so that a busy moment does not hit one
// mode only, and the best run of each is reported. Exit status 0 whatever the
// timings; 1 only on a real error (connection, handshake, data mismatch).
//
// Certificates (a CA and one certificate for 127.0.0.1 / localhost that both
// sides use) are made with certtool in a temporary directory, keys mode 0600,
// and removed at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "build_config.h"
#include "cli/options.h"
#include "net/plain_transport.h"
#include "net/tcp.h"
#include "net/transport.h"
#include "tls/connection_factory.h"
#include "bench/bench_support.h"

#if FERRY_HAVE_GNUTLS
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>  // gnutls_transport_is_ktls_enabled
#endif

extern char** environ;

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kChunkSizes[] = {kMiB, 64 * 1024};
constexpr size_t kTlsRecord = 16384;  // bare GnuTLS loop: plaintext per gnutls_record_send
constexpr std::chrono::seconds kConnectTimeout{30};
constexpr const char* kHost = "127.0.0.1";

// ---------------------------------------------------------------------------
// Command line.

struct Config {
  uint64_t bytes = uint64_t{2} << 30;
  int repeat = 3;
  std::string only;           // run only modes whose name contains one of these words (comma-separated)
  bool bare_nodelay = false;  // set TCP_NODELAY on the bare sockets too (Ferry always does)
};

std::optional<uint64_t> parse_size(std::string s) {
  if (s.empty()) return std::nullopt;
  uint64_t mult = 1;
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, uint64_t> kSuffixes[] = {
      {"gib", 1ull << 30}, {"mib", 1ull << 20}, {"kib", 1ull << 10},
      {"g", 1ull << 30},   {"m", 1ull << 20},   {"k", 1ull << 10}};
  for (const auto& [suffix_chars, m] : kSuffixes) {
    std::string_view suffix = suffix_chars;
    if (lower.size() > suffix.size() && lower.ends_with(suffix)) {
      mult = m;
      lower.resize(lower.size() - suffix.size());
      break;
    }
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(lower.c_str(), &end, 10);
  if (errno != 0 || !std::isdigit(static_cast<unsigned char>(lower[0])) || *end != '\0' || v == 0) return std::nullopt;
  if (v > UINT64_MAX / mult) return std::nullopt;
  return static_cast<uint64_t>(v) * mult;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: transport_bench [--bytes SIZE] [--repeat N] [--only WORDS] [--bare-nodelay]\n"
               "  --bytes SIZE    bytes per run, e.g. 2GiB, 512MiB, 1g (default 2GiB; env FERRY_BENCH_BYTES);\n"
               "                  rounded up to a multiple of 1 MiB\n"
               "  --repeat N      runs per mode, the best is reported (default 3; env FERRY_BENCH_REPEAT)\n"
               "  --only WORDS    only the modes whose name contains one of these comma-separated words\n"
               "                  (e.g. TlsTransport,GnuTLS or \"64 KiB\")\n"
               "  --bare-nodelay  set TCP_NODELAY on the bare loops' sockets as Ferry does on its own\n");
}

// 0: go on; otherwise the exit status.
int parse_args(int argc, char** argv, Config& c) {
  if (const char* e = std::getenv("FERRY_BENCH_BYTES"); e && *e) {
    auto v = parse_size(e);
    if (!v) {
      std::fprintf(stderr, "transport_bench: bad FERRY_BENCH_BYTES '%s'\n", e);
      return 2;
    }
    c.bytes = *v;
  }
  if (const char* e = std::getenv("FERRY_BENCH_REPEAT"); e && *e) c.repeat = std::atoi(e);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& name) -> std::optional<std::string> {
      if (a.starts_with(name + "=")) return a.substr(name.size() + 1);
      if (a == name && i + 1 < argc) return std::string(argv[++i]);
      return std::nullopt;
    };
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return -1;
    } else if (a == "--bare-nodelay") {
      c.bare_nodelay = true;
    } else if (a.starts_with("--bytes")) {
      auto v = value("--bytes");
      auto n = v ? parse_size(*v) : std::nullopt;
      if (!n) {
        std::fprintf(stderr, "transport_bench: --bytes needs a size such as 2GiB\n");
        return 2;
      }
      c.bytes = *n;
    } else if (a.starts_with("--repeat")) {
      auto v = value("--repeat");
      if (!v) {
        std::fprintf(stderr, "transport_bench: --repeat needs a number\n");
        return 2;
      }
      c.repeat = std::atoi(v->c_str());
    } else if (a.starts_with("--only")) {
      auto v = value("--only");
      if (!v) {
        std::fprintf(stderr, "transport_bench: --only needs words\n");
        return 2;
      }
      c.only = *v;
    } else {
      std::fprintf(stderr, "transport_bench: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (c.repeat < 1) {
    std::fprintf(stderr, "transport_bench: --repeat must be at least 1\n");
    return 2;
  }
  c.bytes = (c.bytes + kMiB - 1) / kMiB * kMiB;
  return 0;
}

// ---------------------------------------------------------------------------
// Certificates, made with certtool in a temporary directory.

class TempDir {
 public:
  static Result<TempDir> create() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-bench-XXXXXX";
    if (!::mkdtemp(tmpl.data())) return fail_errno("mkdtemp {}", tmpl);
    TempDir d;
    d.path_ = tmpl;
    return d;
  }
  TempDir() = default;
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Certificates {
  std::string cacert, cert, key;
};

Result<Certificates> make_certificates(const TempDir& dir) {
  Pki p = FERRY_TRY(make_pki(dir.path()));
  return Certificates{p.cacert, p.cert, p.key};
}

// ---------------------------------------------------------------------------
// One end of a connection as the benchmark drives it.

class Stream {
 public:
  virtual ~Stream() = default;
  virtual Status write(std::span<const std::byte> data) = 0;
  virtual Status read(std::span<std::byte> data) = 0;  // fills all of data
  virtual Status expect_end() = 0;                     // the peer ended the stream cleanly, nothing more came
  virtual Status finish() = 0;                         // ends the session cleanly
  virtual std::string description() const = 0;
};

// send()/recv() on a socket, nothing else.
class BareSocket final : public Stream {
 public:
  explicit BareSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  Status write(std::span<const std::byte> data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("bare send");
      }
      done += static_cast<size_t>(n);
    }
    return {};
  }
  Status read(std::span<std::byte> data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::recv(fd_.get(), data.data() + done, data.size() - done, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("bare recv");
      }
      if (n == 0) return fail("bare recv: stream ended after {} of {} bytes", done, data.size());
      done += static_cast<size_t>(n);
    }
    return {};
  }
  Status expect_end() override {
    char c;
    ssize_t n;
    do n = ::recv(fd_.get(), &c, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return fail_errno("bare recv at the end");
    if (n > 0) return fail("bare recv: more data than was sent");
    return {};
  }
  Status finish() override {
    ::shutdown(fd_.get(), SHUT_WR);
    // Wait for the peer's end too, so that a run is over when both are.
    char buf[256];
    ssize_t n;
    do n = ::recv(fd_.get(), buf, sizeof buf, 0);
    while (n > 0 || (n < 0 && errno == EINTR));
    fd_.reset();
    return {};
  }
  std::string description() const override { return "plain TCP"; }

 private:
  UniqueFd fd_;
};

// Ferry's Transport (PlainTransport or TlsTransport).
class FerryStream final : public Stream {
 public:
  explicit FerryStream(std::unique_ptr<Transport> t) : t_(std::move(t)) {}
  Status write(std::span<const std::byte> data) override { return t_->write_all(data); }
  Status read(std::span<std::byte> data) override { return t_->read_exact(data); }
  Status expect_end() override {
    std::byte b;
    bool more = FERRY_TRY(t_->read_exact_or_end(std::span(&b, 1)));
    if (more) return fail("{}: more data than was sent", t_->description());
    return {};
  }
  Status finish() override { return t_->close(); }
  std::string description() const override { return t_->description(); }

 private:
  std::unique_ptr<Transport> t_;
};

#if FERRY_HAVE_GNUTLS

class GnutlsCredentials {
 public:
  static Result<std::shared_ptr<GnutlsCredentials>> load(const Certificates& c) {
    auto g = std::make_shared<GnutlsCredentials>();
    int rc = gnutls_certificate_allocate_credentials(&g->cred_);
    if (rc < 0) return fail("gnutls_certificate_allocate_credentials: {}", gnutls_strerror(rc));
    rc = gnutls_certificate_set_x509_trust_file(g->cred_, c.cacert.c_str(), GNUTLS_X509_FMT_PEM);
    if (rc <= 0) return fail("bare GnuTLS: loading CA {}: {}", c.cacert, rc < 0 ? gnutls_strerror(rc) : "none");
    rc = gnutls_certificate_set_x509_key_file(g->cred_, c.cert.c_str(), c.key.c_str(), GNUTLS_X509_FMT_PEM);
    if (rc < 0) return fail("bare GnuTLS: loading {} / {}: {}", c.cert, c.key, gnutls_strerror(rc));
    return g;
  }
  GnutlsCredentials() = default;
  GnutlsCredentials(const GnutlsCredentials&) = delete;
  GnutlsCredentials& operator=(const GnutlsCredentials&) = delete;
  ~GnutlsCredentials() {
    if (cred_) gnutls_certificate_free_credentials(cred_);
  }
  gnutls_certificate_credentials_t get() const { return cred_; }

 private:
  gnutls_certificate_credentials_t cred_ = nullptr;
};

// gnutls_record_send in 16 KiB records and gnutls_record_recv straight into
// the caller's buffer: the loop any GnuTLS program would write.
class BareGnutls final : public Stream {
 public:
  static Result<std::unique_ptr<BareGnutls>> establish(UniqueFd fd, const GnutlsCredentials& cred, bool server) {
    std::unique_ptr<BareGnutls> s(new BareGnutls(std::move(fd)));
    int rc = gnutls_init(&s->session_, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL);
    if (rc < 0) return fail("gnutls_init: {}", gnutls_strerror(rc));
    if ((rc = gnutls_set_default_priority(s->session_)) < 0 ||
        (rc = gnutls_credentials_set(s->session_, GNUTLS_CRD_CERTIFICATE, cred.get())) < 0)
      return fail("bare GnuTLS set-up: {}", gnutls_strerror(rc));
    if (server) gnutls_certificate_server_set_request(s->session_, GNUTLS_CERT_REQUIRE);
    // Mutual authentication: each side verifies the other's chain; the
    // client also the name (the certificate's IP address).
    gnutls_session_set_verify_cert(s->session_, server ? nullptr : kHost, 0);
    gnutls_transport_set_int(s->session_, s->fd_.get());
    gnutls_handshake_set_timeout(s->session_, static_cast<unsigned>(kConnectTimeout.count() * 1000));
    do rc = gnutls_handshake(s->session_);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0) return fail("bare GnuTLS handshake ({}): {}", server ? "server" : "client", gnutls_strerror(rc));
    return s;
  }
  ~BareGnutls() override {
    if (session_) gnutls_deinit(session_);
  }
  Status write(std::span<const std::byte> data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = gnutls_record_send(session_, data.data() + done, std::min(kTlsRecord, data.size() - done));
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
      if (n < 0) return fail("gnutls_record_send: {}", gnutls_strerror(static_cast<int>(n)));
      done += static_cast<size_t>(n);
    }
    return {};
  }
  Status read(std::span<std::byte> data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = gnutls_record_recv(session_, data.data() + done, data.size() - done);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
      if (n < 0) return fail("gnutls_record_recv: {}", gnutls_strerror(static_cast<int>(n)));
      if (n == 0) return fail("gnutls_record_recv: session ended after {} of {} bytes", done, data.size());
      done += static_cast<size_t>(n);
    }
    return {};
  }
  Status expect_end() override {
    char c;
    ssize_t n;
    do n = gnutls_record_recv(session_, &c, 1);
    while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
    if (n < 0) return fail("gnutls_record_recv at the end: {}", gnutls_strerror(static_cast<int>(n)));
    if (n > 0) return fail("bare GnuTLS: more data than was sent");
    return {};
  }
  Status finish() override {
    int rc;
    do rc = gnutls_bye(session_, GNUTLS_SHUT_RDWR);
    while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
    fd_.reset();
    if (rc < 0) return fail("gnutls_bye: {}", gnutls_strerror(rc));
    return {};
  }
  std::string description() const override {
    const char* version = gnutls_protocol_get_name(gnutls_protocol_get_version(session_));
    const char* cipher = gnutls_cipher_get_name(gnutls_cipher_get(session_));
    bool ktls = gnutls_transport_is_ktls_enabled(session_) != 0;
    return fmt::format("{} {}, kernel TLS {}", version ? version : "TLS", cipher ? cipher : "?", ktls ? "on" : "off");
  }

 private:
  explicit BareGnutls(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  gnutls_session_t session_ = nullptr;
};

#endif  // FERRY_HAVE_GNUTLS

// ---------------------------------------------------------------------------
// Modes and runs.

enum class Kind { kBareSocket, kPlainTransport, kBareGnutls, kTlsTransport };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kBareSocket: return "bare socket";
    case Kind::kPlainTransport: return "PlainTransport";
    case Kind::kBareGnutls: return "bare GnuTLS";
    case Kind::kTlsTransport: return "TlsTransport";
  }
  return "?";
}

bool is_tls(Kind k) { return k == Kind::kBareGnutls || k == Kind::kTlsTransport; }

std::string size_name(uint64_t n) {
  if (n % (uint64_t{1} << 30) == 0) return fmt::format("{} GiB", n >> 30);
  if (n % kMiB == 0) return fmt::format("{} MiB", n >> 20);
  return fmt::format("{} KiB", n >> 10);
}

struct Mode {
  Kind kind;
  size_t chunk;
  std::string name() const { return fmt::format("{} {}", kind_name(kind), size_name(chunk)); }
};

struct Setup {
  Config config;
  Certificates certs;
#if FERRY_HAVE_GNUTLS
  std::shared_ptr<GnutlsCredentials> gnutls;
#endif
};

// What the sender puts in each chunk: a fixed pattern, its first word
// replaced by the chunk's stamp.
struct Pattern {
  std::vector<uint64_t> words;          // largest chunk
  std::map<size_t, uint64_t> xor_rest;  // chunk size -> XOR of words[1 .. chunk/8)

  static Pattern make() {
    Pattern p;
    p.words.resize(kChunkSizes[0] / 8);
    uint64_t x = 0x243f6a8885a308d3ull;
    for (auto& w : p.words) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = x;
    }
    for (size_t c : kChunkSizes) {
      uint64_t r = 0;
      for (size_t i = 1; i < c / 8; ++i) r ^= p.words[i];
      p.xor_rest[c] = r;
    }
    return p;
  }
};

uint64_t stamp(uint64_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull; }

uint64_t xor_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a ^= p[i];
    b ^= p[i + 1];
    c ^= p[i + 2];
    d ^= p[i + 3];
  }
  for (; i < n; ++i) a ^= p[i];
  return a ^ b ^ c ^ d;
}

// Both threads meet here once connected; a side that failed lets the other go.
class Gate {
 public:
  bool arrive(bool ok) {
    std::unique_lock lock(mutex_);
    if (!ok) failed_ = true;
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return arrived_ >= 2 || failed_; });
    return !failed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool failed_ = false;
};

// A listening socket for the bare loops: 127.0.0.1, a port of the kernel's choice.
Result<std::pair<UniqueFd, uint16_t>> bare_listen() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail_errno("bind 127.0.0.1");
  if (::listen(fd.get(), 1) != 0) return fail_errno("listen");
  socklen_t len = sizeof a;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return fail_errno("getsockname");
  return std::pair{std::move(fd), ntohs(a.sin_port)};
}

void maybe_nodelay(int fd, bool on) {
  int one = 1;
  if (on) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Result<UniqueFd> bare_accept(int listener, bool nodelay) {
  pollfd p{listener, POLLIN, 0};
  int r;
  do r = ::poll(&p, 1, static_cast<int>(kConnectTimeout.count() * 1000));
  while (r < 0 && errno == EINTR);
  if (r < 0) return fail_errno("poll");
  if (r == 0) return fail("no connection within {} s", kConnectTimeout.count());
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return fail_errno("accept");
  maybe_nodelay(fd.get(), nodelay);
  return fd;
}

Result<UniqueFd> bare_connect(uint16_t port, bool nodelay) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return fail_errno("connect 127.0.0.1:{}", port);
  maybe_nodelay(fd.get(), nodelay);
  return fd;
}

// Ferry's own view of the connection, as a dump (client) or page server
// (server) would build it from its command line.
Options ferry_options(const Setup& s, bool tls, uint16_t port) {
  Options o;
  o.address = kHost;
  o.port = port;
  o.io_timeout = 60;
  o.tls.enabled = tls;
  o.tls.cacert = s.certs.cacert;
  o.tls.cert = s.certs.cert;
  o.tls.key = s.certs.key;
  o.tls.cacert_given = o.tls.cert_given = o.tls.key_given = true;
  return o;
}

// The listening end of one run, made before the threads start.
struct Listening {
  uint16_t port = 0;
  UniqueFd bare;                        // bare loops
  std::optional<TcpListener> listener;  // Ferry's transports
};

Result<Listening> listen_for(Kind k) {
  Listening l;
  if (k == Kind::kBareSocket || k == Kind::kBareGnutls) {
    auto [fd, port] = FERRY_TRY(bare_listen());
    l.bare = std::move(fd);
    l.port = port;
  } else {
    l.listener = FERRY_TRY(TcpListener::listen_on(kHost, 0));
    l.port = l.listener->port();
  }
  return l;
}

Result<std::unique_ptr<Stream>> open_receiver(const Mode& m, const Setup& s, Listening& l) {
  bool nodelay = s.config.bare_nodelay;
  switch (m.kind) {
    case Kind::kBareSocket:
      return std::unique_ptr<Stream>(new BareSocket(FERRY_TRY(bare_accept(l.bare.get(), nodelay))));
    case Kind::kBareGnutls:
#if FERRY_HAVE_GNUTLS
      return std::unique_ptr<Stream>(
          FERRY_TRY(BareGnutls::establish(FERRY_TRY(bare_accept(l.bare.get(), nodelay)), *s.gnutls, true)));
#else
      break;
#endif
    case Kind::kPlainTransport:
    case Kind::kTlsTransport: {
      Options o = ferry_options(s, is_tls(m.kind), l.port);
      ConnectionFactory f = FERRY_TRY(ConnectionFactory::create(o, ConnectionFactory::Side::kServer));
      TcpConnection c = FERRY_TRY(l.listener->accept_one(kConnectTimeout));
      l.listener->close();
      if (m.kind == Kind::kPlainTransport)
        return std::unique_ptr<Stream>(
            new FerryStream(FERRY_TRY(PlainTransport::create(std::move(c), std::chrono::seconds(o.io_timeout)))));
      return std::unique_ptr<Stream>(new FerryStream(FERRY_TRY(f.wrap(std::move(c)))));
    }
  }
  return fail("{}: not built", m.name());
}

Result<std::unique_ptr<Stream>> open_sender(const Mode& m, const Setup& s, uint16_t port) {
  bool nodelay = s.config.bare_nodelay;
  switch (m.kind) {
    case Kind::kBareSocket: return std::unique_ptr<Stream>(new BareSocket(FERRY_TRY(bare_connect(port, nodelay))));
    case Kind::kBareGnutls:
#if FERRY_HAVE_GNUTLS
      return std::unique_ptr<Stream>(
          FERRY_TRY(BareGnutls::establish(FERRY_TRY(bare_connect(port, nodelay)), *s.gnutls, false)));
#else
      break;
#endif
    case Kind::kPlainTransport:
    case Kind::kTlsTransport: {
      Options o = ferry_options(s, is_tls(m.kind), port);
      if (m.kind == Kind::kPlainTransport) {
        TcpConnection c = FERRY_TRY(tcp_connect(o.address, o.port, kConnectTimeout));
        return std::unique_ptr<Stream>(
            new FerryStream(FERRY_TRY(PlainTransport::create(std::move(c), std::chrono::seconds(o.io_timeout)))));
      }
      ConnectionFactory f = FERRY_TRY(ConnectionFactory::create(o, ConnectionFactory::Side::kClient));
      return std::unique_ptr<Stream>(new FerryStream(FERRY_TRY(f.connect())));
    }
  }
  return fail("{}: not built", m.name());
}

// CPU time of the calling thread (user + system), seconds.
double thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct RunResult {
  double seconds = 0;
  double cpu = 0;           // sender + receiver thread CPU time over the same span
  std::string description;  // of the receiving end, e.g. "TLS1.3 AES-256-GCM"
};

Result<RunResult> run_once(const Mode& m, const Setup& s, const Pattern& pattern) {
  const uint64_t chunks = s.config.bytes / m.chunk;
  const size_t words = m.chunk / 8;
  Listening listening = FERRY_TRY(listen_for(m.kind));
  const uint16_t port = listening.port;
  Gate gate;
  Clock::time_point start, end;
  double send_cpu = 0, receive_cpu = 0;
  std::optional<Error> send_error, receive_error;
  std::string description;

  std::thread sender([&] {
    std::vector<uint64_t> buf(pattern.words.begin(), pattern.words.begin() + static_cast<ptrdiff_t>(words));
    Status st = [&]() -> Status {
      Result<std::unique_ptr<Stream>> opened = open_sender(m, s, port);
      if (!gate.arrive(opened.has_value())) {
        if (!opened) return fail(opened.error().with_context("sender"));
        return {};  // the receiver failed and says why
      }
      Stream& out = **opened;
      start = Clock::now();
      const double cpu0 = thread_cpu();
      auto bytes = std::as_bytes(std::span(buf));
      for (uint64_t i = 0; i < chunks; ++i) {
        buf[0] = stamp(i);
        FERRY_TRY_CTX(out.write(bytes), "sender, chunk {}", i);
      }
      send_cpu = thread_cpu() - cpu0;
      FERRY_TRY_CTX(out.finish(), "sender, closing");
      return {};
    }();
    if (!st) send_error = st.error();
  });

  Status st = [&]() -> Status {
    std::vector<uint64_t> buf(words, 0);  // touched before the clock starts
    Result<std::unique_ptr<Stream>> opened = open_receiver(m, s, listening);
    if (!gate.arrive(opened.has_value())) {
      if (!opened) return fail(opened.error().with_context("receiver"));
      return fail("the sender could not connect");
    }
    Stream& in = **opened;
    description = in.description();
    auto bytes = std::as_writable_bytes(std::span(buf));
    const double cpu0 = thread_cpu();
    const uint64_t rest = pattern.xor_rest.at(m.chunk);
    for (uint64_t i = 0; i < chunks; ++i) {
      FERRY_TRY_CTX(in.read(bytes), "receiver, chunk {}", i);
      if (xor_words(buf.data(), words) != (rest ^ stamp(i)))
        return fail("receiver: data mismatch in chunk {} (bytes {} to {})", i, i * m.chunk, (i + 1) * m.chunk);
    }
    end = Clock::now();
    receive_cpu = thread_cpu() - cpu0;
    FERRY_TRY_CTX(in.expect_end(), "receiver, at the end");
    FERRY_TRY_CTX(in.finish(), "receiver, closing");
    return {};
  }();
  if (!st) {
    receive_error = st.error();
    // The receiver's stream is gone (closed on return), so a sender blocked
    // in send() fails now instead of waiting.
  }
  sender.join();
  if (receive_error && send_error) return fail("{}: {}; {}", m.name(), receive_error->message(), send_error->message());
  if (receive_error) return fail(receive_error->with_context(m.name()));
  if (send_error) return fail(send_error->with_context(m.name()));
  return RunResult{std::chrono::duration<double>(end - start).count(), send_cpu + receive_cpu, description};
}

// ---------------------------------------------------------------------------
// Report.

struct ModeResults {
  Mode mode;
  std::vector<double> seconds;
  std::vector<double> cpu;
  std::string description;
  double best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double best_cpu() const { return *std::min_element(cpu.begin(), cpu.end()); }
};

double gbps(uint64_t bytes, double seconds) { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0; }

void print_report(const Config& c, const std::vector<ModeResults>& results) {
  std::printf("\n%-24s %10s %8s %7s %7s   %s\n", "mode, bytes per call", "bytes", "seconds", "GB/s", "CPU s",
              "GB/s of each run");
  for (const auto& r : results) {
    std::string all;
    for (double s : r.seconds) all += fmt::format("{}{:.2f}", all.empty() ? "" : " ", gbps(c.bytes, s));
    std::printf("%-24s %10llu %8.3f %7.2f %7.3f   %s\n", r.mode.name().c_str(),
                static_cast<unsigned long long>(c.bytes), r.best(), gbps(c.bytes, r.best()), r.best_cpu(), all.c_str());
  }
  std::printf("seconds, GB/s: best run (wall clock); CPU s: least sender + receiver thread CPU time of the runs\n");

  auto find = [&](Kind k, size_t chunk) -> const ModeResults* {
    for (const auto& r : results)
      if (r.mode.kind == k && r.mode.chunk == chunk) return &r;
    return nullptr;
  };
  struct Ratio {
    const char* label;
    Kind num, den;
  };
  const Ratio ratios[] = {
      {"PlainTransport / bare socket", Kind::kPlainTransport, Kind::kBareSocket},
      {"TlsTransport / bare GnuTLS", Kind::kTlsTransport, Kind::kBareGnutls},
      {"TLS / plain: TlsTransport / PlainTransport", Kind::kTlsTransport, Kind::kPlainTransport},
      {"TLS / plain: bare GnuTLS / bare socket", Kind::kBareGnutls, Kind::kBareSocket},
  };
  std::string head = fmt::format("\n{:<44}", "ratios (1.0 = as fast; above 1 = faster)");
  for (size_t chunk : kChunkSizes) head += fmt::format(" {:>10}", "GB/s " + size_name(chunk));
  for (size_t chunk : kChunkSizes) head += fmt::format(" {:>10}", "CPU " + size_name(chunk));
  std::printf("%s\n", head.c_str());
  for (const auto& r : ratios) {
    std::string line = fmt::format("{:<44}", r.label);
    bool any = false;
    for (bool by_cpu : {false, true})
      for (size_t chunk : kChunkSizes) {
        const ModeResults* a = find(r.num, chunk);
        const ModeResults* b = find(r.den, chunk);
        if (a && b) {
          double ratio = by_cpu ? b->best_cpu() / a->best_cpu() : b->best() / a->best();
          line += fmt::format(" {:10.3f}", ratio);
          any = true;
        } else {
          line += fmt::format(" {:>10}", "-");
        }
      }
    if (any) std::printf("%s\n", line.c_str());
  }
  std::printf("GB/s: ratio of the best throughputs; CPU: inverse ratio of the CPU time per byte\n");
}

// --only: comma-separated words, any of which the mode's name contains.
bool matches_only(const std::string& only, const std::string& name) {
  if (only.empty()) return true;
  size_t pos = 0;
  for (;;) {
    size_t comma = only.find(',', pos);
    std::string word = only.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!word.empty() && name.find(word) != std::string::npos) return true;
    if (comma == std::string::npos) return false;
    pos = comma + 1;
  }
}

int run(int argc, char** argv) {
  // Line by line, so the table and the progress lines on stderr stay in order
  // when both go to one pipe (scripts/run-benchmarks.sh, make bench).
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Setup setup;
  if (int rc = parse_args(argc, argv, setup.config); rc != 0) return rc < 0 ? 0 : rc;
  const Config& c = setup.config;

  std::vector<Mode> modes;
  for (size_t chunk : kChunkSizes)
    for (Kind k : {Kind::kBareSocket, Kind::kPlainTransport, Kind::kBareGnutls, Kind::kTlsTransport}) {
      if (is_tls(k) && !FERRY_HAVE_GNUTLS) continue;
      Mode m{k, chunk};
      if (!matches_only(c.only, m.name())) continue;
      modes.push_back(m);
    }
  if (modes.empty()) {
    std::fprintf(stderr, "transport_bench: no mode matches --only '%s'\n", c.only.c_str());
    return 2;
  }

  std::printf("Ferry transport benchmark: %s (%llu bytes) per run over TCP on %s, sender and receiver in two threads\n",
              size_name(c.bytes).c_str(), static_cast<unsigned long long>(c.bytes), kHost);
  std::printf(
      "each mode runs %d times, runs interleaved across modes; the best run is reported "
      "(timings on shared VMs are noisy)\n",
      c.repeat);
  std::printf(
      "GB/s = 10^9 bytes per second; timed from the sender's first write to the receiver's last checked byte\n");
  std::printf("bare loops: sockets with kernel defaults%s; Ferry's transports: as Ferry sets them up (TCP_NODELAY)\n",
              c.bare_nodelay ? " plus TCP_NODELAY" : "");
#if !FERRY_HAVE_GNUTLS
  std::printf("TLS modes: not built (no GnuTLS in this build)\n");
#endif

  std::optional<TempDir> dir;
  bool want_tls = std::any_of(modes.begin(), modes.end(), [](const Mode& m) { return is_tls(m.kind); });
  if (want_tls) {
    Result<TempDir> d = TempDir::create();
    if (!d) {
      std::fprintf(stderr, "transport_bench: %s\n", d.error().message().c_str());
      return 1;
    }
    dir.emplace(std::move(*d));
    Result<Certificates> certs = make_certificates(*dir);
    if (!certs) {
      std::fprintf(stderr, "transport_bench: making certificates: %s\n", certs.error().message().c_str());
      return 1;
    }
    setup.certs = *certs;
#if FERRY_HAVE_GNUTLS
    auto g = GnutlsCredentials::load(setup.certs);
    if (!g) {
      std::fprintf(stderr, "transport_bench: %s\n", g.error().message().c_str());
      return 1;
    }
    setup.gnutls = *g;
#endif
  }

  const Pattern pattern = Pattern::make();
  std::vector<ModeResults> results;
  for (const Mode& m : modes) results.push_back({m, {}, {}, {}});
  for (int round = 0; round < c.repeat; ++round) {
    for (auto& r : results) {
      Result<RunResult> one = run_once(r.mode, setup, pattern);
      if (!one) {
        std::fprintf(stderr, "transport_bench: %s\n", one.error().message().c_str());
        return 1;
      }
      r.seconds.push_back(one->seconds);
      r.cpu.push_back(one->cpu);
      r.description = one->description;
      std::fprintf(stderr, "  run %d/%d  %-24s %7.3f s  %6.2f GB/s  CPU %.3f s\n", round + 1, c.repeat,
                   r.mode.name().c_str(), one->seconds, gbps(c.bytes, one->seconds), one->cpu);
    }
  }
  print_report(c, results);
  bool said[2] = {false, false};  // bare GnuTLS, TlsTransport
  for (const auto& r : results) {
    if (!is_tls(r.mode.kind) || said[r.mode.kind == Kind::kTlsTransport]) continue;
    said[r.mode.kind == Kind::kTlsTransport] = true;
    std::printf("%s%s: %s\n", said[0] && said[1] ? "" : "\n", kind_name(r.mode.kind), r.description.c_str());
  }
  if (said[0] || said[1])
    std::printf(
        "certificates: ECDSA P-256 CA and one certificate for 127.0.0.1 made by certtool; mutual authentication\n");
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::run(argc, argv); }
