// One images directory (-D). Every file operation goes through the
// directory's fd with a plain file name, so nothing outside it is touched.
// Files are written under a temporary name (".NAME.partial", mode 0600) and
// only get their real name when published, so an interrupted writer never
// leaves an image that looks complete.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace ferry {

class ImageDir {
 public:
  // Opens an existing directory.
  static Result<ImageDir> open(const std::string& path);

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  // "DIR/NAME", for messages.
  std::string describe(const std::string& name) const;

  // Creates NAME's temporary file, private (0600) whatever the umask; a stale
  // temporary of an earlier, interrupted writer is replaced. Fails if NAME
  // itself exists: published images are never overwritten.
  Result<UniqueFd> create_temporary(const std::string& name) const;
  // Gives the temporary file of NAME its real name (never replacing one).
  Status publish(const std::string& name) const;
  // Removes NAME's temporary file, if any.
  void discard(const std::string& name) const;

  Result<UniqueFd> open_for_reading(const std::string& name) const;
  // False if NAME does not exist; an error for any other failure.
  Result<bool> exists(const std::string& name) const;

  // The snapshot that the `parent` link of this directory points to, if any
  // (incremental dumps).
  Result<std::optional<ImageDir>> open_parent() const;

  static std::string temporary_name(const std::string& name) { return "." + name + ".partial"; }

 private:
  ImageDir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

// True for a plain file name: non-empty, no '/', not "." or "..".
bool is_plain_file_name(const std::string& name);

}  // namespace ferry
