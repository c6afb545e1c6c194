// The CRIU-compatible command line: every rule of cli.md that ferry parses.
#include "cli/command_line.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using Outcome = ParsedCommandLine::Outcome;

const std::vector<Command> kAll = {Command::kDump,       Command::kPreDump,   Command::kRestore,
                                   Command::kPageServer, Command::kLazyPages, Command::kCheck};

ParsedCommandLine parse(std::vector<std::string> words, bool tls = true) {
  words.insert(words.begin(), "ferry");
  return parse_command_line(words, ParserConfig{kAll, tls, "/etc"});
}

Options run_options(std::vector<std::string> words) {
  ParsedCommandLine p = parse(std::move(words));
  EXPECT_EQ(p.outcome, Outcome::kRun) << p.text;
  return p.options;
}

void expect_error(std::vector<std::string> words, const std::string& fragment) {
  ParsedCommandLine p = parse(words);
  EXPECT_EQ(p.outcome, Outcome::kError) << "accepted: " << testing::PrintToString(words);
  EXPECT_NE(p.text.find(fragment), std::string::npos) << "message: " << p.text;
}

TEST(CommandLine, CommandWordSelectsTheCommand) {
  EXPECT_EQ(run_options({"check"}).command, Command::kCheck);
  EXPECT_EQ(run_options({"restore"}).command, Command::kRestore);
  EXPECT_EQ(run_options({"page-server", "--port", "1234"}).command, Command::kPageServer);
  EXPECT_EQ(run_options({"lazy-pages"}).command, Command::kLazyPages);
  EXPECT_EQ(run_options({"dump", "-t", "1"}).command, Command::kDump);
  EXPECT_EQ(run_options({"pre-dump", "-t", "1"}).command, Command::kPreDump);
}

TEST(CommandLine, UnknownOrMissingCommandIsAnError) {
  expect_error({"frobnicate"}, "unknown command 'frobnicate'");
  expect_error({}, "missing command");
  expect_error({"-v4"}, "missing command before '-v4'");
  expect_error({"-D", "/tmp", "check"}, "missing command before '-D'");
}

TEST(CommandLine, CommandsNotAcceptedByTheBuildAreUnknown) {
  std::vector<std::string> words{"ferry", "dump", "-t", "1"};
  ParsedCommandLine p = parse_command_line(words, ParserConfig{{Command::kCheck}, true, "/etc"});
  EXPECT_EQ(p.outcome, Outcome::kError);
  EXPECT_NE(p.text.find("unknown command 'dump'"), std::string::npos) << p.text;
}

TEST(CommandLine, UnknownOptionIsNamed) {
  expect_error({"check", "--frobnicate"}, "--frobnicate");
  expect_error({"dump", "-t", "1", "-Q"}, "-Q");
  // Options belong to their command: --tree means nothing to check.
  expect_error({"check", "-t", "1"}, "-t");
}

TEST(CommandLine, HelpAndVersion) {
  ParsedCommandLine top = parse({"--help"});
  EXPECT_EQ(top.outcome, Outcome::kHelp);
  for (const char* c : {"dump", "pre-dump", "restore", "page-server", "lazy-pages", "check"})
    EXPECT_NE(top.text.find(c), std::string::npos) << c;
  ParsedCommandLine dump = parse({"dump", "--help"});
  EXPECT_EQ(dump.outcome, Outcome::kHelp);
  for (const char* o : {"--tree", "--leave-running", "--page-server", "--tls-cacert", "--tls-no-cn-verify", "--port"})
    EXPECT_NE(dump.text.find(o), std::string::npos) << o;
  EXPECT_EQ(parse({"-h"}).outcome, Outcome::kHelp);
  EXPECT_EQ(parse({"-V"}).outcome, Outcome::kVersion);
  EXPECT_EQ(parse({"--version"}).outcome, Outcome::kVersion);
}

TEST(CommandLine, Defaults) {
  Options o = run_options({"page-server"});
  EXPECT_EQ(o.images_dir, ".");
  EXPECT_EQ(o.effective_work_dir(), ".");
  EXPECT_EQ(o.verbosity, 2);
  EXPECT_EQ(o.port, 0);
  EXPECT_TRUE(o.address.empty());
  EXPECT_FALSE(o.tls.enabled);
  EXPECT_EQ(o.tls.cacert, "/etc/pki/CA/cacert.pem");
  EXPECT_EQ(o.tls.cacrl, "/etc/pki/CA/cacrl.pem");
  EXPECT_EQ(o.tls.cert, "/etc/pki/criu/cert.pem");
  EXPECT_EQ(o.tls.key, "/etc/pki/criu/private/key.pem");
  EXPECT_FALSE(o.tls.cacert_given);
  EXPECT_EQ(o.io_timeout, 60u);
  Options d = run_options({"dump", "-t", "42"});
  EXPECT_EQ(d.tree, 42);
  EXPECT_FALSE(d.leave_running);
  EXPECT_EQ(d.freeze_timeout, 10u);
  EXPECT_EQ(d.ps_layout, PsLayout::kModern32);
  EXPECT_EQ(o.ps_layout, PsLayout::kAuto);
  EXPECT_EQ(run_options({"page-server", "--ps-layout", "4.1"}).ps_layout, PsLayout::kLegacy24);
  EXPECT_EQ(run_options({"lazy-pages"}).ps_layout, PsLayout::kModern32);
}

TEST(CommandLine, SysconfdirPrefixesDefaultTlsPaths) {
  std::vector<std::string> words{"ferry", "page-server"};
  ParsedCommandLine p = parse_command_line(words, ParserConfig{kAll, true, "/opt/etc"});
  ASSERT_EQ(p.outcome, Outcome::kRun);
  EXPECT_EQ(p.options.tls.cert, "/opt/etc/pki/criu/cert.pem");
}

TEST(CommandLine, ShortLongAndEqualsFormsAgree) {
  for (auto words : std::vector<std::vector<std::string>>{
           {"dump", "-t", "7", "-D", "/tmp"},
           {"dump", "--tree", "7", "--images-dir", "/tmp"},
           {"dump", "--tree=7", "--images-dir=/tmp"},
           {"dump", "-t7", "-D/tmp"}}) {
    Options o = run_options(words);
    EXPECT_EQ(o.tree, 7) << testing::PrintToString(words);
    EXPECT_EQ(o.images_dir, "/tmp") << testing::PrintToString(words);
  }
}

TEST(CommandLine, Verbosity) {
  EXPECT_EQ(run_options({"check", "-v"}).verbosity, 3);
  EXPECT_EQ(run_options({"check", "-vv"}).verbosity, 4);
  EXPECT_EQ(run_options({"check", "-vvvvvv"}).verbosity, 4);
  EXPECT_EQ(run_options({"check", "-v0"}).verbosity, 0);
  EXPECT_EQ(run_options({"check", "-v1"}).verbosity, 1);
  EXPECT_EQ(run_options({"check", "-v4"}).verbosity, 4);
  EXPECT_EQ(run_options({"check", "--verbosity=1"}).verbosity, 1);
  EXPECT_EQ(run_options({"check", "--verbosity"}).verbosity, 3);
  EXPECT_EQ(run_options({"check", "-v0", "-v"}).verbosity, 1);
  expect_error({"check", "-vx"}, "--verbosity");
  expect_error({"check", "--verbosity=loud"}, "loud");
  // As in CRIU the level must be attached: "-v 4" leaves a stray word.
  expect_error({"check", "-v", "4"}, "4");
}

TEST(CommandLine, PortMustBeOneTo65535) {
  EXPECT_EQ(run_options({"page-server", "--port", "1"}).port, 1);
  EXPECT_EQ(run_options({"page-server", "--port=65535"}).port, 65535);
  expect_error({"page-server", "--port", "0"}, "--port");
  expect_error({"page-server", "--port", "65536"}, "--port");
  expect_error({"page-server", "--port", "-5"}, "--port");
  expect_error({"page-server", "--port", "http"}, "--port");
  expect_error({"dump", "-t", "1", "--port", "99999"}, "--port");
}

TEST(CommandLine, TreeIsRequiredAndPositiveForDump) {
  expect_error({"dump"}, "--tree");
  expect_error({"pre-dump"}, "--tree");
  expect_error({"dump", "-t", "0"}, "--tree");
  expect_error({"dump", "-t", "-3"}, "-t");
  expect_error({"dump", "-t", "abc"}, "--tree");
}

TEST(CommandLine, DirectoriesMustExist) {
  expect_error({"check", "-D", "/nonexistent/ferry"}, "/nonexistent/ferry");
  expect_error({"restore", "-W", "/nonexistent/work"}, "/nonexistent/work");
  expect_error({"restore", "-D", "/etc/passwd"}, "/etc/passwd");
  Options o = run_options({"restore", "-D", "/tmp", "-W", "/"});
  EXPECT_EQ(o.effective_work_dir(), "/");
}

TEST(CommandLine, BooleanOptionsHaveNoForms) {
  EXPECT_TRUE(run_options({"dump", "-t", "1", "--page-server"}).page_server);
  EXPECT_FALSE(run_options({"dump", "-t", "1", "--page-server", "--no-page-server"}).page_server);
  EXPECT_FALSE(run_options({"dump", "-t", "1", "--tls", "--no-tls"}).tls.enabled);
  EXPECT_TRUE(run_options({"dump", "-t", "1", "--shell-job"}).shell_job);
  EXPECT_FALSE(run_options({"dump", "-t", "1", "-j", "--no-shell-job"}).shell_job);
  EXPECT_TRUE(run_options({"restore", "--display-stats"}).display_stats);
  EXPECT_FALSE(run_options({"restore", "--display-stats", "--no-display-stats"}).display_stats);
  // CRIU has no negation for these.
  expect_error({"dump", "-t", "1", "--no-leave-running"}, "--no-leave-running");
  expect_error({"dump", "-t", "1", "--no-tls-no-cn-verify"}, "--no-tls-no-cn-verify");
}

TEST(CommandLine, RepeatedTlsFileOptionsTakeTheLastAsCriu) {
  Options o = run_options({"dump", "-t", "1", "--tls-cert", "/a.pem", "--tls-cert=/b.pem", "--tls-key", "/k1",
                           "--tls-key", "/k2"});
  EXPECT_EQ(o.tls.cert, "/b.pem");
  EXPECT_EQ(o.tls.key, "/k2");
  EXPECT_TRUE(o.tls.cert_given);
}

TEST(CommandLine, DumpOptions) {
  Options o = run_options({"dump", "-t", "5", "-R", "-j", "--page-server", "--address", "dst.example", "--port",
                           "12345", "--prev-images-dir", "../1", "--track-mem", "--auto-dedup", "--timeout", "3",
                           "--display-stats", "--ps-layout", "4.1"});
  EXPECT_TRUE(o.leave_running);
  EXPECT_TRUE(o.shell_job);
  EXPECT_TRUE(o.page_server);
  EXPECT_EQ(o.address, "dst.example");
  EXPECT_EQ(o.port, 12345);
  EXPECT_EQ(o.prev_images_dir, "../1");
  EXPECT_TRUE(o.track_mem);
  EXPECT_TRUE(o.auto_dedup);
  EXPECT_EQ(o.freeze_timeout, 3u);
  EXPECT_TRUE(o.display_stats);
  EXPECT_EQ(o.ps_layout, PsLayout::kLegacy24);
  EXPECT_TRUE(run_options({"dump", "-t", "5", "-s"}).leave_stopped);
  EXPECT_TRUE(run_options({"dump", "-t", "5", "--lazy-pages", "--port", "9"}).lazy_pages);
  expect_error({"dump", "-t", "5", "--ps-layout", "5.0"}, "--ps-layout");
  expect_error({"dump", "-t", "5", "--timeout", "-1"}, "--timeout");
}

TEST(CommandLine, PreDumpForcesTrackMemAndLeaveRunning) {
  Options o = run_options({"pre-dump", "-t", "5"});
  EXPECT_TRUE(o.track_mem);
  EXPECT_TRUE(o.leave_running);
  EXPECT_EQ(o.pre_dump_mode, "splice");
  EXPECT_EQ(run_options({"pre-dump", "-t", "5", "--pre-dump-mode", "read"}).pre_dump_mode, "read");
  expect_error({"pre-dump", "-t", "5", "--pre-dump-mode", "copy"}, "--pre-dump-mode");
  expect_error({"pre-dump", "-t", "5", "--lazy-pages"}, "Cannot pre-dump with --lazy-pages");
  // --pre-dump-mode belongs to pre-dump only.
  expect_error({"dump", "-t", "5", "--pre-dump-mode", "read"}, "--pre-dump-mode");
}

TEST(CommandLine, RestoreOptions) {
  Options o = run_options({"restore", "-d", "--pidfile", "root.pid", "-j", "--lazy-pages", "-S"});
  EXPECT_TRUE(o.detach);
  EXPECT_EQ(o.pidfile, "root.pid");
  EXPECT_TRUE(o.shell_job);
  EXPECT_TRUE(o.lazy_pages);
  EXPECT_TRUE(o.restore_sibling);
  EXPECT_TRUE(run_options({"restore", "--restore-detached"}).detach);
  // Options of other commands are not restore's.
  expect_error({"restore", "--tls"}, "--tls");
  expect_error({"restore", "--page-server"}, "--page-server");
}

TEST(CommandLine, PageServerAndLazyPagesOptions) {
  Options o = run_options({"page-server", "-D", "/tmp", "--address", "::1", "--port", "4000", "-d", "--pidfile",
                           "ps.pid", "--lazy-pages", "--prev-images-dir", "../1"});
  EXPECT_EQ(o.address, "::1");
  EXPECT_TRUE(o.detach);
  EXPECT_EQ(o.pidfile, "ps.pid");
  EXPECT_TRUE(o.lazy_pages);
  Options s = run_options({"page-server", "--status-fd", "5", "--ps-socket", "7"});
  EXPECT_EQ(s.status_fd, 5);
  EXPECT_EQ(s.ps_socket, 7);
  expect_error({"page-server", "--status-fd", "5", "-d"}, "--status-fd");
  expect_error({"page-server", "--status-fd", "-2"}, "--status-fd");
  Options l = run_options({"lazy-pages", "--page-server", "--address", "src", "--port", "1", "--daemon"});
  EXPECT_TRUE(l.page_server);
  EXPECT_TRUE(l.detach);
  EXPECT_EQ(l.address, "src");
}

TEST(CommandLine, TlsOptions) {
  Options o = run_options({"dump", "-t", "1", "--tls", "--tls-cacert", "ca.pem", "--tls-cacrl=crl.pem",
                           "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-no-cn-verify", "--tls-priority",
                           "NORMAL:-VERS-ALL:+VERS-TLS1.3", "--tls-peer-name", "a.example", "--tls-peer-name",
                           "b.example", "--io-timeout", "5"});
  EXPECT_TRUE(o.tls.enabled);
  EXPECT_EQ(o.tls.cacert, "ca.pem");
  EXPECT_TRUE(o.tls.cacert_given);
  EXPECT_EQ(o.tls.cacrl, "crl.pem");
  EXPECT_TRUE(o.tls.cacrl_given);
  EXPECT_EQ(o.tls.cert, "c.pem");
  EXPECT_EQ(o.tls.key, "k.pem");
  EXPECT_TRUE(o.tls.key_given);
  EXPECT_TRUE(o.tls.no_cn_verify);
  EXPECT_EQ(o.tls.priority, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
  EXPECT_EQ(o.tls.peer_names, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(o.io_timeout, 5u);
  expect_error({"page-server", "--tls-peer-name="}, "--tls-peer-name");
  // One value per occurrence: a second word is not swallowed.
  expect_error({"page-server", "--tls-peer-name", "a", "b"}, "b");
}

TEST(CommandLine, TlsWithoutGnuTlsIsAnError) {
  ParsedCommandLine p = parse({"page-server", "--tls"}, /*tls=*/false);
  EXPECT_EQ(p.outcome, Outcome::kError);
  EXPECT_NE(p.text.find("built without TLS support"), std::string::npos) << p.text;
  // The other TLS options are accepted and ignored, as in CRIU.
  EXPECT_EQ(parse({"page-server", "--tls-cert", "x.pem"}, false).outcome, Outcome::kRun);
}

TEST(CommandLine, LogOptions) {
  Options o = run_options({"check", "-o", "ferry.log", "--log-pid", "-W", "/tmp"});
  EXPECT_EQ(o.log_file, "ferry.log");
  EXPECT_TRUE(o.log_pid);
  EXPECT_EQ(o.effective_work_dir(), "/tmp");
}

TEST(CommandLine, CheckJson) {
  EXPECT_TRUE(run_options({"check", "--json"}).json);
  EXPECT_FALSE(run_options({"check"}).json);
}

}  // namespace
}  // namespace ferry
