// CPU state survives a restore.
//
//   restore_cpu STATUS_FILE avx    all 16 YMM registers hold known values in
//                                  a spin loop (no system call) across the
//                                  dump and restore; MXCSR, x87 control word,
//                                  fs base (TLS) and a callee-saved register too
//   restore_cpu STATUS_FILE sleep  dumped inside clock_nanosleep: the call is
//                                  carried on after restore and ended by SIGTERM
#include <immintrin.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "restore_common.h"

using namespace restore_test;

namespace {

thread_local uint64_t t_value = 0x1122334455667788ull;

int run_avx(const char* status) {
  alignas(32) uint64_t in[16][4];
  alignas(32) uint64_t out[16][4] = {};
  for (int r = 0; r < 16; ++r)
    for (int i = 0; i < 4; ++i) in[r][i] = 0x0101010101010101ull * static_cast<uint64_t>(r + 1) + static_cast<uint64_t>(i);
  _mm_setcsr((_mm_getcsr() & ~0x6000u) | 0x6000u);  // round toward zero
  uint16_t fcw = 0x027f;                             // x87: 53-bit precision
  asm volatile("fldcw %0" ::"m"(fcw));
  uint64_t* tls_address = &t_value;
  report_ready(status);
  uint64_t r15_after = 0;
  asm volatile(
      "vmovdqa 0(%[in]), %%ymm0\n\t"
      "vmovdqa 32(%[in]), %%ymm1\n\t"
      "vmovdqa 64(%[in]), %%ymm2\n\t"
      "vmovdqa 96(%[in]), %%ymm3\n\t"
      "vmovdqa 128(%[in]), %%ymm4\n\t"
      "vmovdqa 160(%[in]), %%ymm5\n\t"
      "vmovdqa 192(%[in]), %%ymm6\n\t"
      "vmovdqa 224(%[in]), %%ymm7\n\t"
      "vmovdqa 256(%[in]), %%ymm8\n\t"
      "vmovdqa 288(%[in]), %%ymm9\n\t"
      "vmovdqa 320(%[in]), %%ymm10\n\t"
      "vmovdqa 352(%[in]), %%ymm11\n\t"
      "vmovdqa 384(%[in]), %%ymm12\n\t"
      "vmovdqa 416(%[in]), %%ymm13\n\t"
      "vmovdqa 448(%[in]), %%ymm14\n\t"
      "vmovdqa 480(%[in]), %%ymm15\n\t"
      "movabsq $0x0badc0ffee15dead, %%r15\n\t"
      "1: pause\n\t"
      "cmpl $0, (%[flag])\n\t"
      "je 1b\n\t"
      "movq %%r15, %[r15]\n\t"
      "vmovdqa %%ymm0, 0(%[out])\n\t"
      "vmovdqa %%ymm1, 32(%[out])\n\t"
      "vmovdqa %%ymm2, 64(%[out])\n\t"
      "vmovdqa %%ymm3, 96(%[out])\n\t"
      "vmovdqa %%ymm4, 128(%[out])\n\t"
      "vmovdqa %%ymm5, 160(%[out])\n\t"
      "vmovdqa %%ymm6, 192(%[out])\n\t"
      "vmovdqa %%ymm7, 224(%[out])\n\t"
      "vmovdqa %%ymm8, 256(%[out])\n\t"
      "vmovdqa %%ymm9, 288(%[out])\n\t"
      "vmovdqa %%ymm10, 320(%[out])\n\t"
      "vmovdqa %%ymm11, 352(%[out])\n\t"
      "vmovdqa %%ymm12, 384(%[out])\n\t"
      "vmovdqa %%ymm13, 416(%[out])\n\t"
      "vmovdqa %%ymm14, 448(%[out])\n\t"
      "vmovdqa %%ymm15, 480(%[out])\n\t"
      "vzeroupper\n\t"
      : [r15] "=m"(r15_after)
      : [in] "r"(in), [out] "r"(out), [flag] "r"(&g_terminate)
      : "memory", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  for (int r = 0; r < 16; ++r)
    for (int i = 0; i < 4; ++i)
      check(out[r][i] == in[r][i], "ymm%d word %d: %#llx, expected %#llx", r, i, static_cast<unsigned long long>(out[r][i]),
            static_cast<unsigned long long>(in[r][i]));
  check(r15_after == 0x0badc0ffee15deadull, "r15 %#llx", static_cast<unsigned long long>(r15_after));
  check((_mm_getcsr() & 0x6000u) == 0x6000u, "MXCSR rounding mode lost (%#x)", _mm_getcsr());
  uint16_t fcw_after = 0;
  asm volatile("fnstcw %0" : "=m"(fcw_after));
  check(fcw_after == fcw, "x87 control word %#x, expected %#x", fcw_after, fcw);
  check(&t_value == tls_address && t_value == 0x1122334455667788ull, "TLS (fs base) moved or changed");
  return finish();
}

int run_sleep(const char* status) {
  report_ready(status);
  timespec start{}, end{};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  timespec hour{3600, 0};
  int r = ::clock_nanosleep(CLOCK_MONOTONIC, 0, &hour, nullptr);
  ::clock_gettime(CLOCK_MONOTONIC, &end);
  check(r == EINTR, "clock_nanosleep returned %d, expected EINTR (ended by SIGTERM)", r);
  check(g_terminate == 1, "woke up without SIGTERM");
  check(end.tv_sec - start.tv_sec < 3600, "slept the whole hour");
  return finish();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  install_term_handler();
  std::string mode = argv[2];
  if (mode == "avx") return run_avx(argv[1]);
  if (mode == "sleep") return run_sleep(argv[1]);
  return 2;
}
