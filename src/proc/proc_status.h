// Per-process (and per-thread) state from /proc: stat, status, auxv and the
// list of threads. Each reader takes the PID and, for the per-thread files,
// optionally a TID (0: the thread group leader, /proc/PID/...).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ferry {

// The fields of /proc/PID/stat that dump and restore use (proc(5) numbers).
struct ProcStat {
  pid_t pid = 0;            // 1
  std::string comm;         // 2, without the parentheses; may hold spaces and ')'
  char state = '?';         // 3: R S D T t Z X ...
  pid_t ppid = 0;           // 4
  pid_t pgrp = 0;           // 5
  pid_t session = 0;        // 6
  uint32_t flags = 0;       // 9: PF_* flags
  int64_t num_threads = 0;  // 20
  uint64_t start_code = 0;  // 26
  uint64_t end_code = 0;    // 27
  uint64_t start_stack = 0; // 28
  uint64_t start_data = 0;  // 45
  uint64_t end_data = 0;    // 46
  uint64_t start_brk = 0;   // 47
  uint64_t arg_start = 0;   // 48
  uint64_t arg_end = 0;     // 49
  uint64_t env_start = 0;   // 50
  uint64_t env_end = 0;     // 51
  int exit_code = 0;        // 52: the wait status as waitpid(2) would report it
};

Result<ProcStat> parse_proc_stat(std::string_view text);
Result<ProcStat> read_proc_stat(pid_t pid, pid_t tid = 0);

// The fields of /proc/PID/status that dump and restore use. Signal sets are
// bit masks with bit (signo - 1) set for each signal.
struct ProcStatus {
  pid_t tgid = 0;                   // the process (thread group) the thread belongs to
  mode_t umask = 0;
  uint64_t sig_pending = 0;         // SigPnd: this thread's private queue
  uint64_t sig_shared_pending = 0;  // ShdPnd: the thread group's queue
  uint64_t sig_blocked = 0;         // SigBlk
  uint64_t sig_ignored = 0;         // SigIgn
  uint64_t sig_caught = 0;          // SigCgt
  std::array<uint32_t, 4> uid{};    // real, effective, saved, filesystem
  std::array<uint32_t, 4> gid{};    // real, effective, saved, filesystem
  std::vector<uint32_t> groups;     // supplementary groups
  uint64_t cap_inheritable = 0;     // CapInh
  uint64_t cap_permitted = 0;       // CapPrm
  uint64_t cap_effective = 0;       // CapEff
  uint64_t cap_bounding = 0;        // CapBnd
  uint64_t cap_ambient = 0;         // CapAmb
  bool no_new_privs = false;
  int seccomp = 0;                  // 0 off, 1 strict, 2 filter
};

Result<ProcStatus> parse_proc_status(std::string_view text);
Result<ProcStatus> read_proc_status(pid_t pid, pid_t tid = 0);

// One (type, value) pair of the ELF auxiliary vector.
struct AuxvEntry {
  uint64_t type = 0;  // AT_*
  uint64_t value = 0;
  bool operator==(const AuxvEntry&) const = default;
};

// /proc/PID/auxv as the kernel keeps it, ending with its AT_NULL pair
// (PR_SET_MM_MAP takes exactly this).
Result<std::vector<AuxvEntry>> read_auxv(pid_t pid);

// The threads of a process, from /proc/PID/task, in ascending order. Threads
// come and go while it is read unless the process is frozen.
Result<std::vector<pid_t>> list_threads(pid_t pid);

}  // namespace ferry
