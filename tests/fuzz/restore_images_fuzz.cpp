// Feeds arbitrary protobuf bytes as the images a restore reads (inventory,
// pstree, core, ids, mm, fs, files, fdinfo, pagemap entries) to the checks
// restore runs before it acts on them: protobuf decoding of every message
// kind and every consistency rule. Input: chunks of (u16 length, bytes), in
// that order; the files/fdinfo/pagemap chunks repeat until the input ends.
#include <cstdint>
#include <cstring>

#include "base/log.h"
#include "pagemap.pb.h"
#include "restore/restore_images.h"

namespace {

struct Chunks {
  const uint8_t* data;
  size_t size;
  bool next(const uint8_t*& p, size_t& n) {
    if (size < 2) return false;
    uint16_t len;
    std::memcpy(&len, data, 2);
    data += 2;
    size -= 2;
    n = std::min<size_t>(len, size);
    p = data;
    data += n;
    size -= n;
    return true;
  }
};

template <class M>
bool parse(Chunks& c, M& m) {
  const uint8_t* p;
  size_t n;
  if (!c.next(p, n)) return false;
  return m.ParsePartialFromArray(p, static_cast<int>(n));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ferry::log::configure({0, "/dev/null"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  if (size < 1) return 0;
  RestoreImageOptions options;
  options.shell_job = data[0] & 1;
  Chunks c{data + 1, size - 1};
  RestoreImages images;
  TaskImages t;
  images::CoreEntry core;
  if (!parse(c, images.inventory) || !parse(c, t.pstree) || !parse(c, core) || !parse(c, t.ids) || !parse(c, t.mm) ||
      !parse(c, t.fs))
    return 0;
  t.thread_cores.push_back(core);
  for (;;) {
    images::FileEntry f;
    images::FdinfoEntry fd;
    images::PagemapEntry pe;
    if (!parse(c, f) || !parse(c, fd) || !parse(c, pe)) break;
    images.files.emplace(f.id(), f);
    t.fds.push_back(fd);
    t.pagemap.entries.push_back(
        PagemapEntry{pe.vaddr(), pe.has_nr_pages() ? pe.nr_pages() : pe.compat_nr_pages(), pe.has_flags() ? pe.flags() : 4});
  }
  images.tasks.push_back(std::move(t));
  Status s = check_restore_images(images, options);
  if (s) {
    for (const auto& v : images.root().mm.vmas()) (void)describe_vma(v);
  }
  return 0;
}
