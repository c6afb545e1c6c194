// The pieces of src/restore on their own, with real processes where they
// act on one: clone3 with a chosen PID, a created task driven through its
// trampoline, the register fix-up for interrupted system calls, and the
// image checks that refuse what cannot be restored yet.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "proc/proc_maps.h"
#include "proc/seized_task.h"
#include "restore/process_creator.h"
#include "restore/restore_images.h"
#include "restore/task_setup.h"
#include "restore/thread_state.h"
#include "restore/trampoline.h"

namespace ferry {
namespace {

// A PID nobody uses right now (racy in principle; the range is large).
pid_t free_pid() {
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  std::ifstream in("/proc/sys/kernel/pid_max");
  pid_t pid_max = 32768;
  in >> pid_max;
  for (;;) {
    pid_t pid = static_cast<pid_t>(pid_max / 2 + static_cast<pid_t>(rng() % static_cast<unsigned>(pid_max / 2)));
    if (!std::filesystem::exists("/proc/" + std::to_string(pid))) return pid;
  }
}

int exit_seven(void*) { return 7; }

TEST(CloneWithPid, TheChildGetsTheChosenPid) {
  pid_t want = free_pid();
  Result<pid_t> child = clone_with_pid(want, exit_seven, nullptr);
  ASSERT_TRUE(child) << child.error().message();
  EXPECT_EQ(*child, want);
  int status = 0;
  ASSERT_EQ(::waitpid(*child, &status, 0), want);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

TEST(CloneWithPid, APidInUseIsAnErrorNamingIt) {
  Result<pid_t> child = clone_with_pid(::getpid(), exit_seven, nullptr);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().sys_errno(), EEXIST);
  EXPECT_NE(child.error().message().find(std::to_string(::getpid()) + " is already in use"), std::string::npos)
      << child.error().message();
}

TEST(CreatedTask, IsDrivenThroughItsTrampoline) {
  Result<std::vector<MapsEntry>> own = read_maps(::getpid());
  ASSERT_TRUE(own);
  google::protobuf::RepeatedPtrField<images::VmaEntry> none;
  uint64_t trampoline = *choose_trampoline_address(*own, none);
  TaskSetupPlan plan;
  plan.cwd = "/";
  plan.root = "/";
  plan.session = SessionPlan::kNewSession;
  plan.trampoline_address = trampoline;
  plan.trampoline_size = kTrampolineSize;
  pid_t pid = free_pid();
  Result<CreatedTask> created = create_task(pid, plan);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_EQ(created->child.pid(), pid);
  EXPECT_EQ(::getsid(pid), pid);  // setsid() ran

  Result<SeizedTask> task = SeizedTask::seize(pid);
  ASSERT_TRUE(task) << task.error().message();
  Result<Trampoline> t = Trampoline::attach(*task, trampoline, kTrampolineSize);
  ASSERT_TRUE(t) << t.error().message();
  Result<int64_t> got = t->call(SYS_getpid);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, pid);

  constexpr uint64_t kWhere = 0x3f0000000000;
  Result<uint64_t> mapped = t->call_checked("mmap", SYS_mmap, kWhere, 3 * 4096, PROT_READ,
                                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(*mapped, kWhere);
  Result<std::vector<MapsEntry>> maps = read_maps(pid);
  ASSERT_TRUE(maps);
  bool found = false;
  for (const MapsEntry& m : *maps) found |= m.start == kWhere && m.end == kWhere + 3 * 4096 && m.prot == PROT_READ;
  EXPECT_TRUE(found);

  // A failing call is an error naming what was done.
  Result<uint64_t> bad = t->call_checked("close a bad fd", SYS_close, 9999);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().sys_errno(), EBADF);
  EXPECT_NE(bad.error().message().find("close a bad fd"), std::string::npos);

  ASSERT_TRUE(t->unmap_self());
  maps = read_maps(pid);
  ASSERT_TRUE(maps);
  for (const MapsEntry& m : *maps) EXPECT_FALSE(m.start <= trampoline && trampoline < m.end) << m.describe();
  EXPECT_FALSE(t->call(SYS_getpid));
  // Killed while stopped; the RestoredChild reaps it.
  ::kill(pid, SIGKILL);
  task->release();
}

TEST(CreatedTask, ASetupFailureComesBackAsTheChildsError) {
  TaskSetupPlan plan;
  plan.cwd = "/no/such/directory";
  plan.root = "/";
  Result<std::vector<MapsEntry>> own = read_maps(::getpid());
  ASSERT_TRUE(own);
  plan.trampoline_address = *choose_trampoline_address(*own, {});
  plan.trampoline_size = kTrampolineSize;
  pid_t pid = free_pid();
  Result<CreatedTask> created = create_task(pid, plan);
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().message().find("chdir /no/such/directory"), std::string::npos) << created.error().message();
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid) + "/stat"));
}

images::UserX86RegsEntry regs_with(uint64_t ax, uint64_t orig_ax, uint64_t ip) {
  images::UserX86RegsEntry r;
  r.set_ax(ax);
  r.set_orig_ax(orig_ax);
  r.set_ip(ip);
  return r;
}

TEST(RegistersFromImage, AnInterruptedSyscallIsIssuedAgain) {
  for (int64_t code : {-512, -513, -514, -516}) {
    user_regs_struct r = registers_from_image(regs_with(static_cast<uint64_t>(code), SYS_nanosleep, 0x401002));
    EXPECT_EQ(r.rax, static_cast<uint64_t>(SYS_nanosleep)) << code;
    EXPECT_EQ(r.rip, 0x401000u) << code;
    EXPECT_EQ(r.orig_rax, ~0ull) << code;
  }
}

TEST(RegistersFromImage, OtherResultsAndNonSyscallsStayAsDumped) {
  user_regs_struct r = registers_from_image(regs_with(static_cast<uint64_t>(-EINTR), SYS_read, 0x401002));
  EXPECT_EQ(r.rax, static_cast<uint64_t>(-EINTR));
  EXPECT_EQ(r.rip, 0x401002u);
  r = registers_from_image(regs_with(static_cast<uint64_t>(-512), ~0ull, 0x401002));
  EXPECT_EQ(r.rax, static_cast<uint64_t>(-512));
  EXPECT_EQ(r.rip, 0x401002u);
}

TEST(ChooseTrampolineAddress, AvoidsBothAddressSpaces) {
  std::vector<MapsEntry> own(1);
  own[0].start = 0x10000000;
  own[0].end = 0x10200000;
  google::protobuf::RepeatedPtrField<images::VmaEntry> target;
  images::VmaEntry* v = target.Add();
  v->set_start(0x10300000);
  v->set_end(0x10400000);
  Result<uint64_t> a = choose_trampoline_address(own, target);
  ASSERT_TRUE(a);
  auto clear_of = [&](uint64_t s, uint64_t e) { return *a + kTrampolineSize + 4096 <= s || e + 4096 <= *a; };
  EXPECT_TRUE(clear_of(0x10000000, 0x10200000)) << std::hex << *a;
  EXPECT_TRUE(clear_of(0x10300000, 0x10400000)) << std::hex << *a;
  EXPECT_GE(*a, 0x10000000u);
}

// The smallest image set check_restore_images accepts.
RestoreImages minimal_images() {
  RestoreImages im;
  im.inventory.set_img_version(2);
  im.inventory.set_fdinfo_per_id(true);
  auto* root = im.inventory.mutable_root_ids();
  root->set_vm_id(1);
  root->set_files_id(1);
  root->set_fs_id(1);
  root->set_sighand_id(1);
  images::FileEntry f;
  f.set_type(images::REG);
  f.set_id(1);
  f.mutable_reg()->set_id(1);
  f.mutable_reg()->set_name("/");
  im.files[1] = f;
  TaskImages t;
  t.pstree.set_pid(100);
  t.pstree.set_ppid(0);
  t.pstree.set_pgid(100);
  t.pstree.set_sid(100);
  t.pstree.add_threads(100);
  images::CoreEntry core;
  core.set_mtype(images::CoreEntry::X86_64);
  core.mutable_thread_info();
  for (int i = 0; i < 32; ++i) core.mutable_thread_info()->mutable_fpregs()->add_st_space(0);
  for (int i = 0; i < 64; ++i) core.mutable_thread_info()->mutable_fpregs()->add_xmm_space(0);
  core.mutable_tc()->set_task_state(1);
  core.mutable_thread_core();
  t.thread_cores.push_back(core);
  t.ids = *root;
  t.ids.set_files_id(2);
  t.mm.set_exe_file_id(1);
  images::VmaEntry* v = t.mm.add_vmas();
  v->set_start(0x400000);
  v->set_end(0x401000);
  v->set_status(kVmaRegular | kVmaAnonPrivate);
  t.fs.set_cwd_id(1);
  t.fs.set_root_id(1);
  im.tasks.push_back(t);
  return im;
}

std::string check_error(const RestoreImages& im, bool shell_job = false) {
  Status s = check_restore_images(im, RestoreImageOptions{shell_job});
  return s ? "" : s.error().message();
}

TEST(CheckRestoreImages, AcceptsAMinimalSet) { EXPECT_EQ(check_error(minimal_images()), ""); }

TEST(CheckRestoreImages, RefusesThreadsAndTreesForNow) {
  RestoreImages im = minimal_images();
  im.tasks[0].pstree.add_threads(101);
  EXPECT_NE(check_error(im).find("2 threads; restoring threads is not supported yet"), std::string::npos) << check_error(im);
  im = minimal_images();
  im.tasks.push_back(im.tasks[0]);
  EXPECT_NE(check_error(im).find("restoring process trees is not supported yet"), std::string::npos) << check_error(im);
}

TEST(CheckRestoreImages, ANonLeaderNeedsShellJob) {
  RestoreImages im = minimal_images();
  im.tasks[0].pstree.set_sid(1);
  EXPECT_NE(check_error(im).find("-j/--shell-job"), std::string::npos);
  EXPECT_EQ(check_error(im, true), "");
}

TEST(CheckRestoreImages, NamesTheFileOfAnUnsupportedFd) {
  RestoreImages im = minimal_images();
  images::FdinfoEntry fd;
  fd.set_id(1);
  fd.set_fd(5);
  fd.set_type(images::PIPE);
  im.tasks[0].fds.push_back(fd);
  EXPECT_NE(check_error(im).find("fdinfo-2.img: fd 5 is of type PIPE"), std::string::npos) << check_error(im);
}

TEST(CheckRestoreImages, PagesOutsideEveryVmaAreRefused) {
  RestoreImages im = minimal_images();
  im.tasks[0].pagemap.entries.push_back(PagemapEntry{0x500000, 1, kPePresent});
  EXPECT_NE(check_error(im).find("pagemap-100.img: page 0x500000"), std::string::npos) << check_error(im);
}

TEST(CheckRestoreImages, AFilesIdSharedWithTheDumperIsCorruption) {
  RestoreImages im = minimal_images();
  im.tasks[0].ids.set_files_id(1);
  EXPECT_NE(check_error(im).find("ids-100.img: files_id 1"), std::string::npos) << check_error(im);
}

}  // namespace
}  // namespace ferry
