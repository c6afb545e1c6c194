// Reading files under /proc: the small pieces every /proc parser shares.
// procfs files report size 0 and may change between two reads, so each is
// read whole in one pass and parsed from memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace ferry {

// "/proc/PID", or "/proc/PID/task/TID" when tid is given (not 0).
std::string proc_dir(pid_t pid, pid_t tid = 0);

// The whole content of a /proc file.
Result<std::string> read_proc_file(const std::string& path);

// The target of a /proc symlink (fd/N, exe, cwd).
Result<std::string> read_proc_link(const std::string& path);

// Parses an unsigned number in the given base that makes up all of text.
Result<uint64_t> parse_u64(std::string_view text, int base = 10);

// Splits off the first line of text (without its '\n'); empty text gives "".
std::string_view next_line(std::string_view& text);

}  // namespace ferry
