#include "bench/bench_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>
#include <fstream>
#include <thread>

#include "net/tcp.h"
#include "tls/connection_factory.h"

extern char** environ;

namespace ferry::bench {

using Clock = std::chrono::steady_clock;

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) return fail("cannot write {}", path);
  return {};
}

// Runs certtool with `args`; its output goes to `log`, shown on failure.
Status certtool(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), "certtool");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "certtool", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail(Error::from_errno(rc, "cannot run certtool (is gnutls-bin installed?)"));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail_errno("waitpid certtool");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return fail("certtool {} failed:\n{}", args[1], out);
  }
  return {};
}

Result<Pki> make_pki(const std::string& base) {
  Pki p;
  p.dir = base + "/pki";
  std::filesystem::create_directories(p.dir);
  auto file = [&](const char* name) { return p.dir + "/" + name; };
  const std::string log = file("certtool.log");
  p.cacert = file("ca.pem");
  p.cert = file("cert.pem");
  p.key = file("key.pem");
  const std::string ca_key = file("ca-key.pem");
  FERRY_TRY(
      write_file(file("ca.tmpl"), "cn = \"Ferry benchmark CA\"\nca\ncert_signing_key\nexpiration_days = 2\n"));
  FERRY_TRY(write_file(file("cert.tmpl"),
                       "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\n"
                       "tls_www_server\ntls_www_client\nsigning_key\nexpiration_days = 2\n"));
  mode_t old = ::umask(077);
  Status s = [&]() -> Status {
    FERRY_TRY(certtool({"--generate-privkey", "--key-type=ecdsa", "--outfile", ca_key}, log));
    FERRY_TRY(certtool(
        {"--generate-self-signed", "--load-privkey", ca_key, "--template", file("ca.tmpl"), "--outfile", p.cacert},
        log));
    FERRY_TRY(certtool({"--generate-privkey", "--key-type=ecdsa", "--outfile", p.key}, log));
    FERRY_TRY(certtool({"--generate-certificate", "--load-privkey", p.key, "--load-ca-certificate", p.cacert,
                        "--load-ca-privkey", ca_key, "--template", file("cert.tmpl"), "--outfile", p.cert},
                       log));
    return {};
  }();
  ::umask(old);
  FERRY_TRY(s);
  for (const auto& k : {ca_key, p.key})
    if (::chmod(k.c_str(), 0600) != 0) return fail_errno("chmod 0600 {}", k);
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
Result<double> bare_stream(uint64_t bytes, size_t chunk, const Pki* pki, std::span<const std::byte> pattern) {
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
    uint64_t left = bytes;
    while (left > 0) {
      size_t n = std::min<uint64_t>(left, chunk);
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
  while (s && sent < bytes) {
    size_t n = std::min<uint64_t>(bytes - sent, chunk);
    s = (*t)->write_all(pattern.subspan(sent % pattern.size(), n));
    sent += n;
  }
  if (s) s = (*t)->close();
  receiver.join();
  if (!s) return fail(s.error());
  if (!receiver_status) return fail(receiver_status.error());
  return std::chrono::duration<double>(received_all - start).count();
}

Result<int> ServerProcess::wait() {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return fail_errno("waitpid");
  pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ServerProcess::~ServerProcess() {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

Result<ServerProcess> start_page_server(const std::string& ferry, const std::string& images, const Pki* pki) {
  ServerProcess server;
  // A free port: bind 0, note it, close (the server binds it a moment later).
  server.port = FERRY_TRY(TcpListener::listen_on("127.0.0.1", 0)).port();
  int p[2];
  if (::pipe(p) != 0) return fail_errno("pipe");
  std::vector<std::string> args{ferry, "page-server", "-D", images, "--address", "127.0.0.1", "--port",
                                std::to_string(server.port), "--status-fd", std::to_string(p[1]), "-v1"};
  if (pki) args.insert(args.end(), {"--tls", "--tls-cacert", pki->cacert, "--tls-cert", pki->cert, "--tls-key", pki->key});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  server.log = images + ".log";
  posix_spawn_file_actions_addopen(&fa, 1, server.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawn(&server.pid, ferry.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  if (rc != 0) {
    ::close(p[0]);
    return fail(Error::from_errno(rc, "cannot start " + ferry));
  }
  pollfd pf{p[0], POLLIN, 0};
  char ready = 1;
  bool ok = ::poll(&pf, 1, 20000) == 1 && ::read(p[0], &ready, 1) == 1 && ready == 0;
  ::close(p[0]);
  if (!ok) return fail("ferry page-server did not become ready (see {})", server.log);
  return server;
}

std::vector<std::byte> make_pattern(size_t size) {
  std::vector<std::byte> pattern(size);
  for (size_t i = 0; i < pattern.size() / 8; ++i) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
    std::memcpy(pattern.data() + i * 8, &x, 8);
  }
  return pattern;
}

double gbps(uint64_t bytes, double s) { return s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0; }

}  // namespace ferry::bench
