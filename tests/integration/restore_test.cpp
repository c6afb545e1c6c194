// ferry restore end to end: each test program of tests/programs/restore_*
// sets up one kind of state, is dumped with `ferry dump`, restored with
// `ferry restore` and told to check its state (SIGTERM); it must exit 0.
// Each round runs in its own PID namespace, so the dumped PID is free.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "build_config.h"
#include "support/subprocess.h"
#include "support/test_pki.h"

namespace ferry::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs one scenario; on failure prints what the program and Ferry said.
// `env`: variants of the scenario (see restore_scenario.sh).
void expect_survives(const std::string& program, std::vector<std::string> args = {},
                     std::vector<std::string> env = {}) {
  TempDir dir;
  std::vector<std::string> argv = {"unshare", "--pid", "--fork", "--mount-proc",
                                    FERRY_SOURCE_DIR "/tests/integration/restore_scenario.sh", FERRY_BINARY, dir.path(),
                                    program};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions options;
  options.timeout = std::chrono::seconds(60);
  options.extra_env = env;
  ProcessResult r = run(argv, options);
  EXPECT_EQ(r.exit_code, 0) << "scenario: " << r.out << r.err << "\n--- program:\n"
                            << slurp(dir.file("prog.out")) << "\n--- restore log:\n"
                            << slurp(dir.file("img/restore.log")) << "\n--- dump log (tail):\n"
                            << slurp(dir.file("img/dump.log")).substr(0, 4000);
}

TEST(Restore, MemoryOfEveryKindSurvives) { expect_survives(RESTORE_MEMORY_BINARY); }

TEST(Restore, RegistersFpuAvxAndTlsSurvive) { expect_survives(RESTORE_CPU_BINARY, {"avx"}); }

TEST(Restore, AnInterruptedSleepCarriesOn) { expect_survives(RESTORE_CPU_BINARY, {"sleep"}); }

TEST(Restore, SignalsFilesAndProcessStateSurvive) { expect_survives(RESTORE_STATE_BINARY); }

TEST(Restore, DetachedRestoreWritesThePidfileAndLetsGo) {
  expect_survives(RESTORE_STATE_BINARY, {}, {"MODE=detached"});
}

#if FERRY_HAVE_GNUTLS
// The same programs migrated as between two hosts: memory through `ferry
// page-server --tls`, the other images copied next to it, restored there.
class RestoreThroughTlsPageServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new TestPki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  static std::string env() { return "PAGE_SERVER_TLS=" + pki_->cacert() + "," + pki_->cert() + "," + pki_->key(); }
  static TestPki* pki_;
};
TestPki* RestoreThroughTlsPageServer::pki_ = nullptr;

TEST_F(RestoreThroughTlsPageServer, MemoryOfEveryKindSurvives) { expect_survives(RESTORE_MEMORY_BINARY, {}, {env()}); }

TEST_F(RestoreThroughTlsPageServer, RegistersFpuAvxAndTlsSurvive) {
  expect_survives(RESTORE_CPU_BINARY, {"avx"}, {env()});
}

TEST_F(RestoreThroughTlsPageServer, SignalsFilesAndProcessStateSurvive) {
  expect_survives(RESTORE_STATE_BINARY, {}, {env()});
}
#endif

TEST(Restore, APidInUseIsAClearError) { expect_survives(RESTORE_MEMORY_BINARY, {}, {"MODE=pid-taken"}); }

// A real program: python3 counting in a loop goes on counting where it was.
TEST(Restore, Python3KeepsCounting) {
  TempDir scripts;
  std::string script = scripts.file("counter.py");
  std::ofstream(script) << R"(#!/usr/bin/python3
import signal, sys, time
n = 0
data = {i: str(i) * 10 for i in range(50000)}
def on_term(sig, frame):
    print("all intact" if len(data) == 50000 else "failed", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[1], "w").write("ready\n")
while True:
    n += 1
    print(n, flush=True)
    time.sleep(0.05)
)";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  TempDir dir;
  RunOptions options;
  options.timeout = std::chrono::seconds(60);
  options.extra_env = {"RUN_BEFORE_TERM=1"};
  ProcessResult r = run({"unshare", "--pid", "--fork", "--mount-proc",
                         FERRY_SOURCE_DIR "/tests/integration/restore_scenario.sh", FERRY_BINARY, dir.path(),
                         script},
                        options);
  std::string out = slurp(dir.file("prog.out"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\n--- program:\n" << out << "\n--- restore log:\n"
                            << slurp(dir.file("img/restore.log"));
  // One count per line, none skipped or repeated, well past the dump.
  std::istringstream lines(out);
  std::string line;
  int expected = 1;
  while (std::getline(lines, line) && line != "all intact") {
    ASSERT_EQ(line, std::to_string(expected)) << out;
    ++expected;
  }
  EXPECT_EQ(line, "all intact") << out;
  EXPECT_GT(expected, 20) << out;
}

TEST(Restore, MissingImagesAreAClearError) {
  TempDir dir;
  ProcessResult r = run_ferry({"restore", "-D", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("inventory.img"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ferry::test
