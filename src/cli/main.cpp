#include <string>
#include <vector>

#include "cli/dispatch.h"

int main(int argc, char** argv) { return ferry::run_ferry(std::vector<std::string>(argv, argv + argc)); }
