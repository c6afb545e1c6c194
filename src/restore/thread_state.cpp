#include "restore/thread_state.h"

#include <cpuid.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cstring>

#include <fmt/format.h>

#include "base/log.h"

namespace ferry {
namespace {

const Logger kLog{"restore"};

constexpr int64_t kErestartSys = -512;
constexpr int64_t kErestartNoIntr = -513;
constexpr int64_t kErestartNoHand = -514;
constexpr int64_t kErestartRestartBlock = -516;
constexpr uint64_t kSyscallInsnLength = 2;
constexpr size_t kXsaveHeaderOffset = 512;
constexpr size_t kLegacyFieldsSize = 416;  // FXSAVE up to its reserved bytes (464.. holds the kernel's sw bytes)

// Where XSAVE component `i` sits in the standard (uncompacted) format.
struct Component {
  uint32_t offset = 0;
  uint32_t size = 0;
};
Component xsave_component(unsigned i) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx)) return {};
  return {ebx, eax};
}

uint64_t xcr0() {
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

template <class Field>
Status put_component(XSaveArea& area, unsigned index, const Field& words, const char* name, uint64_t& bv) {
  if (words.empty()) return {};
  using Word = typename Field::value_type;
  size_t bytes = static_cast<size_t>(words.size()) * sizeof(Word);
  Component c = xsave_component(index);
  if (!(xcr0() & (uint64_t{1} << index)) || c.size == 0)
    return fail("the dumped FPU state has {} registers, which this CPU does not have", name);
  if (bytes > c.size || c.offset + c.size > area.bytes.size())
    return fail("the dumped {} state has {} bytes; this CPU's has {}", name, bytes, c.size);
  std::memcpy(area.bytes.data() + c.offset, words.data(), bytes);
  bv |= uint64_t{1} << index;
  return {};
}

user_fpregs_struct fxsave_from_image(const images::UserX86FpregsEntry& fp) {
  user_fpregs_struct f{};
  f.cwd = static_cast<unsigned short>(fp.cwd());
  f.swd = static_cast<unsigned short>(fp.swd());
  f.ftw = static_cast<unsigned short>(fp.twd());
  f.fop = static_cast<unsigned short>(fp.fop());
  f.rip = fp.rip();
  f.rdp = fp.rdp();
  f.mxcsr = fp.mxcsr();
  f.mxcr_mask = fp.mxcsr_mask();
  for (int i = 0; i < 32; ++i) f.st_space[i] = fp.st_space(i);
  for (int i = 0; i < 64; ++i) f.xmm_space[i] = fp.xmm_space(i);
  return f;
}

Status queue_signals(Trampoline& t, const images::SignalQueueEntry& queue, bool shared) {
  for (const images::SiginfoEntry& s : queue.signals()) {
    siginfo_t info{};
    std::memcpy(&info, s.siginfo().data(), sizeof info);
    t.clear_scratch();
    uint64_t remote = FERRY_TRY(t.put_object(info));
    std::string what = fmt::format("queue pending signal {} (si_code {})", info.si_signo, info.si_code);
    if (shared) FERRY_TRY(t.call_checked(what, SYS_rt_sigqueueinfo, t.pid(), info.si_signo, remote));
    else FERRY_TRY(t.call_checked(what, SYS_rt_tgsigqueueinfo, t.pid(), t.pid(), info.si_signo, remote));
  }
  return {};
}

}  // namespace

user_regs_struct registers_from_image(const images::UserX86RegsEntry& gp) {
  user_regs_struct r{};
  r.r15 = gp.r15();
  r.r14 = gp.r14();
  r.r13 = gp.r13();
  r.r12 = gp.r12();
  r.rbp = gp.bp();
  r.rbx = gp.bx();
  r.r11 = gp.r11();
  r.r10 = gp.r10();
  r.r9 = gp.r9();
  r.r8 = gp.r8();
  r.rax = gp.ax();
  r.rcx = gp.cx();
  r.rdx = gp.dx();
  r.rsi = gp.si();
  r.rdi = gp.di();
  r.orig_rax = gp.orig_ax();
  r.rip = gp.ip();
  r.cs = gp.cs();
  r.eflags = gp.flags();
  r.rsp = gp.sp();
  r.ss = gp.ss();
  r.fs_base = gp.fs_base();
  r.gs_base = gp.gs_base();
  r.ds = gp.ds();
  r.es = gp.es();
  r.fs = gp.fs();
  r.gs = gp.gs();
  if (static_cast<int64_t>(r.orig_rax) >= 0) {
    switch (static_cast<int64_t>(r.rax)) {
      case kErestartSys:
      case kErestartNoIntr:
      case kErestartNoHand:
      case kErestartRestartBlock:
        r.rax = r.orig_rax;
        r.rip -= kSyscallInsnLength;
        break;
      default:
        break;
    }
  }
  r.orig_rax = ~0ull;
  return r;
}

Result<XSaveArea> xsave_from_image(const images::UserX86FpregsEntry& fp, XSaveArea area) {
  if (area.bytes.size() < kXsaveHeaderOffset + XSaveArea::kHeaderSize)
    return fail("the kernel's XSAVE area has only {} bytes", area.bytes.size());
  user_fpregs_struct legacy = fxsave_from_image(fp);
  std::memcpy(area.bytes.data(), &legacy, kLegacyFieldsSize);
  uint64_t bv = 0x3;  // x87 and SSE: always given
  if (fp.has_xsave()) {
    const images::UserX86XsaveEntry& xs = fp.xsave();
    FERRY_TRY(put_component(area, 2, xs.ymmh_space(), "AVX", bv));
    FERRY_TRY(put_component(area, 5, xs.opmask_reg(), "AVX-512 opmask", bv));
    FERRY_TRY(put_component(area, 6, xs.zmm_upper(), "AVX-512 ZMM_Hi256", bv));
    FERRY_TRY(put_component(area, 7, xs.hi16_zmm(), "AVX-512 Hi16_ZMM", bv));
    FERRY_TRY(put_component(area, 9, xs.pkru(), "PKRU", bv));
    // Components the dump says are in their initial state stay so.
    bv &= xs.xstate_bv() | 0x3;
  }
  std::memcpy(area.bytes.data() + kXsaveHeaderOffset, &bv, sizeof bv);
  return area;
}

Status restore_thread_calls(Trampoline& t, const images::CoreEntry& core) {
  const images::ThreadCoreEntry& th = core.thread_core();
  if (th.futex_rla_len() != 0)
    FERRY_TRY(t.call_checked("set_robust_list", SYS_set_robust_list, th.futex_rla(), th.futex_rla_len()));
  FERRY_TRY(t.call_checked("set_tid_address", SYS_set_tid_address, core.thread_info().clear_tid_addr()));
  if (th.has_sas()) {
    stack_t ss{};
    ss.ss_sp = reinterpret_cast<void*>(th.sas().ss_sp());
    ss.ss_size = th.sas().ss_size();
    ss.ss_flags = static_cast<int>(th.sas().ss_flags()) & ~SS_ONSTACK;
    t.clear_scratch();
    uint64_t remote = FERRY_TRY(t.put_object(ss));
    FERRY_TRY(t.call_checked("sigaltstack", SYS_sigaltstack, remote, 0));
  }
  if (th.has_rseq_entry() && th.rseq_entry().rseq_abi_pointer() != 0) {
    const images::RseqEntry& rs = th.rseq_entry();
    FERRY_TRY(t.call_checked("register rseq", SYS_rseq, rs.rseq_abi_pointer(), rs.rseq_abi_size(), 0, rs.signature()));
  }
  if (th.has_pdeath_sig() && th.pdeath_sig() != 0)
    kLog.warn("process {}: its parent-death signal {} is not restored (its parent is Ferry now)", t.pid(), th.pdeath_sig());
  // Queued last: they stay pending (everything is blocked) until the
  // thread runs under its own mask.
  if (core.tc().has_signals_s()) FERRY_TRY(queue_signals(t, core.tc().signals_s(), true));
  if (th.has_signals_p()) FERRY_TRY(queue_signals(t, th.signals_p(), false));
  return {};
}

Status restore_registers(SeizedTask& task, const images::CoreEntry& core) {
  const images::ThreadInfoX86& ti = core.thread_info();
  FERRY_TRY(task.set_regs(registers_from_image(ti.gpregs())));
  if (ti.fpregs().has_xsave()) {
    XSaveArea current = FERRY_TRY(task.xstate());
    XSaveArea area = FERRY_TRY_CTX(xsave_from_image(ti.fpregs(), std::move(current)), "FPU state of process {}", task.tid());
    FERRY_TRY(task.set_xstate(area));
  } else {
    FERRY_TRY(task.set_fpregs(fxsave_from_image(ti.fpregs())));
  }
  const images::ThreadCoreEntry& th = core.thread_core();
  uint64_t mask = th.has_blk_sigset() ? th.blk_sigset() : core.tc().blk_sigset();
  FERRY_TRY(task.set_signal_mask(mask));
  return {};
}

}  // namespace ferry
