// Creates a restored process with its dumped PID (clone3 with set_tid) as a
// child of Ferry. The child sets itself up from a TaskSetupPlan, reports
// over a pipe, then waits (all signals blocked, in pause()) for the tracer.
//
// Process trees come later: a child then gets its own children the same way
// before it reports, so this is the unit that recurses.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "restore/task_setup.h"

namespace ferry {

// Owns a created process: unless released, it is killed (by PID) and reaped
// when this is destroyed, so a failed restore leaves nothing half-built.
class RestoredChild {
 public:
  RestoredChild() = default;
  explicit RestoredChild(pid_t pid) : pid_(pid) {}
  RestoredChild(RestoredChild&& other) noexcept : pid_(std::exchange(other.pid_, 0)) {}
  RestoredChild& operator=(RestoredChild&& other) noexcept;
  RestoredChild(const RestoredChild&) = delete;
  ~RestoredChild() { kill_and_reap(); }

  pid_t pid() const { return pid_; }
  // The process is the caller's to look after now.
  pid_t release() { return std::exchange(pid_, 0); }
  // SIGKILL and waitpid; nothing if released.
  void kill_and_reap();

 private:
  pid_t pid_ = 0;
};

struct CreatedTask {
  RestoredChild child;
  std::vector<std::string> warnings;  // from the child's setup, for the log
};

// Creates process `pid` running set_up_task(plan) and waits until it
// reported success (or fails with the child's own error). A PID in use is
// an error naming it.
Result<CreatedTask> create_task(pid_t pid, const TaskSetupPlan& plan);

// clone3 with set_tid alone: a child with PID `pid` that runs `body` and
// _exits with its return value. For create_task and tests.
Result<pid_t> clone_with_pid(pid_t pid, int (*body)(void*), void* arg);

}  // namespace ferry
