// Transport over a bare TCP socket.
#pragma once

#include <chrono>

#include "net/tcp.h"
#include "net/transport.h"

namespace ferry {

class PlainTransport final : public Transport {
 public:
  // Takes the connection; blocked reads and writes fail after `io_timeout`
  // (0: never).
  static Result<std::unique_ptr<PlainTransport>> create(TcpConnection connection, std::chrono::seconds io_timeout);

  Status write_all(std::span<const std::byte> data) override;
  Status read_exact(std::span<std::byte> data) override;
  // splice(2): socket -> pipe -> file, the bytes never copied to user space.
  Status read_exact_into_file(int fd, const std::string& where, uint64_t bytes, std::span<std::byte> scratch) override;
  Result<bool> read_exact_or_end(std::span<std::byte> data) override;
  Status close() override;
  void abort() override;
  const std::string& peer() const override { return peer_; }
  std::string description() const override { return "plain TCP"; }

 private:
  PlainTransport(TcpConnection c, std::chrono::seconds t) : fd_(std::move(c.fd)), peer_(std::move(c.peer)), timeout_(t) {}
  Result<size_t> read_some(std::span<std::byte> data, size_t done_before, size_t wanted);

  UniqueFd fd_;
  UniqueFd pipe_read_, pipe_write_;  // for read_exact_into_file, made on first use
  size_t pipe_size_ = 0;
  std::string peer_;
  std::chrono::seconds timeout_;
  // A peer that takes our bytes and hangs up without a word usually expects
  // TLS: these let the error say so.
  bool sent_any_ = false;
  bool received_any_ = false;
};

}  // namespace ferry
