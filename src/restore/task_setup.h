// What a restored process sets up for itself while it still runs Ferry's
// code, right after it was created: everything per-process that is not
// memory. The parent turns the images into a TaskSetupPlan (plain data, so
// the child does no parsing); the child carries it out with
// set_up_task() and reports back over a pipe.
//
// The child never logs: its stderr is Ferry's until the fds are rebuilt and
// the restored program's own afterwards. Problems travel back as the
// returned error and as warnings.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "restore/restore_images.h"

namespace ferry {

struct FdPlan {
  int fd = -1;
  uint32_t file_id = 0;  // fds with one id share one open file description
  std::string path;
  int open_flags = 0;    // as stored, O_CLOEXEC and creation flags removed
  uint64_t pos = 0;
  bool cloexec = false;
};

// rt_sigaction's kernel layout: restorer and flags exactly as dumped.
struct KernelSigaction {
  uint64_t handler = 0;
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
};

struct SigactionPlan {
  int signo = 0;
  KernelSigaction action;
};

enum class SessionPlan {
  kNewSession,  // the process led its session: setsid()
  kOwnGroup,    // -j, and it led its process group: setpgid(0, 0)
  kKeepGroup,   // -j, in another group: stays in Ferry's group and session
};

struct TaskSetupPlan {
  std::vector<FdPlan> fds;  // ascending fd
  std::string cwd;
  std::string root;         // "/" or a directory to chroot into
  std::optional<mode_t> umask;
  std::vector<std::pair<int, rlimit>> rlimits;
  SessionPlan session = SessionPlan::kNewSession;
  std::vector<SigactionPlan> sigactions;
  std::optional<std::array<itimerval, 3>> itimers;  // ITIMER_REAL, _VIRTUAL, _PROF
  std::optional<unsigned> personality;
  std::string comm;
  // Where to map the trampoline page(s) the tracer drives the task through.
  uint64_t trampoline_address = 0;
  uint64_t trampoline_size = 0;
};

// The trampoline: `syscall; int3` at its start; the rest is scratch memory
// for the arguments of injected calls.
constexpr uint64_t kTrampolineCodeSize = 64;

Result<TaskSetupPlan> make_task_setup_plan(const RestoreImages& images, const TaskImages& task, bool shell_job,
                                           uint64_t trampoline_address, uint64_t trampoline_size);

// Runs in the new process. `report_fd` is moved above the restored fds (the
// new number is stored back); every other fd of Ferry's is closed. Signals
// are left blocked: the tracer sets the final mask.
Status set_up_task(const TaskSetupPlan& plan, int& report_fd, std::vector<std::string>& warnings);

}  // namespace ferry
