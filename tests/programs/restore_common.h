// Shared bits of the restore test programs: each sets up one kind of state,
// writes "ready" into STATUS_FILE, waits for SIGTERM, checks that the state
// survived, prints what differs on stderr and exits 0 (all intact) or 1.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace restore_test {

inline volatile sig_atomic_t g_terminate = 0;
inline int g_failures = 0;

inline void on_term(int) { g_terminate = 1; }

inline void install_term_handler() {
  struct sigaction sa{};
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
}

inline void report_ready(const char* status_file) {
  int fd = ::open(status_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (::write(fd, "ready\n", 6) < 0) {}
  ::close(fd);
}

// Waits for SIGTERM with the given signals blocked meanwhile.
inline void wait_for_term() {
  while (!g_terminate) ::pause();
}

__attribute__((format(printf, 2, 3))) inline void check(bool ok, const char* fmt, ...) {
  if (ok) return;
  ++g_failures;
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "FAIL: ");
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
}

inline int finish() {
  std::fprintf(stderr, g_failures == 0 ? "all intact\n" : "%d check(s) failed\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace restore_test
