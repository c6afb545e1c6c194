// TCP set-up: listening (IPv4, IPv6, host names) and connecting, each
// bounded by a timeout, with peers named for messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace ferry {

struct TcpConnection {
  UniqueFd fd;
  std::string peer;  // "host:port" or "[v6]:port"
};

class TcpListener {
 public:
  // Binds and listens. An empty address means all IPv4 interfaces (as CRIU);
  // a host name is resolved and its first address used. Port 0 lets the
  // kernel choose.
  static Result<TcpListener> listen_on(const std::string& address, uint16_t port);

  // Waits for one connection; timeout 0 waits forever.
  Result<TcpConnection> accept_one(std::chrono::seconds timeout);

  uint16_t port() const { return port_; }
  const std::string& local() const { return local_; }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::string local_;
};

// Resolves `address` (name or literal) and tries each result in turn; each
// attempt is bounded by `timeout` (0: the kernel's own).
Result<TcpConnection> tcp_connect(const std::string& address, uint16_t port, std::chrono::seconds timeout);

// Makes a blocked send or receive on `fd` fail with EAGAIN after `timeout`
// (0: never).
Status set_io_timeout(int fd, std::chrono::seconds timeout);

// True if `address` is an IPv4 or IPv6 literal (not a host name).
bool is_ip_literal(const std::string& address);

}  // namespace ferry
