// Feeds arbitrary bytes to the image reader as a pagemap image file: magic,
// entry framing, protobuf decoding and the entry checks.
#include <cstdlib>

#include "base/log.h"
#include "image/image_file.h"
#include "image/image_magic.h"
#include "image/pagemap_image.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ferry::log::configure({0, "/dev/null"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  const std::byte* b = reinterpret_cast<const std::byte*>(data);
  Result<ImageFileReader> reader = ImageFileReader::from_bytes(std::vector<std::byte>(b, b + size), "fuzz input",
                                                               magic::kPagemap, 256);
  if (!reader) return 0;
  Result<PagemapImage> image = parse_pagemap_image(std::move(*reader), "fuzz input");
  if (!image) return 0;
  // What the parser accepts must hold up: sorted, non-overlapping, checked.
  uint64_t next = 0;
  for (const PagemapEntry& e : image->entries) {
    if (!check_pagemap_entry(e) || e.vaddr < next) std::abort();
    next = e.end();
  }
  return 0;
}
