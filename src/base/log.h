// Logging as CRIU users know it: levels 0 (plain messages) .. 4 (debug),
// default 2; every line carries the time since start and a component prefix.
// Lines go to the log file (-o) or stderr; errors always reach stderr too, so a
// user running by hand sees them.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/error.h"

namespace ferry {

enum class LogLevel : int { kMsg = 0, kError = 1, kWarn = 2, kInfo = 3, kDebug = 4 };

struct LogSettings {
  int verbosity = 2;
  std::string file;  // empty: stderr; "-": stdout; else a path (created 0600)
};

namespace log {

// Opens the destination; before this is called, lines go to stderr at level 2.
Status configure(const LogSettings& settings);
bool enabled(LogLevel level);
void write(LogLevel level, std::string_view component, std::string_view text);
// Seconds since the process started, as printed in the log.
double uptime_seconds();
// True when the log destination is not stderr (so errors are copied there).
bool writes_to_file();

}  // namespace log

// A named source of log lines, e.g. `const Logger kLog{"tls"};`.
class Logger {
 public:
  constexpr explicit Logger(std::string_view component) : component_(component) {}

  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) const {
    emit(LogLevel::kError, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const {
    emit(LogLevel::kWarn, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    emit(LogLevel::kInfo, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) const {
    emit(LogLevel::kDebug, f, std::forward<Args>(args)...);
  }
  // Level 0: always printed, without a level tag.
  template <class... Args>
  void msg(fmt::format_string<Args...> f, Args&&... args) const {
    emit(LogLevel::kMsg, f, std::forward<Args>(args)...);
  }
  std::string_view component() const { return component_; }

 private:
  template <class... Args>
  void emit(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    if (!log::enabled(level)) return;
    log::write(level, component_, fmt::format(f, std::forward<Args>(args)...));
  }
  std::string_view component_;
};

}  // namespace ferry
