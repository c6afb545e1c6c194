#include "net/transport.h"

#include <unistd.h>

#include <algorithm>

namespace ferry {

Status Transport::read_exact_into_file(int fd, const std::string& where, uint64_t bytes, std::span<std::byte> scratch) {
  if (scratch.empty()) return fail("receive from {}: no buffer to receive into", peer());
  uint64_t done = 0;
  while (done < bytes) {
    size_t size = static_cast<size_t>(std::min<uint64_t>(bytes - done, scratch.size()));
    std::span<std::byte> piece = scratch.first(size);
    FERRY_TRY(read_exact(piece));
    while (!piece.empty()) {
      ssize_t n = ::write(fd, piece.data(), piece.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("cannot write {}", where);
      piece = piece.subspan(static_cast<size_t>(n));
    }
    done += size;
  }
  return {};
}

}  // namespace ferry
