#pragma once

#include <string>
#include <vector>

namespace ferry {

// Parses the command line, runs the command, prints any error once, and
// returns the process exit code.
int run_ferry(const std::vector<std::string>& args);

}  // namespace ferry
