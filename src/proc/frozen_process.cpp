#include "proc/frozen_process.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "base/log.h"
#include "proc/proc_status.h"

namespace ferry {
namespace {

const Logger kLog{"proc"};

// Each round seizes every thread seen so far; only threads not yet seized
// can create new ones, so this converges unless threads are created as fast
// as they can be seized.
constexpr int kMaxRounds = 100;

// A thread that exited after it was listed: gone from /proc, or a zombie
// (seizing a zombie fails with EPERM, not ESRCH).
bool thread_is_gone(pid_t pid, pid_t tid) {
  Result<ProcStat> stat = read_proc_stat(pid, tid);
  if (!stat) return stat.error().sys_errno() == ENOENT || stat.error().sys_errno() == ESRCH;
  return stat->state == 'Z' || stat->state == 'X';
}

bool holds(const std::vector<SeizedTask>& threads, pid_t tid) {
  return std::any_of(threads.begin(), threads.end(), [tid](const SeizedTask& t) { return t.tid() == tid; });
}

}  // namespace

Result<FrozenProcess> FrozenProcess::freeze(pid_t pid, std::chrono::milliseconds timeout) {
  ProcStatus status = FERRY_TRY_CTX(read_proc_status(pid), "freeze process {}", pid);
  if (status.tgid != pid) return fail("freeze process {}: it is a thread of process {}", pid, status.tgid);
  std::vector<SeizedTask> threads;
  for (int round = 0; round < kMaxRounds; ++round) {
    std::vector<pid_t> tids = FERRY_TRY_CTX(list_threads(pid), "freeze process {}", pid);
    bool seized_any = false;
    for (pid_t tid : tids) {
      if (holds(threads, tid)) continue;
      Result<SeizedTask> task = SeizedTask::seize(tid, timeout);
      // A thread other than the leader may exit between listing and seizing.
      if (!task && tid != pid && (task.error().sys_errno() == ESRCH || thread_is_gone(pid, tid))) continue;
      if (!task) return fail(std::move(task).error().with_context(fmt::format("freeze process {}", pid)));
      threads.push_back(std::move(*task));
      seized_any = true;
    }
    if (!seized_any) {
      // Threads listed no more were killed while stopped; let them go.
      std::erase_if(threads, [&](const SeizedTask& t) { return !std::binary_search(tids.begin(), tids.end(), t.tid()); });
      if (!holds(threads, pid)) return fail("freeze process {}: its main thread is gone", pid);
      std::sort(threads.begin(), threads.end(), [pid](const SeizedTask& a, const SeizedTask& b) {
        if ((a.tid() == pid) != (b.tid() == pid)) return a.tid() == pid;
        return a.tid() < b.tid();
      });
      kLog.debug("froze process {}: {} threads in {} rounds", pid, threads.size(), round + 1);
      return FrozenProcess(pid, std::move(threads));
    }
  }
  return fail("freeze process {}: threads kept appearing after {} rounds", pid, kMaxRounds);
}

SeizedTask* FrozenProcess::thread(pid_t tid) {
  auto it = std::find_if(threads_.begin(), threads_.end(), [tid](const SeizedTask& t) { return t.tid() == tid; });
  return it == threads_.end() ? nullptr : &*it;
}

std::vector<pid_t> FrozenProcess::tids() const {
  std::vector<pid_t> tids;
  for (const SeizedTask& t : threads_) tids.push_back(t.tid());
  return tids;
}

Status FrozenProcess::thaw() {
  Status first;
  for (SeizedTask& t : threads_) {
    Status s = t.detach();
    if (!s && first) first = std::move(s);
  }
  threads_.clear();
  return first;
}

}  // namespace ferry
