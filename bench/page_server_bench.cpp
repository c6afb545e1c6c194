// Page-server throughput (issue 4): --bytes (default 2 GiB) of synthetic
// pages from Ferry's page-server client to a real `ferry page-server`
// process on 127.0.0.1, images on tmpfs (/dev/shm), plain and TLS; next to
// the bare Transport stream of the same bytes (same chunking, a receiver
// thread that only reads) in the same run. Prints GB/s and the ratios.
//
// Hand-written main, as transport_bench: each figure is one multi-second
// transfer with set-up outside the timed part, and the point is the ratio
// between two modes of the same run. Every mode runs --repeat times (3),
// interleaved, best run reported. Exit 0 whatever the timings; 1 on a real
// error (a transfer or the server failing, or images of the wrong size).
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "build_config.h"
#include "cli/options.h"
#include "image/pagemap_image.h"
#include "net/tcp.h"
#include "pageserver/page_server_client.h"
#include "tls/connection_factory.h"

extern char** environ;

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kEntryBytes = 2 << 20;  // one ADD_F entry: 512 pages, as a large VMA's chunks
constexpr size_t kPatternBytes = 64 << 20;

struct Config {
  uint64_t bytes = 2ull << 30;
  int repeat = 3;
  std::string ferry = FERRY_BINARY;
  std::string tmpfs = "/dev/shm";
};

struct Pki {
  std::string dir, cacert, cert, key;
};

Result<Pki> make_pki(const std::string& base) {
  Pki p;
  p.dir = base + "/pki";
  std::filesystem::create_directories(p.dir);
  p.cacert = p.dir + "/ca.pem";
  p.cert = p.dir + "/cert.pem";
  p.key = p.dir + "/key.pem";
  auto write = [](const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    std::fputs(text.c_str(), f);
    return std::fclose(f) == 0;
  };
  if (!write(p.dir + "/ca.tmpl", "cn = \"bench CA\"\nca\ncert_signing_key\nexpiration_days = 2\n") ||
      !write(p.dir + "/host.tmpl",
             "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\ntls_www_server\n"
             "tls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n"))
    return fail("cannot write the certtool templates into {}", p.dir);
  std::string cmd = fmt::format(
      "cd {0} && umask 077 && ( "
      "certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem && "
      "certtool --generate-self-signed --load-privkey ca-key.pem --template ca.tmpl --outfile ca.pem && "
      "certtool --generate-privkey --key-type=ecdsa --outfile key.pem && "
      "certtool --generate-certificate --load-privkey key.pem --load-ca-certificate ca.pem "
      "--load-ca-privkey ca-key.pem --template host.tmpl --outfile cert.pem ) >certtool.log 2>&1",
      p.dir);
  if (std::system(cmd.c_str()) != 0) return fail("certtool failed: see {}/certtool.log", p.dir);
  return p;
}

Options client_options(const Pki* pki, uint16_t port) {
  Options o;
  o.command = Command::kDump;
  o.address = "127.0.0.1";
  o.port = port;
  o.io_timeout = 60;
  if (pki) {
    o.tls.enabled = true;
    o.tls.cacert = pki->cacert;
    o.tls.cacert_given = true;
    o.tls.cacrl = "/nonexistent/bench-cacrl.pem";
    o.tls.cert = pki->cert;
    o.tls.cert_given = true;
    o.tls.key = pki->key;
    o.tls.key_given = true;
  }
  return o;
}

// The bare Transport stream: a receiver thread reads `bytes` and drops them.
Result<double> bare_stream(const Config& c, const Pki* pki, std::span<const std::byte> pattern) {
  TcpListener listener = FERRY_TRY(TcpListener::listen_on("127.0.0.1", 0));
  Options server_opts = client_options(pki, listener.port());
  server_opts.command = Command::kPageServer;
  server_opts.address.clear();  // no name check of the client, as the page server run below
  ConnectionFactory server = FERRY_TRY(ConnectionFactory::create(server_opts, ConnectionFactory::Side::kServer));
  Options client_opts = client_options(pki, listener.port());
  ConnectionFactory client = FERRY_TRY(ConnectionFactory::create(client_opts, ConnectionFactory::Side::kClient));

  Status receiver_status;
  Clock::time_point received_all;
  std::thread receiver([&] {
    Result<std::unique_ptr<Transport>> t = server.accept(listener);
    if (!t) {
      receiver_status = fail(std::move(t).error());
      return;
    }
    std::vector<std::byte> buf(1 << 20);
    uint64_t left = c.bytes;
    while (left > 0) {
      size_t n = std::min<uint64_t>(left, kEntryBytes);
      if (n > buf.size()) buf.resize(n);
      if (Status s = (*t)->read_exact(std::span(buf).first(n)); !s) {
        receiver_status = s;
        return;
      }
      left -= n;
    }
    received_all = Clock::now();
    (void)(*t)->close();
  });
  Result<std::unique_ptr<Transport>> t = client.connect();
  if (!t) {
    receiver.join();
    return fail(std::move(t).error());
  }
  auto start = Clock::now();
  uint64_t sent = 0;
  Status s;
  while (s && sent < c.bytes) {
    size_t n = std::min<uint64_t>(c.bytes - sent, kEntryBytes);
    s = (*t)->write_all(pattern.subspan(sent % kPatternBytes, n));
    sent += n;
  }
  if (s) s = (*t)->close();
  receiver.join();
  if (!s) return fail(s.error());
  if (!receiver_status) return fail(receiver_status.error());
  return std::chrono::duration<double>(received_all - start).count();
}

// A real `ferry page-server`, ready to accept.
struct ServerProcess {
  pid_t pid = -1;
  Result<int> wait() {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) return fail_errno("waitpid");
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~ServerProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

Result<double> page_server_run(const Config& c, const Pki* pki, std::span<const std::byte> pattern,
                               const std::string& images) {
  std::filesystem::remove_all(images);
  std::filesystem::create_directories(images);
  // A free port: bind 0, note it, close (the server binds it a moment later).
  uint16_t port = FERRY_TRY(TcpListener::listen_on("127.0.0.1", 0)).port();
  int p[2];
  if (::pipe(p) != 0) return fail_errno("pipe");
  std::vector<std::string> args{c.ferry, "page-server", "-D", images, "--address", "127.0.0.1", "--port",
                                std::to_string(port), "--status-fd", std::to_string(p[1]), "-v1"};
  if (pki) args.insert(args.end(), {"--tls", "--tls-cacert", pki->cacert, "--tls-cert", pki->cert, "--tls-key", pki->key});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ServerProcess server;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string log = images + ".log";
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawn(&server.pid, c.ferry.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  if (rc != 0) {
    ::close(p[0]);
    return fail(Error::from_errno(rc, "cannot start " + c.ferry));
  }
  pollfd pf{p[0], POLLIN, 0};
  char ready = 1;
  bool ok = ::poll(&pf, 1, 20000) == 1 && ::read(p[0], &ready, 1) == 1 && ready == 0;
  ::close(p[0]);
  if (!ok) return fail("ferry page-server did not become ready");

  ConnectionFactory factory = FERRY_TRY(ConnectionFactory::create(client_options(pki, port), ConnectionFactory::Side::kClient));
  PageServerClient client(FERRY_TRY(factory.connect()), ps::Layout::kCriu42);
  auto start = Clock::now();
  FERRY_TRY(client.begin({PagemapId::Kind::kProcess, 4242}));
  uint64_t sent = 0, vaddr = 0x7f0000000000;
  while (sent < c.bytes) {
    size_t n = std::min<uint64_t>(c.bytes - sent, kEntryBytes);
    FERRY_TRY(client.write_pages({vaddr, n / kPageSize, kPePresent | kPeLazy}, pattern.subspan(sent % kPatternBytes, n)));
    sent += n;
    vaddr += n;
  }
  FERRY_TRY(client.commit());
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int code = FERRY_TRY(server.wait());
  if (code != 0) return fail("ferry page-server exited {} (see {})", code, log);
  auto size = std::filesystem::file_size(images + "/pages-65537.img");
  if (size != c.bytes) return fail("pages-65537.img holds {} bytes, {} were sent", size, c.bytes);
  std::filesystem::remove_all(images);
  return seconds;
}

double gbps(uint64_t bytes, double s) { return s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0; }

int run(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--bytes") c.bytes = std::stoull(value()) << 20;  // MiB
    else if (a == "--repeat") c.repeat = std::stoi(value());
    else if (a == "--ferry") c.ferry = value();
    else if (a == "--tmpfs") c.tmpfs = value();
    else {
      std::fprintf(stderr, "usage: page_server_bench [--bytes MiB] [--repeat N] [--ferry PATH] [--tmpfs DIR]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  c.bytes = c.bytes / kPageSize * kPageSize;
  (void)log::configure({0, "/dev/null"});
  std::string base = fmt::format("{}/ferry-ps-bench-{}", c.tmpfs, ::getpid());
  std::filesystem::create_directories(base);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{base};

  std::vector<std::byte> pattern(kPatternBytes);
  for (size_t i = 0; i < pattern.size() / 8; ++i) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
    std::memcpy(pattern.data() + i * 8, &x, 8);
  }
  std::optional<Pki> pki;
#if FERRY_HAVE_GNUTLS
  Result<Pki> made = make_pki(base);
  if (!made) {
    std::fprintf(stderr, "page_server_bench: %s\n", made.error().message().c_str());
    return 1;
  }
  pki = *made;
#endif
  std::printf("page_server_bench: %.2f GiB of pages per run, entries of %zu KiB, images on %s, best of %d runs\n",
              static_cast<double>(c.bytes) / (1 << 30), kEntryBytes >> 10, c.tmpfs.c_str(), c.repeat);
  struct Row {
    const char* name;
    bool tls;
    double bare = 1e99, served = 1e99;
  };
  std::vector<Row> rows{{"plain", false}};
  if (pki) rows.push_back({"TLS", true});
  for (int r = 0; r < c.repeat; ++r) {
    for (Row& row : rows) {
      const Pki* k = row.tls ? &*pki : nullptr;
      Result<double> bare = bare_stream(c, k, pattern);
      Result<double> served = page_server_run(c, k, pattern, base + "/images");
      if (!bare || !served) {
        std::fprintf(stderr, "page_server_bench: %s: %s\n", row.name,
                     (!bare ? bare.error() : served.error()).message().c_str());
        return 1;
      }
      row.bare = std::min(row.bare, *bare);
      row.served = std::min(row.served, *served);
    }
  }
  std::printf("\n%-6s %22s %26s %8s\n", "mode", "bare Transport GB/s", "client->page-server GB/s", "ratio");
  for (const Row& row : rows) {
    double b = gbps(c.bytes, row.bare), s = gbps(c.bytes, row.served);
    std::printf("%-6s %22.3f %26.3f %8.3f\n", row.name, b, s, b > 0 ? s / b : 0);
  }
  std::printf("\nratio = page-server session (OPEN2, ADD_F + data, CLOSE and its answer, images written to tmpfs)"
              " / bare Transport stream of the same bytes; aim >= 0.85\n");
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::run(argc, argv); }
