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
constexpr uint32_t kCgroup = 0x59383330;
constexpr uint32_t kTtyFiles = 0x59433025;
constexpr uint32_t kTtyInfo = 0x59453036;
constexpr uint32_t kTtyData = 0x59413026;
constexpr uint32_t kPipes = 0x56513555;
constexpr uint32_t kPipesData = 0x56453709;
constexpr uint32_t kUtsns = 0x54473203;
constexpr uint32_t kIpcVar = 0x53115007;
constexpr uint32_t kMnts = 0x55563928;
constexpr uint32_t kNetns = 0x55933752;
constexpr uint32_t kIrmapCache = 0x57004059;

// Legacy layouts: still readable by CRIU's restore, written by nobody now
// (their data lives in core, mm and files.img).
constexpr uint32_t kRegFiles = 0x50363636;
constexpr uint32_t kVmas = 0x54123737;
constexpr uint32_t kCreds = 0x54023547;
constexpr uint32_t kSigact = 0x55344201;
constexpr uint32_t kRlimit = 0x57113925;
constexpr uint32_t kItimers = 0x57464056;
constexpr uint32_t kPosixTimers = 0x52603957;

}  // namespace ferry::magic
