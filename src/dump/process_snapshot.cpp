#include "dump/process_snapshot.h"

#include <cpuid.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <asm/ldt.h>
#include <cstring>

#include "base/log.h"
#include "image/vma_status.h"
#include "proc/proc_fds.h"
#include "proc/proc_file.h"
#include "proc/proc_status.h"
#include "proc/remote_syscall.h"
#include "proc/task_memory.h"

namespace ferry {
namespace {

const Logger kLog{"dump"};


// The kernel's struct sigaction as rt_sigaction reads it.
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

struct KernelItimerval {
  int64_t interval_sec, interval_usec, value_sec, value_usec;
};

struct KernelStack {
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

struct RseqConfiguration {  // PTRACE_GET_RSEQ_CONFIGURATION
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};
constexpr int kPtraceGetRseqConfiguration = 0x420f;

// State only the task itself can report, read through injected calls.
struct InjectedState {
  std::vector<KernelSigaction> sigactions;  // index signo - 1
  KernelItimerval itimers[3]{};
  KernelStack altstack{};
  uint64_t tid_address = 0;
  int32_t pdeath_signal = 0;
  int32_t child_subreaper = 0;
  uint64_t brk = 0;
  int64_t dumpable = 0;
  int64_t securebits = 0;
  int64_t thp_disabled = 0;
};

Result<InjectedState> read_injected_state(SeizedTask& task, pid_t pid) {
  InjectedState s;
  RemoteSyscall rs = FERRY_TRY(RemoteSyscall::start(task));
  uint64_t scratch = FERRY_TRY(rs.map_scratch(4096));
  s.sigactions.resize(64);
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    FERRY_TRY(rs.call_checked(SYS_rt_sigaction, sig, 0, scratch, 8));
    s.sigactions[sig - 1] = FERRY_TRY(read_task_object<KernelSigaction>(pid, scratch));
  }
  for (int which = 0; which < 3; ++which) {
    FERRY_TRY(rs.call_checked(SYS_getitimer, which, scratch));
    s.itimers[which] = FERRY_TRY(read_task_object<KernelItimerval>(pid, scratch));
  }
  FERRY_TRY(rs.call_checked(SYS_sigaltstack, 0, scratch));
  s.altstack = FERRY_TRY(read_task_object<KernelStack>(pid, scratch));
  FERRY_TRY(rs.call_checked(SYS_prctl, PR_GET_TID_ADDRESS, scratch));
  s.tid_address = FERRY_TRY(read_task_object<uint64_t>(pid, scratch));
  FERRY_TRY(rs.call_checked(SYS_prctl, PR_GET_PDEATHSIG, scratch));
  s.pdeath_signal = FERRY_TRY(read_task_object<int32_t>(pid, scratch));
  FERRY_TRY(rs.call_checked(SYS_prctl, PR_GET_CHILD_SUBREAPER, scratch));
  s.child_subreaper = FERRY_TRY(read_task_object<int32_t>(pid, scratch));
  s.brk = FERRY_TRY(rs.call_checked(SYS_brk, 0));
  s.dumpable = FERRY_TRY(rs.call(SYS_prctl, PR_GET_DUMPABLE));
  s.securebits = FERRY_TRY(rs.call(SYS_prctl, PR_GET_SECUREBITS));
  s.thp_disabled = FERRY_TRY(rs.call(SYS_prctl, PR_GET_THP_DISABLE));
  FERRY_TRY(rs.unmap(scratch, 4096));
  FERRY_TRY(rs.finish());
  return s;
}

images::ItimerEntry* fill_itimer(images::ItimerEntry* e, const KernelItimerval& v) {
  e->set_isec(static_cast<uint64_t>(v.interval_sec));
  e->set_iusec(static_cast<uint64_t>(v.interval_usec));
  e->set_vsec(static_cast<uint64_t>(v.value_sec));
  e->set_vusec(static_cast<uint64_t>(v.value_usec));
  return e;
}

void fill_gpregs(images::UserX86RegsEntry* r, const user_regs_struct& u) {
  r->set_r15(u.r15); r->set_r14(u.r14); r->set_r13(u.r13); r->set_r12(u.r12);
  r->set_bp(u.rbp); r->set_bx(u.rbx); r->set_r11(u.r11); r->set_r10(u.r10);
  r->set_r9(u.r9); r->set_r8(u.r8); r->set_ax(u.rax); r->set_cx(u.rcx);
  r->set_dx(u.rdx); r->set_si(u.rsi); r->set_di(u.rdi); r->set_orig_ax(u.orig_rax);
  r->set_ip(u.rip); r->set_cs(u.cs); r->set_flags(u.eflags); r->set_sp(u.rsp);
  r->set_ss(u.ss); r->set_fs_base(u.fs_base); r->set_gs_base(u.gs_base); r->set_ds(u.ds);
  r->set_es(u.es); r->set_fs(u.fs); r->set_gs(u.gs);
  r->set_mode(images::UserX86RegsEntry::NATIVE);
}

// Where XSAVE component `c` lies in the standard (non-compacted) layout.
bool xsave_component(unsigned c, uint32_t& offset, uint32_t& size) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(0xd, c, &eax, &ebx, &ecx, &edx) || eax == 0) return false;
  size = eax;
  offset = ebx;
  return true;
}

template <class T, class Add>
void copy_component(const XSaveArea& x, unsigned c, Add add) {
  uint32_t offset = 0, size = 0;
  if (!xsave_component(c, offset, size) || offset + size > x.bytes.size()) return;
  for (uint32_t i = 0; i + sizeof(T) <= size; i += sizeof(T)) {
    T v;
    std::memcpy(&v, x.bytes.data() + offset + i, sizeof(T));
    add(v);
  }
}

void fill_fpregs(images::UserX86FpregsEntry* f, const user_fpregs_struct& u, const XSaveArea* x) {
  f->set_cwd(u.cwd);
  f->set_swd(u.swd);
  f->set_twd(u.ftw);
  f->set_fop(u.fop);
  f->set_rip(u.rip);
  f->set_rdp(u.rdp);
  f->set_mxcsr(u.mxcsr);
  f->set_mxcsr_mask(u.mxcr_mask);
  for (uint32_t w : u.st_space) f->add_st_space(w);
  for (uint32_t w : u.xmm_space) f->add_xmm_space(w);
  for (uint32_t w : u.padding) f->add_padding(w);
  if (!x || x->bytes.size() < 576) return;
  images::UserX86XsaveEntry* xs = f->mutable_xsave();
  uint64_t bv = 0;
  std::memcpy(&bv, x->bytes.data() + 512, 8);
  xs->set_xstate_bv(bv);
  if (bv & (1u << 2)) copy_component<uint32_t>(*x, 2, [&](uint32_t v) { xs->add_ymmh_space(v); });
  if (bv & (1u << 5)) copy_component<uint64_t>(*x, 5, [&](uint64_t v) { xs->add_opmask_reg(v); });
  if (bv & (1u << 6)) copy_component<uint64_t>(*x, 6, [&](uint64_t v) { xs->add_zmm_upper(v); });
  if (bv & (1u << 7)) copy_component<uint64_t>(*x, 7, [&](uint64_t v) { xs->add_hi16_zmm(v); });
  if (bv & (1u << 9)) copy_component<uint32_t>(*x, 9, [&](uint32_t v) { xs->add_pkru(v); });
}

Status fill_tls(images::ThreadInfoX86* ti, pid_t tid) {
  for (int entry = 12; entry <= 14; ++entry) {
    user_desc d{};
    d.entry_number = static_cast<unsigned>(entry);
    if (::ptrace(PTRACE_GET_THREAD_AREA, tid, entry, &d) != 0) return fail_errno("PTRACE_GET_THREAD_AREA of {}", tid);
    images::UserDescT* t = ti->add_tls();
    t->set_entry_number(d.entry_number);
    t->set_base_addr(d.base_addr);
    t->set_limit(d.limit);
    t->set_seg_32bit(d.seg_32bit);
    t->set_contents_h(d.contents & 2);
    t->set_contents_l(d.contents & 1);
    t->set_read_exec_only(d.read_exec_only);
    t->set_limit_in_pages(d.limit_in_pages);
    t->set_seg_not_present(d.seg_not_present);
    t->set_usable(d.useable);
  }
  return {};
}

void add_siginfo(images::SignalQueueEntry* q, const std::vector<siginfo_t>& infos) {
  for (const siginfo_t& si : infos) q->add_signals()->set_siginfo(std::string(reinterpret_cast<const char*>(&si), sizeof si));
}

void add_cap_words(google::protobuf::RepeatedField<uint32_t>* out, uint64_t caps) {
  out->Add(static_cast<uint32_t>(caps));
  out->Add(static_cast<uint32_t>(caps >> 32));
}

Result<uint32_t> ns_inode(pid_t pid, const char* ns) {
  struct stat st {};
  std::string path = pid ? fmt::format("/proc/{}/ns/{}", pid, ns) : fmt::format("/proc/self/ns/{}", ns);
  if (::stat(path.c_str(), &st) != 0) return fail_errno("cannot stat {}", path);
  return static_cast<uint32_t>(st.st_ino);
}

// Namespace ids as CRIU numbers them; the process must share every
// namespace with ferry (dumping namespaces is not supported yet).
Status fill_ids(pid_t pid, images::TaskKobjIdsEntry& task, images::TaskKobjIdsEntry& root) {
  const char* names[] = {"pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time"};
  uint32_t ids[8];
  for (int i = 0; i < 8; ++i) {
    uint32_t theirs = FERRY_TRY(ns_inode(pid, names[i]));
    uint32_t ours = FERRY_TRY(ns_inode(0, names[i]));
    if (theirs != ours)
      return fail("process {} is in another {} namespace than ferry: dumping namespaces is not supported yet "
                  "(run ferry inside the process's namespaces)",
                  pid, names[i]);
    ids[i] = static_cast<uint32_t>(i + 1);
  }
  auto fill = [&](images::TaskKobjIdsEntry& e, uint32_t own) {
    e.set_vm_id(own);
    e.set_files_id(own);
    e.set_fs_id(own);
    e.set_sighand_id(own);
    e.set_pid_ns_id(ids[0]);
    e.set_net_ns_id(ids[1]);
    e.set_ipc_ns_id(ids[2]);
    e.set_uts_ns_id(ids[3]);
    e.set_mnt_ns_id(ids[4]);
    e.set_user_ns_id(ids[5]);
    e.set_cgroup_ns_id(ids[6]);
    e.set_time_ns_id(ids[7]);
  };
  fill(root, 1);
  fill(task, 2);  // files_id 2: fdinfo-2.img, as CRIU
  return {};
}

Result<uint32_t> vma_status(const MapsEntry& v, pid_t pid) {
  if (v.is_vsyscall()) return kVmaVsyscall | kVmaAnonPrivate;
  if (v.is_vdso()) return kVmaRegular | kVmaVdso | kVmaAnonPrivate;
  if (v.is_vvar()) return kVmaRegular | kVmaVvar | kVmaAnonPrivate;
  if (v.has(kVmHugetlb)) return fail("process {}: mapping {} uses huge pages: not supported yet", pid, v.describe());
  if (v.is_anonymous()) {
    if (v.shared) return fail("process {}: mapping {} is shared anonymous memory: not supported yet", pid, v.describe());
    uint32_t s = kVmaRegular | kVmaAnonPrivate;
    if (v.is_heap()) s |= kVmaHeap;
    return s;
  }
  std::string_view path = v.file_path();
  if (v.is_deleted() || path.starts_with("/dev/zero") || path.starts_with("/SYSV") || path.starts_with("/memfd:"))
    return fail("process {}: mapping {} is of a deleted file or shared memory: not supported yet", pid, v.describe());
  if (path.empty() || path.front() != '/') return fail("process {}: mapping {} is not supported yet", pid, v.describe());
  return kVmaRegular | (v.shared ? kVmaFileShared : kVmaFilePrivate);
}

Status fill_mm(ProcessSnapshot& s, pid_t pid, const ProcStat& stat, const InjectedState& inj) {
  images::MmEntry& mm = s.mm;
  mm.set_mm_start_code(stat.start_code);
  mm.set_mm_end_code(stat.end_code);
  mm.set_mm_start_data(stat.start_data);
  mm.set_mm_end_data(stat.end_data);
  mm.set_mm_start_stack(stat.start_stack);
  mm.set_mm_start_brk(stat.start_brk);
  mm.set_mm_brk(inj.brk);
  mm.set_mm_arg_start(stat.arg_start);
  mm.set_mm_arg_end(stat.arg_end);
  mm.set_mm_env_start(stat.env_start);
  mm.set_mm_env_end(stat.env_end);
  std::string exe = FERRY_TRY(read_proc_link(fmt::format("/proc/{}/exe", pid)));
  mm.set_exe_file_id(FERRY_TRY(s.files.add_path(exe, O_RDONLY, "executable")));
  for (const AuxvEntry& a : FERRY_TRY(read_auxv(pid))) {
    mm.add_mm_saved_auxv(a.type);
    mm.add_mm_saved_auxv(a.value);
  }
  mm.set_dumpable(static_cast<int32_t>(inj.dumpable));
  if (inj.thp_disabled > 0) mm.set_thp_disabled(true);
  for (const MapsEntry& v : s.vmas) {
    images::VmaEntry* e = mm.add_vmas();
    e->set_start(v.start);
    e->set_end(v.end);
    e->set_pgoff(v.pgoff);
    e->set_prot(static_cast<uint32_t>(v.prot));
    uint32_t flags = v.shared ? MAP_SHARED : MAP_PRIVATE;
    if (v.is_anonymous() || v.is_special()) flags |= MAP_ANONYMOUS;
    if (v.has(kVmGrowsDown)) flags |= MAP_GROWSDOWN;
    if (v.has(kVmNoReserve)) flags |= MAP_NORESERVE;  // e.g. huge reservations: restore must not need the memory
    e->set_flags(flags);
    e->set_status(FERRY_TRY(vma_status(v, pid)));
    e->set_fd(-1);
    uint64_t shmid = 0;
    if (v.is_file_backed() && !v.is_special()) {
      uint32_t open_flags = (v.shared && (v.prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
      shmid = FERRY_TRY(s.files.add_path(std::string(v.file_path()), open_flags, "mapping " + v.describe()));
      e->set_fdflags(open_flags);
    }
    e->set_shmid(shmid);
  }
  return {};
}

}  // namespace

Result<ProcessSnapshot> collect_process(FrozenProcess& frozen, const SnapshotSettings& settings) {
  pid_t pid = frozen.pid();
  ProcessSnapshot s(pid);
  if (frozen.threads().size() != 1)
    return fail("process {} has {} threads: multi-threaded processes are not supported yet", pid, frozen.threads().size());
  ProcStat stat = FERRY_TRY(read_proc_stat(pid));
  ProcStatus status = FERRY_TRY(read_proc_status(pid));
  std::string children = FERRY_TRY(read_proc_file(fmt::format("/proc/{}/task/{}/children", pid, pid)));
  if (children.find_first_not_of(" \n") != std::string::npos)
    return fail("process {} has child processes ({}): process trees are not supported yet", pid,
                children.substr(0, children.find_last_not_of(" \n") + 1));
  if (stat.session != pid && !settings.shell_job)
    return fail("process {} is not a session leader (session {}): use --shell-job (-j) as with CRIU", pid, stat.session);
  if (status.seccomp != 0) return fail("process {} uses seccomp: not supported yet", pid);

  SeizedTask& task = frozen.leader();
  InjectedState inj = FERRY_TRY_CTX(read_injected_state(task, pid), "reading the state of process {}", pid);
  s.vmas = FERRY_TRY(read_smaps(pid));

  // pstree, ids, inventory.
  s.pstree.set_pid(static_cast<uint32_t>(pid));
  s.pstree.set_ppid(0);
  s.pstree.set_pgid(static_cast<uint32_t>(stat.pgrp));
  s.pstree.set_sid(static_cast<uint32_t>(stat.session));
  s.pstree.add_threads(static_cast<uint32_t>(pid));
  FERRY_TRY(fill_ids(pid, s.ids, *s.inventory.mutable_root_ids()));
  s.inventory.set_img_version(2);
  s.inventory.set_fdinfo_per_id(true);
  s.inventory.set_ns_per_id(true);
  s.inventory.set_lsmtype(images::NO_LSM);

  // core: registers and FPU state.
  images::CoreEntry& core = s.core;
  core.set_mtype(images::CoreEntry::X86_64);
  images::ThreadInfoX86* ti = core.mutable_thread_info();
  ti->set_clear_tid_addr(inj.tid_address);
  fill_gpregs(ti->mutable_gpregs(), FERRY_TRY(task.regs()));
  user_fpregs_struct fp = FERRY_TRY(task.fpregs());
  Result<XSaveArea> xs = task.xstate();
  fill_fpregs(ti->mutable_fpregs(), fp, xs ? &*xs : nullptr);
  FERRY_TRY(fill_tls(ti, pid));

  // core: the process part.
  images::TaskCoreEntry* tc = core.mutable_tc();
  tc->set_task_state(1);
  tc->set_exit_code(0);
  std::string personality = FERRY_TRY(read_proc_file(fmt::format("/proc/{}/personality", pid)));
  tc->set_personality(static_cast<uint32_t>(FERRY_TRY(parse_u64(personality.substr(0, personality.find('\n')), 16))));
  tc->set_flags(stat.flags);
  uint64_t mask = FERRY_TRY(task.signal_mask());
  tc->set_blk_sigset(mask);
  tc->set_comm(stat.comm);
  images::TaskTimersEntry* timers = tc->mutable_timers();
  fill_itimer(timers->mutable_real(), inj.itimers[ITIMER_REAL]);
  fill_itimer(timers->mutable_virt(), inj.itimers[ITIMER_VIRTUAL]);
  fill_itimer(timers->mutable_prof(), inj.itimers[ITIMER_PROF]);
  images::TaskRlimitsEntry* rl = tc->mutable_rlimits();
  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    rlimit64 lim{};
    if (::prlimit64(pid, static_cast<__rlimit_resource>(r), nullptr, &lim) != 0) return fail_errno("prlimit of process {}", pid);
    images::RlimitEntry* e = rl->add_rlimits();
    e->set_cur(lim.rlim_cur);
    e->set_max(lim.rlim_max);
  }
  add_siginfo(tc->mutable_signals_s(), FERRY_TRY(task.pending_signals(SignalQueue::kShared)));
  std::string oom = FERRY_TRY(read_proc_file(fmt::format("/proc/{}/oom_score_adj", pid)));
  tc->set_oom_score_adj(std::stoi(oom));
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const KernelSigaction& a = inj.sigactions[sig - 1];
    images::SaEntry* e = tc->add_sigactions();
    e->set_sigaction(a.handler);
    e->set_flags(a.flags);
    e->set_restorer(a.restorer);
    e->set_mask(a.mask);
  }
  if (inj.child_subreaper) tc->set_child_subreaper(true);

  // core: the thread part.
  images::ThreadCoreEntry* th = core.mutable_thread_core();
  uint64_t robust_head = 0;
  size_t robust_len = 0;
  if (::syscall(SYS_get_robust_list, pid, &robust_head, &robust_len) != 0)
    return fail_errno("get_robust_list of process {}", pid);
  th->set_futex_rla(robust_head);
  th->set_futex_rla_len(static_cast<uint32_t>(robust_len));
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(pid));
  if (errno == 0) th->set_sched_nice(nice);
  int policy = ::sched_getscheduler(pid);
  if (policy >= 0) th->set_sched_policy(static_cast<uint32_t>(policy));
  sched_param sp{};
  if (::sched_getparam(pid, &sp) == 0) th->set_sched_prio(static_cast<uint32_t>(sp.sched_priority));
  th->set_blk_sigset(mask);
  images::ThreadSasEntry* sas = th->mutable_sas();
  sas->set_ss_sp(inj.altstack.sp);
  sas->set_ss_size(inj.altstack.size);
  sas->set_ss_flags(static_cast<uint32_t>(inj.altstack.flags));
  th->set_pdeath_sig(static_cast<uint32_t>(inj.pdeath_signal));
  add_siginfo(th->mutable_signals_p(), FERRY_TRY(task.pending_signals(SignalQueue::kThread)));
  images::CredsEntry* cr = th->mutable_creds();
  cr->set_uid(status.uid[0]); cr->set_euid(status.uid[1]); cr->set_suid(status.uid[2]); cr->set_fsuid(status.uid[3]);
  cr->set_gid(status.gid[0]); cr->set_egid(status.gid[1]); cr->set_sgid(status.gid[2]); cr->set_fsgid(status.gid[3]);
  add_cap_words(cr->mutable_cap_inh(), status.cap_inheritable);
  add_cap_words(cr->mutable_cap_prm(), status.cap_permitted);
  add_cap_words(cr->mutable_cap_eff(), status.cap_effective);
  add_cap_words(cr->mutable_cap_bnd(), status.cap_bounding);
  add_cap_words(cr->mutable_cap_amb(), status.cap_ambient);
  cr->set_secbits(static_cast<uint32_t>(inj.securebits));
  for (uint32_t g : status.groups) cr->add_groups(g);
  cr->set_no_new_privs(status.no_new_privs ? 1 : 0);
  th->set_seccomp_mode(images::SECCOMP_MODE_DISABLED);
  th->set_comm(stat.comm);
  RseqConfiguration rseq{};
  if (::ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), pid, sizeof rseq, &rseq) == sizeof rseq &&
      rseq.rseq_abi_pointer != 0) {
    images::RseqEntry* r = th->mutable_rseq_entry();
    r->set_rseq_abi_pointer(rseq.rseq_abi_pointer);
    r->set_rseq_abi_size(rseq.rseq_abi_size);
    r->set_signature(rseq.signature);
  }

  // fs, files, mm.
  std::string cwd = FERRY_TRY(read_proc_link(fmt::format("/proc/{}/cwd", pid)));
  std::string root = FERRY_TRY(read_proc_link(fmt::format("/proc/{}/root", pid)));
  s.fs.set_cwd_id(FERRY_TRY(s.files.add_path(cwd, O_RDONLY | O_DIRECTORY, "cwd")));
  s.fs.set_root_id(FERRY_TRY(s.files.add_path(root, O_RDONLY | O_DIRECTORY, "root")));
  s.fs.set_umask(status.umask);
  FERRY_TRY(s.files.add_open_fds(FERRY_TRY(list_open_fds(pid))));
  FERRY_TRY(fill_mm(s, pid, stat, inj));
  kLog.info("process {} ({}): {} VMAs, {} files, {} fds", pid, stat.comm, s.vmas.size(), s.files.files().size(),
            s.files.fdinfo().size());
  return s;
}

}  // namespace ferry
