// /proc/PID/stat, status, auxv, task and the fd listing: the parsers on text
// the kernel prints, and a real child's state read back as it set it up.
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include "proc/proc_fds.h"
#include "proc/proc_maps.h"
#include "proc/proc_status.h"
#include "support/subprocess.h"
#include "unit/proc_test_child.h"

namespace ferry {
namespace {

using test::ChildLink;
using test::TestChild;

constexpr uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

// 52 fields; comm holds spaces and both parentheses.
const char* kStatLine =
    "4242 (a) b (c)) S 1 4242 4240 34816 4242 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000000 200 "
    "18446744073709551615 94000000000000 94000000100000 140730000000000 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 "
    "94000000200000 94000000210000 94000000300000 140730000001000 140730000001100 140730000001100 "
    "140730000001200 256\n";

TEST(ProcStatParse, TakesCommUpToTheLastParenthesis) {
  Result<ProcStat> s = parse_proc_stat(kStatLine);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->pid, 4242);
  EXPECT_EQ(s->comm, "a) b (c)");
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, 1);
  EXPECT_EQ(s->pgrp, 4242);
  EXPECT_EQ(s->session, 4240);
  EXPECT_EQ(s->flags, 4194560u);
  EXPECT_EQ(s->num_threads, 3);
  EXPECT_EQ(s->start_code, 94000000000000u);
  EXPECT_EQ(s->end_code, 94000000100000u);
  EXPECT_EQ(s->start_stack, 140730000000000u);
  EXPECT_EQ(s->start_data, 94000000200000u);
  EXPECT_EQ(s->end_data, 94000000210000u);
  EXPECT_EQ(s->start_brk, 94000000300000u);
  EXPECT_EQ(s->arg_start, 140730000001000u);
  EXPECT_EQ(s->arg_end, 140730000001100u);
  EXPECT_EQ(s->env_start, 140730000001100u);
  EXPECT_EQ(s->env_end, 140730000001200u);
  EXPECT_EQ(s->exit_code, 256);
}

TEST(ProcStatParse, RefusesShortOrBrokenLines) {
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2 3"));
  EXPECT_FALSE(parse_proc_stat("4242 x S 1 2 3"));
  std::string bad_state = kStatLine;
  bad_state.replace(bad_state.find(" S "), 3, " SS ");
  EXPECT_FALSE(parse_proc_stat(bad_state));
}

TEST(ProcStatusParse, ReadsIdsMasksAndCapabilities) {
  const char* text =
      "Name:\tx\nUmask:\t0027\nState:\tS (sleeping)\nTgid:\t77\nPid:\t78\n"
      "Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t10 20 30 \n"
      "SigPnd:\t0000000000000200\nShdPnd:\t0000000000000800\nSigBlk:\t0000000000000a00\n"
      "SigIgn:\t0000000000001000\nSigCgt:\t0000000180000000\n"
      "CapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n"
      "CapBnd:\t000001fffebfffff\nCapAmb:\t0000000000000001\nNoNewPrivs:\t1\nSeccomp:\t2\n";
  Result<ProcStatus> s = parse_proc_status(text);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->tgid, 77);
  EXPECT_EQ(s->umask, 027u);
  EXPECT_EQ(s->uid, (std::array<uint32_t, 4>{1, 2, 3, 4}));
  EXPECT_EQ(s->gid, (std::array<uint32_t, 4>{5, 6, 7, 8}));
  EXPECT_EQ(s->groups, (std::vector<uint32_t>{10, 20, 30}));
  EXPECT_EQ(s->sig_pending, bit(SIGUSR1));
  EXPECT_EQ(s->sig_shared_pending, bit(SIGUSR2));
  EXPECT_EQ(s->sig_blocked, bit(SIGUSR1) | bit(SIGUSR2));
  EXPECT_EQ(s->sig_ignored, bit(SIGPIPE));
  EXPECT_EQ(s->sig_caught, 0x180000000u);
  EXPECT_EQ(s->cap_permitted, 0x1fffeffffffu);
  EXPECT_EQ(s->cap_bounding, 0x1fffebfffffu);
  EXPECT_EQ(s->cap_ambient, 1u);
  EXPECT_TRUE(s->no_new_privs);
  EXPECT_EQ(s->seccomp, 2);

  // An empty Groups line is "Groups:\t \n"; a line Ferry needs may not be missing.
  std::string no_groups = text;
  no_groups.replace(no_groups.find("10 20 30 "), 9, " ");
  Result<ProcStatus> empty = parse_proc_status(no_groups);
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_TRUE(empty->groups.empty());
  std::string no_umask = text;
  no_umask.erase(no_umask.find("Umask"), 12);
  Result<ProcStatus> missing = parse_proc_status(no_umask);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("Umask"), std::string::npos) << missing.error().message();
}

TEST(ProcFdinfoParse, ReadsPositionFlagsAndMount) {
  Result<OpenFd> fd = parse_fdinfo("pos:\t12345\nflags:\t02102002\nmnt_id:\t29\nino:\t1234\nlock:\t1: POSIX\n");
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(fd->pos, 12345u);
  EXPECT_EQ(fd->flags, 02102002u);
  EXPECT_EQ(fd->mnt_id, 29);
  EXPECT_EQ(fd->inode, 1234u);
  EXPECT_FALSE(parse_fdinfo("pos:\t1\n"));
  EXPECT_FALSE(parse_fdinfo("pos:\t1\nflags:\t9\nmnt_id:\t1\n"));  // flags are octal
}

// What the child set up, reported to the test.
struct ChildState {
  int file_fd = -1;
  int pipe_fd = -1;
};

constexpr uint64_t kFileOffset = 12345;
constexpr mode_t kUmask = 0027;

// Sets up known process state, then reports and waits. Runs in the child.
int set_up_known_state(const ChildLink& link, const std::string& file) {
  ::umask(kUmask);
  if (::prctl(PR_SET_NAME, "fe) r (y x", 0, 0, 0) != 0) return 1;
  if (::setpgid(0, 0) != 0) return 2;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  if (::sigprocmask(SIG_BLOCK, &block, nullptr) != 0) return 3;
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  ::sigaction(SIGHUP, &sa, nullptr);
  // SIGUSR1 pending for this thread, SIGUSR2 for the process.
  if (::syscall(SYS_tgkill, ::getpid(), ::gettid(), SIGUSR1) != 0 || ::kill(::getpid(), SIGUSR2) != 0) return 4;
  ChildState state;
  state.file_fd = ::open(file.c_str(), O_RDWR | O_APPEND);
  if (state.file_fd < 0 || ::lseek(state.file_fd, kFileOffset, SEEK_SET) != static_cast<off_t>(kFileOffset)) return 5;
  int p[2];
  if (::pipe2(p, O_NONBLOCK) != 0) return 6;
  state.pipe_fd = p[0];
  gid_t groups[] = {5001, 5002};
  if (::setgroups(2, groups) != 0 || ::setresgid(4001, 4002, 4003) != 0) return 7;
  if (::prctl(PR_CAPBSET_DROP, 22 /* CAP_SYS_BOOT */, 0, 0, 0) != 0) return 8;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 9;
  sock_filter allow{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW};
  sock_fprog prog{1, &allow};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return 10;
  link.report(state);
  link.await();
  return 0;
}

TEST(ProcStatus, ReadsTheStateAChildSetUp) {
  test::TempDir tmp;
  std::string file = tmp.file("data file");
  test::write_file(file, std::string(20000, 'x'));
  TestChild child([&](const ChildLink& link) { return set_up_known_state(link, file); });
  ASSERT_TRUE(child.started());
  std::optional<ChildState> state = child.receive<ChildState>();
  ASSERT_TRUE(state) << "the child did not report (exit " << child.wait_exit().value_or(-1) << ")";
  pid_t pid = child.pid();
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));

  Result<ProcStat> stat = read_proc_stat(pid);
  ASSERT_TRUE(stat) << stat.error().message();
  EXPECT_EQ(stat->pid, pid);
  EXPECT_EQ(stat->comm, "fe) r (y x");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, ::getpid());
  EXPECT_EQ(stat->pgrp, pid);
  EXPECT_EQ(stat->session, ::getsid(0));
  EXPECT_EQ(stat->num_threads, 1);
  // A fork has the test's layout.
  Result<ProcStat> mine = read_proc_stat(::getpid());
  ASSERT_TRUE(mine) << mine.error().message();
  EXPECT_EQ(stat->start_code, mine->start_code);
  EXPECT_EQ(stat->end_code, mine->end_code);
  EXPECT_EQ(stat->start_data, mine->start_data);
  EXPECT_EQ(stat->start_brk, mine->start_brk);
  EXPECT_EQ(stat->arg_start, mine->arg_start);
  EXPECT_EQ(stat->env_end, mine->env_end);
  EXPECT_LT(stat->start_code, stat->end_code);
  EXPECT_LT(stat->arg_start, stat->arg_end);
  EXPECT_LE(stat->arg_end, stat->env_start);
  EXPECT_LT(stat->env_start, stat->env_end);
  // The per-thread file of the only thread says the same.
  Result<ProcStat> thread_stat = read_proc_stat(pid, pid);
  ASSERT_TRUE(thread_stat) << thread_stat.error().message();
  EXPECT_EQ(thread_stat->comm, stat->comm);

  Result<ProcStatus> status = read_proc_status(pid);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->tgid, pid);
  EXPECT_EQ(status->umask, kUmask);
  EXPECT_EQ(status->sig_blocked, bit(SIGUSR1) | bit(SIGUSR2));
  EXPECT_EQ(status->sig_pending, bit(SIGUSR1));
  EXPECT_EQ(status->sig_shared_pending, bit(SIGUSR2));
  EXPECT_EQ(status->sig_ignored & bit(SIGPIPE), bit(SIGPIPE));
  EXPECT_EQ(status->sig_caught & bit(SIGHUP), bit(SIGHUP));
  EXPECT_EQ(status->uid, (std::array<uint32_t, 4>{0, 0, 0, 0}));
  EXPECT_EQ(status->gid, (std::array<uint32_t, 4>{4001, 4002, 4003, 4002}));
  EXPECT_EQ(status->groups, (std::vector<uint32_t>{5001, 5002}));
  EXPECT_EQ(status->cap_bounding & (uint64_t{1} << 22), 0u);
  EXPECT_NE(status->cap_bounding, 0u);
  EXPECT_EQ(status->cap_ambient, 0u);
  EXPECT_TRUE(status->no_new_privs);
  EXPECT_EQ(status->seccomp, 2);

  Result<std::vector<AuxvEntry>> auxv = read_auxv(pid);
  ASSERT_TRUE(auxv) << auxv.error().message();
  ASSERT_FALSE(auxv->empty());
  EXPECT_EQ(auxv->back(), (AuxvEntry{AT_NULL, 0}));
  auto aux = [&](uint64_t type) -> uint64_t {
    for (const AuxvEntry& e : *auxv)
      if (e.type == type) return e.value;
    return 0;
  };
  EXPECT_EQ(aux(AT_PAGESZ), 4096u);
  EXPECT_EQ(aux(AT_ENTRY), ::getauxval(AT_ENTRY));
  Result<std::vector<MapsEntry>> maps = read_maps(pid);
  ASSERT_TRUE(maps) << maps.error().message();
  auto vdso = std::find_if(maps->begin(), maps->end(), [](const MapsEntry& e) { return e.is_vdso(); });
  ASSERT_NE(vdso, maps->end());
  EXPECT_EQ(aux(AT_SYSINFO_EHDR), vdso->start);

  Result<std::vector<pid_t>> tids = list_threads(pid);
  ASSERT_TRUE(tids) << tids.error().message();
  EXPECT_EQ(*tids, std::vector<pid_t>{pid});

  Result<std::vector<OpenFd>> fds = list_open_fds(pid);
  ASSERT_TRUE(fds) << fds.error().message();
  auto find_fd = [&](int n) -> const OpenFd* {
    for (const OpenFd& f : *fds)
      if (f.fd == n) return &f;
    return nullptr;
  };
  const OpenFd* f = find_fd(state->file_fd);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->target, file);
  EXPECT_EQ(f->pos, kFileOffset);
  EXPECT_EQ(f->flags & O_ACCMODE, static_cast<uint32_t>(O_RDWR));
  EXPECT_TRUE(f->flags & O_APPEND);
  EXPECT_FALSE(f->flags & O_CLOEXEC);
  struct statx sx {};
  ASSERT_EQ(::statx(AT_FDCWD, file.c_str(), 0, STATX_MNT_ID | STATX_INO, &sx), 0);
  EXPECT_EQ(static_cast<uint64_t>(f->mnt_id), sx.stx_mnt_id);
  EXPECT_EQ(f->inode, sx.stx_ino);
  const OpenFd* p = find_fd(state->pipe_fd);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->target.starts_with("pipe:[")) << p->target;
  EXPECT_TRUE(p->flags & O_NONBLOCK);
  EXPECT_TRUE(std::is_sorted(fds->begin(), fds->end(), [](const OpenFd& a, const OpenFd& b) { return a.fd < b.fd; }));

  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(ProcStatus, ReportsAnExitedChildAsZombieUntilReaped) {
  TestChild child([](const ChildLink&) { return 3; });
  ASSERT_TRUE(child.started());
  for (int i = 0; i < 1000; ++i) {
    Result<ProcStat> s = read_proc_stat(child.pid());
    ASSERT_TRUE(s) << s.error().message();
    if (s->state == 'Z') {
      EXPECT_EQ(s->exit_code, 3 << 8);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(child.wait_exit(), 3);
}

TEST(ProcStatus, NamesTheProcessThatIsNotThere) {
  for (const Error& e : {read_proc_stat(999999999).error(), read_proc_status(999999999).error(),
                         read_auxv(999999999).error(), list_threads(999999999).error(),
                         list_open_fds(999999999).error()}) {
    EXPECT_NE(e.message().find("/proc/999999999/"), std::string::npos) << e.message();
    EXPECT_EQ(e.sys_errno(), ENOENT);
  }
}

}  // namespace
}  // namespace ferry
