#include "net/plain_transport.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>

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

namespace {

// The first bytes of a TLS record (handshake or alert, SSL 3.0 .. TLS 1.3
// record versions). No page-server message or reply starts like this.
bool looks_like_tls_record(std::span<const std::byte> b) {
  if (b.size() < 3) return false;
  auto type = std::to_integer<unsigned>(b[0]), major = std::to_integer<unsigned>(b[1]),
       minor = std::to_integer<unsigned>(b[2]);
  return (type == 0x16 || type == 0x15) && major == 3 && minor <= 4;
}

}  // namespace

// Reads what is available into data[done_before...]; 0 means end of stream.
Result<size_t> PlainTransport::read_some(std::span<std::byte> data, size_t done_before, size_t wanted) {
  for (;;) {
    ssize_t n = ::recv(fd_.get(), data.data() + done_before, data.size() - done_before, 0);
    if (n > 0 && !received_any_ && looks_like_tls_record(data.subspan(done_before, static_cast<size_t>(n))))
      // Waiting for the rest of a "message" would only stall both sides until
      // the timeout: the peer waits for a TLS answer.
      return fail("receive from {}: the peer speaks TLS (is it running with --tls? "
                  "--tls must be given on both sides)",
                  peer_);
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

Status PlainTransport::read_exact_into_file(int out, const std::string& where, uint64_t bytes,
                                            std::span<std::byte> scratch) {
  if (!fd_) return fail("receive from {}: connection already closed", peer_);
  if (!pipe_read_) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe for receiving from {}", peer_);
    pipe_read_.reset(p[0]);
    pipe_write_.reset(p[1]);
    // 1 MiB is what an unprivileged process may ask for (fs.pipe-max-size);
    // if refused, the default size works, only with more calls.
    int size = ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    if (size < 0) size = ::fcntl(p[1], F_GETPIPE_SZ);
    if (size <= 0) return fail_errno("F_GETPIPE_SZ on the receive pipe");
    pipe_size_ = static_cast<size_t>(size);
  }
  uint64_t done = 0;
  while (done < bytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(bytes - done, pipe_size_));
    ssize_t in = ::splice(fd_.get(), nullptr, pipe_write_.get(), nullptr, want, SPLICE_F_MOVE);
    if (in < 0 && errno == EINTR) continue;
    if (in < 0 && errno == EINVAL && done == 0) return Transport::read_exact_into_file(out, where, bytes, scratch);
    if (in < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return fail("receive from {}: peer stalled, nothing arrived for {} s ({} of {} bytes read)", peer_,
                  timeout_.count(), done, bytes);
    if (in < 0) return fail_errno("receive from {}", peer_);
    if (in == 0) return fail("receive from {}: connection closed after {} of {} bytes", peer_, done, bytes);
    received_any_ = true;
    size_t left = static_cast<size_t>(in);
    while (left > 0) {
      ssize_t n = ::splice(pipe_read_.get(), nullptr, out, nullptr, left, SPLICE_F_MOVE);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail_errno("cannot write {}", where);
      left -= static_cast<size_t>(n);
    }
    done += static_cast<uint64_t>(in);
  }
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
