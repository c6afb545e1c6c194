// `ferry check` against the real kernel: its verdicts must agree with what
// this test finds by probing the same features itself, independently of
// ferry's code.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/subprocess.h"

namespace {

using nlohmann::json;
using ferry::test::run_ferry;

// Every row `ferry check` must print; the first five are the ones dump and
// restore cannot do without.
const std::vector<std::string> kRequiredFeatures = {
    "ptrace seize/interrupt", "process_vm_readv/writev", "/proc/PID/pagemap", "clone3 set_tid", "PR_SET_MM_MAP",
};
const std::vector<std::string> kOptionalFeatures = {
    "pidfd_open/pidfd_getfd", "userfaultfd",    "uffd write-protect",  "uffd WP_ASYNC",         "PAGEMAP_SCAN",
    "soft-dirty",             "kernel TLS",     "TLS (GnuTLS) built in", "CAP_SYS_PTRACE",      "CAP_SYS_ADMIN",
    "CAP_CHECKPOINT_RESTORE", "CAP_SYS_RESOURCE",
};

json check_json() {
  ferry::test::ProcessResult r = run_ferry({"check", "--json"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(json::accept(r.out)) << "not JSON:\n" << r.out << "\nstderr:\n" << r.err;
  if (!json::accept(r.out)) return json();
  json j = json::parse(r.out);
  j["exit_code"] = r.exit_code;
  return j;
}

const json* find_probe(const json& report, const std::string& feature) {
  if (!report.contains("probes")) return nullptr;
  for (const json& p : report["probes"])
    if (p.value("feature", "") == feature) return &p;
  return nullptr;
}

// Whichever way ferry might get one: the syscall (user-mode-only or not) or
// the /dev/userfaultfd device (Linux 6.1).
bool test_can_open_userfaultfd() {
  for (int flags : {O_CLOEXEC | UFFD_USER_MODE_ONLY, O_CLOEXEC}) {
    int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
    if (fd >= 0) {
      close(fd);
      return true;
    }
  }
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) return false;
  int fd = ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC);  // USERFAULTFD_IOC_NEW
  close(dev);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// A written anonymous page has pagemap bit 55 set when the kernel tracks
// soft-dirty bits (CONFIG_MEM_SOFT_DIRTY); these machines do not.
bool test_sees_soft_dirty() {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* addr = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) {
    ADD_FAILURE() << "mmap failed";
    return false;
  }
  *static_cast<volatile char*>(addr) = 1;
  uint64_t entry = 0;
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  bool read_ok = fd >= 0 && pread(fd, &entry, sizeof entry,
                                   static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / page * 8)) == 8;
  if (fd >= 0) close(fd);
  munmap(addr, page);
  EXPECT_TRUE(read_ok) << "reading /proc/self/pagemap";
  EXPECT_TRUE((entry >> 63) & 1) << "the written page is not present";
  return (entry >> 55) & 1;
}

TEST(CheckCommand, JsonIsValidAndExitCodeMatchesVerdict) {
  json report = check_json();
  ASSERT_TRUE(report.contains("probes"));
  ASSERT_TRUE(report["probes"].is_array());
  ASSERT_TRUE(report.contains("dump_restore_possible"));
  ASSERT_TRUE(report["dump_restore_possible"].is_boolean());
  bool possible = report["dump_restore_possible"].get<bool>();
  EXPECT_EQ(report["exit_code"].get<int>(), possible ? 0 : 1);

  bool all_required_present = true;
  for (const json& p : report["probes"]) {
    ASSERT_TRUE(p.contains("feature") && p["feature"].is_string()) << p.dump();
    ASSERT_TRUE(p.contains("needed_by") && p["needed_by"].is_string()) << p.dump();
    ASSERT_TRUE(p.contains("present") && p["present"].is_boolean()) << p.dump();
    ASSERT_TRUE(p.contains("detail") && p["detail"].is_string()) << p.dump();
    ASSERT_TRUE(p.contains("required") && p["required"].is_boolean()) << p.dump();
    EXPECT_FALSE(p["detail"].get<std::string>().empty()) << p.dump();
    if (p["required"].get<bool>() && !p["present"].get<bool>()) all_required_present = false;
  }
  EXPECT_EQ(possible, all_required_present);
}

TEST(CheckCommand, ListsEveryFeatureWithItsRequiredFlag) {
  json report = check_json();
  for (const std::string& f : kRequiredFeatures) {
    const json* p = find_probe(report, f);
    ASSERT_NE(p, nullptr) << "missing row " << f;
    EXPECT_TRUE((*p)["required"].get<bool>()) << f;
  }
  for (const std::string& f : kOptionalFeatures) {
    const json* p = find_probe(report, f);
    ASSERT_NE(p, nullptr) << "missing row " << f;
    EXPECT_FALSE((*p)["required"].get<bool>()) << f;
  }
}

TEST(CheckCommand, UserfaultfdVerdictMatchesOwnProbe) {
  json report = check_json();
  const json* p = find_probe(report, "userfaultfd");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ((*p)["present"].get<bool>(), test_can_open_userfaultfd()) << p->dump();
  EXPECT_EQ((*p)["needed_by"].get<std::string>(), "lazy restore (post-copy)");
}

TEST(CheckCommand, SoftDirtyVerdictMatchesOwnProbe) {
  json report = check_json();
  const json* p = find_probe(report, "soft-dirty");
  ASSERT_NE(p, nullptr);
  bool own = test_sees_soft_dirty();
  EXPECT_EQ((*p)["present"].get<bool>(), own) << p->dump();
  if (!own) {
    EXPECT_NE((*p)["detail"].get<std::string>().find("userfaultfd write-protect"), std::string::npos) << p->dump();
  }
}

TEST(CheckCommand, TextTableNamesEveryFeatureAndFitsTheTerminal) {
  ferry::test::ProcessResult r = run_ferry({"check"});
  ASSERT_FALSE(r.timed_out);
  json report = check_json();
  ASSERT_TRUE(report.contains("dump_restore_possible"));
  bool possible = report["dump_restore_possible"].get<bool>();
  EXPECT_EQ(r.exit_code, possible ? 0 : 1) << r.out << r.err;

  for (const std::vector<std::string>* list : {&kRequiredFeatures, &kOptionalFeatures})
    for (const std::string& f : *list) EXPECT_NE(r.out.find(f), std::string::npos) << "no row " << f << " in\n" << r.out;
  EXPECT_NE(r.out.find("feature"), std::string::npos);
  EXPECT_NE(r.out.find("needed by"), std::string::npos);
  EXPECT_NE(r.out.find(possible ? "dump and restore can work on this kernel"
                                : "dump and restore cannot work on this kernel: missing"),
            std::string::npos)
      << r.out;

  size_t start = 0;
  while (start < r.out.size()) {
    size_t end = r.out.find('\n', start);
    if (end == std::string::npos) end = r.out.size();
    EXPECT_LE(end - start, 100u) << "line too wide: " << r.out.substr(start, end - start);
    start = end + 1;
  }
}

}  // namespace
