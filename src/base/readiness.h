// How a server tells whoever started it that it is ready, as CRIU does:
// with -d/--daemon it forks, the parent writes --pidfile and exits 0; then
// one zero byte goes to --status-fd, which is closed.
#pragma once

#include <string>

#include "base/error.h"

namespace ferry {

struct ReadinessSettings {
  bool daemon = false;
  std::string pidfile;  // empty: none; created exclusively, mode 0600
  int status_fd = -1;   // -1: none
};

// In the daemon case returns only in the child (the parent exits 0 once the
// pidfile is written). Fails without forking if the pidfile cannot be made.
Status signal_ready(const ReadinessSettings& settings);

// Writes "PID\n" into a new file (fails if it exists).
Status write_pid_file(const std::string& path, pid_t pid);

}  // namespace ferry
