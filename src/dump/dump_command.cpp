#include "dump/dump_command.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "base/log.h"
#include "dump/image_set_writer.h"
#include "dump/memory_dump.h"
#include "dump/process_snapshot.h"
#include "image/local_page_sink.h"
#include "pageserver/page_server_client.h"
#include "proc/frozen_process.h"
#include "tls/connection_factory.h"

namespace ferry {
namespace {

const Logger kLog{"dump"};
using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

Status refuse_unsupported(const Options& o) {
  if (o.lazy_pages) return fail("--lazy-pages: lazy dumps are not supported yet");
  if (o.track_mem) return fail("--track-mem: incremental dumps are not supported yet");
  if (!o.prev_images_dir.empty()) return fail("--prev-images-dir: incremental dumps are not supported yet");
  if (o.stream) return fail("--stream: the image streamer is not supported");
  if (o.auto_dedup) return fail("--auto-dedup is not supported yet");
  return {};
}

// Where the pages go: a page server (connected before anything is frozen)
// or the images directory.
Result<std::unique_ptr<PageSink>> open_page_sink(const Options& o, const ImageDir& dir, std::string& where) {
  if (!o.page_server) {
    where = dir.path();
    return std::unique_ptr<PageSink>(new LocalPageSink(dir, 1));
  }
  if (o.address.empty() && o.ps_socket < 0) return fail("--page-server needs --address (and --port)");
  ConnectionFactory factory = FERRY_TRY(ConnectionFactory::create(o, ConnectionFactory::Side::kClient));
  std::unique_ptr<Transport> t;
  if (o.ps_socket >= 0)
    t = FERRY_TRY(factory.wrap(TcpConnection{UniqueFd(o.ps_socket), fmt::format("socket {}", o.ps_socket)}));
  else
    t = FERRY_TRY_CTX(factory.connect(), "connecting to the page server {}:{}", o.address, o.port);
  where = fmt::format("page server {} ({})", t->peer(), t->description());
  ps::Layout layout = o.ps_layout == PsLayout::kLegacy24 ? ps::Layout::kCriu41 : ps::Layout::kCriu42;
  return std::unique_ptr<PageSink>(new PageServerClient(std::move(t), layout));
}

// Kills the frozen process and waits until its PID is free (its parent reaps
// it; a restore needs the PID).
void kill_and_wait(FrozenProcess& frozen) {
  pid_t pid = frozen.pid();
  ::kill(pid, SIGKILL);
  for (SeizedTask& t : frozen.threads()) (void)t.wait_stop(std::chrono::milliseconds(5000));
  (void)frozen.thaw();
  for (int i = 0; i < 100; ++i) {
    struct stat st {};
    if (::stat(fmt::format("/proc/{}", pid).c_str(), &st) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kLog.warn("process {} was killed but its parent has not reaped it yet: its PID is still taken", pid);
}

}  // namespace

Result<int> run_dump_command(const Options& o) {
  FERRY_TRY(refuse_unsupported(o));
  pid_t pid = o.tree;
  ImageDir dir = FERRY_TRY(ImageDir::open(o.images_dir));
  std::string where;
  // No connection, no freeze.
  std::unique_ptr<PageSink> sink = FERRY_TRY(open_page_sink(o, dir, where));

  auto start = Clock::now();
  FrozenProcess frozen = FERRY_TRY_CTX(FrozenProcess::freeze(pid), "cannot freeze process {}", pid);
  auto frozen_at = Clock::now();
  ImageSetWriter images(dir);
  MemoryDumpStats memory;
  double memory_seconds = 0;
  Status dumped = [&]() -> Status {
    ProcessSnapshot snapshot = FERRY_TRY(collect_process(frozen, SnapshotSettings{o.shell_job}));
    FERRY_TRY(images.write(snapshot));
    auto m0 = Clock::now();
    memory = FERRY_TRY(dump_memory(pid, snapshot.vmas, *sink));
    FERRY_TRY(sink->commit());
    memory_seconds = seconds_between(m0, Clock::now());
    return images.publish();
  }();
  if (!dumped) {
    sink->abort();
    images.discard();
    Status thawed = frozen.thaw();
    if (!thawed) kLog.error("could not let process {} go on: {}", pid, thawed.error().message());
    return fail(std::move(dumped).error().with_context(
        fmt::format("dump of process {} failed; it {}", pid, thawed ? "keeps running as before" : "may be stuck")));
  }

  const char* after = "killed";
  if (o.leave_running) {
    FERRY_TRY(frozen.thaw());
    after = "left running";
  } else if (o.leave_stopped) {
    ::kill(pid, SIGSTOP);
    FERRY_TRY(frozen.thaw());
    after = "left stopped";
  } else {
    kill_and_wait(frozen);
  }
  double frozen_seconds = seconds_between(frozen_at, Clock::now());
  double total = seconds_between(start, Clock::now());
  uint64_t bytes = memory.pages_written * kPageSize;
  double gbps = memory_seconds > 0 ? static_cast<double>(bytes) / memory_seconds / 1e9 : 0;
  kLog.msg("dumped process {} into {} (pages to {}): {} pages ({:.1f} MiB) in {:.3f} s ({:.2f} GB/s), frozen {:.1f} ms; "
           "process {}",
           pid, dir.path(), where, memory.pages_written, static_cast<double>(bytes) / (1 << 20), memory_seconds, gbps,
           frozen_seconds * 1e3, after);
  if (o.display_stats) {
    std::printf("Displaying dump stats:\n");
    std::printf("Frozen time: %.0f us\n", frozen_seconds * 1e6);
    std::printf("Memory dump time: %.0f us\n", memory_seconds * 1e6);
    std::printf("Total time: %.0f us\n", total * 1e6);
    std::printf("Memory pages scanned: %llu\n", static_cast<unsigned long long>(memory.pages_scanned));
    std::printf("Memory pages skipped (zero): %llu\n", static_cast<unsigned long long>(memory.pages_skipped_zero));
    std::printf("Memory pages skipped (file): %llu\n", static_cast<unsigned long long>(memory.pages_skipped_file));
    std::printf("Memory pages written: %llu\n", static_cast<unsigned long long>(memory.pages_written));
    std::printf("Memory transfer: %.3f GB/s\n", gbps);
  }
  return 0;
}

}  // namespace ferry
