// The image set of one snapshot (-D) read into protobuf messages and checked
// for the consistency restore relies on (image-format.md §8): every file the
// tasks need is there, every id they use names an entry, every page of the
// pagemap lies in a VMA. Each error names the file it is about.
//
// Shaped for trees and threads: the tasks are kept in pstree order (parents
// first) with a core per thread; what this build cannot restore yet (more
// than one process, more than one thread, non-regular files, shared
// anonymous memory) is refused here, before anything is created.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "core.pb.h"
#include "fdinfo.pb.h"
#include "fs.pb.h"
#include "ids.pb.h"
#include "image/image_dir.h"
#include "image/pagemap_image.h"
#include "image/vma_status.h"
#include "inventory.pb.h"
#include "mm.pb.h"
#include "pstree.pb.h"

namespace ferry {


// The kernel maps these; restore places them (vdso) or leaves them be.
inline bool vma_is_kernel_special(const images::VmaEntry& v) {
  return (v.status() & (kVmaVdso | kVmaVvar | kVmaVsyscall)) != 0;
}

// "7f12..-7f13.. (status 0x241)": for messages.
std::string describe_vma(const images::VmaEntry& v);

// One process and its threads' images.
struct TaskImages {
  images::PstreeEntry pstree;
  std::vector<images::CoreEntry> thread_cores;  // threads[i]'s core, leader first
  images::TaskKobjIdsEntry ids;
  images::MmEntry mm;
  images::FsEntry fs;
  std::vector<images::FdinfoEntry> fds;  // ascending fd
  PagemapImage pagemap;

  pid_t pid() const { return static_cast<pid_t>(pstree.pid()); }
  const images::CoreEntry& leader_core() const { return thread_cores.front(); }
};

struct RestoreImages {
  images::InventoryEntry inventory;
  std::map<uint32_t, images::FileEntry> files;  // files.img by id
  std::vector<TaskImages> tasks;                // pstree order: parents first

  const TaskImages& root() const { return tasks.front(); }
  // The regular file with this files.img id (checked to exist at load time).
  const images::RegFileEntry& reg_file(uint32_t id) const { return files.at(id).reg(); }
};

struct RestoreImageOptions {
  bool shell_job = false;  // -j: a root that is not a session leader is allowed
};

// Reads and checks every image the restore of the tree in `dir` needs.
Result<RestoreImages> load_restore_images(const ImageDir& dir, const RestoreImageOptions& options);

// The checks on their own, for images assembled in memory (tests).
Status check_restore_images(const RestoreImages& images, const RestoreImageOptions& options);

}  // namespace ferry
