// Memory of every kind survives a restore: private anonymous (mmap, heap,
// stack), private file mappings with changed (copy-on-write) pages, a
// MAP_SHARED file mapping, a PROT_NONE guard between two regions, brk and
// the vdso.
//
//   restore_memory STATUS_FILE   (in a writable working directory)
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "restore_common.h"

using namespace restore_test;

namespace {

constexpr size_t kPage = 4096;

uint64_t word(uint64_t seed, uint64_t i) { return (seed + 1) * 0x9e3779b97f4a7c15ull ^ (i * 0xbf58476d1ce4e5b9ull); }

void fill(void* p, size_t bytes, uint64_t seed) {
  auto* w = static_cast<uint64_t*>(p);
  for (size_t i = 0; i < bytes / 8; ++i) w[i] = word(seed, i);
}
bool intact(const void* p, size_t bytes, uint64_t seed) {
  auto* w = static_cast<const uint64_t*>(p);
  for (size_t i = 0; i < bytes / 8; ++i)
    if (w[i] != word(seed, i)) return false;
  return true;
}

std::string maps_line_of(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(maps, line)) {
    uintptr_t s = 0, e = 0;
    char dash;
    std::istringstream in(line);
    in >> std::hex >> s >> dash >> e;
    if (a >= s && a < e) return line;
  }
  return "";
}

int make_file(const char* name, size_t bytes, uint64_t seed) {
  int fd = ::open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
  void* buf = std::malloc(bytes);
  fill(buf, bytes, seed);
  if (::write(fd, buf, bytes) != static_cast<ssize_t>(bytes)) std::abort();
  std::free(buf);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  install_term_handler();

  // Private anonymous, with a zero page in the middle and an untouched tail.
  constexpr size_t kAnon = 64 * kPage;
  auto* anon = static_cast<char*>(::mmap(nullptr, kAnon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  fill(anon, 32 * kPage, 1);
  std::memset(anon + 10 * kPage, 0, kPage);

  // Heap (brk) and malloc'ed memory.
  auto* heap = static_cast<char*>(std::malloc(200 * 1024));
  fill(heap, 200 * 1024, 2);

  // A stack array.
  alignas(8) char stack[8 * kPage];
  fill(stack, sizeof stack, 3);

  // Private file mapping: pages 1 and 3 changed, 0 and 2 as in the file.
  int pfd = make_file("private.bin", 4 * kPage, 4);
  auto* priv = static_cast<char*>(::mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0));
  ::close(pfd);
  fill(priv + kPage, kPage, 5);
  fill(priv + 3 * kPage, kPage, 6);

  // Shared file mapping, changed through the mapping.
  int sfd = make_file("shared.bin", 2 * kPage, 7);
  auto* shared = static_cast<char*>(::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0));
  ::close(sfd);
  fill(shared, kPage, 8);

  // Read-write, PROT_NONE guard, read-only.
  auto* region = static_cast<char*>(::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  fill(region, kPage, 9);
  fill(region + 2 * kPage, kPage, 10);
  ::mprotect(region + kPage, kPage, PROT_NONE);
  ::mprotect(region + 2 * kPage, kPage, PROT_READ);

  unsigned long vdso = ::getauxval(AT_SYSINFO_EHDR);
  std::string guard_before = maps_line_of(region + kPage);
  std::string ro_before = maps_line_of(region + 2 * kPage);

  void* brk_before = ::sbrk(0);
  report_ready(argv[1]);
  wait_for_term();

  check(intact(anon, 10 * kPage, 1), "anonymous pages 0-9");
  check(std::all_of(anon + 10 * kPage, anon + 11 * kPage, [](char c) { return c == 0; }), "anonymous zero page 10");
  {
    auto* w = reinterpret_cast<uint64_t*>(anon + 11 * kPage);
    bool ok = true;
    for (size_t i = 0; i < 21 * kPage / 8; ++i) ok &= w[i] == word(1, i + 11 * kPage / 8);
    check(ok, "anonymous pages 11-31");
  }
  check(std::all_of(anon + 32 * kPage, anon + kAnon, [](char c) { return c == 0; }), "untouched anonymous pages");
  check(intact(heap, 200 * 1024, 2), "malloc'ed memory");
  check(::sbrk(0) == brk_before, "brk %p, was %p", ::sbrk(0), brk_before);
  check(intact(stack, sizeof stack, 3), "stack array");
  {
    // The file's pages, as a fresh read of private.bin gives them.
    char* file = static_cast<char*>(std::malloc(4 * kPage));
    fill(file, 4 * kPage, 4);
    check(std::memcmp(priv, file, kPage) == 0, "private file page 0 (unchanged)");
    check(intact(priv + kPage, kPage, 5), "private file page 1 (changed)");
    check(std::memcmp(priv + 2 * kPage, file + 2 * kPage, kPage) == 0, "private file page 2 (unchanged)");
    check(intact(priv + 3 * kPage, kPage, 6), "private file page 3 (changed)");
    std::free(file);
  }
  check(intact(shared, kPage, 8), "shared file mapping page 0");
  {
    // Still shared with the file: a write shows in it.
    shared[kPage] = 0x5a;
    int fd = ::open("shared.bin", O_RDONLY);
    char c = 0;
    check(::pread(fd, &c, 1, kPage) == 1 && c == 0x5a, "shared mapping no longer writes through to the file");
    ::close(fd);
  }
  check(intact(region, kPage, 9), "read-write region");
  check(intact(region + 2 * kPage, kPage, 10), "read-only region");
  check(maps_line_of(region + kPage) == guard_before, "guard: '%s' was '%s'", maps_line_of(region + kPage).c_str(),
        guard_before.c_str());
  check(maps_line_of(region + 2 * kPage) == ro_before, "read-only: '%s' was '%s'", maps_line_of(region + 2 * kPage).c_str(),
        ro_before.c_str());
  check(::getauxval(AT_SYSINFO_EHDR) == vdso, "AT_SYSINFO_EHDR moved");
  check(maps_line_of(reinterpret_cast<void*>(vdso)).find("[vdso]") != std::string::npos, "no vdso at %#lx", vdso);
  timespec ts{};
  check(::clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && ts.tv_sec > 0, "clock_gettime through the vdso");
  // The heap can still grow (brk works where it was).
  check(::sbrk(1 << 20) == brk_before, "sbrk from the restored brk");
  return finish();
}
