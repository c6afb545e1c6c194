// Image files: a magic header, then framed entries (u32 size + one protobuf
// message) until the end of the file (image-format.md §2–3); or raw bytes
// (pages-N.img).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/image_dir.h"
#include "net/transport.h"

namespace ferry {

// Writes one image under its temporary name; publish() gives it its name.
// Destroyed unpublished, it removes the temporary file.
class ImageFileWriter {
 public:
  static Result<ImageFileWriter> create(const ImageDir& dir, std::string name);
  ImageFileWriter(ImageFileWriter&& other) noexcept;
  ImageFileWriter& operator=(ImageFileWriter&&) = delete;
  ~ImageFileWriter();

  // The two-word header of a protobuf image: IMG_COMMON_MAGIC, then `type`.
  Status write_magic(uint32_t type);
  // The one-word header of inventory.img: INVENTORY_MAGIC alone.
  Status write_inventory_magic();
  // One framed entry. Fails if a required field is not set.
  Status write_entry(const google::protobuf::MessageLite& message);
  // Raw bytes; large writes bypass the buffer.
  Status write_raw(std::span<const std::byte> data);
  // Raw bytes straight from a peer (see Transport::read_exact_into_file).
  Status write_from(Transport& transport, uint64_t bytes, std::span<std::byte> scratch);

  // Flushes and renames into place. The writer is finished afterwards.
  Status publish();
  // Removes the temporary file now.
  void discard();

  const std::string& name() const { return name_; }
  uint64_t bytes_written() const { return written_; }

 private:
  ImageFileWriter(const ImageDir& dir, std::string name, UniqueFd fd) : dir_(&dir), name_(std::move(name)), fd_(std::move(fd)) {}
  Status flush();
  Status write_through(std::span<const std::byte> data);

  const ImageDir* dir_;
  std::string name_;
  UniqueFd fd_;
  std::vector<std::byte> buffer_;
  uint64_t written_ = 0;
  bool finished_ = false;
};

// Reads the entries of one protobuf image, checking its magic and bounding
// every entry's size.
class ImageFileReader {
 public:
  // Opens NAME in DIR and checks that it starts with the common magic and `type`.
  static Result<ImageFileReader> open(const ImageDir& dir, const std::string& name, uint32_t type,
                                      uint32_t max_entry_size);
  // Reads from memory (for the fuzz targets and tests); `where` names it.
  static Result<ImageFileReader> from_bytes(std::vector<std::byte> bytes, std::string where, uint32_t type,
                                            uint32_t max_entry_size);

  // The next entry into `message`; false at a clean end of the file.
  Result<bool> next_entry(google::protobuf::MessageLite& message);
  // How many entries were read so far.
  size_t entries_read() const { return entries_; }

 private:
  ImageFileReader(std::vector<std::byte> bytes, std::string where, uint32_t max)
      : bytes_(std::move(bytes)), where_(std::move(where)), max_entry_(max) {}
  Status check_magic(uint32_t type);

  std::vector<std::byte> bytes_;
  size_t offset_ = 0;
  std::string where_;
  uint32_t max_entry_;
  size_t entries_ = 0;
};

// Reads a whole (small) file, refusing one larger than `max_size`.
Result<std::vector<std::byte>> read_whole_file(int fd, const std::string& where, size_t max_size);

}  // namespace ferry
