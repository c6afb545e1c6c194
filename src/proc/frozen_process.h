// A whole process held still: every thread of its thread group seized and
// stopped (SeizedTask), released together.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <vector>

#include "base/error.h"
#include "proc/seized_task.h"

namespace ferry {

class FrozenProcess {
 public:
  // Seizes every thread of process `pid`, reading /proc/PID/task again until
  // no thread is left that is not held (running threads may create more).
  // On failure every thread seized so far is let go again, as it was.
  static Result<FrozenProcess> freeze(pid_t pid, std::chrono::milliseconds timeout = kTaskStopTimeout);

  FrozenProcess(FrozenProcess&&) noexcept = default;
  FrozenProcess& operator=(FrozenProcess&&) noexcept = default;
  // Detaches every thread (see thaw()).
  ~FrozenProcess() = default;

  pid_t pid() const { return pid_; }
  // The thread group leader first, then the other threads by ascending TID.
  std::vector<SeizedTask>& threads() { return threads_; }
  SeizedTask& leader() { return threads_.front(); }
  // The thread with this TID, or nullptr.
  SeizedTask* thread(pid_t tid);
  std::vector<pid_t> tids() const;

  // Detaches every thread; each goes on as it was. Returns the first failure
  // (the other threads are detached all the same).
  Status thaw();

 private:
  FrozenProcess(pid_t pid, std::vector<SeizedTask> threads) : pid_(pid), threads_(std::move(threads)) {}

  pid_t pid_ = 0;
  std::vector<SeizedTask> threads_;
};

}  // namespace ferry
