// A byte stream between two peers: plain TCP or TLS. Protocols use only this
// interface and never know which one they run over.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "base/error.h"

namespace ferry {

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends all of `data`. Each call starts a new TLS record and cuts records at
  // the maximum record size, so a header sent on its own stays in its own
  // record and page data records end on every 16 KiB boundary of the call.
  virtual Status write_all(std::span<const std::byte> data) = 0;

  // Fills all of `data`. Fails if the stream ends first, cleanly or not.
  virtual Status read_exact(std::span<std::byte> data) = 0;

  // Receives exactly `bytes` bytes and appends them to the file `fd` (at its
  // offset); `where` names the file for messages. The default reads through
  // `scratch`; a transport may move the bytes without copying them through
  // user space.
  virtual Status read_exact_into_file(int fd, const std::string& where, uint64_t bytes, std::span<std::byte> scratch);

  // Like read_exact, but a clean end of the stream before the first byte
  // (FIN for TCP, close_notify for TLS) returns false instead of failing.
  virtual Result<bool> read_exact_or_end(std::span<std::byte> data) = 0;

  // Ends the session cleanly: for TLS, sends close_notify and waits for the
  // peer's (bounded by the I/O timeout); then closes the socket.
  virtual Status close() = 0;

  // Tells the peer nothing more is coming and drops the connection at once
  // (after an error): no waiting.
  virtual void abort() = 0;

  // Who is at the other end, e.g. "127.0.0.1:4000", for messages.
  virtual const std::string& peer() const = 0;

  // "TLS1.3 AES-256-GCM" or "plain TCP", for the log.
  virtual std::string description() const = 0;
};

inline std::span<const std::byte> as_bytes_of(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace ferry
