#include "proc/proc_maps.h"

#include <sys/mman.h>

#include <array>
#include <utility>

#include <fmt/format.h>

#include "proc/proc_file.h"

namespace ferry {
namespace {

constexpr std::array<std::pair<std::string_view, VmFlag>, 34> kVmFlagNames{{
    {"rd", kVmRead},        {"wr", kVmWrite},        {"ex", kVmExec},        {"sh", kVmShared},
    {"mr", kVmMayRead},     {"mw", kVmMayWrite},     {"me", kVmMayExec},     {"ms", kVmMayShare},
    {"gd", kVmGrowsDown},   {"pf", kVmPfnMap},       {"lo", kVmLocked},      {"io", kVmIo},
    {"sr", kVmSeqRead},     {"rr", kVmRandRead},     {"dc", kVmDontCopy},    {"de", kVmDontExpand},
    {"lf", kVmLockOnFault}, {"ac", kVmAccount},      {"nr", kVmNoReserve},   {"ht", kVmHugetlb},
    {"sf", kVmSync},        {"ar", kVmArch1},        {"wf", kVmWipeOnFork},  {"dd", kVmDontDump},
    {"sd", kVmSoftDirty},   {"mm", kVmMixedMap},     {"hg", kVmHugePage},    {"nh", kVmNoHugePage},
    {"mg", kVmMergeable},   {"um", kVmUffdMissing},  {"uw", kVmUffdWp},      {"ss", kVmShadowStack},
    {"sl", kVmSealed},      {"ui", kVmUffdMinor},
}};

// Takes the next space-delimited field off text (skipping leading spaces).
std::string_view next_field(std::string_view& text) {
  size_t begin = text.find_first_not_of(' ');
  if (begin == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(begin);
  size_t end = text.find(' ');
  std::string_view field = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  return field;
}

// "hex-hex" or "hex:hex".
Result<std::pair<uint64_t, uint64_t>> parse_hex_pair(std::string_view field, char separator) {
  size_t sep = field.find(separator);
  if (sep == std::string_view::npos) return fail("'{}' has no '{}'", field, separator);
  uint64_t a = FERRY_TRY(parse_u64(field.substr(0, sep), 16));
  uint64_t b = FERRY_TRY(parse_u64(field.substr(sep + 1), 16));
  return std::pair{a, b};
}

Result<int> parse_perms(std::string_view perms, bool& shared) {
  if (perms.size() != 4) return fail("permissions '{}' are not 4 characters", perms);
  int prot = 0;
  if (perms[0] == 'r') prot |= PROT_READ;
  else if (perms[0] != '-') return fail("bad permissions '{}'", perms);
  if (perms[1] == 'w') prot |= PROT_WRITE;
  else if (perms[1] != '-') return fail("bad permissions '{}'", perms);
  if (perms[2] == 'x') prot |= PROT_EXEC;
  else if (perms[2] != '-') return fail("bad permissions '{}'", perms);
  if (perms[3] != 's' && perms[3] != 'p') return fail("bad permissions '{}'", perms);
  shared = perms[3] == 's';
  return prot;
}

// A VMA's header line in smaps starts with "start-end"; the other lines
// start with a capitalised key ("Size:", "VmFlags:").
bool is_vma_header(std::string_view line) {
  if (line.empty()) return false;
  char c = line[0];
  bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  size_t dash = line.find('-');
  return hex && dash != std::string_view::npos && dash < line.find(' ');
}

}  // namespace

uint64_t parse_vm_flags(std::string_view mnemonics, std::string* unknown) {
  uint64_t bits = 0;
  for (std::string_view f = next_field(mnemonics); !f.empty(); f = next_field(mnemonics)) {
    bool known = false;
    for (const auto& [name, bit] : kVmFlagNames) {
      if (name == f) {
        bits |= bit;
        known = true;
        break;
      }
    }
    if (!known && unknown) {
      if (!unknown->empty()) unknown->push_back(' ');
      unknown->append(f);
    }
  }
  return bits;
}

std::string_view MapsEntry::file_path() const {
  std::string_view p = path;
  if (is_deleted()) p.remove_suffix(std::string_view(" (deleted)").size());
  return p;
}

std::string MapsEntry::describe() const {
  return fmt::format("{:x}-{:x} {}{}{}{}{}{}", start, end, prot & PROT_READ ? 'r' : '-',
                     prot & PROT_WRITE ? 'w' : '-', prot & PROT_EXEC ? 'x' : '-', shared ? 's' : 'p',
                     path.empty() ? "" : " ", path);
}

Result<MapsEntry> parse_maps_line(std::string_view line) {
  MapsEntry e;
  std::string_view rest = line;
  auto [start, end] = FERRY_TRY(parse_hex_pair(next_field(rest), '-'));
  if (start >= end || start % 4096 != 0 || end % 4096 != 0) return fail("bad address range {:x}-{:x}", start, end);
  e.start = start;
  e.end = end;
  e.prot = FERRY_TRY(parse_perms(next_field(rest), e.shared));
  e.pgoff = FERRY_TRY(parse_u64(next_field(rest), 16));
  auto [major, minor] = FERRY_TRY(parse_hex_pair(next_field(rest), ':'));
  e.dev_major = static_cast<uint32_t>(major);
  e.dev_minor = static_cast<uint32_t>(minor);
  e.inode = FERRY_TRY(parse_u64(next_field(rest), 10));
  // The rest, after the padding, is the path verbatim (spaces included).
  size_t path_begin = rest.find_first_not_of(' ');
  if (path_begin != std::string_view::npos) e.path = std::string(rest.substr(path_begin));
  return e;
}

Result<std::vector<MapsEntry>> parse_maps(std::string_view text) {
  std::vector<MapsEntry> entries;
  for (int number = 1; !text.empty(); ++number) {
    std::string_view line = next_line(text);
    if (line.empty()) continue;
    entries.push_back(FERRY_TRY_CTX(parse_maps_line(line), "line {}", number));
  }
  return entries;
}

Result<std::vector<MapsEntry>> parse_smaps(std::string_view text) {
  std::vector<MapsEntry> entries;
  for (int number = 1; !text.empty(); ++number) {
    std::string_view line = next_line(text);
    if (line.empty()) continue;
    if (is_vma_header(line)) {
      entries.push_back(FERRY_TRY_CTX(parse_maps_line(line), "line {}", number));
    } else if (line.starts_with("VmFlags:")) {
      if (entries.empty()) return fail("line {}: VmFlags before the first VMA", number);
      MapsEntry& e = entries.back();
      e.vm_flags = parse_vm_flags(line.substr(8), &e.unknown_vm_flags);
    }
  }
  return entries;
}

Result<std::vector<MapsEntry>> read_maps(pid_t pid) {
  std::string path = proc_dir(pid) + "/maps";
  std::string text = FERRY_TRY(read_proc_file(path));
  return FERRY_TRY_CTX(parse_maps(text), "{}", path);
}

Result<std::vector<MapsEntry>> read_smaps(pid_t pid) {
  std::string path = proc_dir(pid) + "/smaps";
  std::string text = FERRY_TRY(read_proc_file(path));
  return FERRY_TRY_CTX(parse_smaps(text), "{}", path);
}

}  // namespace ferry
