// A small real peer for the transport tests: the server and client ends of a
// Ferry connection, configured with Ferry's own command-line options.
//
//   transport_peer server [page-server options]   listen, accept, echo messages until a clean end
//   transport_peer client [dump options]          connect, send messages, check the echoes, close
//   transport_peer server-cut / client-cut        the same, but cut the stream half-way
//                                                 without a close_notify
//
// Messages are a u32 length and that many bytes. Exit 0 on success, 1 with
// the error on stderr otherwise. -o is relative to -W/-D as for ferry;
// FERRY_TEST_SYSCONFDIR, if set, replaces /etc in the default TLS paths.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "cli/command_line.h"
#include "cli/version.h"
#include "tls/connection_factory.h"

namespace ferry {
namespace {

const std::vector<size_t> kMessageSizes = {32, 4096, 100000, 1 << 20};

std::vector<std::byte> pattern(size_t size, unsigned seed) {
  std::vector<std::byte> v(size);
  uint32_t x = 2166136261u ^ seed;
  for (auto& b : v) {
    x = x * 16777619u + 0x9e3779b9u;
    b = static_cast<std::byte>(x >> 24);
  }
  return v;
}

Status send_message(Transport& t, std::span<const std::byte> body) {
  uint32_t len = static_cast<uint32_t>(body.size());
  FERRY_TRY(t.write_all(std::as_bytes(std::span(&len, 1))));
  return t.write_all(body);
}

Status serve(Transport& t, bool cut) {
  for (;;) {
    uint32_t len = 0;
    bool more = FERRY_TRY(t.read_exact_or_end(std::as_writable_bytes(std::span(&len, 1))));
    if (!more) break;
    if (len > (64u << 20)) return fail("message of {} bytes is too large", len);
    std::vector<std::byte> body(len);
    FERRY_TRY(t.read_exact(body));
    if (cut) {
      uint32_t l = len;
      FERRY_TRY(t.write_all(std::as_bytes(std::span(&l, 1))));
      FERRY_TRY(t.write_all(std::span(body).first(len / 2)));
      t.abort();
      return {};
    }
    FERRY_TRY(send_message(t, body));
  }
  return t.close();
}

Status talk(Transport& t, bool cut) {
  unsigned seed = 0;
  for (size_t size : kMessageSizes) {
    std::vector<std::byte> body = pattern(size, seed++);
    if (cut) {
      uint32_t len = static_cast<uint32_t>(size);
      FERRY_TRY(t.write_all(std::as_bytes(std::span(&len, 1))));
      FERRY_TRY(t.write_all(std::span(body).first(size / 2)));
      t.abort();
      return {};
    }
    FERRY_TRY(send_message(t, body));
    uint32_t len = 0;
    FERRY_TRY(t.read_exact(std::as_writable_bytes(std::span(&len, 1))));
    if (len != size) return fail("echo of a {} byte message announced {} bytes", size, len);
    std::vector<std::byte> echo(len);
    FERRY_TRY(t.read_exact(echo));
    if (echo != body) return fail("echo of a {} byte message differs", size);
  }
  std::printf("exchanged %zu messages over %s\n", kMessageSizes.size(), t.description().c_str());
  return t.close();
}

Status run_server(const Options& o, bool cut) {
  ConnectionFactory factory = FERRY_TRY(ConnectionFactory::create(o, ConnectionFactory::Side::kServer));
  TcpListener listener = FERRY_TRY(TcpListener::listen_on(o.address, o.port));
  if (o.status_fd >= 0) {
    char zero = 0;
    if (::write(o.status_fd, &zero, 1) != 1) return fail_errno("write --status-fd");
    ::close(o.status_fd);
  }
  std::unique_ptr<Transport> t = FERRY_TRY(factory.accept(listener));
  return serve(*t, cut);
}

Status run_client(const Options& o, bool cut) {
  ConnectionFactory factory = FERRY_TRY(ConnectionFactory::create(o, ConnectionFactory::Side::kClient));
  std::unique_ptr<Transport> t = FERRY_TRY(factory.connect());
  return talk(*t, cut);
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  using namespace ferry;
  if (argc < 2) {
    std::fprintf(stderr, "usage: transport_peer server|client|server-cut|client-cut [options]\n");
    return 2;
  }
  std::string mode = argv[1];
  bool server = mode.starts_with("server");
  bool cut = mode.ends_with("-cut");
  std::vector<std::string> args{"ferry", server ? "page-server" : "dump"};
  if (!server) args.insert(args.end(), {"-t", "1"});
  args.insert(args.end(), argv + 2, argv + argc);
  // The tests point the default TLS paths into a temporary directory.
  const char* sysconfdir = std::getenv("FERRY_TEST_SYSCONFDIR");
  ParserConfig config{{Command::kPageServer, Command::kDump}, tls_built_in(), sysconfdir ? sysconfdir : "/etc"};
  ParsedCommandLine parsed = parse_command_line(args, config);
  if (parsed.outcome != ParsedCommandLine::Outcome::kRun) {
    std::fprintf(stderr, "transport_peer: %s\n", parsed.text.c_str());
    return 1;
  }
  const Options& o = parsed.options;
  // As ferry: -o is relative to the work dir (-W, default -D).
  std::string log_file = o.log_file;
  if (!log_file.empty() && log_file != "-" && log_file.front() != '/')
    log_file = o.effective_work_dir() + "/" + log_file;
  if (Status s = log::configure({o.verbosity, log_file}); !s) {
    std::fprintf(stderr, "transport_peer: %s\n", s.error().message().c_str());
    return 1;
  }
  Status s = server ? run_server(o, cut) : run_client(o, cut);
  if (!s) {
    std::fprintf(stderr, "transport_peer %s: %s\n", mode.c_str(), s.error().message().c_str());
    return 1;
  }
  return 0;
}
