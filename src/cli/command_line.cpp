#include "cli/command_line.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <sstream>

#include <CLI/CLI.hpp>

namespace ferry {
namespace {

bool all_of_char(std::string_view s, char c) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [c](char x) { return x == c; });
}
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char x) { return x >= '0' && x <= '9'; });
}

// CRIU's -v forms (-v, -vv…, -vN, --verbosity, --verbosity=N) do not fit a
// standard parser: rewrite them into --verbosity=+K (add K) or --verbosity=N.
std::string normalise_verbosity_token(const std::string& arg) {
  if (arg == "--verbosity") return "--verbosity=+1";
  if (arg.size() >= 2 && arg[0] == '-' && arg[1] == 'v') {
    std::string_view rest = std::string_view(arg).substr(2);
    if (rest.empty()) return "--verbosity=+1";
    if (all_of_char(rest, 'v')) return "--verbosity=+" + std::to_string(rest.size() + 1);
    if (all_digits(rest)) return "--verbosity=" + std::string(rest);
  }
  return arg;
}

// Applies the --verbosity tokens in order to the default level.
bool apply_verbosity(const std::vector<std::string>& tokens, int& level, std::string& error) {
  for (const std::string& t : tokens) {
    std::string_view digits = t;
    bool add = !digits.empty() && digits.front() == '+';
    if (add) digits.remove_prefix(1);
    int value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (!all_digits(digits) || ec != std::errc() || end != digits.data() + digits.size()) {
      error = "--verbosity: invalid level '" + t + "' (expected a number, e.g. -v4)";
      return false;
    }
    level = add ? level + value : value;
  }
  level = std::clamp(level, 0, 4);
  return true;
}

// Everything a subcommand's options write into before post-parse checks.
struct Scratch {
  std::vector<std::string> verbosity;
  int port = 0;
  int tree = 0;
  std::string layout = "4.2";
  CLI::Option* cacert = nullptr;
  CLI::Option* cacrl = nullptr;
  CLI::Option* cert = nullptr;
  CLI::Option* key = nullptr;
  CLI::Option* tree_opt = nullptr;
};

void add_common(CLI::App& sub, Options& o, Scratch& s) {
  sub.add_option("-D,--images-dir", o.images_dir, "directory of the image files (must exist)")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();
  sub.add_option("-W,--work-dir", o.work_dir, "directory for the log, pidfile and stats (default: -D)")
      ->check(CLI::ExistingDirectory);
  sub.add_option("-o,--log-file", o.log_file, "log file, relative to -W ('-' = stdout; default: stderr)");
  sub.add_flag("--log-pid,!--no-log-pid", o.log_pid, "with -o: processes forked during restore log to FILE.PID");
  sub.add_option("-v,--verbosity", s.verbosity,
                 "log level: -v adds one, -vv two, ...; -vN or --verbosity=N sets N "
                 "(0 messages, 1 errors, 2 warnings (default), 3 info, 4 debug)")
      ->expected(1)
      ->allow_extra_args(false)
      ->take_all()
      ->type_name("[N]");
}

void add_stats(CLI::App& sub, Options& o) {
  sub.add_flag("--display-stats,!--no-display-stats", o.display_stats, "print statistics at the end");
}

void add_connection(CLI::App& sub, Options& o, Scratch& s, bool server) {
  sub.add_option("--address", o.address,
                 server ? "address to listen on: IPv4, IPv6 or host name (default: all IPv4 interfaces)"
                        : "page server to connect to: host name, IPv4 or IPv6 address");
  sub.add_option("--port", s.port, "TCP port (1-65535)")->check(CLI::Range(1, 65535));
  sub.add_option("--ps-socket", o.ps_socket, "use this inherited, connected socket instead of --address/--port")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--ps-layout", s.layout,
                 server ? "page-server header layout: 4.2 (32-byte headers), 4.1 (24-byte, CRIU <= 4.1.1) "
                          "or auto (detect from the first header; default)"
                        : "page-server header layout: 4.2 (32-byte headers, default) or 4.1 (24-byte, CRIU <= 4.1.1)")
      ->check(server ? CLI::IsMember({"4.2", "4.1", "auto"}) : CLI::IsMember({"4.2", "4.1"}));
  if (server) s.layout = "auto";
  sub.add_option("--io-timeout", o.io_timeout,
                 "seconds a connect, TLS handshake or single transfer may stall before it fails (0 = never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void add_tls(CLI::App& sub, Options& o, Scratch& s) {
  TlsOptions& t = o.tls;
  sub.add_flag("--tls,!--no-tls", t.enabled, "encrypt and authenticate the page-server connection with TLS");
  s.cacert = sub.add_option("--tls-cacert", t.cacert, "trust only the CAs in this PEM file "
                                                      "(default: system trust store plus $SYSCONFDIR/pki/CA/cacert.pem)")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  s.cacrl = sub.add_option("--tls-cacrl", t.cacrl, "certificate revocation list, PEM (default: $SYSCONFDIR/pki/CA/cacrl.pem if present)")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  s.cert = sub.add_option("--tls-cert", t.cert, "own certificate, PEM (default: $SYSCONFDIR/pki/criu/cert.pem)")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  s.key = sub.add_option("--tls-key", t.key, "own private key, PEM (default: $SYSCONFDIR/pki/criu/private/key.pem)")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub.add_flag("--tls-no-cn-verify", t.no_cn_verify, "do not check the peer's name against --address (chain, dates, CRL still checked)");
  sub.add_option("--tls-priority", t.priority, "GnuTLS priority string, e.g. NORMAL:-VERS-ALL:+VERS-TLS1.3 (default: library default)");
  sub.add_option("--tls-peer-name", t.peer_names, "accept only a peer whose certificate matches NAME (repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->take_all();
}

void add_daemon(CLI::App& sub, Options& o) {
  CLI::Option* d = sub.add_flag("-d,--daemon,!--no-daemon", o.detach, "fork into the background once ready");
  sub.add_option("--pidfile", o.pidfile, "write the daemon's PID here (created exclusively)");
  sub.add_option("--status-fd", o.status_fd, "write one zero byte to this fd once ready")
      ->check(CLI::NonNegativeNumber)
      ->excludes(d);
}

void add_dump(CLI::App& sub, Options& o, Scratch& s, bool pre_dump) {
  s.tree_opt = sub.add_option("-t,--tree", s.tree, "PID of the root of the tree to dump")
                   ->check(CLI::PositiveNumber)
                   ->required();
  sub.add_flag("-R,--leave-running", o.leave_running, "let the tasks run on after the dump");
  sub.add_flag("-s,--leave-stopped,!--no-leave-stopped", o.leave_stopped, "leave the tasks stopped after the dump");
  sub.add_flag("-j,--shell-job,!--no-shell-job", o.shell_job, "allow a root task that is not a session leader");
  sub.add_flag("--page-server,!--no-page-server", o.page_server, "send memory pages to the page server at --address/--port");
  sub.add_flag("--lazy-pages", o.lazy_pages, "leave lazy pages on this host and serve them on --address/--port");
  sub.add_flag("--track-mem,!--no-track-mem", o.track_mem, "track memory changes so the next dump sends only changed pages");
  sub.add_option("--prev-images-dir", o.prev_images_dir, "previous snapshot, relative to -D (incremental dump)");
  sub.add_flag("--auto-dedup,!--no-auto-dedup", o.auto_dedup, "punch pages written again out of the parent images");
  sub.add_option("--timeout", o.freeze_timeout, "seconds allowed to freeze the tree")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_flag("--stream,!--no-stream", o.stream, "exchange images through an image streamer");
  sub.add_option("--status-fd", o.status_fd, "with --lazy-pages: write one zero byte to this fd once listening")
      ->check(CLI::NonNegativeNumber);
  if (pre_dump) {
    sub.add_option("--pre-dump-mode", o.pre_dump_mode, "memory copy method: splice or read")
        ->check(CLI::IsMember({"splice", "read"}))
        ->capture_default_str();
  }
  add_stats(sub, o);
}

void add_restore(CLI::App& sub, Options& o, Scratch& s) {
  sub.add_flag("-d,--restore-detached,--daemon,!--no-restore-detached", o.detach,
               "exit once the tree runs (default: stay its parent until it exits)");
  sub.add_flag("-S,--restore-sibling", o.restore_sibling, "restore the root as a sibling of ferry (with -d)");
  sub.add_flag("--lazy-pages", o.lazy_pages, "leave lazy pages to a lazy-pages daemon on this host");
  sub.add_flag("-j,--shell-job,!--no-shell-job", o.shell_job, "as for dump");
  sub.add_flag("--auto-dedup,!--no-auto-dedup", o.auto_dedup, "punch restored pages out of the images");
  sub.add_option("--pidfile", o.pidfile, "write the restored root's PID here (created exclusively)");
  s.tree_opt = sub.add_option("-t,--tree", s.tree, "obsolete on restore, ignored");
  add_stats(sub, o);
}

struct CommandSpec {
  Command command;
  const char* description;
};

constexpr CommandSpec kCommands[] = {
    {Command::kDump, "checkpoint a process tree into images"},
    {Command::kPreDump, "copy a tree's memory while it keeps running (iterative migration)"},
    {Command::kRestore, "restore a process tree from images"},
    {Command::kPageServer, "receive pages from a remote dump (or serve them to lazy-pages)"},
    {Command::kLazyPages, "serve page faults of a lazy restore from a page server or images"},
    {Command::kCheck, "probe the kernel for every feature ferry relies on"},
};

void add_command_options(CLI::App& sub, Command c, Options& o, Scratch& s) {
  add_common(sub, o, s);
  switch (c) {
    case Command::kDump:
    case Command::kPreDump:
      add_dump(sub, o, s, c == Command::kPreDump);
      add_connection(sub, o, s, /*server=*/false);
      add_tls(sub, o, s);
      break;
    case Command::kRestore:
      add_restore(sub, o, s);
      break;
    case Command::kPageServer:
      add_connection(sub, o, s, /*server=*/true);
      add_daemon(sub, o);
      sub.add_flag("--lazy-pages", o.lazy_pages, "serve pages from the images in -D to a lazy-pages client");
      sub.add_option("--prev-images-dir", o.prev_images_dir, "previous snapshot, relative to -D");
      sub.add_flag("--auto-dedup,!--no-auto-dedup", o.auto_dedup, "punch received pages out of the parent images");
      add_tls(sub, o, s);
      break;
    case Command::kLazyPages:
      add_connection(sub, o, s, /*server=*/false);
      add_daemon(sub, o);
      sub.add_flag("--page-server,!--no-page-server", o.page_server, "fetch pages from the remote page server");
      add_tls(sub, o, s);
      break;
    case Command::kCheck:
      sub.add_flag("--json", o.json, "print the table as JSON");
      break;
  }
}

// Checks that span several options, after CLI11 has parsed the words.
bool finish(Options& o, const Scratch& s, const ParserConfig& config, std::string& error) {
  if (!apply_verbosity(s.verbosity, o.verbosity, error)) return false;
  o.port = static_cast<uint16_t>(s.port);
  o.tree = s.tree;
  o.ps_layout = s.layout == "4.1" ? PsLayout::kLegacy24 : s.layout == "auto" ? PsLayout::kAuto : PsLayout::kModern32;

  if (o.command == Command::kPreDump) {
    if (o.lazy_pages) {
      error = "Cannot pre-dump with --lazy-pages";
      return false;
    }
    o.track_mem = true;
    o.leave_running = true;
  }
  TlsOptions& t = o.tls;
  if (t.enabled && !config.tls_built_in) {
    error = "--tls: ferry was built without TLS support (NO_GNUTLS)";
    return false;
  }
  if (s.cacert) {
    t.cacert_given = s.cacert->count() > 0;
    t.cacrl_given = s.cacrl->count() > 0;
    t.cert_given = s.cert->count() > 0;
    t.key_given = s.key->count() > 0;
    const std::string& etc = config.sysconfdir;
    if (!t.cacert_given) t.cacert = etc + "/pki/CA/cacert.pem";
    if (!t.cacrl_given) t.cacrl = etc + "/pki/CA/cacrl.pem";
    if (!t.cert_given) t.cert = etc + "/pki/criu/cert.pem";
    if (!t.key_given) t.key = etc + "/pki/criu/private/key.pem";
    for (const std::string& name : t.peer_names) {
      if (name.empty()) {
        error = "--tls-peer-name: the name must not be empty";
        return false;
      }
    }
  }
  return true;
}

}  // namespace

ParsedCommandLine parse_command_line(const std::vector<std::string>& args, const ParserConfig& config) {
  ParsedCommandLine result;
  auto error = [&](std::string message) {
    result.outcome = ParsedCommandLine::Outcome::kError;
    result.text = std::move(message);
    return result;
  };

  CLI::App app{"Ferry: checkpoint/restore and secure migration of Linux processes", "ferry"};
  app.set_help_flag("-h,--help", "print this help and exit");
  bool version = false;
  app.add_flag("-V,--version", version, "print the version and exit");
  app.require_subcommand(0, 1);
  app.footer("Run 'ferry COMMAND --help' for the options of one command.");

  Options& o = result.options;
  // One scratch per command: each command's options write into their own.
  std::array<Scratch, std::size(kCommands)> scratch;
  for (size_t i = 0; i < std::size(kCommands); ++i) {
    const CommandSpec& spec = kCommands[i];
    if (std::find(config.accepted.begin(), config.accepted.end(), spec.command) == config.accepted.end()) continue;
    CLI::App* sub = app.add_subcommand(command_name(spec.command), spec.description);
    sub->callback([&o, c = spec.command] { o.command = c; });
    add_command_options(*sub, spec.command, o, scratch[i]);
  }

  // The command word comes first; anything else there is an unknown command.
  if (args.size() >= 2 && !args[1].empty() && args[1][0] != '-') {
    bool known = false;
    for (const CommandSpec& spec : kCommands) {
      bool accepted = std::find(config.accepted.begin(), config.accepted.end(), spec.command) != config.accepted.end();
      if (accepted && args[1] == command_name(spec.command)) known = true;
    }
    if (!known) return error("unknown command '" + args[1] + "' (run 'ferry --help' for the commands)");
  } else if (args.size() >= 2 && args[1] != "-h" && args[1] != "--help" && args[1] != "-V" && args[1] != "--version") {
    return error("missing command before '" + args[1] + "' (usage: ferry COMMAND [options])");
  }

  std::vector<std::string> words;
  words.reserve(args.size());
  for (const std::string& a : args) words.push_back(normalise_verbosity_token(a));
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());

  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    std::ostringstream out, err;
    app.exit(e, out, err);
    result.outcome = ParsedCommandLine::Outcome::kHelp;
    result.text = out.str();
    return result;
  } catch (const CLI::ParseError& e) {
    return error(e.what());
  }
  if (version) {
    result.outcome = ParsedCommandLine::Outcome::kVersion;
    return result;
  }
  if (app.get_subcommands().empty()) return error("missing command (run 'ferry --help' for the commands)");

  size_t chosen = 0;
  while (kCommands[chosen].command != o.command) ++chosen;
  std::string message;
  if (!finish(o, scratch[chosen], config, message)) return error(message);
  result.outcome = ParsedCommandLine::Outcome::kRun;
  return result;
}

}  // namespace ferry
