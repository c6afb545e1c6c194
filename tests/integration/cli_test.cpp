// The real ferry binary: exit codes, messages, help, version, log file.
#include <sys/stat.h>

#include <regex>

#include <gtest/gtest.h>

#include "build_config.h"
#include "support/subprocess.h"

namespace ferry::test {
namespace {

TEST(FerryBinary, HelpListsCommandsAndExitsZero) {
  ProcessResult r = run_ferry({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("check"), std::string::npos) << r.out;
}

TEST(FerryBinary, CommandHelpListsItsOptions) {
  ProcessResult r = run_ferry({"check", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--json"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--log-file"), std::string::npos) << r.out;
}

TEST(FerryBinary, VersionSaysWhetherTlsIsBuiltIn) {
  ProcessResult r = run_ferry({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("ferry " FERRY_VERSION), std::string::npos) << r.out;
#if FERRY_HAVE_GNUTLS
  EXPECT_TRUE(std::regex_search(r.out, std::regex("TLS: built in \\(GnuTLS [0-9]+\\.[0-9]+"))) << r.out;
#else
  EXPECT_NE(r.out.find("TLS: not built in"), std::string::npos) << r.out;
#endif
}

TEST(FerryBinary, UnknownCommandExitsOne) {
  ProcessResult r = run_ferry({"teleport"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown command 'teleport'"), std::string::npos) << r.err;
}

TEST(FerryBinary, CommandsOfLaterIssuesAreNotAcceptedYet) {
  ProcessResult r = run_ferry({"lazy-pages"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown command 'lazy-pages'"), std::string::npos) << r.err;
}

TEST(FerryBinary, UnknownOptionExitsOneNamingIt) {
  ProcessResult r = run_ferry({"check", "--no-such-option"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--no-such-option"), std::string::npos) << r.err;
}

TEST(FerryBinary, BadValueExitsOneNamingTheOption) {
  ProcessResult r = run_ferry({"check", "-D", "/nonexistent-ferry-dir"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent-ferry-dir"), std::string::npos) << r.err;
  ProcessResult v = run_ferry({"check", "--verbosity=many"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.err.find("--verbosity"), std::string::npos) << v.err;
}

TEST(FerryBinary, LogFileIsPrivateInWorkDirWithTimestampsAndComponents) {
  TempDir images, work;
  ProcessResult r = run_ferry({"check", "-D", images.path(), "-W", work.path(), "-o", "check.log", "-v4"});
  ASSERT_FALSE(r.timed_out);
  std::string log = read_file(work.file("check.log"));
  struct stat st {};
  ASSERT_EQ(stat(work.file("check.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // "(0.000123) ferry: ..." lines: time since start, then the component.
  EXPECT_TRUE(std::regex_search(log, std::regex(R"(^\([0-9]+\.[0-9]{6}\) ferry: ferry )" FERRY_VERSION)))
      << log;
}

TEST(FerryBinary, LogFileDefaultsToImagesDir) {
  TempDir images;
  ProcessResult r = run_ferry({"check", "-D", images.path(), "-o", "x.log", "-v3"});
  ASSERT_FALSE(r.timed_out);
  EXPECT_NE(read_file(images.file("x.log")).find("ferry: ferry"), std::string::npos);
}

TEST(FerryBinary, LowVerbosityKeepsInfoOutOfTheLog) {
  TempDir images;
  ProcessResult r = run_ferry({"check", "-D", images.path(), "-o", "x.log", "-v1"});
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(read_file(images.file("x.log")).find("ferry: ferry"), std::string::npos);
}

}  // namespace
}  // namespace ferry::test
