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
#include "bench/bench_support.h"

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

Result<double> page_server_run(const Config& c, const Pki* pki, std::span<const std::byte> pattern,
                               const std::string& images) {
  std::filesystem::remove_all(images);
  std::filesystem::create_directories(images);
  ServerProcess server = FERRY_TRY(start_page_server(c.ferry, images, pki));
  uint16_t port = server.port;
  const std::string& log = server.log;
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

  std::vector<std::byte> pattern = make_pattern(kPatternBytes);
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
      Result<double> bare = bare_stream(c.bytes, kEntryBytes, k, pattern);
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
