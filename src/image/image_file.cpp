#include "image/image_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "image/image_magic.h"

namespace ferry {
namespace {

constexpr size_t kBufferSize = 64 * 1024;

void append_u32(std::vector<std::byte>& out, uint32_t v) {
  std::byte b[4];
  std::memcpy(b, &v, 4);  // host order, as CRIU
  out.insert(out.end(), b, b + 4);
}

}  // namespace

Result<ImageFileWriter> ImageFileWriter::create(const ImageDir& dir, std::string name) {
  UniqueFd fd = FERRY_TRY(dir.create_temporary(name));
  return ImageFileWriter(dir, std::move(name), std::move(fd));
}

ImageFileWriter::ImageFileWriter(ImageFileWriter&& o) noexcept
    : dir_(o.dir_), name_(std::move(o.name_)), fd_(std::move(o.fd_)), buffer_(std::move(o.buffer_)),
      written_(o.written_), finished_(o.finished_) {
  o.finished_ = true;
}

ImageFileWriter::~ImageFileWriter() {
  if (!finished_) discard();
}

Status ImageFileWriter::write_magic(uint32_t type) {
  std::vector<std::byte> header;
  append_u32(header, magic::kCommon);
  append_u32(header, type);
  return write_raw(header);
}

Status ImageFileWriter::write_inventory_magic() {
  std::vector<std::byte> header;
  append_u32(header, magic::kInventory);
  return write_raw(header);
}

Status ImageFileWriter::write_entry(const google::protobuf::MessageLite& message) {
  if (!message.IsInitialized())
    return fail("{}: entry lacks required fields: {}", dir_->describe(name_), message.InitializationErrorString());
  size_t size = message.ByteSizeLong();
  if (size > UINT32_MAX) return fail("{}: entry of {} bytes is too large", dir_->describe(name_), size);
  std::vector<std::byte> frame;
  frame.reserve(4 + size);
  append_u32(frame, static_cast<uint32_t>(size));
  frame.resize(4 + size);
  if (!message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + 4)))
    return fail("{}: cannot serialise an entry", dir_->describe(name_));
  return write_raw(frame);
}

Status ImageFileWriter::write_raw(std::span<const std::byte> data) {
  if (finished_) return fail("{}: written after it was finished", dir_->describe(name_));
  written_ += data.size();
  if (buffer_.size() + data.size() <= kBufferSize) {
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    return {};
  }
  FERRY_TRY(flush());
  if (data.size() >= kBufferSize) return write_through(data);
  buffer_.insert(buffer_.end(), data.begin(), data.end());
  return {};
}

Status ImageFileWriter::write_from(Transport& transport, uint64_t bytes, std::span<std::byte> scratch) {
  if (finished_) return fail("{}: written after it was finished", dir_->describe(name_));
  FERRY_TRY(flush());
  FERRY_TRY(transport.read_exact_into_file(fd_.get(), dir_->describe(ImageDir::temporary_name(name_)), bytes, scratch));
  written_ += bytes;
  return {};
}

Status ImageFileWriter::write_through(std::span<const std::byte> data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot write {}", dir_->describe(ImageDir::temporary_name(name_)));
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

Status ImageFileWriter::flush() {
  Status s = write_through(buffer_);
  buffer_.clear();
  return s;
}

Status ImageFileWriter::publish() {
  FERRY_TRY(flush());
  fd_.reset();
  Status s = dir_->publish(name_);
  if (!s) {
    discard();
    return s;
  }
  finished_ = true;
  return {};
}

void ImageFileWriter::discard() {
  fd_.reset();
  buffer_.clear();
  if (!finished_) dir_->discard(name_);
  finished_ = true;
}

Result<std::vector<std::byte>> read_whole_file(int fd, const std::string& where, size_t max_size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("cannot stat {}", where);
  if (!S_ISREG(st.st_mode)) return fail("{} is not a regular file", where);
  if (static_cast<uint64_t>(st.st_size) > max_size)
    return fail("{} is {} bytes, more than the {} an image of its kind may have", where, st.st_size, max_size);
  std::vector<std::byte> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read {}", where);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

Result<ImageFileReader> ImageFileReader::open(const ImageDir& dir, const std::string& name, uint32_t type,
                                              uint32_t max_entry_size) {
  UniqueFd fd = FERRY_TRY(dir.open_for_reading(name));
  // Protobuf images hold metadata only; page data lives in raw files.
  constexpr size_t kMaxImage = 256u << 20;
  std::vector<std::byte> bytes = FERRY_TRY(read_whole_file(fd.get(), dir.describe(name), kMaxImage));
  return from_bytes(std::move(bytes), dir.describe(name), type, max_entry_size);
}

Result<ImageFileReader> ImageFileReader::from_bytes(std::vector<std::byte> bytes, std::string where, uint32_t type,
                                                    uint32_t max_entry_size) {
  ImageFileReader r(std::move(bytes), std::move(where), max_entry_size);
  FERRY_TRY(r.check_magic(type));
  return r;
}

Status ImageFileReader::check_magic(uint32_t type) {
  if (bytes_.size() < 8) return fail("{}: {} bytes, too short for an image header", where_, bytes_.size());
  uint32_t common = 0, kind = 0;
  std::memcpy(&common, bytes_.data(), 4);
  std::memcpy(&kind, bytes_.data() + 4, 4);
  if (common != magic::kCommon) return fail("{}: not an image file (magic {:#010x})", where_, common);
  if (kind != type) return fail("{}: image of type {:#010x} where {:#010x} was expected", where_, kind, type);
  offset_ = 8;
  return {};
}

Result<bool> ImageFileReader::next_entry(google::protobuf::MessageLite& message) {
  if (offset_ == bytes_.size()) return false;
  size_t left = bytes_.size() - offset_;
  if (left < 4) return fail("{}: truncated entry size at offset {}", where_, offset_);
  uint32_t size = 0;
  std::memcpy(&size, bytes_.data() + offset_, 4);
  if (size > max_entry_) return fail("{}: entry {} claims {} bytes (at most {} expected)", where_, entries_, size, max_entry_);
  if (size > left - 4)
    return fail("{}: entry {} is truncated ({} of {} bytes at offset {})", where_, entries_, left - 4, size, offset_);
  message.Clear();
  // Parsed partially and checked here, so the message names what is missing
  // (and libprotobuf prints nothing of its own).
  if (!message.ParsePartialFromArray(bytes_.data() + offset_ + 4, static_cast<int>(size)))
    return fail("{}: entry {} at offset {} is not a valid protobuf message", where_, entries_, offset_);
  if (!message.IsInitialized())
    return fail("{}: entry {} at offset {} lacks required fields: {}", where_, entries_, offset_,
                message.InitializationErrorString());
  offset_ += 4 + size;
  ++entries_;
  return true;
}

}  // namespace ferry
