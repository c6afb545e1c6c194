// FrozenProcess: every thread of a real multi-threaded child held still and
// let go again, including a child that keeps creating threads.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "proc/frozen_process.h"
#include "proc/proc_status.h"
#include "unit/proc_test_child.h"

namespace ferry {
namespace {

using test::ChildLink;
using test::TestChild;

constexpr int kWorkers = 4;

// Memory the test shares with its child (mapped before the fork).
struct SharedCounters {
  std::atomic<uint64_t> count[kWorkers];
  std::atomic<bool> stop;
};

class SharedMemory {
 public:
  SharedMemory()
      : p_(::mmap(nullptr, sizeof(SharedCounters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) {
    new (p_) SharedCounters{};
  }
  ~SharedMemory() { ::munmap(p_, sizeof(SharedCounters)); }
  SharedCounters& get() { return *static_cast<SharedCounters*>(p_); }

 private:
  void* p_;
};

std::vector<uint64_t> snapshot(SharedCounters& c) {
  std::vector<uint64_t> v;
  for (auto& n : c.count) v.push_back(n.load());
  return v;
}

bool all_advance(SharedCounters& c) {
  std::vector<uint64_t> before = snapshot(c);
  for (int i = 0; i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::vector<uint64_t> now = snapshot(c);
    bool all = true;
    for (int w = 0; w < kWorkers; ++w) all &= now[w] > before[w];
    if (all) return true;
  }
  return false;
}

TEST(FrozenProcess, HoldsEveryThreadStillAndLetsThemGo) {
  SharedMemory shm;
  SharedCounters& counters = shm.get();
  TestChild child([&](const ChildLink&) {
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w)
      workers.emplace_back([&counters, w] {
        while (!counters.stop.load()) counters.count[w].fetch_add(1);
      });
    for (std::thread& t : workers) t.join();
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(all_advance(counters)) << "the workers never ran";
  pid_t pid = child.pid();

  for (int round = 0; round < 3; ++round) {
    Result<FrozenProcess> frozen = FrozenProcess::freeze(pid);
    ASSERT_TRUE(frozen) << frozen.error().message();
    EXPECT_EQ(frozen->pid(), pid);
    ASSERT_EQ(frozen->threads().size(), static_cast<size_t>(kWorkers + 1));
    EXPECT_EQ(frozen->leader().tid(), pid);
    std::vector<pid_t> tids = frozen->tids();
    std::sort(tids.begin(), tids.end());
    EXPECT_EQ(tids, list_threads(pid).value());
    for (pid_t tid : tids) {
      EXPECT_EQ(read_proc_stat(pid, tid).value().state, 't') << "thread " << tid;
      EXPECT_NE(frozen->thread(tid), nullptr);
      EXPECT_TRUE(frozen->thread(tid)->regs()) << "thread " << tid;
    }
    EXPECT_EQ(frozen->thread(999999999), nullptr);
    std::vector<uint64_t> held = snapshot(counters);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(snapshot(counters), held) << "a thread ran while frozen";
    if (round == 0) {
      EXPECT_TRUE(frozen->thaw());
      EXPECT_TRUE(frozen->threads().empty());
    }  // the other rounds thaw in the destructor
  }
  EXPECT_TRUE(all_advance(counters)) << "a thread stayed stopped after thawing";
  std::vector<pid_t> after = list_threads(pid).value();
  for (pid_t tid : after) EXPECT_NE(read_proc_stat(pid, tid).value().state, 't');
  counters.stop = true;
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(FrozenProcess, CatchesUpWithAProcessThatKeepsCreatingThreads) {
  SharedMemory shm;
  SharedCounters& counters = shm.get();
  TestChild child([&](const ChildLink&) {
    std::vector<std::thread> spawners;
    for (int s = 0; s < 2; ++s)
      spawners.emplace_back([&counters, s] {
        while (!counters.stop.load()) {
          std::thread([&counters, s] { counters.count[s].fetch_add(1); }).detach();
          std::thread([] {}).join();
        }
      });
    for (std::thread& t : spawners) t.join();
    return 0;
  });
  ASSERT_TRUE(child.started());
  for (int i = 0; i < 1000 && counters.count[1].load() < 100; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  pid_t pid = child.pid();
  for (int round = 0; round < 5; ++round) {
    Result<FrozenProcess> frozen = FrozenProcess::freeze(pid);
    ASSERT_TRUE(frozen) << frozen.error().message();
    std::vector<pid_t> held = frozen->tids();
    EXPECT_GE(held.size(), 3u);
    // Nothing runs, so nothing is created: every live thread is held. A
    // thread that was exiting may still be listed for a moment, dead.
    std::vector<pid_t> listed = list_threads(pid).value();
    for (pid_t tid : held) EXPECT_NE(std::find(listed.begin(), listed.end(), tid), listed.end()) << tid;
    for (pid_t tid : listed) {
      if (frozen->thread(tid)) continue;
      Result<ProcStat> stat = read_proc_stat(pid, tid);
      if (stat) {
        EXPECT_TRUE(stat->state == 'Z' || stat->state == 'X') << "thread " << tid << " runs, state " << stat->state;
      }
    }
  }
  counters.stop = true;
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(FrozenProcess, NamesAProcessThatIsNotThere) {
  Result<FrozenProcess> frozen = FrozenProcess::freeze(999999999);
  ASSERT_FALSE(frozen);
  EXPECT_NE(frozen.error().message().find("999999999"), std::string::npos) << frozen.error().message();
}

TEST(FrozenProcess, RefusesAThreadForAProcess) {
  TestChild child([](const ChildLink& link) {
    std::thread t([&] { link.report(static_cast<pid_t>(::gettid())); link.await(); });
    t.join();
    return 0;
  });
  ASSERT_TRUE(child.started());
  std::optional<pid_t> tid = child.receive<pid_t>();
  ASSERT_TRUE(tid);
  Result<FrozenProcess> frozen = FrozenProcess::freeze(*tid);
  ASSERT_FALSE(frozen);
  EXPECT_NE(frozen.error().message().find("is a thread of process " + std::to_string(child.pid())), std::string::npos)
      << frozen.error().message();
  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

}  // namespace
}  // namespace ferry
