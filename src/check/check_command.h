#pragma once

#include "base/error.h"
#include "cli/options.h"

namespace ferry {

// `ferry check [--json]`: prints the probe table; 0 if dump and restore can
// work on this kernel, 1 otherwise.
Result<int> run_check_command(const Options& options);

}  // namespace ferry
