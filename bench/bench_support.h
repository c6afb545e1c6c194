// What the benchmarks share: a throwaway PKI made with certtool, Ferry
// client options, the bare Transport stream every figure is compared with,
// and a real `ferry page-server` process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/options.h"

namespace ferry::bench {

struct Pki {
  std::string dir, cacert, cert, key;
};

// A CA and one certificate for 127.0.0.1/localhost used by both ends, in BASE/pki.
Result<Pki> make_pki(const std::string& base);
// Options of a client (dump) connecting to 127.0.0.1:PORT; TLS when pki is given.
Options client_options(const Pki* pki, uint16_t port);
// Streams `bytes` (cycling through `pattern`, in calls of `chunk`) through
// Ferry's Transport to a receiver thread that only reads; returns seconds.
Result<double> bare_stream(uint64_t bytes, size_t chunk, const Pki* pki, std::span<const std::byte> pattern);
// Bytes that differ from word to word.
std::vector<std::byte> make_pattern(size_t size);
double gbps(uint64_t bytes, double seconds);

// A real `ferry page-server`, ready to accept; killed if still running when destroyed.
struct ServerProcess {
  pid_t pid = -1;
  uint16_t port = 0;
  std::string log;
  ServerProcess() = default;
  ServerProcess(ServerProcess&& o) noexcept : pid(o.pid), port(o.port), log(std::move(o.log)) { o.pid = -1; }
  ServerProcess& operator=(ServerProcess&&) = delete;
  Result<int> wait();
  ~ServerProcess();
};

// Starts FERRY page-server -D IMAGES on 127.0.0.1 (TLS with pki), its output
// in IMAGES.log, and waits until it listens.
Result<ServerProcess> start_page_server(const std::string& ferry, const std::string& images, const Pki* pki);

}  // namespace ferry::bench
