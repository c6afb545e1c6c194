// Dump throughput (issue 5): a process with --mib (default 1024) MiB of
// dirty anonymous memory (tests/programs/dump_target, every page written) is
// dumped with `ferry dump -R` three ways in the same run: into images on
// tmpfs, to a `ferry page-server` over plain TCP, and over TLS; next to the
// bare Transport stream of the same number of bytes (plain and TLS). Prints
// frozen time, wall time, the memory copy rate and, for the page-server
// modes, the ratio to the bare stream of the same transport. Then the
// restore: the process is dumped (killed) into tmpfs and restored with
// `ferry restore -d` (it becomes this benchmark's child again, as its
// subreaper), compared with the local dump of the same memory. Best of
// --repeat runs (default 2), interleaved. Exit 0 whatever the timings.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "base/log.h"
#include "bench/bench_support.h"
#include "build_config.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct DumpFigures {
  double wall = 1e99, frozen = 1e99, memory = 1e99;
  uint64_t pages = 0;
};

// Runs a command, returns its stdout; fails on a non-zero exit.
Result<std::string> run_capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return fail_errno("popen {}", cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  if (status != 0) return fail("'{}' failed (status {}): {}", cmd, status, out);
  return out;
}

double stat_us(const std::string& out, const std::string& key) {
  size_t at = out.find(key + ": ");
  return at == std::string::npos ? 0 : std::stod(out.substr(at + key.size() + 2));
}

}  // namespace

int run(int argc, char** argv) {
  uint64_t mib = 1024;
  int repeat = 2;
  std::string ferry = FERRY_BINARY, target_bin = DUMP_TARGET_BINARY, tmpfs = "/dev/shm";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc) mib = std::stoull(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: dump_bench [--mib N] [--repeat N]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  (void)log::configure({0, "/dev/null"});
  // Restored processes are re-parented to us, so we can reap them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::string base = fmt::format("{}/ferry-dump-bench-{}", tmpfs, ::getpid());
  std::filesystem::create_directories(base);
  struct Cleanup {
    std::string dir;
    pid_t target = -1;
    ~Cleanup() {
      if (target > 0) {
        ::kill(target, SIGKILL);
        ::waitpid(target, nullptr, 0);
      }
      std::filesystem::remove_all(dir);
    }
  } cleanup{base};

  std::optional<Pki> pki;
#if FERRY_HAVE_GNUTLS
  Result<Pki> made = make_pki(base);
  if (!made) {
    std::fprintf(stderr, "dump_bench: %s\n", made.error().message().c_str());
    return 1;
  }
  pki = *made;
#endif
  // The workload: every page of `mib` MiB written.
  std::string status = base + "/target.status";
  pid_t target = ::fork();
  if (target == 0) {
    ::execl(target_bin.c_str(), target_bin.c_str(), status.c_str(), std::to_string(mib).c_str(), "dense", nullptr);
    ::_exit(127);
  }
  cleanup.target = target;
  pid_t target_pid = 0;
  for (int i = 0; i < 1200 && target_pid == 0; ++i) {
    std::ifstream in(status);
    std::string word;
    if (in >> word && word == "ready") in >> target_pid;
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (target_pid == 0) {
    std::fprintf(stderr, "dump_bench: the workload did not start\n");
    return 1;
  }
  std::printf("dump_bench: process %d with %llu MiB of dirty anonymous memory, dumped with -R, best of %d runs\n",
              target_pid, static_cast<unsigned long long>(mib), repeat);

  struct Mode {
    const char* name;
    bool page_server;
    bool tls;
    DumpFigures best;
    double bare = 1e99;
  };
  std::vector<Mode> modes{{"local (tmpfs)", false, false, {}}, {"page server, plain", true, false, {}}};
  if (pki) modes.push_back({"page server, TLS", true, true, {}});
  std::vector<std::byte> pattern = make_pattern(64 << 20);
  uint64_t bytes = 0;
  for (int r = 0; r < repeat; ++r) {
    for (Mode& m : modes) {
      std::string local = base + "/local", remote = base + "/remote";
      std::filesystem::remove_all(local);
      std::filesystem::remove_all(remote);
      std::filesystem::create_directories(local);
      std::filesystem::create_directories(remote);
      std::optional<ServerProcess> server;
      std::string cmd = fmt::format("{} dump -t {} -D {} -R --display-stats -v0", ferry, target_pid, local);
      const Pki* k = m.tls ? &*pki : nullptr;
      if (m.page_server) {
        Result<ServerProcess> s = start_page_server(ferry, remote, k);
        if (!s) {
          std::fprintf(stderr, "dump_bench: %s\n", s.error().message().c_str());
          return 1;
        }
        server.emplace(std::move(*s));
        cmd += fmt::format(" --page-server --address 127.0.0.1 --port {}", server->port);
        if (k) cmd += fmt::format(" --tls --tls-cacert {} --tls-cert {} --tls-key {}", k->cacert, k->cert, k->key);
      }
      auto t0 = Clock::now();
      Result<std::string> out = run_capture(cmd + " 2>&1");
      double wall = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!out) {
        std::fprintf(stderr, "dump_bench: %s\n", out.error().message().c_str());
        return 1;
      }
      if (server) {
        Result<int> code = server->wait();
        if (!code || *code != 0) {
          std::fprintf(stderr, "dump_bench: the page server failed (see %s)\n", server->log.c_str());
          return 1;
        }
      }
      m.best.wall = std::min(m.best.wall, wall);
      m.best.frozen = std::min(m.best.frozen, stat_us(*out, "Frozen time") / 1e6);
      m.best.memory = std::min(m.best.memory, stat_us(*out, "Memory dump time") / 1e6);
      m.best.pages = static_cast<uint64_t>(stat_us(*out, "Memory pages written"));
      bytes = m.best.pages * 4096;
      if (m.page_server) {
        Result<double> bare = bare_stream(bytes, 2 << 20, k, pattern);
        if (!bare) {
          std::fprintf(stderr, "dump_bench: bare stream: %s\n", bare.error().message().c_str());
          return 1;
        }
        m.bare = std::min(m.bare, *bare);
      }
    }
  }
  // Restore: dump (kill) into tmpfs, restore -d, the restored process is the
  // next round's target (same PID).
  double restore_wall = 1e99, restore_memory = 1e99, kill_dump_memory = 1e99;
  uint64_t restored_pages = 0;
  for (int r = 0; r < repeat; ++r) {
    std::string local = base + "/local";
    std::filesystem::remove_all(local);
    std::filesystem::create_directories(local);
    // We are the target's parent (or subreaper): reap it as soon as the dump
    // kills it, so the dump sees its PID free.
    std::thread reaper([target] { ::waitpid(target, nullptr, 0); });
    Result<std::string> dumped =
        run_capture(fmt::format("{} dump -t {} -D {} --display-stats -v0 2>&1", ferry, target_pid, local));
    reaper.join();
    cleanup.target = -1;
    if (!dumped) {
      std::fprintf(stderr, "dump_bench: %s\n", dumped.error().message().c_str());
      return 1;
    }
    kill_dump_memory = std::min(kill_dump_memory, stat_us(*dumped, "Memory dump time") / 1e6);
    auto t0 = Clock::now();
    Result<std::string> restored =
        run_capture(fmt::format("{} restore -D {} -d --display-stats -v0 2>&1", ferry, local));
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!restored) {
      std::fprintf(stderr, "dump_bench: %s\n", restored.error().message().c_str());
      return 1;
    }
    target = target_pid;  // restored with the same PID, re-parented to us
    cleanup.target = target;
    restore_wall = std::min(restore_wall, wall);
    restore_memory = std::min(restore_memory, stat_us(*restored, "Memory restore time") / 1e6);
    restored_pages = static_cast<uint64_t>(stat_us(*restored, "Memory pages restored"));
  }
  // The restored process must still hold its memory: SIGTERM makes it check.
  ::kill(target, SIGTERM);
  int wstatus = 0;
  ::waitpid(target, &wstatus, 0);
  cleanup.target = -1;
  bool intact = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;

  std::printf("\n%-20s %10s %11s %14s %16s %8s\n", "mode", "wall s", "frozen ms", "memory GB/s", "bare stream GB/s",
              "ratio");
  for (const Mode& m : modes) {
    double mem = gbps(bytes, m.best.memory);
    if (m.page_server)
      std::printf("%-20s %10.3f %11.1f %14.3f %16.3f %8.3f\n", m.name, m.best.wall, m.best.frozen * 1e3, mem,
                  gbps(bytes, m.bare), gbps(bytes, m.bare) > 0 ? mem / gbps(bytes, m.bare) : 0);
    else
      std::printf("%-20s %10.3f %11.1f %14.3f %16s %8s\n", m.name, m.best.wall, m.best.frozen * 1e3, mem, "-", "-");
  }
  std::printf("\n%llu pages (%.2f GiB) per dump; memory GB/s = pages written / time from the first page read to the "
              "images (or the page server's answer to CLOSE); ratio = memory GB/s / bare Transport stream of the same "
              "bytes; aim for TLS >= 0.8.\n",
              static_cast<unsigned long long>(bytes / 4096), static_cast<double>(bytes) / (1 << 30));
  std::printf("\nrestore from tmpfs:  wall %.3f s, memory %.3f s (%.3f GB/s, %llu pages); local dump of the same "
              "memory: %.3f s; restore / dump time = %.2f; after %d dump/restore rounds the process's memory is %s\n",
              restore_wall, restore_memory, gbps(restored_pages * 4096, restore_memory),
              static_cast<unsigned long long>(restored_pages), kill_dump_memory,
              kill_dump_memory > 0 ? restore_memory / kill_dump_memory : 0, repeat, intact ? "intact" : "CHANGED");
  return intact ? 0 : 1;
}

}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::run(argc, argv); }
