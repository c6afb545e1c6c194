// The files a process uses, as files.img sees them: one entry per open file
// description (fds that share one, after dup(), share the entry), plus the
// executable, cwd, root and the files behind file mappings. Hands out the
// ids that fdinfo, mm and fs images refer to. Anything Ferry cannot dump yet
// (pipes, sockets, terminals, deleted files, ...) is refused here, naming
// the PID, the fd and what it is.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "fdinfo.pb.h"
#include "proc/proc_fds.h"

namespace ferry {

class FileTable {
 public:
  explicit FileTable(pid_t pid) : pid_(pid) {}

  // A file opened by path for use other than an fd (exe, cwd, root, a
  // mapping). `how` says what it is for messages ("executable", "cwd").
  Result<uint32_t> add_path(const std::string& path, uint32_t open_flags, const std::string& how);

  // Every open fd of the process; fills fdinfo entries.
  Status add_open_fds(const std::vector<OpenFd>& fds);

  const std::vector<images::FileEntry>& files() const { return files_; }
  const std::vector<images::FdinfoEntry>& fdinfo() const { return fdinfo_; }

 private:
  Result<uint32_t> add_regular(const std::string& path, uint32_t flags, uint64_t pos, const std::string& how);

  pid_t pid_;
  uint32_t next_id_ = 1;
  std::map<std::pair<std::string, uint32_t>, uint32_t> by_path_;  // (path, flags) of non-fd files
  std::vector<images::FileEntry> files_;
  std::vector<images::FdinfoEntry> fdinfo_;
};

}  // namespace ferry
