// The open file descriptors of a process: for each /proc/PID/fd/N what it
// points to and, from /proc/PID/fdinfo/N, its position, open flags and mount.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ferry {

struct OpenFd {
  int fd = -1;
  // The readlink target: a path (" (deleted)" when unlinked), or
  // "pipe:[INODE]", "socket:[INODE]", "anon_inode:[eventfd]", ...
  std::string target;
  uint64_t pos = 0;    // file position
  uint32_t flags = 0;  // open flags (O_ACCMODE, O_APPEND, O_NONBLOCK, ...; O_CLOEXEC for close-on-exec)
  int mnt_id = 0;      // mount ID, as in /proc/PID/mountinfo
  uint64_t inode = 0;  // "ino:" (Linux 5.14+; 0 before)
};

// The common fields of one fdinfo file (type-specific lines are skipped).
Result<OpenFd> parse_fdinfo(std::string_view text);

// Every open fd, ascending. An fd closed while the listing is read is left
// out (the process is normally frozen, so that does not happen).
Result<std::vector<OpenFd>> list_open_fds(pid_t pid);

}  // namespace ferry
