// `ferry restore -D DIR [-d] [--pidfile FILE] [-j] [--display-stats]`: brings
// a dumped process back with its PID. Without -d Ferry stays its parent and
// exits with its exit status (128 + signal when killed); with -d it exits 0
// once the process runs.
#pragma once

#include "base/error.h"
#include "cli/options.h"

namespace ferry {

Result<int> run_restore_command(const Options& options);

}  // namespace ferry
