#include "net/tcp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

#include "base/log.h"

namespace ferry {
namespace {

const Logger kLog{"net"};

std::string format_address(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return fmt::format("{}:{}", host, port);
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return fmt::format("[{}]:{}", host, port);
  }
  return "?";
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

Result<AddrInfoList> resolve(const std::string& address, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(address.empty() ? nullptr : address.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) return fail("cannot resolve '{}': {}", address, gai_strerror(rc));
  return AddrInfoList(list);
}

// Waits until fd is ready for `events`; false on timeout.
Result<bool> wait_ready(int fd, short events, std::chrono::seconds timeout) {
  pollfd p{fd, events, 0};
  int ms = timeout.count() == 0 ? -1 : static_cast<int>(timeout.count() * 1000);
  for (;;) {
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail_errno("poll");
    return r > 0;
  }
}

Result<UniqueFd> connect_one(const addrinfo* a, std::chrono::seconds timeout, const std::string& name) {
  UniqueFd fd(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
  if (!fd) return fail_errno("socket for {}", name);
  if (connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return fail_errno("connect to {}", name);
    bool ready = FERRY_TRY(wait_ready(fd.get(), POLLOUT, timeout));
    if (!ready) return fail("connect to {}: timed out after {} s", name, timeout.count());
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(Error::from_errno(err, fmt::format("connect to {}", name)));
  }
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return fail_errno("fcntl {}", name);
  return fd;
}

}  // namespace

bool is_ip_literal(const std::string& address) {
  in6_addr buf;
  return inet_pton(AF_INET, address.c_str(), &buf) == 1 || inet_pton(AF_INET6, address.c_str(), &buf) == 1;
}

Status set_io_timeout(int fd, std::chrono::seconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
    return fail_errno("setsockopt SO_RCVTIMEO/SO_SNDTIMEO");
  return {};
}

Result<TcpListener> TcpListener::listen_on(const std::string& address, uint16_t port) {
  // CRIU's default is all IPv4 interfaces.
  std::string host = address.empty() ? "0.0.0.0" : address;
  AddrInfoList list = FERRY_TRY(resolve(host, port, true));
  const addrinfo* a = list.get();
  TcpListener l;
  l.fd_.reset(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
  if (!l.fd_) return fail_errno("socket");
  int one = 1;
  setsockopt(l.fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  std::string name = format_address(a->ai_addr);
  if (bind(l.fd_.get(), a->ai_addr, a->ai_addrlen) != 0) return fail_errno("bind {}", name);
  if (::listen(l.fd_.get(), 1) != 0) return fail_errno("listen on {}", name);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (getsockname(l.fd_.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) return fail_errno("getsockname");
  l.local_ = format_address(reinterpret_cast<sockaddr*>(&local));
  l.port_ = ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  kLog.info("listening on {}", l.local_);
  return l;
}

Result<TcpConnection> TcpListener::accept_one(std::chrono::seconds timeout) {
  bool ready = FERRY_TRY(wait_ready(fd_.get(), POLLIN, timeout));
  if (!ready) return fail("no connection on {} within {} s", local_, timeout.count());
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  TcpConnection c;
  c.fd.reset(accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  if (!c.fd) return fail_errno("accept on {}", local_);
  c.peer = format_address(reinterpret_cast<sockaddr*>(&peer));
  int one = 1;
  setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  kLog.info("accepted a connection from {}", c.peer);
  return c;
}

Result<TcpConnection> tcp_connect(const std::string& address, uint16_t port, std::chrono::seconds timeout) {
  if (address.empty()) return fail("no --address to connect to");
  if (port == 0) return fail("no --port to connect to");
  AddrInfoList list = FERRY_TRY(resolve(address, port, false));
  std::string errors;
  for (const addrinfo* a = list.get(); a; a = a->ai_next) {
    std::string name = format_address(a->ai_addr);
    Result<UniqueFd> fd = connect_one(a, timeout, name);
    if (fd) {
      int one = 1;
      setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      kLog.info("connected to {}", name);
      return TcpConnection{std::move(*fd), name};
    }
    kLog.debug("{}", fd.error().message());
    if (!errors.empty()) errors += "; ";
    errors += fd.error().message();
  }
  return fail("cannot connect to {} port {}: {}", address, port, errors);
}

}  // namespace ferry
