#include "proc/proc_status.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "proc/proc_file.h"

namespace ferry {
namespace {

// The space-separated fields after comm: element k is proc(5) field k + 3.
std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  for (;;) {
    size_t begin = text.find_first_not_of(" \n");
    if (begin == std::string_view::npos) return fields;
    text.remove_prefix(begin);
    size_t end = text.find_first_of(" \n");
    fields.push_back(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  }
}

Result<int64_t> parse_i64(std::string_view text) {
  bool negative = text.starts_with('-');
  if (negative) text.remove_prefix(1);
  uint64_t magnitude = FERRY_TRY(parse_u64(text));
  return negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
}

Result<std::vector<uint32_t>> parse_id_list(std::string_view text) {
  std::vector<uint32_t> ids;
  for (std::string_view f : split_fields(text)) {
    // Uid/Gid separate with tabs, Groups with spaces.
    size_t begin = 0;
    while (begin < f.size()) {
      size_t tab = f.find('\t', begin);
      std::string_view id = f.substr(begin, tab == std::string_view::npos ? std::string_view::npos : tab - begin);
      if (!id.empty()) ids.push_back(static_cast<uint32_t>(FERRY_TRY(parse_u64(id))));
      if (tab == std::string_view::npos) break;
      begin = tab + 1;
    }
  }
  return ids;
}

Result<std::array<uint32_t, 4>> parse_four_ids(std::string_view text) {
  std::vector<uint32_t> ids = FERRY_TRY(parse_id_list(text));
  if (ids.size() != 4) return fail("'{}' is not 4 ids", text);
  return std::array<uint32_t, 4>{ids[0], ids[1], ids[2], ids[3]};
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<ProcStat> parse_proc_stat(std::string_view text) {
  // comm may hold spaces and parentheses, but not after its closing one: the
  // fields resume after the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return fail("no (comm) in '{}'", text.substr(0, 64));
  ProcStat s;
  s.pid = static_cast<pid_t>(FERRY_TRY_CTX(parse_u64(trim(text.substr(0, open))), "pid"));
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  std::vector<std::string_view> f = split_fields(text.substr(close + 1));
  constexpr size_t kLastField = 52;
  if (f.size() < kLastField - 2) return fail("{} fields after comm, need {}", f.size(), kLastField - 2);
  auto field = [&](int number) { return f[static_cast<size_t>(number - 3)]; };
  auto u64 = [&](int number) -> Result<uint64_t> {
    return FERRY_TRY_CTX(parse_u64(field(number)), "field {}", number);
  };
  auto i64 = [&](int number) -> Result<int64_t> {
    return FERRY_TRY_CTX(parse_i64(field(number)), "field {}", number);
  };
  if (field(3).size() != 1) return fail("state '{}' is not one letter", field(3));
  s.state = field(3)[0];
  s.ppid = static_cast<pid_t>(FERRY_TRY(i64(4)));
  s.pgrp = static_cast<pid_t>(FERRY_TRY(i64(5)));
  s.session = static_cast<pid_t>(FERRY_TRY(i64(6)));
  s.flags = static_cast<uint32_t>(FERRY_TRY(u64(9)));
  s.num_threads = FERRY_TRY(i64(20));
  s.start_code = FERRY_TRY(u64(26));
  s.end_code = FERRY_TRY(u64(27));
  s.start_stack = FERRY_TRY(u64(28));
  s.start_data = FERRY_TRY(u64(45));
  s.end_data = FERRY_TRY(u64(46));
  s.start_brk = FERRY_TRY(u64(47));
  s.arg_start = FERRY_TRY(u64(48));
  s.arg_end = FERRY_TRY(u64(49));
  s.env_start = FERRY_TRY(u64(50));
  s.env_end = FERRY_TRY(u64(51));
  s.exit_code = static_cast<int>(FERRY_TRY(i64(52)));
  return s;
}

Result<ProcStat> read_proc_stat(pid_t pid, pid_t tid) {
  std::string path = proc_dir(pid, tid) + "/stat";
  std::string text = FERRY_TRY(read_proc_file(path));
  return FERRY_TRY_CTX(parse_proc_stat(text), "{}", path);
}

Result<ProcStatus> parse_proc_status(std::string_view text) {
  ProcStatus s;
  auto hex = [](uint64_t& out) {
    return [&out](std::string_view v) -> Status {
      out = FERRY_TRY(parse_u64(v, 16));
      return {};
    };
  };
  // Every key Ferry reads; all but Seccomp (CONFIG_SECCOMP) are always there.
  std::map<std::string_view, std::function<Status(std::string_view)>> readers = {
      {"Tgid", [&](std::string_view v) -> Status {
         s.tgid = static_cast<pid_t>(FERRY_TRY(parse_u64(v)));
         return {};
       }},
      {"Umask", [&](std::string_view v) -> Status {
         s.umask = static_cast<mode_t>(FERRY_TRY(parse_u64(v, 8)));
         return {};
       }},
      {"SigPnd", hex(s.sig_pending)},
      {"ShdPnd", hex(s.sig_shared_pending)},
      {"SigBlk", hex(s.sig_blocked)},
      {"SigIgn", hex(s.sig_ignored)},
      {"SigCgt", hex(s.sig_caught)},
      {"Uid", [&](std::string_view v) -> Status {
         s.uid = FERRY_TRY(parse_four_ids(v));
         return {};
       }},
      {"Gid", [&](std::string_view v) -> Status {
         s.gid = FERRY_TRY(parse_four_ids(v));
         return {};
       }},
      {"Groups", [&](std::string_view v) -> Status {
         s.groups = FERRY_TRY(parse_id_list(v));
         return {};
       }},
      {"CapInh", hex(s.cap_inheritable)},
      {"CapPrm", hex(s.cap_permitted)},
      {"CapEff", hex(s.cap_effective)},
      {"CapBnd", hex(s.cap_bounding)},
      {"CapAmb", hex(s.cap_ambient)},
      {"NoNewPrivs", [&](std::string_view v) -> Status {
         s.no_new_privs = FERRY_TRY(parse_u64(v)) != 0;
         return {};
       }},
      {"Seccomp", [&](std::string_view v) -> Status {
         s.seccomp = static_cast<int>(FERRY_TRY(parse_u64(v)));
         return {};
       }},
  };
  while (!text.empty()) {
    std::string_view line = next_line(text);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto it = readers.find(line.substr(0, colon));
    if (it == readers.end()) continue;
    FERRY_TRY_CTX(it->second(trim(line.substr(colon + 1))), "{}", it->first);
    readers.erase(it);
  }
  readers.erase("Seccomp");  // absent without CONFIG_SECCOMP: then it is off
  if (!readers.empty()) {
    std::string missing;
    for (const auto& [key, reader] : readers) missing += fmt::format("{}{}", missing.empty() ? "" : ", ", key);
    return fail("no {}", missing);
  }
  return s;
}

Result<ProcStatus> read_proc_status(pid_t pid, pid_t tid) {
  std::string path = proc_dir(pid, tid) + "/status";
  std::string text = FERRY_TRY(read_proc_file(path));
  return FERRY_TRY_CTX(parse_proc_status(text), "{}", path);
}

Result<std::vector<AuxvEntry>> read_auxv(pid_t pid) {
  std::string path = proc_dir(pid) + "/auxv";
  std::string bytes = FERRY_TRY(read_proc_file(path));
  if (bytes.size() % sizeof(AuxvEntry) != 0) return fail("{}: {} bytes, not whole (type, value) pairs", path, bytes.size());
  std::vector<AuxvEntry> entries(bytes.size() / sizeof(AuxvEntry));
  std::memcpy(entries.data(), bytes.data(), bytes.size());
  // The kernel's saved_auxv may hold zero padding after the AT_NULL pair.
  auto at_null = std::find_if(entries.begin(), entries.end(), [](const AuxvEntry& e) { return e.type == 0; });
  if (at_null == entries.end()) return fail("{}: no AT_NULL entry", path);
  entries.erase(at_null + 1, entries.end());
  return entries;
}

Result<std::vector<pid_t>> list_threads(pid_t pid) {
  std::string path = proc_dir(pid) + "/task";
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) return fail_errno("opendir {}", path);
  std::vector<pid_t> tids;
  errno = 0;
  while (dirent* e = ::readdir(dir.get())) {
    if (e->d_name[0] == '.') continue;
    tids.push_back(static_cast<pid_t>(FERRY_TRY_CTX(parse_u64(e->d_name), "{}", path)));
    errno = 0;
  }
  if (errno != 0) return fail_errno("readdir {}", path);
  std::sort(tids.begin(), tids.end());
  return tids;
}

}  // namespace ferry
