// Turns argv into one Options value, with CRIU's spellings: `ferry COMMAND
// [options]`, short and long forms, `--opt value` and `--opt=value`, `no-`
// negations of boolean options, and value checks.
#pragma once

#include <string>
#include <vector>

#include "cli/options.h"

namespace ferry {

struct ParserConfig {
  // Commands this binary carries out; any other word is "unknown command".
  std::vector<Command> accepted;
  // Whether TLS was compiled in; without it --tls is an error.
  bool tls_built_in = true;
  // Prefix of the default TLS file paths (/etc normally).
  std::string sysconfdir = "/etc";
};

struct ParsedCommandLine {
  enum class Outcome {
    kRun,      // options holds what to do
    kHelp,     // text holds the help; exit 0
    kVersion,  // print the version; exit 0
    kError,    // text holds the message; exit 1
  };
  Outcome outcome = Outcome::kError;
  Options options;
  std::string text;
};

ParsedCommandLine parse_command_line(const std::vector<std::string>& args, const ParserConfig& config);

}  // namespace ferry
