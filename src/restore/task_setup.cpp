#include "restore/task_setup.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include <fmt/format.h>

namespace ferry {
namespace {

// `syscall` (0f 05), then `int3` (cc) to catch a task that runs past it.
constexpr uint8_t kTrampolineCode[] = {0x0f, 0x05, 0xcc};
constexpr int kRlimitCount = 16;  // RLIM_NLIMITS on x86_64

int fd_flags_for_open(uint32_t stored) {
  int flags = static_cast<int>(stored);
  flags &= ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
  return flags | O_NOCTTY;
}

Status close_range_checked(unsigned first, unsigned last) {
  if (first > last) return {};
  if (::syscall(SYS_close_range, first, last, 0) != 0) return fail_errno("close_range({}, {})", first, last);
  return {};
}

// Opens every file once (per open file description) at a temporary number
// at or above `high`, closes everything of Ferry's below it, then moves the
// files to their numbers.
Status restore_fds(const std::vector<FdPlan>& fds, int& report_fd) {
  int high = 3;
  for (const FdPlan& f : fds) high = std::max(high, f.fd + 1);
  int moved = ::fcntl(report_fd, F_DUPFD_CLOEXEC, high);
  if (moved < 0) return fail_errno("move the report pipe above fd {}", high);
  ::close(report_fd);
  report_fd = moved;

  std::map<uint32_t, int> opened;  // file id -> temporary fd
  for (const FdPlan& f : fds) {
    if (opened.contains(f.file_id)) continue;
    int fd = ::open(f.path.c_str(), f.open_flags);
    if (fd < 0) return fail_errno("fd {}: open {} (flags {:#o})", f.fd, f.path, f.open_flags);
    if (!(f.open_flags & O_PATH) && ::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0 && errno != ESPIPE) {
      Failure e = fail_errno("fd {}: seek {} to {}", f.fd, f.path, f.pos);
      ::close(fd);
      return e;
    }
    int tmp = ::fcntl(fd, F_DUPFD, high);
    int saved = errno;
    ::close(fd);
    if (tmp < 0) return fail(Error::from_errno(saved, fmt::format("fd {}: move {} above fd {}", f.fd, f.path, high)));
    opened[f.file_id] = tmp;
  }
  FERRY_TRY(close_range_checked(0, static_cast<unsigned>(high - 1)));
  for (const FdPlan& f : fds) {
    if (::dup3(opened.at(f.file_id), f.fd, f.cloexec ? O_CLOEXEC : 0) < 0)
      return fail_errno("fd {}: dup3 {}", f.fd, f.path);
  }
  // Only the restored fds and the report pipe stay.
  FERRY_TRY(close_range_checked(static_cast<unsigned>(high), static_cast<unsigned>(report_fd - 1)));
  FERRY_TRY(close_range_checked(static_cast<unsigned>(report_fd + 1), ~0u));
  return {};
}

Status restore_fs(const TaskSetupPlan& plan) {
  if (::chdir(plan.cwd.c_str()) != 0) return fail_errno("chdir {}", plan.cwd);
  if (plan.root != "/") {
    if (::chroot(plan.root.c_str()) != 0) return fail_errno("chroot {}", plan.root);
  }
  if (plan.umask) ::umask(*plan.umask);
  return {};
}

Status restore_session(SessionPlan session) {
  switch (session) {
    case SessionPlan::kNewSession:
      if (::setsid() < 0) return fail_errno("setsid");
      return {};
    case SessionPlan::kOwnGroup:
      if (::setpgid(0, 0) != 0) return fail_errno("setpgid(0, 0)");
      return {};
    case SessionPlan::kKeepGroup:
      return {};
  }
  return {};
}

Status restore_sigactions(const std::vector<SigactionPlan>& actions) {
  for (const SigactionPlan& a : actions) {
    KernelSigaction ksa = a.action;
    if (::syscall(SYS_rt_sigaction, a.signo, &ksa, nullptr, sizeof(uint64_t)) != 0)
      return fail_errno("rt_sigaction({}, handler {:#x}, flags {:#x})", a.signo, ksa.handler, ksa.flags);
  }
  return {};
}

// Without CAP_SYS_RESOURCE a hard limit cannot be raised: such a limit is
// kept at the current hard limit (and the soft one clamped to it).
Status restore_rlimits(const std::vector<std::pair<int, rlimit>>& limits, std::vector<std::string>& warnings) {
  for (const auto& [resource, wanted] : limits) {
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &wanted) == 0) continue;
    if (errno != EPERM) return fail_errno("setrlimit({}, {}, {})", resource, wanted.rlim_cur, wanted.rlim_max);
    rlimit now{};
    if (::getrlimit(static_cast<__rlimit_resource>(resource), &now) != 0) return fail_errno("getrlimit({})", resource);
    rlimit clamped{std::min(wanted.rlim_cur, now.rlim_max), now.rlim_max};
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &clamped) != 0)
      return fail_errno("setrlimit({}, {}, {})", resource, clamped.rlim_cur, clamped.rlim_max);
    warnings.push_back(fmt::format("rlimit {}: hard limit {} cannot be raised above {} (no CAP_SYS_RESOURCE); kept "
                                   "soft {} hard {}",
                                   resource, wanted.rlim_max, now.rlim_max, clamped.rlim_cur, clamped.rlim_max));
  }
  return {};
}

Status map_trampoline(uint64_t address, uint64_t size) {
  void* want = reinterpret_cast<void*>(address);
  void* got = ::mmap(want, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (got == MAP_FAILED) return fail_errno("map the trampoline at {:#x}", address);
  if (got != want) {
    ::munmap(got, size);
    return fail("map the trampoline at {:#x}: the kernel placed it at {}", address, got);
  }
  std::memcpy(want, kTrampolineCode, sizeof kTrampolineCode);
  return {};
}

}  // namespace

Result<TaskSetupPlan> make_task_setup_plan(const RestoreImages& images, const TaskImages& task, bool shell_job,
                                           uint64_t trampoline_address, uint64_t trampoline_size) {
  TaskSetupPlan plan;
  plan.trampoline_address = trampoline_address;
  plan.trampoline_size = trampoline_size;
  for (const images::FdinfoEntry& e : task.fds) {
    const images::RegFileEntry& reg = images.reg_file(e.id());
    FdPlan f;
    f.fd = static_cast<int>(e.fd());
    f.file_id = e.id();
    f.path = reg.name();
    f.open_flags = fd_flags_for_open(reg.flags());
    f.pos = reg.pos();
    f.cloexec = (e.flags() & FD_CLOEXEC) != 0;
    if (reg.has_size()) {
      struct stat st{};
      if (::stat(f.path.c_str(), &st) != 0) return fail_errno("fd {}: stat {}", f.fd, f.path);
      if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) != reg.size())
        return fail("fd {}: {} has {} bytes now, {} when it was dumped", f.fd, f.path, st.st_size, reg.size());
    }
    plan.fds.push_back(std::move(f));
  }
  plan.cwd = images.reg_file(task.fs.cwd_id()).name();
  plan.root = images.reg_file(task.fs.root_id()).name();
  if (task.fs.has_umask()) plan.umask = static_cast<mode_t>(task.fs.umask());

  const images::PstreeEntry& ps = task.pstree;
  if (ps.sid() == ps.pid()) plan.session = SessionPlan::kNewSession;
  else if (!shell_job) return fail("process {} is not a session leader; restore it with -j/--shell-job", ps.pid());
  else plan.session = ps.pgid() == ps.pid() ? SessionPlan::kOwnGroup : SessionPlan::kKeepGroup;

  const images::TaskCoreEntry& tc = task.leader_core().tc();
  if (tc.has_rlimits()) {
    int n = std::min(tc.rlimits().rlimits_size(), kRlimitCount);
    for (int i = 0; i < n; ++i) {
      const auto& r = tc.rlimits().rlimits(i);
      plan.rlimits.push_back({i, rlimit{r.cur(), r.max()}});
    }
  }
  int index = 0;
  for (int signo = 1; signo <= 64 && index < tc.sigactions_size(); ++signo) {
    if (signo == SIGKILL || signo == SIGSTOP) continue;
    const images::SaEntry& sa = tc.sigactions(index++);
    if (sa.has_compat_sigaction() && sa.compat_sigaction())
      return fail("core-{}.img: signal {} has a 32-bit (compat) sigaction, not supported", task.pid(), signo);
    plan.sigactions.push_back({signo, KernelSigaction{sa.sigaction(), sa.flags(), sa.restorer(), sa.mask()}});
  }
  if (tc.has_timers()) {
    auto to_itimer = [](const images::ItimerEntry& e) {
      itimerval v{};
      v.it_interval.tv_sec = static_cast<time_t>(e.isec());
      v.it_interval.tv_usec = static_cast<suseconds_t>(e.iusec());
      v.it_value.tv_sec = static_cast<time_t>(e.vsec());
      v.it_value.tv_usec = static_cast<suseconds_t>(e.vusec());
      return v;
    };
    if (tc.timers().posix_size() != 0)
      return fail("core-{}.img: POSIX timers are not supported yet", task.pid());
    plan.itimers = std::array<itimerval, 3>{to_itimer(tc.timers().real()), to_itimer(tc.timers().virt()),
                                            to_itimer(tc.timers().prof())};
  }
  plan.personality = tc.personality();
  plan.comm = tc.comm();
  return plan;
}

Status set_up_task(const TaskSetupPlan& plan, int& report_fd, std::vector<std::string>& warnings) {
  // A signal now would run a handler of the restored program in Ferry's
  // memory: everything stays blocked until the tracer sets the real mask.
  sigset_t all;
  ::sigfillset(&all);
  if (::sigprocmask(SIG_SETMASK, &all, nullptr) != 0) return fail_errno("block signals");

  FERRY_TRY(map_trampoline(plan.trampoline_address, plan.trampoline_size));
  FERRY_TRY(restore_fds(plan.fds, report_fd));
  FERRY_TRY(restore_fs(plan));
  FERRY_TRY(restore_session(plan.session));
  FERRY_TRY(restore_sigactions(plan.sigactions));
  if (plan.personality && ::personality(*plan.personality) < 0) return fail_errno("personality({:#x})", *plan.personality);
  if (!plan.comm.empty() && ::prctl(PR_SET_NAME, plan.comm.c_str(), 0, 0, 0) != 0) return fail_errno("set comm {}", plan.comm);
  FERRY_TRY(restore_rlimits(plan.rlimits, warnings));
  if (plan.itimers) {
    const int which[] = {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF};
    for (int i = 0; i < 3; ++i)
      if (::setitimer(static_cast<__itimer_which>(which[i]), &(*plan.itimers)[i], nullptr) != 0)
        return fail_errno("setitimer({})", which[i]);
  }
  return {};
}

}  // namespace ferry
