// Writes the images of a snapshot (all but pagemap/pages, which go through
// a PageSink) under temporary names; publish() gives them all their names at
// the end, so a failed dump leaves no image that looks complete.
#pragma once

#include <vector>

#include "dump/process_snapshot.h"
#include "image/image_file.h"

namespace ferry {

class ImageSetWriter {
 public:
  explicit ImageSetWriter(const ImageDir& dir) : dir_(dir) {}

  // inventory, pstree, core-PID, ids-PID, mm-PID, fs-PID, fdinfo-2, files.
  Status write(const ProcessSnapshot& s);
  Status publish();
  void discard();
  std::vector<std::string> names() const;

 private:
  Status write_one(const std::string& name, uint32_t magic, const std::vector<const google::protobuf::MessageLite*>& entries);

  const ImageDir& dir_;
  std::vector<ImageFileWriter> files_;
};

}  // namespace ferry
