#include "net/plain_transport.h"

#include <sys/socket.h>

namespace ferry {

Result<std::unique_ptr<PlainTransport>> PlainTransport::create(TcpConnection connection, std::chrono::seconds io_timeout) {
  FERRY_TRY(set_io_timeout(connection.fd.get(), io_timeout));
  return std::unique_ptr<PlainTransport>(new PlainTransport(std::move(connection), io_timeout));
}

Status PlainTransport::write_all(std::span<const std::byte> data) {
  if (!fd_) return fail("send to {}: connection already closed", peer_);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return fail("send to {}: peer stalled, nothing accepted for {} s", peer_, timeout_.count());
      return fail_errno("send to {}", peer_);
    }
    done += static_cast<size_t>(n);
    sent_any_ = true;
  }
  return {};
}

// Reads what is available into data[done_before...]; 0 means end of stream.
Result<size_t> PlainTransport::read_some(std::span<std::byte> data, size_t done_before, size_t wanted) {
  for (;;) {
    ssize_t n = ::recv(fd_.get(), data.data() + done_before, data.size() - done_before, 0);
    if (n > 0) received_any_ = true;
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (sent_any_ && !received_any_ && errno == ECONNRESET)
      return fail("receive from {}: connection reset before the peer sent anything "
                  "(does it expect TLS? --tls must be given on both sides)",
                  peer_);
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return fail("receive from {}: peer stalled, nothing arrived for {} s ({} of {} bytes read)", peer_,
                  timeout_.count(), done_before, wanted);
    return fail_errno("receive from {}", peer_);
  }
}

Result<bool> PlainTransport::read_exact_or_end(std::span<std::byte> data) {
  if (!fd_) return fail("receive from {}: connection already closed", peer_);
  size_t done = 0;
  while (done < data.size()) {
    size_t n = FERRY_TRY(read_some(data, done, data.size()));
    if (n == 0) {
      if (done == 0 && sent_any_ && !received_any_)
        return fail("receive from {}: connection closed before the peer sent anything "
                    "(does it expect TLS? --tls must be given on both sides)",
                    peer_);
      if (done == 0) return false;
      return fail("receive from {}: connection closed after {} of {} bytes", peer_, done, data.size());
    }
    done += n;
  }
  return true;
}

Status PlainTransport::read_exact(std::span<std::byte> data) {
  bool got = FERRY_TRY(read_exact_or_end(data));
  if (!got) return fail("receive from {}: connection closed by the peer before {} expected bytes", peer_, data.size());
  return {};
}

Status PlainTransport::close() {
  if (!fd_) return {};
  ::shutdown(fd_.get(), SHUT_WR);
  fd_.reset();
  return {};
}

void PlainTransport::abort() { fd_.reset(); }

}  // namespace ferry
