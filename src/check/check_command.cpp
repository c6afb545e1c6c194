#include "check/check_command.h"

#include "check/kernel_probes.h"

namespace ferry {

Result<int> run_check_command(const Options&) { return run_kernel_probes().empty() ? 1 : 0; }

}  // namespace ferry
