#include "restore/restore_images.h"

#include <signal.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "image/image_file.h"
#include "image/image_magic.h"

namespace ferry {
namespace {

constexpr uint32_t kMaxSmallEntry = 1u << 20;   // core, pstree, fdinfo, files, fs, ids
constexpr uint32_t kMaxMmEntry = 64u << 20;     // every VMA in one message
constexpr int kSigactionCount = 62;             // signals 1..64 without SIGKILL and SIGSTOP
constexpr uint32_t kTaskAlive = 1;

// The one entry of a single-entry image.
template <class Message>
Result<Message> read_single(const ImageDir& dir, const std::string& name, uint32_t type, uint32_t max_entry) {
  ImageFileReader reader = FERRY_TRY(ImageFileReader::open(dir, name, type, max_entry));
  Message m;
  bool got = FERRY_TRY(reader.next_entry(m));
  if (!got) return fail("{}: the image holds no entry", dir.describe(name));
  Message extra;
  if (FERRY_TRY(reader.next_entry(extra))) return fail("{}: more than one entry", dir.describe(name));
  return m;
}

template <class Message>
Result<std::vector<Message>> read_all(const ImageDir& dir, const std::string& name, uint32_t type, uint32_t max_entry) {
  ImageFileReader reader = FERRY_TRY(ImageFileReader::open(dir, name, type, max_entry));
  std::vector<Message> all;
  for (;;) {
    Message m;
    if (!FERRY_TRY(reader.next_entry(m))) return all;
    all.push_back(std::move(m));
  }
}

// inventory.img has the one-word header (INVENTORY_MAGIC alone).
Result<images::InventoryEntry> read_inventory(const ImageDir& dir) {
  const std::string name = "inventory.img";
  UniqueFd fd = FERRY_TRY(dir.open_for_reading(name));
  std::vector<std::byte> bytes = FERRY_TRY(read_whole_file(fd.get(), dir.describe(name), kMaxSmallEntry));
  uint32_t word = 0;
  if (bytes.size() < 4) return fail("{}: too short for an image header", dir.describe(name));
  std::memcpy(&word, bytes.data(), 4);
  if (word != magic::kInventory) return fail("{}: not an inventory image (magic {:#010x})", dir.describe(name), word);
  // Seen by the reader as a two-word header, so one parser serves all images.
  std::vector<std::byte> framed(4);
  uint32_t common = magic::kCommon;
  std::memcpy(framed.data(), &common, 4);
  framed.insert(framed.end(), bytes.begin(), bytes.end());
  ImageFileReader reader =
      FERRY_TRY(ImageFileReader::from_bytes(std::move(framed), dir.describe(name), magic::kInventory, kMaxSmallEntry));
  images::InventoryEntry inv;
  if (!FERRY_TRY(reader.next_entry(inv))) return fail("{}: the image holds no entry", dir.describe(name));
  return inv;
}

Result<TaskImages> read_task(const ImageDir& dir, const images::PstreeEntry& entry) {
  TaskImages t;
  t.pstree = entry;
  uint32_t pid = entry.pid();
  std::vector<uint32_t> tids(entry.threads().begin(), entry.threads().end());
  if (tids.empty()) tids.push_back(pid);
  for (uint32_t tid : tids)
    t.thread_cores.push_back(
        FERRY_TRY(read_single<images::CoreEntry>(dir, fmt::format("core-{}.img", tid), magic::kCore, kMaxSmallEntry)));
  t.ids = FERRY_TRY(read_single<images::TaskKobjIdsEntry>(dir, fmt::format("ids-{}.img", pid), magic::kIds, kMaxSmallEntry));
  t.mm = FERRY_TRY(read_single<images::MmEntry>(dir, fmt::format("mm-{}.img", pid), magic::kMm, kMaxMmEntry));
  t.fs = FERRY_TRY(read_single<images::FsEntry>(dir, fmt::format("fs-{}.img", pid), magic::kFs, kMaxSmallEntry));
  std::string fdinfo = fmt::format("fdinfo-{}.img", t.ids.files_id());
  t.fds = FERRY_TRY(read_all<images::FdinfoEntry>(dir, fdinfo, magic::kFdinfo, kMaxSmallEntry));
  std::sort(t.fds.begin(), t.fds.end(), [](const auto& a, const auto& b) { return a.fd() < b.fd(); });
  t.pagemap = FERRY_TRY(read_pagemap_image(dir, PagemapId{PagemapId::Kind::kProcess, pid}.image_name()));
  if (!FERRY_TRY(dir.exists(pages_image_name(t.pagemap.pages_id))))
    return fail("{}: missing (named by pagemap-{}.img)", dir.describe(pages_image_name(t.pagemap.pages_id)), pid);
  return t;
}

Status check_inventory(const images::InventoryEntry& inv) {
  if (inv.img_version() != 2) return fail("inventory.img: image version {} (only 2 is supported)", inv.img_version());
  if (!inv.fdinfo_per_id()) return fail("inventory.img: fdinfo_per_id is not set (too old image)");
  if (!inv.has_root_ids()) return fail("inventory.img: root_ids missing");
  return {};
}

Status check_pstree(const RestoreImages& images, const RestoreImageOptions& options) {
  if (images.tasks.empty()) return fail("pstree.img: no process");
  if (images.tasks.size() > 1)
    return fail("pstree.img: {} processes; restoring process trees is not supported yet (only a single process)",
                images.tasks.size());
  const images::PstreeEntry& root = images.root().pstree;
  if (root.ppid() != 0) return fail("pstree.img: the root process {} has parent {} (expected 0)", root.pid(), root.ppid());
  if (root.pid() == 0) return fail("pstree.img: process with PID 0");
  if (root.threads_size() > 0 && root.threads(0) != root.pid())
    return fail("pstree.img: process {} lists thread {} first (the leader must come first)", root.pid(), root.threads(0));
  if (root.threads_size() > 1)
    return fail("pstree.img: process {} has {} threads; restoring threads is not supported yet", root.pid(),
                root.threads_size());
  if (root.sid() != root.pid() && !options.shell_job)
    return fail("pstree.img: process {} is not a session leader (session {}); restore it with -j/--shell-job",
                root.pid(), root.sid());
  return {};
}

Status check_file_id(const RestoreImages& images, uint32_t id, std::string_view user) {
  auto it = images.files.find(id);
  if (it == images.files.end()) return fail("{} names file id {}, which files.img does not have", user, id);
  if (it->second.type() != images::REG)
    return fail("{} names file id {} of type {}, which is not supported yet (only regular files)", user, id,
                images::FdTypes_Name(it->second.type()));
  return {};
}

Status check_core(const TaskImages& t) {
  std::string where = fmt::format("core-{}.img", t.pid());
  const images::CoreEntry& core = t.leader_core();
  if (core.mtype() != images::CoreEntry::X86_64)
    return fail("{}: architecture {} (this host is x86_64)", where, images::CoreEntry::March_Name(core.mtype()));
  if (!core.has_thread_info()) return fail("{}: no x86 thread_info", where);
  if (!core.has_tc()) return fail("{}: no task_core (process state)", where);
  if (!core.has_thread_core()) return fail("{}: no thread_core", where);
  if (core.thread_info().gpregs().mode() != images::UserX86RegsEntry::NATIVE)
    return fail("{}: a 32-bit (compat) task; only 64-bit tasks are supported", where);
  const images::TaskCoreEntry& tc = core.tc();
  if (tc.task_state() != kTaskAlive)
    return fail("{}: task state {}; only running (1) tasks can be restored yet", where, tc.task_state());
  if (tc.sigactions_size() != 0 && tc.sigactions_size() != kSigactionCount)
    return fail("{}: {} sigactions (expected {})", where, tc.sigactions_size(), kSigactionCount);
  if (tc.has_signals_s()) {
    for (const auto& s : tc.signals_s().signals())
      if (s.siginfo().size() != sizeof(siginfo_t)) return fail("{}: a pending signal's siginfo has {} bytes", where, s.siginfo().size());
  }
  const images::ThreadCoreEntry& th = core.thread_core();
  if (th.has_seccomp_mode() && th.seccomp_mode() != images::SECCOMP_MODE_DISABLED)
    return fail("{}: the task uses seccomp, which is not supported yet", where);
  if (th.has_signals_p()) {
    for (const auto& s : th.signals_p().signals())
      if (s.siginfo().size() != sizeof(siginfo_t)) return fail("{}: a pending signal's siginfo has {} bytes", where, s.siginfo().size());
  }
  const images::UserX86FpregsEntry& fp = core.thread_info().fpregs();
  if (fp.st_space_size() < 32 || fp.xmm_space_size() < 64)
    return fail("{}: FPU state with {} st words and {} xmm words (expected 32 and 64)", where, fp.st_space_size(),
                fp.xmm_space_size());
  return {};
}

Status check_ids(const RestoreImages& images, const TaskImages& t) {
  std::string where = fmt::format("ids-{}.img", t.pid());
  const images::TaskKobjIdsEntry& root = images.inventory.root_ids();
  if (t.ids.files_id() == root.files_id())
    return fail("{}: files_id {} is that of the dumping tool (inventory.img root_ids): corrupt images", where,
                t.ids.files_id());
  struct Ns {
    const char* name;
    bool has_task, has_root;
    uint32_t task, root;
  };
  const Ns namespaces[] = {
      {"pid", t.ids.has_pid_ns_id(), root.has_pid_ns_id(), t.ids.pid_ns_id(), root.pid_ns_id()},
      {"net", t.ids.has_net_ns_id(), root.has_net_ns_id(), t.ids.net_ns_id(), root.net_ns_id()},
      {"ipc", t.ids.has_ipc_ns_id(), root.has_ipc_ns_id(), t.ids.ipc_ns_id(), root.ipc_ns_id()},
      {"uts", t.ids.has_uts_ns_id(), root.has_uts_ns_id(), t.ids.uts_ns_id(), root.uts_ns_id()},
      {"mnt", t.ids.has_mnt_ns_id(), root.has_mnt_ns_id(), t.ids.mnt_ns_id(), root.mnt_ns_id()},
      {"user", t.ids.has_user_ns_id(), root.has_user_ns_id(), t.ids.user_ns_id(), root.user_ns_id()},
      {"cgroup", t.ids.has_cgroup_ns_id(), root.has_cgroup_ns_id(), t.ids.cgroup_ns_id(), root.cgroup_ns_id()},
      {"time", t.ids.has_time_ns_id(), root.has_time_ns_id(), t.ids.time_ns_id(), root.time_ns_id()},
  };
  for (const Ns& ns : namespaces)
    if (ns.has_task && ns.has_root && ns.task != ns.root)
      return fail("{}: the process has its own {} namespace (id {}, the dumper's is {}); restoring namespaces is not "
                  "supported yet",
                  where, ns.name, ns.task, ns.root);
  return {};
}

Status check_mm(const RestoreImages& images, const TaskImages& t) {
  std::string where = fmt::format("mm-{}.img", t.pid());
  FERRY_TRY(check_file_id(images, t.mm.exe_file_id(), fmt::format("{} (exe_file_id)", where)));
  if (t.mm.vmas_size() == 0) return fail("{}: no VMAs (legacy vmas images are not supported)", where);
  if (t.mm.aios_size() != 0) return fail("{}: AIO rings are not supported yet", where);
  if (t.mm.mm_saved_auxv_size() % 2 != 0) return fail("{}: odd number of auxv words", where);
  uint64_t prev_end = 0;
  for (const images::VmaEntry& v : t.mm.vmas()) {
    std::string what = fmt::format("{}: VMA {}", where, describe_vma(v));
    if (v.status() & kVmaVsyscall) continue;  // the kernel's, above user space
    if (v.start() >= v.end() || v.start() % kPageSize != 0 || v.end() % kPageSize != 0 || v.end() > kAddressLimit)
      return fail("{}: bad bounds", what);
    if (v.start() < prev_end) return fail("{}: overlaps the previous VMA or is out of order", what);
    prev_end = v.end();
    if (!(v.status() & kVmaRegular)) return fail("{}: not a regular VMA", what);
    uint32_t unsupported = kVmaAnonShared | kVmaSysvIpc | kVmaSocket | kVmaAioRing | kVmaMemfd | kVmaShadowStack | kVmaUprobes;
    if (v.status() & unsupported)
      return fail("{}: this kind of mapping is not supported yet (status {:#x})", what, v.status() & unsupported);
    if (v.status() & (kVmaFilePrivate | kVmaFileShared)) {
      if (v.pgoff() % kPageSize != 0) return fail("{}: file offset {:#x} is not page aligned", what, v.pgoff());
      FERRY_TRY(check_file_id(images, static_cast<uint32_t>(v.shmid()), what));
    }
  }
  return {};
}

// Every page with data must land in private memory the restore writes.
Status check_pagemap(const TaskImages& t) {
  std::string where = fmt::format("pagemap-{}.img", t.pid());
  const auto& vmas = t.mm.vmas();
  int vi = 0;
  for (const PagemapEntry& e : t.pagemap.entries) {
    if (e.flags & kPeParent)
      return fail("{}: entry at {:#x} refers to a parent snapshot; incremental restore is not supported yet", where, e.vaddr);
    if (!e.has_data())
      return fail("{}: entry at {:#x} has no data (lazy pages need a lazy restore, not supported yet)", where, e.vaddr);
    for (uint64_t addr = e.vaddr; addr < e.end();) {
      while (vi < vmas.size() && vmas[vi].end() <= addr) ++vi;
      if (vi == vmas.size() || vmas[vi].start() > addr)
        return fail("{}: page {:#x} of the entry at {:#x} lies in no VMA of mm-{}.img", where, addr, e.vaddr, t.pid());
      const images::VmaEntry& v = vmas[vi];
      if (v.status() & kVmaFileShared)
        return fail("{}: page {:#x} lies in the shared file mapping {}", where, addr, describe_vma(v));
      addr = std::min(e.end(), v.end());
    }
  }
  return {};
}

Status check_fds(const RestoreImages& images, const TaskImages& t) {
  std::string where = fmt::format("fdinfo-{}.img", t.ids.files_id());
  FERRY_TRY(check_file_id(images, t.fs.cwd_id(), fmt::format("fs-{}.img (cwd)", t.pid())));
  FERRY_TRY(check_file_id(images, t.fs.root_id(), fmt::format("fs-{}.img (root)", t.pid())));
  int prev = -1;
  for (const images::FdinfoEntry& fd : t.fds) {
    if (static_cast<int>(fd.fd()) == prev) return fail("{}: fd {} appears twice", where, fd.fd());
    prev = static_cast<int>(fd.fd());
    if (fd.type() != images::REG)
      return fail("{}: fd {} is of type {}, which is not supported yet (only regular files)", where, fd.fd(),
                  images::FdTypes_Name(fd.type()));
    FERRY_TRY(check_file_id(images, fd.id(), fmt::format("{}: fd {}", where, fd.fd())));
  }
  return {};
}

}  // namespace

std::string describe_vma(const images::VmaEntry& v) {
  return fmt::format("{:x}-{:x} (status {:#x}, prot {}, flags {:#x})", v.start(), v.end(), v.status(), v.prot(), v.flags());
}

Status check_restore_images(const RestoreImages& images, const RestoreImageOptions& options) {
  FERRY_TRY(check_inventory(images.inventory));
  FERRY_TRY(check_pstree(images, options));
  for (const auto& [id, file] : images.files) {
    if (file.type() == images::REG && (!file.has_reg() || file.reg().name().empty()))
      return fail("files.img: regular file id {} has no path", id);
  }
  for (const TaskImages& t : images.tasks) {
    FERRY_TRY(check_core(t));
    FERRY_TRY(check_ids(images, t));
    FERRY_TRY(check_mm(images, t));
    FERRY_TRY(check_fds(images, t));
    FERRY_TRY(check_pagemap(t));
  }
  return {};
}

Result<RestoreImages> load_restore_images(const ImageDir& dir, const RestoreImageOptions& options) {
  RestoreImages images;
  images.inventory = FERRY_TRY(read_inventory(dir));
  FERRY_TRY(check_inventory(images.inventory));
  auto pstree = FERRY_TRY(read_all<images::PstreeEntry>(dir, "pstree.img", magic::kPstree, kMaxSmallEntry));
  if (pstree.empty()) return fail("{}: no process", dir.describe("pstree.img"));
  auto files = FERRY_TRY(read_all<images::FileEntry>(dir, "files.img", magic::kFiles, kMaxSmallEntry));
  for (images::FileEntry& f : files) {
    uint32_t id = f.id();
    if (!images.files.emplace(id, std::move(f)).second) return fail("{}: file id {} appears twice", dir.describe("files.img"), id);
  }
  // The tree is checked before the per-task images are opened, so a tree
  // this build cannot restore is named as such, not as a missing file.
  for (const images::PstreeEntry& e : pstree) {
    TaskImages t;
    t.pstree = e;
    images.tasks.push_back(std::move(t));
  }
  FERRY_TRY(check_pstree(images, options));
  for (TaskImages& t : images.tasks) t = FERRY_TRY(read_task(dir, t.pstree));
  FERRY_TRY_CTX(check_restore_images(images, options), "images in {}", dir.path());
  return images;
}

}  // namespace ferry
