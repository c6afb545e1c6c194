#include "restore/restore_command.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "base/log.h"
#include "base/readiness.h"
#include "image/image_dir.h"
#include "pageserver/lazy_page_store.h"
#include "proc/proc_maps.h"
#include "proc/seized_task.h"
#include "restore/address_space_builder.h"
#include "restore/credentials.h"
#include "restore/memory_restorer.h"
#include "restore/process_creator.h"
#include "restore/restore_images.h"
#include "restore/task_setup.h"
#include "restore/thread_state.h"
#include "restore/trampoline.h"

namespace ferry {
namespace {

const Logger kLog{"restore"};
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }


struct RestoreStats {
  double setup_seconds = 0;
  double memory_seconds = 0;
  double total_seconds = 0;
  uint64_t vmas = 0;
  uint64_t injected_calls = 0;
  MemoryRestoreStats memory;
};

// Everything done to the stopped process as its tracer, up to the moment
// it is let go.
Status drive_task(SeizedTask& task, uint64_t trampoline, const RestoreImages& images, const TaskImages& t,
                  PageSource& pages, RestoreStats& stats) {
  Trampoline tr = FERRY_TRY(Trampoline::attach(task, trampoline, kTrampolineSize));
  AddressSpaceStats as = FERRY_TRY_CTX(build_address_space(tr, images, t), "rebuild the address space");
  stats.vmas = as.vmas;
  Clock::time_point memory_start = Clock::now();
  FERRY_TRY_CTX(prefault_memory(tr, t), "prefault memory");
  stats.memory = FERRY_TRY_CTX(restore_memory(task.tid(), t, pages), "restore memory");
  stats.memory_seconds = seconds_since(memory_start);
  FERRY_TRY_CTX(finish_address_space(tr, t), "set memory protections");
  const images::CoreEntry& core = t.leader_core();
  FERRY_TRY_CTX(restore_thread_calls(tr, core), "restore thread state");
  if (core.thread_core().has_creds()) FERRY_TRY_CTX(restore_credentials(tr, core.thread_core().creds()), "restore credentials");
  FERRY_TRY(tr.unmap_self());
  stats.injected_calls = tr.calls();
  FERRY_TRY_CTX(restore_registers(task, core), "restore registers");
  return {};
}

Result<int> wait_for_exit(pid_t pid) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, 0);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    return fail_errno("wait for restored process {}", pid);
  }
  if (WIFEXITED(status)) {
    kLog.info("restored process {} exited with status {}", pid, WEXITSTATUS(status));
    return WEXITSTATUS(status);
  }
  kLog.info("restored process {} was killed by signal {}", pid, WTERMSIG(status));
  return 128 + WTERMSIG(status);
}

void print_stats(const RestoreStats& s) {
  double gbps = s.memory_seconds > 0 ? static_cast<double>(s.memory.pages * kPageSize) / s.memory_seconds / 1e9 : 0;
  std::printf("Displaying restore stats:\n");
  std::printf("Setup time: %.0f us\n", s.setup_seconds * 1e6);
  std::printf("Memory restore time: %.0f us\n", s.memory_seconds * 1e6);
  std::printf("Total time: %.0f us\n", s.total_seconds * 1e6);
  std::printf("VMAs mapped: %llu\n", static_cast<unsigned long long>(s.vmas));
  std::printf("Injected system calls: %llu\n", static_cast<unsigned long long>(s.injected_calls));
  std::printf("Memory pages restored: %llu\n", static_cast<unsigned long long>(s.memory.pages));
  std::printf("Memory transfer: %.3f GB/s\n", gbps);
  std::fflush(stdout);
}

}  // namespace

Result<int> run_restore_command(const Options& o) {
  if (o.lazy_pages) return fail("--lazy-pages is not supported by ferry restore yet");
  if (o.auto_dedup) return fail("--auto-dedup is not supported by ferry restore yet");
  if (o.restore_sibling) return fail("--restore-sibling (-S) is not supported by ferry restore yet");
  Clock::time_point start = Clock::now();
  RestoreStats stats;
  ImageDir dir = FERRY_TRY(ImageDir::open(o.images_dir));
  RestoreImages images = FERRY_TRY(load_restore_images(dir, RestoreImageOptions{o.shell_job}));
  LazyPageStore pages = FERRY_TRY_CTX(LazyPageStore::load(dir), "pages in {}", dir.path());
  const TaskImages& task = images.root();
  pid_t pid = task.pid();

  std::vector<MapsEntry> own = FERRY_TRY(read_maps(::getpid()));
  uint64_t trampoline = FERRY_TRY(choose_trampoline_address(own, task.mm.vmas()));
  TaskSetupPlan plan = FERRY_TRY(make_task_setup_plan(images, task, o.shell_job, trampoline, kTrampolineSize));
  CreatedTask created = FERRY_TRY(create_task(pid, plan));
  for (const std::string& w : created.warnings) kLog.warn("process {}: {}", pid, w);
  stats.setup_seconds = seconds_since(start);
  kLog.info("process {} created and set up; rebuilding its memory (trampoline at {:#x})", pid, trampoline);

  {
    SeizedTask seized = FERRY_TRY_CTX(SeizedTask::seize(pid), "restore process {}", pid);
    Status driven = drive_task(seized, trampoline, images, task, pages, stats);
    if (!driven) {
      // Killed while still stopped: it never runs half-built.
      ::kill(pid, SIGKILL);
      seized.release();
      return fail(std::move(driven).error().with_context(fmt::format("restore process {}", pid)));
    }
    FERRY_TRY_CTX(seized.detach(), "let restored process {} run", pid);
  }
  created.child.release();
  stats.total_seconds = seconds_since(start);
  kLog.info("process {} restored and running", pid);
  if (o.display_stats) print_stats(stats);
  if (!o.pidfile.empty()) FERRY_TRY(write_pid_file(o.in_work_dir(o.pidfile), pid));
  if (o.detach) return 0;
  return wait_for_exit(pid);
}

}  // namespace ferry
