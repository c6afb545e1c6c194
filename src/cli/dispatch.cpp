#include "cli/dispatch.h"

#include <cstdio>

#include "base/log.h"
#include "build_config.h"
#include "check/check_command.h"
#include "cli/command_line.h"
#include "cli/version.h"
#include "dump/dump_command.h"
#include "pageserver/page_server_command.h"
#include "restore/restore_command.h"

namespace ferry {
namespace {

const Logger kLog{"ferry"};

// Commands this build carries out. The others are parsed in tests but
// rejected here as unknown until their work lands.
const std::vector<Command> kAcceptedCommands = {Command::kCheck, Command::kPageServer, Command::kDump,
                                                   Command::kRestore};

Result<int> run_command(const Options& o) {
  switch (o.command) {
    case Command::kCheck: return run_check_command(o);
    case Command::kPageServer: return run_page_server_command(o);
    case Command::kDump: return run_dump_command(o);
    case Command::kRestore: return run_restore_command(o);
    default: break;
  }
  return fail("unknown command '{}'", command_name(o.command));
}

}  // namespace

int run_ferry(const std::vector<std::string>& args) {
  ParserConfig config{kAcceptedCommands, tls_built_in(), FERRY_SYSCONFDIR};
  ParsedCommandLine parsed = parse_command_line(args, config);
  switch (parsed.outcome) {
    case ParsedCommandLine::Outcome::kHelp:
      std::fputs(parsed.text.c_str(), stdout);
      return 0;
    case ParsedCommandLine::Outcome::kVersion:
      std::fputs(version_text().c_str(), stdout);
      return 0;
    case ParsedCommandLine::Outcome::kError:
      std::fprintf(stderr, "ferry: %s\n", parsed.text.c_str());
      return 1;
    case ParsedCommandLine::Outcome::kRun:
      break;
  }
  const Options& o = parsed.options;
  if (Status s = log::configure({o.verbosity, o.log_file == "-" ? o.log_file : o.in_work_dir(o.log_file)}); !s) {
    std::fprintf(stderr, "ferry: %s\n", s.error().message().c_str());
    return 1;
  }
  kLog.info("ferry {} {}", FERRY_VERSION, command_name(o.command));
  Result<int> rc = run_command(o);
  if (!rc) {
    kLog.error("{} failed: {}", command_name(o.command), rc.error().message());
    if (log::writes_to_file()) {
      // log::write already copied the line to stderr.
    } else if (!log::enabled(LogLevel::kError)) {
      std::fprintf(stderr, "ferry: %s failed: %s\n", command_name(o.command), rc.error().message().c_str());
    }
    return 1;
  }
  return *rc;
}

}  // namespace ferry
