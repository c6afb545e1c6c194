#include "dump/image_set_writer.h"

#include "image/image_magic.h"

namespace ferry {

Status ImageSetWriter::write_one(const std::string& name, uint32_t magic,
                                 const std::vector<const google::protobuf::MessageLite*>& entries) {
  ImageFileWriter f = FERRY_TRY(ImageFileWriter::create(dir_, name));
  if (magic == magic::kInventory)
    FERRY_TRY(f.write_inventory_magic());
  else
    FERRY_TRY(f.write_magic(magic));
  for (const auto* e : entries) FERRY_TRY_CTX(f.write_entry(*e), "{}", dir_.describe(name));
  files_.push_back(std::move(f));
  return {};
}

Status ImageSetWriter::write(const ProcessSnapshot& s) {
  uint32_t pid = s.pstree.pid();
  uint32_t files_id = s.ids.files_id();
  FERRY_TRY(write_one("inventory.img", magic::kInventory, {&s.inventory}));
  FERRY_TRY(write_one("pstree.img", magic::kPstree, {&s.pstree}));
  FERRY_TRY(write_one(fmt::format("core-{}.img", pid), magic::kCore, {&s.core}));
  FERRY_TRY(write_one(fmt::format("ids-{}.img", pid), magic::kIds, {&s.ids}));
  FERRY_TRY(write_one(fmt::format("mm-{}.img", pid), magic::kMm, {&s.mm}));
  FERRY_TRY(write_one(fmt::format("fs-{}.img", pid), magic::kFs, {&s.fs}));
  std::vector<const google::protobuf::MessageLite*> fds, files;
  for (const auto& e : s.files.fdinfo()) fds.push_back(&e);
  for (const auto& e : s.files.files()) files.push_back(&e);
  FERRY_TRY(write_one(fmt::format("fdinfo-{}.img", files_id), magic::kFdinfo, fds));
  FERRY_TRY(write_one("files.img", magic::kFiles, files));
  return {};
}

Status ImageSetWriter::publish() {
  for (ImageFileWriter& f : files_) {
    Status s = f.publish();
    if (!s) {
      discard();
      return s;
    }
  }
  return {};
}

void ImageSetWriter::discard() {
  for (ImageFileWriter& f : files_) f.discard();
}

std::vector<std::string> ImageSetWriter::names() const {
  std::vector<std::string> n;
  for (const auto& f : files_) n.push_back(f.name());
  return n;
}

}  // namespace ferry
