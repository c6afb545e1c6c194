// The page-server header codec, layout detection and dst_id encoding.
#include <gtest/gtest.h>

#include <cstring>

#include "pageserver/ps_wire.h"

namespace ferry::ps {
namespace {

std::array<std::byte, kMaxHeaderSize> encode(const Header& h, Layout l) {
  std::array<std::byte, kMaxHeaderSize> raw{};
  EXPECT_TRUE(encode_header(h, l, raw));
  return raw;
}

TEST(PsWire, RoundTripsBothLayouts) {
  Header h{kAddF, kPePresent | kPeLazy, 513, 0x7f1234560000, (1234 << 8) | 1};
  for (Layout l : {Layout::kCriu42, Layout::kCriu41}) {
    auto raw = encode(h, l);
    Header back = decode_header(std::span(raw).first(header_size(l)), l);
    EXPECT_EQ(back.command, h.command);
    EXPECT_EQ(back.flags, h.flags);
    EXPECT_EQ(back.nr_pages, h.nr_pages);
    EXPECT_EQ(back.vaddr, h.vaddr);
    EXPECT_EQ(back.dst_id, h.dst_id);
  }
}

TEST(PsWire, SpecWorkedExampleBytes) {
  auto raw = encode(Header{kAddF, kPePresent, 2, 0x7f1234560000, 0x4d201}, Layout::kCriu42);
  const unsigned char want[32] = {0x06, 0, 0x04, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0x56, 0x34, 0x12, 0x7f, 0, 0, 0x01, 0xd2, 0x04, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(raw.data(), want, 32), 0);
  auto legacy = encode(Header{kAddF, kPePresent, 2, 0x7f1234560000, 0x4d201}, Layout::kCriu41);
  const unsigned char want41[24] = {0x06, 0, 0x04, 0, 0x02, 0, 0, 0, 0, 0, 0x56, 0x34,
                                    0x12, 0x7f, 0, 0, 0x01, 0xd2, 0x04, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(legacy.data(), want41, 24), 0);
}

TEST(PsWire, LegacyLayoutRefusesCountsAbove32Bits) {
  std::array<std::byte, kMaxHeaderSize> raw{};
  EXPECT_FALSE(encode_header(Header{kAddF, kPePresent, uint64_t{1} << 32, 0, 0x101}, Layout::kCriu41, raw));
}

TEST(PsWire, GuessesTheLayoutFromTheFirstRequest) {
  auto guess = [](const Header& h, Layout l) {
    auto raw = encode(h, l);
    Result<std::optional<Layout>> g = guess_layout(std::span(raw).first<24>());
    EXPECT_TRUE(g);
    return *g;
  };
  for (Layout l : {Layout::kCriu42, Layout::kCriu41}) {
    EXPECT_EQ(guess(Header{kOpen2, 0, 0, 0, 0x4d201}, l), l);
    EXPECT_EQ(guess(Header{kParent, 0, 0, 0, 0x4d201}, l), l);
    EXPECT_EQ(guess(Header{kGet, 0, 16, 0x10000, 1234}, l), l);
    EXPECT_EQ(guess(Header{kClose, 0, 0, 0, 0}, l), std::nullopt);
  }
  std::array<std::byte, 24> junk{};
  junk[0] = std::byte{'G'};
  EXPECT_FALSE(guess_layout(junk));
}

TEST(PsWire, DstIdTypesIncludingOldOnes) {
  EXPECT_EQ(encode_dst_id({PagemapId::Kind::kProcess, 1234}), 0x4d201u);
  EXPECT_EQ(encode_dst_id({PagemapId::Kind::kShmem, 7}), 0x702u);
  for (uint64_t type : {1, 10, 11, 16, 17}) {
    Result<PagemapId> id = decode_dst_id((1234 << 8) | type);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->kind, PagemapId::Kind::kProcess);
    EXPECT_EQ(id->id, 1234u);
  }
  for (uint64_t type : {2, 27, 28, 29, 32, 33, 34}) {
    Result<PagemapId> id = decode_dst_id((7 << 8) | type);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->kind, PagemapId::Kind::kShmem);
  }
  EXPECT_FALSE(decode_dst_id((1234 << 8) | 3));
  EXPECT_FALSE(decode_dst_id(1));  // PID 0
  Result<PagemapId> bad = decode_dst_id((1234 << 8) | 9);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown pagemap type 9"), std::string::npos);
}

TEST(PsWire, DescribesRequestsForMessages) {
  EXPECT_EQ(command_name(kClose), "CLOSE");
  EXPECT_EQ(command_name(0x99), "command 0x99");
  std::string d = describe(Header{kAddF, kPePresent | kPeLazy, 2, 0x1000, 0x4d201});
  EXPECT_NE(d.find("ADD_F"), std::string::npos) << d;
  EXPECT_NE(d.find("PRESENT|LAZY"), std::string::npos) << d;
  EXPECT_NE(d.find("0x1000"), std::string::npos) << d;
}

}  // namespace
}  // namespace ferry::ps
