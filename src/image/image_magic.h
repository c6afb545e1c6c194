// The magic words at the start of image files (image-format.md §2). Values
// are CRIU's, so crit recognises Ferry's images.
#pragma once

#include <cstdint>

namespace ferry::magic {

constexpr uint32_t kCommon = 0x54564319;   // before every type magic but the inventory's
constexpr uint32_t kService = 0x55105940;  // before the magic of stats-* and irmap-cache
constexpr uint32_t kInventory = 0x58313116;
constexpr uint32_t kPstree = 0x50273030;
constexpr uint32_t kCore = 0x55053847;
constexpr uint32_t kIds = 0x54432030;
constexpr uint32_t kMm = 0x57492820;
constexpr uint32_t kFs = 0x51403912;
constexpr uint32_t kPagemap = 0x56084025;
constexpr uint32_t kFdinfo = 0x56213732;
constexpr uint32_t kFiles = 0x56303138;
constexpr uint32_t kSeccomp = 0x64413049;
constexpr uint32_t kTimens = 0x43114433;
constexpr uint32_t kStats = 0x57093306;

}  // namespace ferry::magic
