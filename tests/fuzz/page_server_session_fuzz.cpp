// Feeds arbitrary byte streams to the page-server session, as a peer would:
// the request decoder, layout detection, every command's checks, the image
// writer (receiving mode) and GET serving (lazy mode). First input byte:
// bit 0 picks lazy mode, bit 1 forces the 4.1 layout instead of detection.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/log.h"
#include "fuzz/memory_transport.h"
#include "image/image_dir.h"
#include "image/local_page_sink.h"
#include "pageserver/page_server_session.h"

namespace {

using namespace ferry;

std::string make_dir(const char* what) {
  std::string path = fmt::format("/dev/shm/ferry-fuzz-{}-{}", what, ::getpid());
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

// A stored snapshot for the lazy mode: PID 1234, a few runs of pages.
LazyPageStore& lazy_store() {
  static std::string path = make_dir("lazy");
  static ImageDir dir = *ImageDir::open(path);
  static LazyPageStore store = [] {
    LocalPageSink sink(dir, 1);
    std::vector<std::byte> data(8 * kPageSize, std::byte{0x5a});
    (void)sink.begin({PagemapId::Kind::kProcess, 1234});
    (void)sink.write_pages({0x10000, 4, kPePresent | kPeLazy}, std::span(data).first(4 * kPageSize));
    (void)sink.write_pages({0x14000, 2, kPePresent}, std::span(data).first(2 * kPageSize));
    (void)sink.add_entry({0x20000, 3, kPeLazy});
    (void)sink.write_pages({0x30000, 2, kPePresent | kPeLazy}, std::span(data).first(2 * kPageSize));
    if (!sink.commit()) std::abort();
    return std::move(*LazyPageStore::load(dir));
  }();
  return store;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)log::configure({0, "/dev/null"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static std::string receive_path = make_dir("receive");
  static ImageDir receive_dir = *ImageDir::open(receive_path);

  bool lazy = data[0] & 1;
  PageServerSettings settings;
  if (data[0] & 2) settings.layout = ps::Layout::kCriu41;
  fuzz::MemoryTransport transport(std::as_bytes(std::span(data + 1, size - 1)));
  if (lazy) {
    PageServerSession session(transport, lazy_store(), settings);
    (void)session.run();
  } else {
    {
      LocalPageSink sink(receive_dir, 65537);
      PageServerSession session(transport, sink, settings);
      (void)session.run();
    }
    // A failed session must leave nothing behind; a successful one left
    // published images, which the next input must not collide with.
    for (const auto& e : std::filesystem::directory_iterator(receive_path)) {
      std::string name = e.path().filename();
      if (name.ends_with(".partial")) std::abort();
      std::filesystem::remove(e.path());
    }
  }
  return 0;
}
