// `ferry dump`: freezes a process, writes its images (memory into -D or to a
// page server), then kills it (default), leaves it running (-R) or stopped
// (-s). A failed dump leaves it running exactly as it was.
#pragma once

#include "base/error.h"
#include "cli/options.h"

namespace ferry {

Result<int> run_dump_command(const Options& options);

}  // namespace ferry
