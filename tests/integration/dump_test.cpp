// `ferry dump` of real processes: the images it writes (read by crit and by
// Ferry's own readers, memory compared page by page), what becomes of the
// process afterwards, dumps through a TLS page server, and failures that
// must leave the process running unharmed.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "build_config.h"
#include "image/image_dir.h"
#include "image/pagemap_image.h"
#include "support/page_server_process.h"
#include "support/subprocess.h"
#include "support/test_pki.h"

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

// A dump_target process, ready.
struct Target {
  std::unique_ptr<BackgroundProcess> process;
  std::string status_file;
  pid_t pid = 0;
  uint64_t address = 0;
  uint64_t pages = 0;

  std::string status() const {
    std::ifstream in(status_file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // SIGTERM: the target checks its memory and exits 0 if intact.
  ProcessResult terminate() {
    ::kill(pid, SIGTERM);
    return process->wait(30000ms);
  }
  char state() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    size_t close = all.rfind(')');
    return close == std::string::npos || close + 2 >= all.size() ? '?' : all[close + 2];
  }
};

Target start_target(const TempDir& dir, int mib, bool with_pipe = false) {
  Target t;
  t.status_file = dir.file("target.status");
  std::vector<std::string> argv{DUMP_TARGET_BINARY, t.status_file, std::to_string(mib)};
  if (with_pipe) argv.push_back("pipe");
  t.process = std::make_unique<BackgroundProcess>(argv);
  for (int i = 0; i < 400; ++i) {
    std::string s = t.status();
    if (s.starts_with("ready ")) {
      std::istringstream in(s.substr(6));
      std::string addr;
      in >> t.pid >> addr >> t.pages;
      t.address = std::stoull(addr, nullptr, 16);
      return t;
    }
    std::this_thread::sleep_for(25ms);
  }
  throw std::runtime_error("dump_target did not get ready");
}

uint64_t word_of(uint64_t page, uint64_t i) { return (page + 1) * 0x9e3779b97f4a7c15ull ^ (i * 0xbf58476d1ce4e5b9ull); }

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> n;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n.push_back(e.path().filename());
  std::sort(n.begin(), n.end());
  return n;
}

bool has_image(const std::string& dir, const std::string& name) { return std::filesystem::exists(dir + "/" + name); }

// The target's buffer in the pagemap/pages images: every non-zero page
// present with the right bytes, the zero pages left out.
void expect_target_memory(const std::string& dir, const Target& t) {
  ImageDir d = *ImageDir::open(dir);
  Result<PagemapImage> pm = read_pagemap_image(d, "pagemap-" + std::to_string(t.pid) + ".img");
  ASSERT_TRUE(pm) << pm.error().message();
  std::string pages = read_file(dir + "/" + pages_image_name(pm->pages_id));
  ASSERT_EQ(pages.size(), pm->pages_with_data() * kPageSize);
  // Offset of each entry's data in the pages file.
  uint64_t offset = 0, checked = 0;
  for (const PagemapEntry& e : pm->entries) {
    if (!e.has_data()) continue;
    for (uint64_t k = 0; k < e.nr_pages; ++k) {
      uint64_t va = e.vaddr + k * kPageSize;
      if (va >= t.address && va < t.address + t.pages * kPageSize) {
        uint64_t page = (va - t.address) / kPageSize;
        EXPECT_NE(page % 8, 7u) << "a zero page was saved";
        EXPECT_EQ(e.flags, kPePresent | kPeLazy);
        const uint64_t* w = reinterpret_cast<const uint64_t*>(pages.data() + offset + k * kPageSize);
        for (uint64_t i = 0; i < 512; ++i) ASSERT_EQ(w[i], word_of(page, i)) << "page " << page << " word " << i;
        ++checked;
      }
    }
    offset += e.nr_pages * kPageSize;
  }
  EXPECT_EQ(checked, t.pages - t.pages / 8);
}

TEST(Dump, WritesImagesThatCritReadsAndLeavesTheProcessRunning) {
  TempDir dir;
  Target t = start_target(dir, 8);
  std::string images = dir.file("images");
  std::filesystem::create_directory(images);
  ProcessResult r = run_ferry({"dump", "-t", std::to_string(t.pid), "-D", images, "-R", "--display-stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Memory pages written"), std::string::npos) << r.out;
  std::string p = std::to_string(t.pid);
  std::vector<std::string> expected{"inventory.img", "pstree.img",   "core-" + p + ".img",    "ids-" + p + ".img",
                                    "mm-" + p + ".img", "fs-" + p + ".img", "fdinfo-2.img", "files.img",
                                    "pagemap-" + p + ".img", "pages-1.img"};
  for (const std::string& name : expected) {
    ASSERT_TRUE(has_image(images, name)) << name;
    struct stat st {};
    ::stat((images + "/" + name).c_str(), &st);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
    if (name.starts_with("pages-")) continue;
    ProcessResult c = run({"crit", "decode", "-i", images + "/" + name});
    EXPECT_EQ(c.exit_code, 0) << name << ": " << c.err;
  }
  nlohmann::json core = nlohmann::json::parse(run({"crit", "decode", "-i", images + "/core-" + p + ".img"}).out);
  EXPECT_EQ(core["entries"][0]["mtype"], "X86_64");
  EXPECT_EQ(core["entries"][0]["tc"]["comm"], "dump_target");
  EXPECT_EQ(core["entries"][0]["tc"]["sigactions"].size(), 62u);
  nlohmann::json pstree = nlohmann::json::parse(run({"crit", "decode", "-i", images + "/pstree.img"}).out);
  EXPECT_EQ(pstree["entries"][0]["pid"], t.pid);
  ProcessResult fds = run({"crit", "x", images, "fds"});
  EXPECT_NE(fds.out.find("/dev/null"), std::string::npos) << fds.out;
  expect_target_memory(images, t);

  EXPECT_NE(t.state(), 'T');
  ProcessResult end = t.terminate();
  EXPECT_EQ(end.exit_code, 0) << t.status();
}

TEST(Dump, KillsTheProcessByDefault) {
  TempDir dir;
  Target t = start_target(dir, 1);
  BackgroundProcess dump({FERRY_BINARY, "dump", "-t", std::to_string(t.pid), "-D", dir.path()});
  // We are the parent: reap the target as soon as the dump kills it, so the
  // dump sees its PID free again and returns.
  ProcessResult end = t.process->wait(10000ms);
  EXPECT_EQ(end.exit_code, 128 + SIGKILL);
  ProcessResult r = dump.wait(10000ms);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("has not reaped"), std::string::npos) << r.err;
}

TEST(Dump, LeaveStoppedLeavesItStopped) {
  TempDir dir;
  Target t = start_target(dir, 1);
  ProcessResult r = run_ferry({"dump", "-t", std::to_string(t.pid), "-D", dir.path(), "-s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(t.state(), 'T');
  ::kill(t.pid, SIGCONT);
  EXPECT_EQ(t.terminate().exit_code, 0) << t.status();
}

TEST(Dump, UnsupportedStateFailsNamingItAndTheProcessRunsOn) {
  TempDir dir;
  Target t = start_target(dir, 2, /*with_pipe=*/true);
  std::string images = dir.file("images");
  std::filesystem::create_directory(images);
  ProcessResult r = run_ferry({"dump", "-t", std::to_string(t.pid), "-D", images});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("process " + std::to_string(t.pid)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is a pipe: not supported yet"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("keeps running"), std::string::npos) << r.err;
  EXPECT_TRUE(names_in(images).empty());
  EXPECT_NE(t.state(), 'T');
  EXPECT_EQ(t.terminate().exit_code, 0) << t.status();
}

TEST(Dump, MissingProcessIsAClearError) {
  TempDir dir;
  ProcessResult r = run_ferry({"dump", "-t", "999999", "-D", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("999999"), std::string::npos) << r.err;
  EXPECT_TRUE(names_in(dir.path()).empty());
}

#if FERRY_HAVE_GNUTLS
// A TLS page server with its own images directory, and a local one for the
// dump's other images, as on two hosts.
struct TlsMigration {
  TempDir dir;
  TestPki pki;
  std::string local = dir.file("local"), remote = dir.file("remote");
  std::unique_ptr<PageServerProcess> server;

  TlsMigration() {
    std::filesystem::create_directory(local);
    std::filesystem::create_directory(remote);
    server = std::make_unique<PageServerProcess>(remote, pki.tls_args());
  }
  // `ferry dump` arguments (without the binary) sending pages to the server.
  std::vector<std::string> dump_args(pid_t pid, std::vector<std::string> extra) const {
    std::vector<std::string> args{"dump", "-t", std::to_string(pid), "-D", local, "--page-server",
                                  "--address", "127.0.0.1", "--port", std::to_string(server->port())};
    args.insert(args.end(), extra.begin(), extra.end());
    for (const std::string& a : pki.tls_args()) args.push_back(a);
    return args;
  }
};

TEST(DumpToPageServer, MemoryTravelsOverTlsAndTheRestStaysLocal) {
  TlsMigration m;
  PageServerProcess& server = *m.server;
  const std::string &local = m.local, &remote = m.remote;
  ASSERT_TRUE(server.ready());
  Target t = start_target(m.dir, 8);
  ProcessResult r = run_ferry(m.dump_args(t.pid, {"-R"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("TLS"), std::string::npos) << r.err;
  ProcessResult s = server.wait();
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::string p = std::to_string(t.pid);
  EXPECT_TRUE(has_image(remote, "pagemap-" + p + ".img"));
  EXPECT_TRUE(has_image(remote, "pages-65537.img"));
  EXPECT_FALSE(has_image(local, "pagemap-" + p + ".img"));
  EXPECT_TRUE(has_image(local, "core-" + p + ".img"));
  expect_target_memory(remote, t);
  EXPECT_EQ(t.terminate().exit_code, 0) << t.status();
}

TEST(DumpToPageServer, PageServerKilledHalfWayFailsTheDumpAndTheProcessRunsOn) {
  TlsMigration m;
  PageServerProcess& server = *m.server;
  const std::string &local = m.local, &remote = m.remote;
  ASSERT_TRUE(server.ready());
  Target t = start_target(m.dir, 512);
  std::vector<std::string> argv{FERRY_BINARY};
  for (const std::string& a : m.dump_args(t.pid, {})) argv.push_back(a);
  BackgroundProcess dump(argv);
  // Kill the server once some page data has arrived.
  std::string partial = remote + "/.pages-65537.img.partial";
  bool seen = false;
  for (int i = 0; i < 2000 && !seen; ++i) {
    std::error_code ec;
    seen = std::filesystem::file_size(partial, ec) > (1u << 20) && !ec;
    if (!seen) std::this_thread::sleep_for(1ms);
  }
  server.kill_now(SIGKILL);
  ProcessResult r = dump.wait(60000ms);
  EXPECT_TRUE(seen) << "the page server never received data";
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("keeps running"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1"), std::string::npos) << r.err;
  EXPECT_TRUE(names_in(local).empty());
  EXPECT_NE(t.state(), 'T');
  EXPECT_EQ(t.terminate().exit_code, 0) << t.status();
}
#endif

TEST(DumpToPageServer, NoPageServerMeansNoFreeze) {
  TempDir dir;
  Target t = start_target(dir, 1);
  ProcessResult r = run_ferry({"dump", "-t", std::to_string(t.pid), "-D", dir.path(), "--page-server", "--address",
                               "127.0.0.1", "--port", std::to_string(free_port())});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("connecting to the page server"), std::string::npos) << r.err;
  EXPECT_NE(t.state(), 'T');
  EXPECT_EQ(t.terminate().exit_code, 0) << t.status();
}

}  // namespace
}  // namespace ferry::test
