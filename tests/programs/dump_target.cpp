// A process to dump in the tests: it fills MIB mebibytes of anonymous memory
// with a known pattern (every 8th page left zero), reports itself in
// STATUS_FILE as "ready PID ADDRESS PAGES", and waits. On SIGTERM it checks
// the pattern and exits 0 if every page is intact, 1 otherwise (and says
// which page in STATUS_FILE). With "pipe" it also holds a pipe open: state
// Ferry cannot dump yet. With "dense" no page is left zero (benchmarks).
//
//   dump_target STATUS_FILE MIB [pipe|dense]
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile sig_atomic_t g_terminate = 0;
bool g_dense = false;

bool is_zero_page(uint64_t page) { return !g_dense && page % 8 == 7; }

uint64_t word_of(uint64_t page, uint64_t i) { return (page + 1) * 0x9e3779b97f4a7c15ull ^ (i * 0xbf58476d1ce4e5b9ull); }

void fill(uint64_t* base, uint64_t pages) {
  for (uint64_t p = 0; p < pages; ++p) {
    if (is_zero_page(p)) continue;
    for (uint64_t i = 0; i < 512; ++i) base[p * 512 + i] = word_of(p, i);
  }
}

long first_bad_page(const uint64_t* base, uint64_t pages) {
  for (uint64_t p = 0; p < pages; ++p)
    for (uint64_t i = 0; i < 512; ++i)
      if (base[p * 512 + i] != (is_zero_page(p) ? 0 : word_of(p, i))) return static_cast<long>(p);
  return -1;
}

void write_status(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (::write(fd, text.data(), text.size()) < 0) {}
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* status = argv[1];
  uint64_t pages = std::strtoull(argv[2], nullptr, 10) * 256;
  bool hold_pipe = argc > 3 && std::strcmp(argv[3], "pipe") == 0;
  g_dense = argc > 3 && std::strcmp(argv[3], "dense") == 0;
  ::setsid();
  int devnull = ::open("/dev/null", O_RDWR);
  ::dup2(devnull, 0);
  ::dup2(devnull, 1);
  ::dup2(devnull, 2);
  for (int fd = 3; fd < 1024; ++fd)
    if (fd != devnull) ::close(fd);
  ::close(devnull);
  int p[2] = {-1, -1};
  if (hold_pipe && ::pipe(p) != 0) return 3;

  struct sigaction sa {};
  sa.sa_handler = [](int) { g_terminate = 1; };
  ::sigaction(SIGTERM, &sa, nullptr);
  void* mem = ::mmap(nullptr, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 4;
  auto* base = static_cast<uint64_t*>(mem);
  fill(base, pages);
  char line[128];
  std::snprintf(line, sizeof line, "ready %d %p %llu\n", ::getpid(), mem, static_cast<unsigned long long>(pages));
  write_status(status, line);
  while (!g_terminate) ::pause();
  long bad = first_bad_page(base, pages);
  std::snprintf(line, sizeof line, bad < 0 ? "intact\n" : "page %ld differs\n", bad);
  write_status(status, line);
  return bad < 0 ? 0 : 1;
}
