#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

#include "base/unique_fd.h"

namespace ferry::log {
namespace {

const auto kStart = std::chrono::steady_clock::now();

struct Destination {
  std::mutex mutex;
  int verbosity = 2;
  int fd = STDERR_FILENO;
  UniqueFd owned;  // the -o file, if any
};

Destination& destination() {
  static Destination d;
  return d;
}

std::string_view level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "Error: ";
    case LogLevel::kWarn: return "Warn: ";
    default: return "";
  }
}

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing log
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

Status configure(const LogSettings& settings) {
  Destination& d = destination();
  std::lock_guard lock(d.mutex);
  d.verbosity = settings.verbosity;
  if (settings.file.empty()) {
    d.owned.reset();
    d.fd = STDERR_FILENO;
  } else if (settings.file == "-") {
    d.owned.reset();
    d.fd = STDOUT_FILENO;
  } else {
    UniqueFd fd(::open(settings.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("cannot open log file {}", settings.file);
    d.fd = fd.get();
    d.owned = std::move(fd);
  }
  return {};
}

bool enabled(LogLevel level) {
  return static_cast<int>(level) <= destination().verbosity;
}

bool writes_to_file() { return destination().fd != STDERR_FILENO; }

double uptime_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - kStart).count();
}

void write(LogLevel level, std::string_view component, std::string_view text) {
  Destination& d = destination();
  std::string line = fmt::format("({:.6f}) {}: {}{}\n", uptime_seconds(), component, level_tag(level), text);
  std::lock_guard lock(d.mutex);
  write_all(d.fd, line);
  if (level == LogLevel::kError && d.fd != STDERR_FILENO) {
    write_all(STDERR_FILENO, component == "ferry" ? fmt::format("ferry: {}\n", text)
                                                  : fmt::format("ferry: {}: {}\n", component, text));
  }
}

}  // namespace ferry::log
