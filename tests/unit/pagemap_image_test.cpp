// Pagemap images and the local page sink: what is written, what is read
// back (from Ferry and from either CRIU generation), and what is refused.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "image/image_magic.h"
#include "image/local_page_sink.h"
#include "image/pagemap_image.h"
#include "pagemap.pb.h"
#include "support/subprocess.h"

namespace ferry {
namespace {

using test::TempDir;

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> n;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n.push_back(e.path().filename());
  std::sort(n.begin(), n.end());
  return n;
}

TEST(PagemapEntryCheck, AcceptsWhatCriuWritesAndNothingElse) {
  EXPECT_TRUE(check_pagemap_entry({0x1000, 1, kPePresent}));
  EXPECT_TRUE(check_pagemap_entry({0x1000, 1, kPePresent | kPeLazy}));
  EXPECT_TRUE(check_pagemap_entry({0x1000, 1, kPeLazy}));
  EXPECT_TRUE(check_pagemap_entry({0x1000, 1, kPeParent}));
  EXPECT_FALSE(check_pagemap_entry({0x1000, 1, kPeParent | kPePresent}));
  EXPECT_FALSE(check_pagemap_entry({0x1000, 1, 0}));
  EXPECT_FALSE(check_pagemap_entry({0x1000, 1, 8 | kPePresent}));
  EXPECT_FALSE(check_pagemap_entry({0x1001, 1, kPePresent}));
  EXPECT_FALSE(check_pagemap_entry({0x1000, 0, kPePresent}));
  EXPECT_FALSE(check_pagemap_entry({kAddressLimit - kPageSize, 2, kPePresent}));
  EXPECT_TRUE(check_pagemap_entry({kAddressLimit - kPageSize, 1, kPePresent}));
  EXPECT_FALSE(check_pagemap_entry({0x1000, UINT64_MAX / 2, kPePresent}));
}

TEST(PagemapImage, CoversChecksEveryPage) {
  PagemapImage img{1, {{0x1000, 2, kPePresent}, {0x3000, 1, kPeParent}, {0x8000, 1, kPePresent}}};
  EXPECT_TRUE(img.covers(0x1000, 3));
  EXPECT_TRUE(img.covers(0x2000, 2));
  EXPECT_FALSE(img.covers(0x1000, 4));
  EXPECT_FALSE(img.covers(0x7000, 1));
  EXPECT_TRUE(img.covers(0x8000, 1));
  EXPECT_EQ(img.pages_with_data(), 3u);
}

TEST(LocalPageSink, CommitPublishesPrivateImagesThatReadBack) {
  TempDir tmp;
  mode_t old = ::umask(0);
  {
    ImageDir dir = *ImageDir::open(tmp.path());
    LocalPageSink sink(dir, 1);
    ASSERT_TRUE(sink.begin({PagemapId::Kind::kProcess, 10}));
    std::vector<std::byte> data(3 * kPageSize, std::byte{7});
    ASSERT_TRUE(sink.write_pages({0x1000, 3, kPePresent}, data));
    ASSERT_TRUE(sink.add_entry({0x10000, 2, kPeLazy}));
    ASSERT_TRUE(sink.begin({PagemapId::Kind::kShmem, 3}));
    ASSERT_TRUE(sink.write_pages({0, 1, kPePresent}, std::span(data).first(kPageSize)));
    // Nothing is visible under its real name before commit.
    for (const std::string& n : names_in(tmp.path())) EXPECT_TRUE(n.ends_with(".partial")) << n;
    ASSERT_TRUE(sink.commit());
    Result<PagemapImage> img = read_pagemap_image(dir, "pagemap-10.img");
    ASSERT_TRUE(img) << img.error().message();
    EXPECT_EQ(img->pages_id, 1u);
    EXPECT_EQ(img->entries, (std::vector<PagemapEntry>{{0x1000, 3, kPePresent}, {0x10000, 2, kPeLazy}}));
    Result<PagemapImage> shm = read_pagemap_image(dir, "pagemap-shmem-3.img");
    ASSERT_TRUE(shm);
    EXPECT_EQ(shm->pages_id, 2u);
  }
  ::umask(old);
  EXPECT_EQ(names_in(tmp.path()),
            (std::vector<std::string>{"pagemap-10.img", "pagemap-shmem-3.img", "pages-1.img", "pages-2.img"}));
  for (const std::string& n : names_in(tmp.path())) {
    struct stat st {};
    ASSERT_EQ(::stat(tmp.file(n).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << n;
  }
  EXPECT_EQ(std::filesystem::file_size(tmp.file("pages-1.img")), 3 * kPageSize);
}

TEST(LocalPageSink, AbortAndDestructionLeaveNothing) {
  TempDir tmp;
  ImageDir dir = *ImageDir::open(tmp.path());
  {
    LocalPageSink sink(dir, 1);
    ASSERT_TRUE(sink.begin({PagemapId::Kind::kProcess, 10}));
    std::vector<std::byte> data(kPageSize);
    ASSERT_TRUE(sink.write_pages({0x1000, 1, kPePresent}, data));
  }
  EXPECT_TRUE(names_in(tmp.path()).empty());
}

TEST(LocalPageSink, RefusesMisuse) {
  TempDir tmp;
  ImageDir dir = *ImageDir::open(tmp.path());
  LocalPageSink sink(dir, 1);
  EXPECT_FALSE(sink.add_entry({0x1000, 1, kPePresent}));  // before begin
  ASSERT_TRUE(sink.begin({PagemapId::Kind::kProcess, 10}));
  ASSERT_TRUE(sink.add_entry({0x4000, 1, kPePresent}));
  EXPECT_FALSE(sink.add_entry({0x8000, 1, kPePresent}));  // data still due
  std::vector<std::byte> page(kPageSize);
  EXPECT_FALSE(sink.write_data(std::vector<std::byte>(2 * kPageSize)));  // more than announced
  ASSERT_TRUE(sink.write_data(page));
  EXPECT_FALSE(sink.add_entry({0x2000, 1, kPePresent}));  // decreasing
  EXPECT_FALSE(sink.add_entry({0x5000, 1, kPeParent}));   // no parent snapshot
  EXPECT_FALSE(sink.begin({PagemapId::Kind::kProcess, 10}));  // twice
}

// Entries as CRIU 4.2 writes them (count only in field 5) and as CRIU <= 4.1
// writes them (count only in field 2, in_parent instead of flags).
TEST(PagemapImage, ReadsBothCriuGenerations) {
  TempDir tmp;
  ImageDir dir = *ImageDir::open(tmp.path());
  std::string bytes;
  auto u32 = [&](uint32_t v) { bytes.append(reinterpret_cast<const char*>(&v), 4); };
  auto entry = [&](const google::protobuf::MessageLite& m) {
    std::string s = m.SerializeAsString();
    u32(static_cast<uint32_t>(s.size()));
    bytes += s;
  };
  u32(magic::kCommon);
  u32(magic::kPagemap);
  images::PagemapHead head;
  head.set_pages_id(5);
  entry(head);
  images::PagemapEntry new_style;
  new_style.set_vaddr(0x10000);
  new_style.set_compat_nr_pages(0);
  new_style.set_flags(kPePresent);
  new_style.set_nr_pages(3);
  entry(new_style);
  images::PagemapEntry old_style;
  old_style.set_vaddr(0x20000);
  old_style.set_compat_nr_pages(2);
  entry(old_style);
  images::PagemapEntry old_parent;
  old_parent.set_vaddr(0x30000);
  old_parent.set_compat_nr_pages(1);
  old_parent.set_in_parent(true);
  entry(old_parent);
  test::write_file(tmp.file("pagemap-1.img"), bytes);
  Result<PagemapImage> img = read_pagemap_image(dir, "pagemap-1.img");
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->pages_id, 5u);
  EXPECT_EQ(img->entries, (std::vector<PagemapEntry>{{0x10000, 3, kPePresent}, {0x20000, 2, kPePresent}, {0x30000, 1, kPeParent}}));

  test::write_file(tmp.file("pagemap-2.img"), bytes.substr(0, bytes.size() - 3));
  Result<PagemapImage> cut = read_pagemap_image(dir, "pagemap-2.img");
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message().find("truncated"), std::string::npos) << cut.error().message();

  test::write_file(tmp.file("pagemap-3.img"), "\x19\x43\x56\x54\x30\x30\x27\x50");
  Result<PagemapImage> wrong = read_pagemap_image(dir, "pagemap-3.img");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("image of type 0x50273030"), std::string::npos) << wrong.error().message();
}

TEST(ImageDir, RefusesNamesThatLeaveTheDirectory) {
  TempDir tmp;
  ImageDir dir = *ImageDir::open(tmp.path());
  EXPECT_FALSE(dir.create_temporary("../escape.img"));
  EXPECT_FALSE(dir.create_temporary(".."));
  EXPECT_FALSE(dir.open_for_reading("/etc/passwd"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/../escape.img"));
}

}  // namespace
}  // namespace ferry
