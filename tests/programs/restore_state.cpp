// Per-process state survives a restore: signal handlers (flags, masks,
// restorer), the blocked mask, pending signals (standard and queued
// real-time ones with their values, process-wide and thread-private),
// sigaltstack; regular files at their fd numbers with offsets, open flags
// (O_APPEND) and FD_CLOEXEC, /dev/null, /dev/zero, /dev/urandom, stdout to a
// file; cwd, umask, rlimits, an interval timer and the command name.
//
//   restore_state STATUS_FILE   (in a writable working directory)
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "restore_common.h"

using namespace restore_test;

namespace {

volatile sig_atomic_t g_usr1_code = -100;
volatile sig_atomic_t g_usr1_pid = 0;
volatile sig_atomic_t g_rt_shared_value = 0;
volatile sig_atomic_t g_rt_private_value = 0;
volatile sig_atomic_t g_hup_on_altstack = 0;
char g_altstack[64 * 1024];

void on_usr1(int, siginfo_t* info, void*) {
  g_usr1_code = info->si_code;
  g_usr1_pid = info->si_pid;
}
void on_rt(int sig, siginfo_t* info, void*) {
  if (sig == SIGRTMIN + 1) g_rt_shared_value = info->si_value.sival_int;
  else g_rt_private_value = info->si_value.sival_int;
}
void on_hup(int) {
  char here;
  g_hup_on_altstack = &here >= g_altstack && &here < g_altstack + sizeof g_altstack;
}

struct kernel_sigaction {
  uint64_t handler, flags, restorer, mask;
};
kernel_sigaction raw_action(int sig) {
  kernel_sigaction k{};
  ::syscall(SYS_rt_sigaction, sig, nullptr, &k, 8);
  return k;
}

void place(int fd, int at) {
  if (fd != at) {
    ::dup2(fd, at);
    ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  install_term_handler();
  pid_t self = ::getpid();

  // Signals.
  struct sigaction sa{};
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaction(SIGUSR1, &sa, nullptr);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGRTMIN + 1, &sa, nullptr);
  sigaction(SIGRTMIN + 2, &sa, nullptr);
  signal(SIGUSR2, SIG_IGN);
  struct sigaction hup{};
  hup.sa_handler = on_hup;
  hup.sa_flags = SA_ONSTACK | SA_NODEFER;
  sigaction(SIGHUP, &hup, nullptr);
  stack_t ss{};
  ss.ss_sp = g_altstack;
  ss.ss_size = sizeof g_altstack;
  sigaltstack(&ss, nullptr);
  kernel_sigaction before[3] = {raw_action(SIGUSR1), raw_action(SIGUSR2), raw_action(SIGHUP)};

  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGRTMIN + 1);
  sigaddset(&blocked, SIGRTMIN + 2);
  sigaddset(&blocked, SIGHUP);
  sigprocmask(SIG_BLOCK, &blocked, nullptr);
  ::kill(self, SIGUSR1);
  sigval v{};
  v.sival_int = 1234;
  ::sigqueue(self, SIGRTMIN + 1, v);
  siginfo_t info{};
  info.si_signo = SIGRTMIN + 2;
  info.si_code = SI_QUEUE;
  info.si_pid = self;
  info.si_uid = ::getuid();
  info.si_value.sival_int = 5678;
  ::syscall(SYS_rt_tgsigqueueinfo, self, ::gettid(), SIGRTMIN + 2, &info);

  // Files.
  {
    int fd = ::open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    std::string text;
    for (int i = 0; i < 100; ++i) text += static_cast<char>('a' + i % 26);
    if (::write(fd, text.data(), text.size()) != 100) return 2;
    ::lseek(fd, 37, SEEK_SET);
    place(fd, 10);
  }
  place(::open("log.txt", O_WRONLY | O_CREAT | O_APPEND, 0644), 11);
  if (::write(11, "one\n", 4) != 4) return 2;
  place(::open("/dev/null", O_RDONLY | O_CLOEXEC), 12);
  ::fcntl(12, F_SETFD, FD_CLOEXEC);
  place(::open("/dev/zero", O_RDONLY), 13);
  place(::open("/dev/urandom", O_RDONLY | O_NONBLOCK), 14);
  std::printf("before\n");
  std::fflush(stdout);

  // Filesystem context, limits, timer, name.
  ::mkdir("subdir", 0755);
  if (::chdir("subdir") != 0) return 2;
  ::umask(027);
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  rlimit lower{200, nofile.rlim_max};
  ::setrlimit(RLIMIT_NOFILE, &lower);
  rlimit core{0, RLIM_INFINITY};
  ::getrlimit(RLIMIT_CORE, &core);
  core.rlim_cur = 0;
  ::setrlimit(RLIMIT_CORE, &core);
  itimerval timer{};
  timer.it_value.tv_sec = 3600;
  timer.it_interval.tv_sec = 1800;
  ::setitimer(ITIMER_REAL, &timer, nullptr);
  ::prctl(PR_SET_NAME, "rstate", 0, 0, 0);

  report_ready(argv[1]);
  wait_for_term();

  // Signals.
  kernel_sigaction after[3] = {raw_action(SIGUSR1), raw_action(SIGUSR2), raw_action(SIGHUP)};
  const char* names[3] = {"SIGUSR1", "SIGUSR2", "SIGHUP"};
  for (int i = 0; i < 3; ++i)
    check(std::memcmp(&before[i], &after[i], sizeof before[i]) == 0,
          "%s: handler %#lx flags %#lx restorer %#lx mask %#lx, was %#lx %#lx %#lx %#lx", names[i], after[i].handler,
          after[i].flags, after[i].restorer, after[i].mask, before[i].handler, before[i].flags, before[i].restorer,
          before[i].mask);
  sigset_t now;
  sigprocmask(SIG_SETMASK, nullptr, &now);
  check(sigismember(&now, SIGUSR1) && sigismember(&now, SIGRTMIN + 1) && sigismember(&now, SIGHUP) &&
            !sigismember(&now, SIGTERM),
        "blocked mask");
  sigset_t pending;
  sigpending(&pending);
  check(sigismember(&pending, SIGUSR1), "SIGUSR1 no longer pending");
  check(sigismember(&pending, SIGRTMIN + 1), "SIGRTMIN+1 no longer pending");
  check(sigismember(&pending, SIGRTMIN + 2), "SIGRTMIN+2 (thread-private) no longer pending");
  stack_t ss_now{};
  sigaltstack(nullptr, &ss_now);
  check(ss_now.ss_sp == g_altstack && ss_now.ss_size == sizeof g_altstack && ss_now.ss_flags == 0, "sigaltstack");
  sigprocmask(SIG_UNBLOCK, &blocked, nullptr);
  check(g_usr1_code == SI_USER && g_usr1_pid == self, "SIGUSR1 delivered with si_code %d pid %d", g_usr1_code, g_usr1_pid);
  check(g_rt_shared_value == 1234, "SIGRTMIN+1 value %d", g_rt_shared_value);
  check(g_rt_private_value == 5678, "SIGRTMIN+2 value %d", g_rt_private_value);
  ::raise(SIGHUP);
  check(g_hup_on_altstack == 1, "SIGHUP handler did not run on the alternate stack");

  // Files.
  check(::lseek(10, 0, SEEK_CUR) == 37, "data.txt offset %ld", static_cast<long>(::lseek(10, 0, SEEK_CUR)));
  char c = 0;
  check(::read(10, &c, 1) == 1 && c == 'a' + 37 % 26, "data.txt content at 37");
  check((::fcntl(10, F_GETFL) & O_ACCMODE) == O_RDWR, "data.txt access mode");
  check((::fcntl(11, F_GETFL) & O_APPEND) != 0, "log.txt lost O_APPEND");
  check(::write(11, "two\n", 4) == 4, "write log.txt");
  {
    int fd = ::open("../log.txt", O_RDONLY);
    char buf[16] = {};
    check(fd >= 0 && ::read(fd, buf, sizeof buf) == 8 && std::string(buf) == "one\ntwo\n", "log.txt: '%s'", buf);
    ::close(fd);
  }
  check(::fcntl(12, F_GETFD) == FD_CLOEXEC, "fd 12 lost FD_CLOEXEC");
  check(::fcntl(13, F_GETFD) == 0, "fd 13 gained FD_CLOEXEC");
  check(::read(12, &c, 1) == 0, "/dev/null");
  c = 1;
  check(::read(13, &c, 1) == 1 && c == 0, "/dev/zero");
  check(::read(14, &c, 1) == 1, "/dev/urandom");
  check((::fcntl(14, F_GETFL) & O_NONBLOCK) != 0, "/dev/urandom lost O_NONBLOCK");
  for (int fd = 3; fd < 10; ++fd) check(::fcntl(fd, F_GETFD) < 0, "fd %d is open (it was not)", fd);
  check(::fcntl(15, F_GETFD) < 0, "fd 15 is open (it was not)");
  std::printf("after\n");
  std::fflush(stdout);
  {
    int fd = ::open("../prog.out", O_RDONLY);
    char buf[64] = {};
    ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf - 1) : -1;
    check(n >= 13 && std::string(buf).find("before\nafter\n") != std::string::npos, "stdout file: '%s'", buf);
    ::close(fd);
  }

  // Filesystem context, limits, timer, name.
  char cwd[PATH_MAX] = {};
  check(::getcwd(cwd, sizeof cwd) && std::string(cwd).ends_with("/subdir"), "cwd %s", cwd);
  check(::umask(0) == 027, "umask");
  rlimit got{};
  ::getrlimit(RLIMIT_NOFILE, &got);
  check(got.rlim_cur == 200 && got.rlim_max == nofile.rlim_max, "RLIMIT_NOFILE %lu/%lu", got.rlim_cur, got.rlim_max);
  ::getrlimit(RLIMIT_CORE, &got);
  check(got.rlim_cur == 0, "RLIMIT_CORE soft %lu", got.rlim_cur);
  itimerval left{};
  ::getitimer(ITIMER_REAL, &left);
  check(left.it_value.tv_sec > 3000 && left.it_value.tv_sec <= 3600 && left.it_interval.tv_sec == 1800,
        "ITIMER_REAL %ld s left, interval %ld", left.it_value.tv_sec, left.it_interval.tv_sec);
  char name[17] = {};
  ::prctl(PR_GET_NAME, name, 0, 0, 0);
  check(std::string(name) == "rstate", "comm %s", name);
  check(::getsid(0) == self && ::getpgrp() == self, "session/group leader");
  return finish();
}
