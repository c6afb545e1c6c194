// `ferry page-server`: listens, serves one session (storing pages, or with
// --lazy-pages serving them), exits 0 after a clean CLOSE.
#pragma once

#include "base/error.h"
#include "cli/options.h"

namespace ferry {

Result<int> run_page_server_command(const Options& options);

}  // namespace ferry
