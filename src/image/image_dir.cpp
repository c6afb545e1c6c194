#include "image/image_dir.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ferry {

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

Result<ImageDir> ImageDir::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("cannot open images directory {}", path);
  return ImageDir(std::move(fd), path);
}

std::string ImageDir::describe(const std::string& name) const { return path_ + "/" + name; }

Result<UniqueFd> ImageDir::create_temporary(const std::string& name) const {
  if (!is_plain_file_name(name)) return fail("refusing image name '{}': not a plain file name", name);
  if (FERRY_TRY(exists(name))) return fail("{} exists already: not overwriting it", describe(name));
  std::string temp = temporary_name(name);
  ::unlinkat(fd_.get(), temp.c_str(), 0);
  UniqueFd fd(::openat(fd_.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return fail_errno("cannot create {}", describe(temp));
  // The umask cannot loosen 0600, but a restrictive one could make the file
  // unreadable to us: state the mode outright.
  if (::fchmod(fd.get(), 0600) != 0) return fail_errno("cannot chmod {}", describe(temp));
  return fd;
}

Status ImageDir::publish(const std::string& name) const {
  std::string temp = temporary_name(name);
  if (::syscall(SYS_renameat2, fd_.get(), temp.c_str(), fd_.get(), name.c_str(), RENAME_NOREPLACE) != 0)
    return fail_errno("cannot publish {} as {}", describe(temp), describe(name));
  return {};
}

void ImageDir::discard(const std::string& name) const {
  std::string temp = temporary_name(name);
  ::unlinkat(fd_.get(), temp.c_str(), 0);
}

Result<UniqueFd> ImageDir::open_for_reading(const std::string& name) const {
  if (!is_plain_file_name(name)) return fail("refusing image name '{}': not a plain file name", name);
  UniqueFd fd(::openat(fd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("cannot open {}", describe(name));
  return fd;
}

Result<bool> ImageDir::exists(const std::string& name) const {
  struct stat st {};
  if (::fstatat(fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  return fail_errno("cannot stat {}", describe(name));
}

Result<std::optional<ImageDir>> ImageDir::open_parent() const {
  UniqueFd fd(::openat(fd_.get(), "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<ImageDir>();
    return fail_errno("cannot open the parent snapshot {}", describe("parent"));
  }
  return std::optional<ImageDir>(ImageDir(std::move(fd), describe("parent")));
}

}  // namespace ferry
