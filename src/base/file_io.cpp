#include "base/file_io.h"

#include <unistd.h>

namespace ferry {

Status pread_exact(int fd, uint64_t offset, std::span<std::byte> out, std::string_view what) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read {} at {:#x}", what, offset + done);
    if (n == 0) return fail("{} ends at {:#x}", what, offset + done);
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace ferry
