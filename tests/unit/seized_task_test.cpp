// SeizedTask: a real child stopped with ptrace, its registers, FPU state,
// signal mask and pending signals read and changed, and let go as it was.
#include <asm/prctl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "proc/proc_status.h"
#include "proc/seized_task.h"
#include "unit/proc_test_child.h"

namespace ferry {
namespace {

using test::ChildLink;
using test::TestChild;

constexpr uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }
constexpr int kErestartsys = 512;  // the kernel's -ERESTARTSYS, seen in rax of an interrupted read

// What /proc says of the thread's tracer and state.
std::pair<std::string, char> tracer_and_state(pid_t pid) {
  std::string status = read_proc_file(proc_dir(pid) + "/status").value();
  size_t at = status.find("TracerPid:\t");
  std::string tracer = status.substr(at + 11, status.find('\n', at) - at - 11);
  return {tracer, read_proc_stat(pid).value().state};
}

TEST(SeizedTask, NamesATaskThatIsNotThere) {
  Result<SeizedTask> t = SeizedTask::seize(999999999);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("999999999"), std::string::npos) << t.error().message();
  EXPECT_EQ(t.error().sys_errno(), ESRCH);
  EXPECT_FALSE(SeizedTask::seize(0));
  EXPECT_FALSE(SeizedTask::seize(-5));
}

TEST(SeizedTask, RefusesToSeizeItsOwnProcess) {
  Result<SeizedTask> t = SeizedTask::seize(::getpid());
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().sys_errno(), EPERM) << t.error().message();
}

// What the child saw in its registers after the test let it go.
struct RegisterReport {
  int64_t read_result = 0;
  uint64_t r12 = 0;
  uint64_t xmm15 = 0;
  uint64_t blocked = 0;
};

constexpr uint64_t kR12Before = 0x1212121212121212;
constexpr uint64_t kXmm15Before = 0x1515151515151515;
constexpr uint64_t kR12After = 0x2121212121212121;
constexpr uint64_t kXmm15After = 0x5151515151515151;

// Blocks in read(2) on the test's pipe with r12 and xmm15 holding known
// values, then reports what they hold after the read returned.
int read_with_known_registers(const ChildLink& link) {
  uint64_t fs_base = 0;
  if (::syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_base) != 0) return 1;
  link.report(fs_base);
  char c = 0;
  long ret = SYS_read;
  uint64_t xmm_after = 0;
  register uint64_t r12 asm("r12") = kR12Before;
  asm volatile(
      "movq %[xin], %%xmm15\n\t"
      "syscall\n\t"
      "movq %%xmm15, %[xout]\n\t"
      : "+a"(ret), [xout] "=r"(xmm_after), "+r"(r12)
      : "D"(link.from_test), "S"(&c), "d"(1L), [xin] "r"(kXmm15Before)
      : "rcx", "r11", "memory", "xmm15");
  RegisterReport r{ret, r12, xmm_after, 0};
  sigset_t now;
  ::sigprocmask(SIG_BLOCK, nullptr, &now);
  for (int sig = 1; sig < 65; ++sig)
    if (sigismember(&now, sig) == 1) r.blocked |= bit(sig);
  link.report(r);
  return 0;
}

TEST(SeizedTask, ReadsAndChangesRegistersAndTheReadRestarts) {
  TestChild child(read_with_known_registers);
  ASSERT_TRUE(child.started());
  std::optional<uint64_t> fs_base = child.receive<uint64_t>();
  ASSERT_TRUE(fs_base);
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    EXPECT_EQ(task->tid(), child.pid());
    EXPECT_EQ(task->group_stop_signal(), 0);
    EXPECT_EQ(tracer_and_state(child.pid()), std::make_pair(std::to_string(::getpid()), 't'));

    Result<user_regs_struct> regs = task->regs();
    ASSERT_TRUE(regs) << regs.error().message();
    EXPECT_EQ(regs->orig_rax, static_cast<unsigned long long>(SYS_read));
    EXPECT_EQ(static_cast<int64_t>(regs->rax), -kErestartsys);
    EXPECT_EQ(regs->r12, kR12Before);
    EXPECT_EQ(regs->fs_base, *fs_base);
    EXPECT_EQ(regs->cs, 0x33u);

    Result<XSaveArea> xs = task->xstate();
    ASSERT_TRUE(xs) << xs.error().message();
    EXPECT_GT(xs->bytes.size(), XSaveArea::kLegacySize + XSaveArea::kHeaderSize);
    EXPECT_TRUE(xs->xstate_bv() & 2) << "SSE state in use";  // bit 1: SSE
    uint64_t xmm15 = 0;
    std::memcpy(&xmm15, xs->bytes.data() + XSaveArea::kXmmOffset + 15 * 16, sizeof xmm15);
    EXPECT_EQ(xmm15, kXmm15Before);
    Result<user_fpregs_struct> fp = task->fpregs();
    ASSERT_TRUE(fp) << fp.error().message();
    EXPECT_EQ(std::memcmp(&fp->xmm_space[15 * 4], &kXmm15Before, sizeof kXmm15Before), 0);
    EXPECT_EQ(std::memcmp(&*fp, xs->bytes.data(), sizeof *fp - sizeof fp->padding), 0)
        << "NT_PRFPREG is the legacy region of NT_X86_XSTATE";

    Result<uint64_t> mask = task->signal_mask();
    ASSERT_TRUE(mask) << mask.error().message();
    EXPECT_EQ(*mask, 0u);

    // Change what the thread will see when it goes on.
    regs->r12 = kR12After;
    ASSERT_TRUE(task->set_regs(*regs));
    std::memcpy(xs->bytes.data() + XSaveArea::kXmmOffset + 15 * 16, &kXmm15After, sizeof kXmm15After);
    Status set = task->set_xstate(*xs);
    ASSERT_TRUE(set) << set.error().message();
    ASSERT_TRUE(task->set_signal_mask(bit(SIGUSR2) | bit(SIGKILL)));
    EXPECT_EQ(task->signal_mask().value(), bit(SIGUSR2)) << "SIGKILL cannot be blocked";
    EXPECT_EQ(task->regs()->r12, kR12After);
  }  // detached here
  ASSERT_TRUE(child.wait_in_syscall(SYS_read)) << "back in its read";
  EXPECT_EQ(tracer_and_state(child.pid()).first, "0");
  child.send();
  std::optional<RegisterReport> r = child.receive<RegisterReport>();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->read_result, 1) << "the interrupted read was restarted and got the byte";
  EXPECT_EQ(r->r12, kR12After);
  EXPECT_EQ(r->xmm15, kXmm15After);
  EXPECT_EQ(r->blocked, bit(SIGUSR2));
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(SeizedTask, SeesPendingSignalsWithoutTakingThem) {
  TestChild child([](const ChildLink& link) {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    ::sigprocmask(SIG_BLOCK, &block, nullptr);
    ::syscall(SYS_tgkill, ::getpid(), ::gettid(), SIGUSR1);
    ::sigqueue(::getpid(), SIGUSR2, sigval{.sival_int = 42});
    link.report(1);
    link.await();
    // Both are still there to be taken.
    timespec zero{};
    siginfo_t info;
    if (::sigtimedwait(&block, &info, &zero) < 0 || ::sigtimedwait(&block, &info, &zero) < 0) return 1;
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.receive<int>());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    EXPECT_EQ(task->signal_mask().value(), bit(SIGUSR1) | bit(SIGUSR2));
    Result<std::vector<siginfo_t>> own = task->pending_signals(SignalQueue::kThread);
    ASSERT_TRUE(own) << own.error().message();
    ASSERT_EQ(own->size(), 1u);
    EXPECT_EQ((*own)[0].si_signo, SIGUSR1);
    EXPECT_EQ((*own)[0].si_code, SI_TKILL);
    EXPECT_EQ((*own)[0].si_pid, child.pid());
    Result<std::vector<siginfo_t>> shared = task->pending_signals(SignalQueue::kShared);
    ASSERT_TRUE(shared) << shared.error().message();
    ASSERT_EQ(shared->size(), 1u);
    EXPECT_EQ((*shared)[0].si_signo, SIGUSR2);
    EXPECT_EQ((*shared)[0].si_code, SI_QUEUE);
    EXPECT_EQ((*shared)[0].si_value.sival_int, 42);
  }
  Result<ProcStatus> status = read_proc_status(child.pid());
  ASSERT_TRUE(status);
  EXPECT_EQ(status->sig_pending, bit(SIGUSR1));
  EXPECT_EQ(status->sig_shared_pending, bit(SIGUSR2));
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(SeizedTask, LeavesAStoppedProcessStopped) {
  TestChild child([](const ChildLink& link) {
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  ASSERT_EQ(::kill(child.pid(), SIGSTOP), 0);
  for (int i = 0; i < 1000 && read_proc_stat(child.pid()).value().state != 'T'; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(read_proc_stat(child.pid()).value().state, 'T');
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    EXPECT_EQ(task->group_stop_signal(), SIGSTOP);
    EXPECT_TRUE(task->regs());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(tracer_and_state(child.pid()), std::make_pair(std::string("0"), 'T'));
  ASSERT_EQ(::kill(child.pid(), SIGCONT), 0);
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(SeizedTask, AnswersOnlyTheThreadThatSeized) {
  TestChild child([](const ChildLink& link) {
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  Result<SeizedTask> task = SeizedTask::seize(child.pid());
  ASSERT_TRUE(task) << task.error().message();
  std::string message;
  std::thread([&] { message = task->regs().error().message(); }).join();
  EXPECT_NE(message.find("traced by thread"), std::string::npos) << message;
  EXPECT_TRUE(task->regs());
  EXPECT_TRUE(task->detach());
  EXPECT_FALSE(task->regs()) << "detached";
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

}  // namespace
}  // namespace ferry
