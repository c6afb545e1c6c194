#include "cli/options.h"

namespace ferry {

const char* command_name(Command c) {
  switch (c) {
    case Command::kDump: return "dump";
    case Command::kPreDump: return "pre-dump";
    case Command::kRestore: return "restore";
    case Command::kPageServer: return "page-server";
    case Command::kLazyPages: return "lazy-pages";
    case Command::kCheck: return "check";
  }
  return "?";
}

}  // namespace ferry
