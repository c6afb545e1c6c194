// Small file I/O helpers over raw fds, with errors that say what was read.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/error.h"

namespace ferry {

// Fills all of `out` from `fd` at `offset` (pread, retried on EINTR and
// short reads). Fails, naming `what` and the offset, on an error or if the
// file ends first.
Status pread_exact(int fd, uint64_t offset, std::span<std::byte> out, std::string_view what);

}  // namespace ferry
