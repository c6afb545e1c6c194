// RemoteSyscall: system calls injected into real children that sleep, wait
// for a signal, are stopped or have several threads; afterwards each child
// goes on exactly as if nothing had happened.
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "proc/frozen_process.h"
#include "proc/proc_maps.h"
#include "proc/proc_status.h"
#include "proc/remote_syscall.h"
#include "proc/seized_task.h"
#include "proc/task_memory.h"
#include "unit/proc_test_child.h"

namespace ferry {
namespace {

using test::ChildLink;
using test::TestChild;

constexpr uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

// The kernel's struct sigaction for rt_sigaction on x86_64.
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

std::atomic<int> g_handled{0};
void count_signal(int) { g_handled.fetch_add(1); }

const MapsEntry* vma_at(const std::vector<MapsEntry>& maps, uint64_t address) {
  for (const MapsEntry& e : maps)
    if (e.start <= address && address < e.end) return &e;
  return nullptr;
}

// What the sleeping child saw of its own sleep.
struct SleepReport {
  int result = -1;  // of clock_nanosleep: 0, or an error number
  int64_t start_ms = 0;  // CLOCK_MONOTONIC, which the test shares
  int64_t end_ms = 0;
};

constexpr int64_t kSleepMs = 800;

int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

TEST(RemoteSyscall, RunsSyscallsInASleepingChildWhoseSleepThenCompletes) {
  TestChild child([](const ChildLink& link) {
    struct sigaction sa {};
    sa.sa_handler = count_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    if (::sigaction(SIGUSR1, &sa, nullptr) != 0) return 1;
    link.report(reinterpret_cast<uint64_t>(&count_signal));
    timespec ts{kSleepMs / 1000, (kSleepMs % 1000) * 1000000};
    SleepReport r;
    r.start_ms = now_ms();
    r.result = ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
    r.end_ms = now_ms();
    link.report(r);
    return 0;
  });
  ASSERT_TRUE(child.started());
  pid_t pid = child.pid();
  std::optional<uint64_t> handler = child.receive<uint64_t>();
  ASSERT_TRUE(handler);
  ASSERT_TRUE(child.wait_in_syscall(SYS_clock_nanosleep));
  int64_t injection_end = 0;
  {
    Result<SeizedTask> task = SeizedTask::seize(pid);
    ASSERT_TRUE(task) << task.error().message();
    user_regs_struct regs_before = task->regs().value();
    ASSERT_EQ(regs_before.orig_rax, static_cast<unsigned long long>(SYS_clock_nanosleep));
    uint64_t mask_before = task->signal_mask().value();
    XSaveArea xstate_before = task->xstate().value();
    uint64_t code_page = regs_before.rip & ~uint64_t{4095};
    uint64_t code_before = task->peek(code_page).value();

    Result<RemoteSyscall> rs = RemoteSyscall::start(*task);
    ASSERT_TRUE(rs) << rs.error().message();
    EXPECT_EQ(rs->code_address(), code_page);
    EXPECT_EQ(rs->call(SYS_getpid).value(), pid);
    EXPECT_EQ(rs->call(SYS_gettid).value(), pid);

    Result<uint64_t> scratch = rs->map_scratch();
    ASSERT_TRUE(scratch) << scratch.error().message();
    std::vector<MapsEntry> maps = read_maps(pid).value();
    const MapsEntry* vma = vma_at(maps, *scratch);
    ASSERT_NE(vma, nullptr);
    EXPECT_EQ(vma->prot, PROT_READ | PROT_WRITE);
    EXPECT_TRUE(vma->is_anonymous());
    EXPECT_FALSE(vma->shared);

    // The child's SIGUSR1 action, as the child itself sees it.
    EXPECT_EQ(rs->call_checked(SYS_rt_sigaction, SIGUSR1, 0, *scratch, sizeof(uint64_t)).value(), 0u);
    Result<KernelSigaction> action = read_task_object<KernelSigaction>(pid, *scratch);
    ASSERT_TRUE(action) << action.error().message();
    EXPECT_EQ(action->handler, *handler);
    EXPECT_TRUE(action->flags & SA_RESTART);
    EXPECT_EQ(action->mask, bit(SIGUSR2));

    // The kernel's answer comes back as it is; call_checked makes -errno an error.
    EXPECT_EQ(rs->call(SYS_close, -1).value(), -EBADF);
    Result<uint64_t> bad = rs->call_checked(SYS_close, -1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().sys_errno(), EBADF);
    EXPECT_NE(bad.error().message().find(fmt::format("remote syscall {} in task {}", SYS_close, pid)), std::string::npos)
        << bad.error().message();

    Status unmapped = rs->unmap(*scratch, 4096);
    EXPECT_TRUE(unmapped) << unmapped.error().message();
    maps = read_maps(pid).value();
    EXPECT_EQ(vma_at(maps, *scratch), nullptr);

    Status finished = rs->finish();
    ASSERT_TRUE(finished) << finished.error().message();
    EXPECT_FALSE(rs->call(SYS_getpid)) << "no calls after finish()";
    // Everything is as it was before the first call.
    user_regs_struct regs_after = task->regs().value();
    EXPECT_EQ(std::memcmp(&regs_before, &regs_after, sizeof regs_before), 0);
    EXPECT_EQ(task->signal_mask().value(), mask_before);
    EXPECT_EQ(task->peek(code_page).value(), code_before);
    EXPECT_EQ(task->xstate().value().bytes, xstate_before.bytes);
    injection_end = now_ms();
  }
  std::optional<SleepReport> r = child.receive<SleepReport>();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result, 0) << "the sleep was restarted, not ended with an error";
  EXPECT_GE(r->end_ms - r->start_ms, kSleepMs) << "it slept all of its time";
  // Normally the calls end well before the sleep would: it went on sleeping after them.
  if (r->start_ms + kSleepMs - injection_end >= 300) {
    EXPECT_GE(r->end_ms - injection_end, 300);
  }
  EXPECT_EQ(child.wait_exit(), 0);
}

// What the child saw of a signal sent while it was frozen.
struct SignalReport {
  int read_result = 0;
  int read_errno = 0;
  int handled = 0;
};

TEST(RemoteSyscall, LeavesASignalThatArrivedMeanwhileForAfterwards) {
  TestChild child([](const ChildLink& link) {
    struct sigaction sa {};
    sa.sa_handler = count_signal;  // no SA_RESTART: the read ends with EINTR
    if (::sigaction(SIGUSR1, &sa, nullptr) != 0) return 1;
    char c;
    SignalReport r;
    r.read_result = static_cast<int>(::read(link.from_test, &c, 1));
    r.read_errno = errno;
    r.handled = g_handled.load();
    link.report(r);
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
    Result<RemoteSyscall> rs = RemoteSyscall::start(*task);
    ASSERT_TRUE(rs) << rs.error().message();
    for (int i = 0; i < 3; ++i) {
      Result<int64_t> pid = rs->call(SYS_getpid);
      ASSERT_TRUE(pid) << pid.error().message();
      EXPECT_EQ(*pid, child.pid());
    }
    ASSERT_TRUE(rs->finish());
    // Not delivered while the calls ran: still pending, once.
    std::vector<siginfo_t> pending = task->pending_signals(SignalQueue::kShared).value();
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].si_signo, SIGUSR1);
    EXPECT_EQ(pending[0].si_pid, ::getpid());
  }
  std::optional<SignalReport> r = child.receive<SignalReport>();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->handled, 1);
  EXPECT_EQ(r->read_result, -1);
  EXPECT_EQ(r->read_errno, EINTR);
  EXPECT_EQ(child.wait_exit(), 0);
}

// After finish() the thread may also run on still traced (PTRACE_CONT), not
// only be detached: the interrupted read is restarted either way.
TEST(RemoteSyscall, TheThreadMayRunOnTracedAfterFinish) {
  TestChild child([](const ChildLink& link) {
    char c = 0;
    ssize_t n = ::read(link.from_test, &c, 1);
    link.report(n == 1 && c == 'x' ? 0 : errno);
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  Result<SeizedTask> task = SeizedTask::seize(child.pid());
  ASSERT_TRUE(task) << task.error().message();
  {
    Result<RemoteSyscall> rs = RemoteSyscall::start(*task);
    ASSERT_TRUE(rs) << rs.error().message();
    Result<int64_t> pid = rs->call(SYS_getpid);
    ASSERT_TRUE(pid) << pid.error().message();
    EXPECT_EQ(*pid, child.pid());
  }  // finish() in the destructor
  ASSERT_TRUE(task->resume(PTRACE_CONT));
  ASSERT_TRUE(child.wait_in_syscall(SYS_read)) << "back in its read, still traced";
  child.send('x');
  std::optional<int> read_errno = child.receive<int>();
  ASSERT_TRUE(read_errno);
  EXPECT_EQ(*read_errno, 0) << "read failed with errno " << *read_errno;
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  EXPECT_TRUE(task->detach());
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(RemoteSyscall, SigsuspendGoesOnWithItsTemporaryMask) {
  TestChild child([](const ChildLink& link) {
    struct sigaction sa {};
    sa.sa_handler = count_signal;
    if (::sigaction(SIGUSR1, &sa, nullptr) != 0) return 1;
    sigset_t usr1, none, after;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&none);
    ::sigprocmask(SIG_BLOCK, &usr1, nullptr);
    link.report(1);
    int r = ::sigsuspend(&none);
    ::sigprocmask(SIG_BLOCK, nullptr, &after);
    if (r != -1 || errno != EINTR) return 2;
    if (g_handled.load() != 1) return 3;
    if (sigismember(&after, SIGUSR1) != 1) return 4;  // the mask from before sigsuspend is back
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.receive<int>());
  ASSERT_TRUE(child.wait_in_syscall(SYS_rt_sigsuspend));
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    EXPECT_EQ(task->signal_mask().value(), bit(SIGUSR1)) << "the mask sigsuspend returns to";
    Result<RemoteSyscall> rs = RemoteSyscall::start(*task);
    ASSERT_TRUE(rs) << rs.error().message();
    EXPECT_EQ(rs->call(SYS_getppid).value(), ::getpid());
    ASSERT_TRUE(rs->finish());
  }
  // Restarted: back in sigsuspend with the temporary (empty) mask.
  ASSERT_TRUE(child.wait_in_syscall(SYS_rt_sigsuspend));
  // /proc may show the syscall number before the restarted sigsuspend has
  // installed its temporary mask: wait for the mask (bounded), then check.
  uint64_t blocked = ~0ull;
  for (int i = 0; i < 1000 && (blocked = read_proc_status(child.pid()).value().sig_blocked) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(blocked, 0u);
  ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(RemoteSyscall, WorksInAStoppedProcessAndLeavesItStopped) {
  TestChild child([](const ChildLink& link) {
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  ASSERT_EQ(::kill(child.pid(), SIGSTOP), 0);
  for (int i = 0; i < 1000 && read_proc_stat(child.pid()).value().state != 'T'; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    ASSERT_EQ(task->group_stop_signal(), SIGSTOP);
    Result<RemoteSyscall> rs = RemoteSyscall::start(*task);
    ASSERT_TRUE(rs) << rs.error().message();
    EXPECT_EQ(rs->call(SYS_getpid).value(), child.pid());
    Status finished = rs->finish();
    ASSERT_TRUE(finished) << finished.error().message();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(read_proc_stat(child.pid()).value().state, 'T');
  ASSERT_EQ(::kill(child.pid(), SIGCONT), 0);
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(RemoteSyscall, RunsInEveryThreadOfAFrozenProcess) {
  TestChild child([](const ChildLink& link) {
    for (int i = 0; i < 3; ++i) std::thread([] { for (;;) ::pause(); }).detach();
    link.report(1);
    link.await();
    return 0;  // exit_group ends the pausing threads
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.receive<int>());
  pid_t pid = child.pid();
  for (int i = 0; i < 1000 && list_threads(pid).value().size() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::vector<pid_t> tids = list_threads(pid).value();
  ASSERT_EQ(tids.size(), 4u);
  for (pid_t tid : tids) ASSERT_TRUE(child.wait_in_syscall(tid == pid ? SYS_read : SYS_pause, tid));
  {
    Result<FrozenProcess> frozen = FrozenProcess::freeze(pid);
    ASSERT_TRUE(frozen) << frozen.error().message();
    ASSERT_EQ(frozen->threads().size(), 4u);
    for (SeizedTask& thread : frozen->threads()) {
      Result<RemoteSyscall> rs = RemoteSyscall::start(thread);
      ASSERT_TRUE(rs) << rs.error().message();
      EXPECT_EQ(rs->call(SYS_gettid).value(), thread.tid());
      EXPECT_EQ(rs->call(SYS_getpid).value(), pid);
    }
  }
  for (pid_t tid : tids) EXPECT_TRUE(child.wait_in_syscall(tid == pid ? SYS_read : SYS_pause, tid)) << "thread " << tid;
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(RemoteSyscall, RefusesCodeOutsideExecutableMemory) {
  TestChild child([](const ChildLink& link) {
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  {
    Result<SeizedTask> task = SeizedTask::seize(child.pid());
    ASSERT_TRUE(task) << task.error().message();
    user_regs_struct before = task->regs().value();
    uint64_t stack_page = before.rsp & ~uint64_t{4095};
    Result<RemoteSyscall> rs = RemoteSyscall::start(*task, stack_page);
    ASSERT_FALSE(rs);
    EXPECT_NE(rs.error().message().find("not in executable memory"), std::string::npos) << rs.error().message();
    EXPECT_FALSE(RemoteSyscall::start(*task, 0x1000)) << "not mapped";
    user_regs_struct after = task->regs().value();
    EXPECT_EQ(std::memcmp(&before, &after, sizeof before), 0);
  }
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(RemoteSyscall, ReportsACallThatEndsTheProcess) {
  TestChild child([](const ChildLink& link) {
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(child.wait_in_syscall(SYS_read));
  Result<SeizedTask> task = SeizedTask::seize(child.pid());
  ASSERT_TRUE(task) << task.error().message();
  Result<RemoteSyscall> rs = RemoteSyscall::start(*task);
  ASSERT_TRUE(rs) << rs.error().message();
  Result<int64_t> r = rs->call(SYS_exit_group, 7);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("exited with status 7"), std::string::npos) << r.error().message();
  child.forget();  // reaped by the tracer's waitpid
  EXPECT_FALSE(rs->call(SYS_getpid));
  EXPECT_FALSE(rs->finish());
  EXPECT_TRUE(task->detach()) << "nothing left to detach";
}

}  // namespace
}  // namespace ferry
