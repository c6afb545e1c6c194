// Everything the images say about one frozen process except its memory
// pages: pstree, core (registers, FPU/xstate, signals, creds, timers,
// rlimits), mm (VMAs and mm fields), fs, ids, fdinfo and files, and the
// inventory. State only the process can report (sigactions, itimers, ...)
// is read with system calls injected into it (RemoteSyscall).
#pragma once

#include <vector>

#include "core.pb.h"
#include "dump/file_table.h"
#include "fs.pb.h"
#include "ids.pb.h"
#include "inventory.pb.h"
#include "mm.pb.h"
#include "proc/frozen_process.h"
#include "proc/proc_maps.h"
#include "pstree.pb.h"

namespace ferry {

struct SnapshotSettings {
  bool shell_job = false;  // -j: the root need not be a session leader
};

struct ProcessSnapshot {
  images::InventoryEntry inventory;
  images::PstreeEntry pstree;
  images::CoreEntry core;
  images::MmEntry mm;
  images::FsEntry fs;
  images::TaskKobjIdsEntry ids;
  FileTable files;
  std::vector<MapsEntry> vmas;  // as /proc/PID/smaps showed them, for the memory dump

  explicit ProcessSnapshot(pid_t pid) : files(pid) {}
};

// Fails, naming the PID and what is wrong, for anything Ferry cannot dump yet
// (threads, children, unsupported files or mappings, seccomp, other
// namespaces). The process stays frozen either way; the caller thaws it.
Result<ProcessSnapshot> collect_process(FrozenProcess& frozen, const SnapshotSettings& settings);

}  // namespace ferry
