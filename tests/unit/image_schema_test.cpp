// The image schema (proto/*.proto): every image a dump of a simple
// single-threaded process consists of is built as Ferry would write it,
// written through ImageFileWriter and decoded by Debian 12's `crit` (3.17),
// which uses CRIU's own schema. Field numbers, wire types and enum values
// therefore have to agree with CRIU's for the decoded values to match.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core.pb.h"
#include "fdinfo.pb.h"
#include "fs.pb.h"
#include "ids.pb.h"
#include "image/image_dir.h"
#include "image/image_file.h"
#include "image/image_magic.h"
#include "inventory.pb.h"
#include "mm.pb.h"
#include "pstree.pb.h"
#include "support/subprocess.h"

namespace ferry {
namespace {

using test::ProcessResult;
using test::TempDir;
using nlohmann::json;

constexpr uint32_t kPid = 4242;
constexpr uint32_t kFilesId = 2;
constexpr uint64_t kInfinity = UINT64_MAX;  // RLIM_INFINITY as CRIU stores it

// files.img ids of the snapshot below.
constexpr uint32_t kCwdFile = 1, kRootFile = 2, kExeFile = 3, kLogFile = 4, kNullFile = 5;

// VMA status bits (image-format.md §4.6).
constexpr uint32_t kVmaRegular = 1u << 0, kVmaHeap = 1u << 5, kVmaFilePrivate = 1u << 6, kVmaAnonPrivate = 1u << 9;

// ---------------------------------------------------------------------------
// The messages of one snapshot of `sleep` (pid 4242), with realistic values.

void set_ids(images::TaskKobjIdsEntry& ids, uint32_t own) {
  ids.set_vm_id(own);
  ids.set_files_id(own);
  ids.set_fs_id(own);
  ids.set_sighand_id(own);
  ids.set_pid_ns_id(1);
  ids.set_net_ns_id(2);
  ids.set_ipc_ns_id(3);
  ids.set_uts_ns_id(4);
  ids.set_mnt_ns_id(6);
  ids.set_user_ns_id(7);
  ids.set_cgroup_ns_id(8);
  ids.set_time_ns_id(5);
}

images::InventoryEntry make_inventory() {
  images::InventoryEntry inv;
  inv.set_img_version(2);
  inv.set_fdinfo_per_id(true);
  set_ids(*inv.mutable_root_ids(), 1);
  inv.set_ns_per_id(true);
  inv.set_lsmtype(images::NO_LSM);
  return inv;
}

images::PstreeEntry make_pstree() {
  images::PstreeEntry p;
  p.set_pid(kPid);
  p.set_ppid(0);
  p.set_pgid(kPid);
  p.set_sid(kPid);
  p.add_threads(kPid);
  return p;
}

images::TaskKobjIdsEntry make_ids() {
  images::TaskKobjIdsEntry ids;
  set_ids(ids, kFilesId);
  return ids;
}

void set_itimer_zero(images::ItimerEntry& t) {
  t.set_isec(0);
  t.set_iusec(0);
  t.set_vsec(0);
  t.set_vusec(0);
}

images::CoreEntry make_core() {
  images::CoreEntry core;
  core.set_mtype(images::CoreEntry::X86_64);

  images::ThreadInfoX86& ti = *core.mutable_thread_info();
  ti.set_clear_tid_addr(0x7f3a1c2d6a10);
  images::UserX86RegsEntry& r = *ti.mutable_gpregs();
  r.set_r15(0);
  r.set_r14(0);
  r.set_r13(0x7ffd4c1e2f48);
  r.set_r12(0);
  r.set_bp(0x7ffd4c1e2e10);
  r.set_bx(0xfffffffffffffe00);
  r.set_r11(0x246);
  r.set_r10(0);
  r.set_r9(0);
  r.set_r8(0);
  r.set_ax(0xfffffffffffffdfc);
  r.set_cx(0x7f3a1c1b2e9a);
  r.set_dx(0x7ffd4c1e2e00);
  r.set_si(0);
  r.set_di(0);
  r.set_orig_ax(230);  // clock_nanosleep
  r.set_ip(0x7f3a1c1b2e9a);
  r.set_cs(0x33);
  r.set_flags(0x246);
  r.set_sp(0x7ffd4c1e2dd8);
  r.set_ss(0x2b);
  r.set_fs_base(0x7f3a1c2d6740);
  r.set_gs_base(0);
  r.set_ds(0);
  r.set_es(0);
  r.set_fs(0);
  r.set_gs(0);
  r.set_mode(images::UserX86RegsEntry::NATIVE);

  images::UserX86FpregsEntry& fp = *ti.mutable_fpregs();
  fp.set_cwd(0x37f);
  fp.set_swd(0);
  fp.set_twd(0);
  fp.set_fop(0);
  fp.set_rip(0);
  fp.set_rdp(0);
  fp.set_mxcsr(0x1f80);
  fp.set_mxcsr_mask(0x2ffff);
  for (uint32_t i = 0; i < 32; ++i) fp.add_st_space(i);
  for (uint32_t i = 0; i < 64; ++i) fp.add_xmm_space(0x01010101u * (i % 4));
  images::UserX86XsaveEntry& xs = *fp.mutable_xsave();
  xs.set_xstate_bv(0x7);  // x87, SSE, AVX
  for (uint32_t i = 0; i < 64; ++i) xs.add_ymmh_space(i);
  for (uint32_t slot = 12; slot <= 14; ++slot) {
    images::UserDescT& d = *ti.add_tls();
    d.set_entry_number(slot);
    d.set_base_addr(0);
    d.set_limit(0);
    d.set_seg_32bit(false);
    d.set_contents_h(false);
    d.set_contents_l(false);
    d.set_read_exec_only(true);
    d.set_limit_in_pages(false);
    d.set_seg_not_present(true);
    d.set_usable(false);
  }

  images::TaskCoreEntry& tc = *core.mutable_tc();
  tc.set_task_state(1);
  tc.set_exit_code(0);
  tc.set_personality(0);
  tc.set_flags(0x400100);
  tc.set_blk_sigset(0);
  tc.set_comm("sleep");
  images::TaskTimersEntry& timers = *tc.mutable_timers();
  set_itimer_zero(*timers.mutable_real());
  set_itimer_zero(*timers.mutable_virt());
  set_itimer_zero(*timers.mutable_prof());
  timers.mutable_real()->set_vsec(30);  // an alarm 30 s ahead
  for (int i = 0; i < 16; ++i) {
    images::RlimitEntry& rl = *tc.mutable_rlimits()->add_rlimits();
    rl.set_cur(i == 7 ? 1024 : kInfinity);  // RLIMIT_NOFILE
    rl.set_max(i == 7 ? 524288 : kInfinity);
  }
  tc.set_loginuid(1000);
  tc.set_oom_score_adj(-100);
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == 9 || sig == 19) continue;  // SIGKILL, SIGSTOP
    images::SaEntry& sa = *tc.add_sigactions();
    bool handled = sig == 15;             // SIGTERM has a handler
    sa.set_sigaction(handled ? 0x55d0c0a01230 : 0);
    sa.set_flags(handled ? 0x04000000 : 0);  // SA_RESTORER
    sa.set_restorer(handled ? 0x7f3a1c0f6050 : 0);
    sa.set_mask(0);
    sa.set_compat_sigaction(false);
  }

  images::ThreadCoreEntry& th = *core.mutable_thread_core();
  th.set_futex_rla(0x7f3a1c2d6a20);
  th.set_futex_rla_len(24);
  th.set_sched_nice(-5);
  th.set_sched_policy(0);
  th.set_sched_prio(0);
  th.set_blk_sigset(0);
  images::ThreadSasEntry& sas = *th.mutable_sas();
  sas.set_ss_sp(0);
  sas.set_ss_size(0);
  sas.set_ss_flags(2);  // SS_DISABLE
  th.set_pdeath_sig(0);
  images::CredsEntry& cr = *th.mutable_creds();
  cr.set_uid(1000);
  cr.set_gid(1000);
  cr.set_euid(1000);
  cr.set_egid(1000);
  cr.set_suid(1000);
  cr.set_sgid(1000);
  cr.set_fsuid(1000);
  cr.set_fsgid(1000);
  for (int i = 0; i < 2; ++i) {
    cr.add_cap_inh(0);
    cr.add_cap_prm(0);
    cr.add_cap_eff(0);
  }
  cr.add_cap_bnd(0xffffffff);
  cr.add_cap_bnd(0x1ff);
  cr.set_secbits(0);
  cr.add_groups(1000);
  cr.add_groups(27);
  th.set_seccomp_mode(images::SECCOMP_MODE_DISABLED);
  th.set_comm("sleep");
  images::RseqEntry& rs = *th.mutable_rseq_entry();
  rs.set_rseq_abi_pointer(0x7f3a1c2d6de0);
  rs.set_rseq_abi_size(32);
  rs.set_signature(0x53053053);
  return core;
}

images::VmaEntry& add_vma(images::MmEntry& mm, uint64_t start, uint64_t end, uint32_t prot, uint32_t flags,
                          uint32_t status) {
  images::VmaEntry& v = *mm.add_vmas();
  v.set_start(start);
  v.set_end(end);
  v.set_pgoff(0);
  v.set_shmid(0);
  v.set_prot(prot);
  v.set_flags(flags);
  v.set_status(status);
  v.set_fd(-1);
  return v;
}

images::MmEntry make_mm() {
  images::MmEntry mm;
  mm.set_mm_start_code(0x55d0c0a00000);
  mm.set_mm_end_code(0x55d0c0a04000);
  mm.set_mm_start_data(0x55d0c0a08000);
  mm.set_mm_end_data(0x55d0c0a09000);
  mm.set_mm_start_stack(0x7ffd4c1e3000);
  mm.set_mm_start_brk(0x55d0c1a00000);
  mm.set_mm_brk(0x55d0c1a21000);
  mm.set_mm_arg_start(0x7ffd4c1e4f00);
  mm.set_mm_arg_end(0x7ffd4c1e4f0b);
  mm.set_mm_env_start(0x7ffd4c1e4f0b);
  mm.set_mm_env_end(0x7ffd4c1e4fe8);
  mm.set_exe_file_id(kExeFile);
  for (uint64_t w : {33ull, 0x7ffd4c1f8000ull, 16ull, 0x178bfbffull, 6ull, 4096ull, 0ull, 0ull}) mm.add_mm_saved_auxv(w);
  images::VmaEntry& text = add_vma(mm, 0x55d0c0a00000, 0x55d0c0a04000, 1 | 4, 0x2, kVmaRegular | kVmaFilePrivate);
  text.set_shmid(kExeFile);
  text.set_pgoff(0x2000);
  text.set_fdflags(0);  // O_RDONLY
  add_vma(mm, 0x55d0c1a00000, 0x55d0c1a21000, 1 | 2, 0x22, kVmaRegular | kVmaHeap | kVmaAnonPrivate);
  images::VmaEntry& stack =
      add_vma(mm, 0x7ffd4c1c4000, 0x7ffd4c1e5000, 1 | 2, 0x122, kVmaRegular | kVmaAnonPrivate);  // MAP_GROWSDOWN
  stack.set_madv(1u << 14);  // MADV_HUGEPAGE
  mm.set_dumpable(1);
  return mm;
}

images::FsEntry make_fs() {
  images::FsEntry fs;
  fs.set_cwd_id(kCwdFile);
  fs.set_root_id(kRootFile);
  fs.set_umask(022);
  return fs;
}

images::FdinfoEntry make_fd(uint32_t fd, uint32_t file, uint32_t flags) {
  images::FdinfoEntry e;
  e.set_id(file);
  e.set_flags(flags);
  e.set_type(images::REG);
  e.set_fd(fd);
  return e;
}

images::FileEntry make_reg(uint32_t id, const std::string& name, uint32_t flags, uint64_t pos, uint32_t mode) {
  images::FileEntry f;
  f.set_type(images::REG);
  f.set_id(id);
  images::RegFileEntry& r = *f.mutable_reg();
  r.set_id(id);
  r.set_flags(flags);
  r.set_pos(pos);
  images::FownEntry& o = *r.mutable_fown();
  o.set_uid(0);
  o.set_euid(0);
  o.set_signum(0);
  o.set_pid_type(0);
  o.set_pid(0);
  r.set_name(name);
  r.set_mnt_id(27);
  r.set_mode(mode);
  return f;
}

std::vector<images::FileEntry> make_files() {
  constexpr uint32_t kDir = 0040755, kReg = 0100644, kExe = 0100755, kChr = 0020666;
  constexpr uint32_t kODirectory = 0200000, kOWronly = 01, kOAppend = 02000, kOLargefile = 0100000;
  std::vector<images::FileEntry> files;
  files.push_back(make_reg(kCwdFile, "/home/user", kODirectory | kOLargefile, 0, kDir));
  files.push_back(make_reg(kRootFile, "/", kODirectory | kOLargefile, 0, kDir));
  images::FileEntry exe = make_reg(kExeFile, "/usr/bin/sleep", kOLargefile, 0, kExe);
  exe.mutable_reg()->set_size(35328);
  for (uint32_t w : {0x8a1c4e2fu, 0x0b6d93a1u, 0x5e7f3c20u, 0x9d41a6b8u, 0x2c3e5f71u}) exe.mutable_reg()->add_build_id(w);
  files.push_back(exe);
  images::FileEntry log = make_reg(kLogFile, "/tmp/sleep.log", kOWronly | kOAppend | kOLargefile, 123, kReg);
  log.mutable_reg()->set_size(123);
  files.push_back(log);
  files.push_back(make_reg(kNullFile, "/dev/null", kOLargefile, 0, kChr));
  return files;
}

// ---------------------------------------------------------------------------
// Writing and decoding.

void write_image(const ImageDir& dir, const std::string& name, uint32_t type,
                 const std::vector<const google::protobuf::MessageLite*>& entries) {
  Result<ImageFileWriter> w = ImageFileWriter::create(dir, name);
  ASSERT_TRUE(w) << w.error().message();
  Status s = type == magic::kInventory ? w->write_inventory_magic() : w->write_magic(type);
  ASSERT_TRUE(s) << s.error().message();
  for (const auto* e : entries) {
    s = w->write_entry(*e);
    ASSERT_TRUE(s) << name << ": " << s.error().message();
  }
  s = w->publish();
  ASSERT_TRUE(s) << s.error().message();
}

// The snapshot directory of `sleep`, as `criu dump` would leave it (without
// the memory images).
void write_snapshot(const std::string& path) {
  ImageDir dir = *ImageDir::open(path);
  images::InventoryEntry inv = make_inventory();
  write_image(dir, "inventory.img", magic::kInventory, {&inv});
  images::PstreeEntry ps = make_pstree();
  write_image(dir, "pstree.img", magic::kPstree, {&ps});
  images::TaskKobjIdsEntry ids = make_ids();
  write_image(dir, "ids-4242.img", magic::kIds, {&ids});
  images::CoreEntry core = make_core();
  write_image(dir, "core-4242.img", magic::kCore, {&core});
  images::MmEntry mm = make_mm();
  write_image(dir, "mm-4242.img", magic::kMm, {&mm});
  images::FsEntry fs = make_fs();
  write_image(dir, "fs-4242.img", magic::kFs, {&fs});
  images::FdinfoEntry fd0 = make_fd(0, kNullFile, 0), fd1 = make_fd(1, kLogFile, 0), fd2 = make_fd(2, kLogFile, 1);
  write_image(dir, "fdinfo-2.img", magic::kFdinfo, {&fd0, &fd1, &fd2});
  std::vector<images::FileEntry> files = make_files();
  std::vector<const google::protobuf::MessageLite*> file_ptrs;
  for (const auto& f : files) file_ptrs.push_back(&f);
  write_image(dir, "files.img", magic::kFiles, file_ptrs);
}

json crit_decode(const std::string& file) {
  ProcessResult r = test::run({"crit", "decode", "-i", file});
  EXPECT_EQ(r.exit_code, 0) << file << ": " << r.err;
  if (r.exit_code != 0) return json::object();
  return json::parse(r.out);
}

class ImageSchema : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(write_snapshot(tmp_.path()));
  }
  json decode(const std::string& name) {
    json j = crit_decode(tmp_.file(name));
    if (!j.contains("entries")) ADD_FAILURE() << name << " decoded to " << j.dump();
    return j;
  }
  std::string path(const std::string& name) const { return tmp_.file(name); }

  TempDir tmp_;
};

TEST_F(ImageSchema, InventoryHasOnlyItsOwnMagic) {
  std::string bytes = test::read_file(path("inventory.img"));
  ASSERT_GE(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x16\x31\x31\x58", 4));
  uint32_t size = 0;
  std::memcpy(&size, bytes.data() + 4, 4);
  EXPECT_EQ(bytes.size(), 8u + size);  // one framed entry straight after the magic

  json j = decode("inventory.img");
  EXPECT_EQ(j["magic"], "INVENTORY");
  ASSERT_EQ(j["entries"].size(), 1u);
  const json& e = j["entries"][0];
  EXPECT_EQ(e["img_version"], 2);
  EXPECT_EQ(e["fdinfo_per_id"], true);
  EXPECT_EQ(e["ns_per_id"], true);
  EXPECT_EQ(e["lsmtype"], "NO_LSM");
  EXPECT_EQ(e["root_ids"]["files_id"], 1);
  EXPECT_EQ(e["root_ids"]["mnt_ns_id"], 6);
  EXPECT_EQ(e["root_ids"]["time_ns_id"], 5);
}

TEST_F(ImageSchema, Pstree) {
  json j = decode("pstree.img");
  EXPECT_EQ(j["magic"], "PSTREE");
  ASSERT_EQ(j["entries"].size(), 1u);
  const json& e = j["entries"][0];
  EXPECT_EQ(e["pid"], kPid);
  EXPECT_EQ(e["ppid"], 0);  // required, so written although zero
  EXPECT_EQ(e["pgid"], kPid);
  EXPECT_EQ(e["sid"], kPid);
  EXPECT_EQ(e["threads"], json::array({kPid}));
}

// Encoding conventions CRIU's own writer follows (image-format.md §3): zero
// required fields are written, repeated scalars are not packed.
TEST(ImageSchemaEncoding, RequiredZerosWrittenRepeatedUnpacked) {
  images::PstreeEntry p;
  p.set_pid(1);
  p.set_ppid(0);
  p.set_pgid(1);
  p.set_sid(1);
  p.add_threads(1);
  p.add_threads(2);
  EXPECT_EQ(p.SerializeAsString(), std::string("\x08\x01\x10\x00\x18\x01\x20\x01\x28\x01\x28\x02", 12));
  images::ThreadCoreEntry t;
  t.set_futex_rla(0);
  t.set_futex_rla_len(24);
  t.set_sched_nice(-5);  // sint32: zig-zag
  EXPECT_EQ(t.SerializeAsString(), std::string("\x08\x00\x10\x18\x18\x09", 6));
  images::VmaEntry v;
  v.set_fd(-1);  // sint64: zig-zag
  EXPECT_EQ(v.SerializePartialAsString(), std::string("\x40\x01", 2));
}

TEST(ImageSchemaEncoding, WriterRefusesMissingRequiredFields) {
  TempDir tmp;
  ImageDir dir = *ImageDir::open(tmp.path());
  Result<ImageFileWriter> w = ImageFileWriter::create(dir, "core-1.img");
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write_magic(magic::kCore));
  images::CoreEntry core = make_core();
  core.mutable_thread_info()->mutable_tls(0)->clear_seg_not_present();
  Status s = w->write_entry(core);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("seg_not_present"), std::string::npos) << s.error().message();
  images::FileEntry f = make_files()[0];
  f.mutable_reg()->clear_fown();
  EXPECT_FALSE(w->write_entry(f));
}

TEST(ImageSchemaEncoding, DefaultsAreCriusOnes) {
  images::UserDescT d;
  EXPECT_TRUE(d.read_exec_only());
  EXPECT_TRUE(d.seg_not_present());
  EXPECT_FALSE(d.seg_32bit());
  EXPECT_EQ(images::UserX86RegsEntry().mode(), images::UserX86RegsEntry::NATIVE);
  EXPECT_EQ(images::RegFileEntry().mnt_id(), -1);
}

TEST_F(ImageSchema, Ids) {
  json j = decode("ids-4242.img");
  EXPECT_EQ(j["magic"], "IDS");
  ASSERT_EQ(j["entries"].size(), 1u);
  const json& e = j["entries"][0];
  EXPECT_EQ(e["vm_id"], 2);
  EXPECT_EQ(e["files_id"], kFilesId);
  EXPECT_EQ(e["sighand_id"], 2);
  EXPECT_EQ(e["pid_ns_id"], 1);
  EXPECT_EQ(e["mnt_ns_id"], 6);
  EXPECT_EQ(e["cgroup_ns_id"], 8);
  EXPECT_EQ(e["time_ns_id"], 5);
}

TEST_F(ImageSchema, Core) {
  json j = decode("core-4242.img");
  EXPECT_EQ(j["magic"], "CORE");
  ASSERT_EQ(j["entries"].size(), 1u);
  const json& e = j["entries"][0];
  EXPECT_EQ(e["mtype"], "X86_64");

  const json& ti = e["thread_info"];
  EXPECT_EQ(ti["clear_tid_addr"], 0x7f3a1c2d6a10u);
  EXPECT_EQ(ti["gpregs"]["ip"], 0x7f3a1c1b2e9au);
  EXPECT_EQ(ti["gpregs"]["sp"], 0x7ffd4c1e2dd8u);
  EXPECT_EQ(ti["gpregs"]["ax"], 0xfffffffffffffdfcu);
  EXPECT_EQ(ti["gpregs"]["orig_ax"], 230);
  EXPECT_EQ(ti["gpregs"]["cs"], 0x33);
  EXPECT_EQ(ti["gpregs"]["gs"], 0);
  EXPECT_EQ(ti["gpregs"]["mode"], "NATIVE");
  EXPECT_EQ(ti["fpregs"]["cwd"], 0x37f);
  EXPECT_EQ(ti["fpregs"]["mxcsr"], 0x1f80);
  EXPECT_EQ(ti["fpregs"]["mxcsr_mask"], 0x2ffff);
  ASSERT_EQ(ti["fpregs"]["st_space"].size(), 32u);
  EXPECT_EQ(ti["fpregs"]["st_space"][31], 31);
  ASSERT_EQ(ti["fpregs"]["xmm_space"].size(), 64u);
  EXPECT_EQ(ti["fpregs"]["xmm_space"][3], 0x03030303);
  EXPECT_EQ(ti["fpregs"]["xsave"]["xstate_bv"], 7);
  EXPECT_EQ(ti["fpregs"]["xsave"]["ymmh_space"].size(), 64u);
  ASSERT_EQ(ti["tls"].size(), 3u);
  EXPECT_EQ(ti["tls"][2]["entry_number"], 14);
  EXPECT_EQ(ti["tls"][0]["read_exec_only"], true);
  EXPECT_EQ(ti["tls"][0]["seg_not_present"], true);
  EXPECT_EQ(ti["tls"][0]["usable"], false);

  const json& tc = e["tc"];
  EXPECT_EQ(tc["task_state"], 1);
  EXPECT_EQ(tc["exit_code"], 0);
  EXPECT_EQ(tc["flags"], 0x400100);
  EXPECT_EQ(tc["comm"], "sleep");
  EXPECT_EQ(tc["loginuid"], 1000);
  EXPECT_EQ(tc["oom_score_adj"], -100);
  EXPECT_EQ(tc["timers"]["real"]["vsec"], 30);
  EXPECT_EQ(tc["timers"]["prof"]["iusec"], 0);
  ASSERT_EQ(tc["rlimits"]["rlimits"].size(), 16u);
  EXPECT_EQ(tc["rlimits"]["rlimits"][7]["cur"], 1024);
  EXPECT_EQ(tc["rlimits"]["rlimits"][7]["max"], 524288);
  EXPECT_EQ(tc["rlimits"]["rlimits"][0]["cur"], kInfinity);
  ASSERT_EQ(tc["sigactions"].size(), 62u);
  // Index 13 is signal 15: 1..8 at 0..7, 10..18 at 8..16.
  EXPECT_EQ(tc["sigactions"][13]["sigaction"], 0x55d0c0a01230u);
  EXPECT_EQ(tc["sigactions"][13]["flags"], 0x04000000);
  EXPECT_EQ(tc["sigactions"][13]["restorer"], 0x7f3a1c0f6050u);
  EXPECT_EQ(tc["sigactions"][0]["sigaction"], 0);

  const json& th = e["thread_core"];
  EXPECT_EQ(th["futex_rla"], 0x7f3a1c2d6a20u);
  EXPECT_EQ(th["futex_rla_len"], 24);
  EXPECT_EQ(th["sched_nice"], -5);
  EXPECT_EQ(th["sas"]["ss_flags"], 2);
  EXPECT_EQ(th["creds"]["uid"], 1000);
  EXPECT_EQ(th["creds"]["fsgid"], 1000);
  EXPECT_EQ(th["creds"]["cap_bnd"], json::array({0xffffffffu, 0x1ff}));
  EXPECT_EQ(th["creds"]["groups"], json::array({1000, 27}));
  EXPECT_EQ(th["seccomp_mode"], "disabled");  // crit prints CRIU's enum names
  EXPECT_EQ(th["comm"], "sleep");
  EXPECT_EQ(th["rseq_entry"]["rseq_abi_size"], 32);
  EXPECT_EQ(th["rseq_entry"]["signature"], 0x53053053);
}

TEST_F(ImageSchema, Mm) {
  json j = decode("mm-4242.img");
  EXPECT_EQ(j["magic"], "MM");
  ASSERT_EQ(j["entries"].size(), 1u);
  const json& e = j["entries"][0];
  EXPECT_EQ(e["mm_start_code"], 0x55d0c0a00000u);
  EXPECT_EQ(e["mm_brk"], 0x55d0c1a21000u);
  EXPECT_EQ(e["mm_env_end"], 0x7ffd4c1e4fe8u);
  EXPECT_EQ(e["exe_file_id"], kExeFile);
  EXPECT_EQ(e["mm_saved_auxv"].size(), 8u);
  EXPECT_EQ(e["mm_saved_auxv"][1], 0x7ffd4c1f8000u);
  EXPECT_EQ(e["dumpable"], 1);
  const json& v = e["vmas"];
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0]["shmid"], kExeFile);
  EXPECT_EQ(v[0]["pgoff"], 0x2000);
  EXPECT_EQ(v[0]["prot"], 5);
  EXPECT_EQ(v[0]["status"], kVmaRegular | kVmaFilePrivate);
  EXPECT_EQ(v[0]["fdflags"], 0);
  EXPECT_EQ(v[1]["start"], 0x55d0c1a00000u);
  EXPECT_EQ(v[1]["end"], 0x55d0c1a21000u);
  EXPECT_EQ(v[1]["flags"], 0x22);
  EXPECT_EQ(v[1]["status"], kVmaRegular | kVmaHeap | kVmaAnonPrivate);
  EXPECT_EQ(v[2]["flags"], 0x122);
  EXPECT_EQ(v[2]["madv"], 1u << 14);
  for (const json& vma : v) EXPECT_EQ(vma["fd"], -1) << vma.dump();
}

TEST_F(ImageSchema, Fs) {
  json j = decode("fs-4242.img");
  EXPECT_EQ(j["magic"], "FS");
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["cwd_id"], kCwdFile);
  EXPECT_EQ(j["entries"][0]["root_id"], kRootFile);
  EXPECT_EQ(j["entries"][0]["umask"], 022);
}

TEST_F(ImageSchema, FdinfoAndFiles) {
  json fdi = decode("fdinfo-2.img");
  EXPECT_EQ(fdi["magic"], "FDINFO");
  ASSERT_EQ(fdi["entries"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(fdi["entries"][i]["fd"], i);
    EXPECT_EQ(fdi["entries"][i]["type"], "REG");
  }
  EXPECT_EQ(fdi["entries"][0]["id"], kNullFile);
  EXPECT_EQ(fdi["entries"][1]["id"], kLogFile);
  EXPECT_EQ(fdi["entries"][2]["flags"], 1);  // FD_CLOEXEC

  json files = decode("files.img");
  EXPECT_EQ(files["magic"], "FILES");
  ASSERT_EQ(files["entries"].size(), 5u);
  const json& exe = files["entries"][2];
  EXPECT_EQ(exe["type"], "REG");
  EXPECT_EQ(exe["id"], kExeFile);
  EXPECT_EQ(exe["reg"]["id"], kExeFile);
  EXPECT_EQ(exe["reg"]["name"], "/usr/bin/sleep");
  EXPECT_EQ(exe["reg"]["size"], 35328);
  EXPECT_EQ(exe["reg"]["mode"], 0100755);
  EXPECT_EQ(exe["reg"]["mnt_id"], 27);
  EXPECT_EQ(exe["reg"]["build_id"].size(), 5u);
  EXPECT_EQ(exe["reg"]["build_id"][0], 0x8a1c4e2fu);
  EXPECT_EQ(exe["reg"]["fown"]["uid"], 0);
  EXPECT_EQ(exe["reg"]["fown"]["pid"], 0);
  const json& log = files["entries"][3];
  EXPECT_EQ(log["reg"]["name"], "/tmp/sleep.log");
  EXPECT_EQ(log["reg"]["pos"], 123);
  EXPECT_EQ(log["reg"]["flags"], 01 | 02000 | 0100000);
}

// crit's explorers read the directory by file names and follow the ids
// between images (pstree -> core, ids -> fdinfo -> files, fs, mm -> files).
TEST_F(ImageSchema, CritExplorersFollowTheIds) {
  ProcessResult ps = test::run({"crit", "x", tmp_.path(), "ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_NE(ps.out.find("   4242   4242   4242   sleep"), std::string::npos) << ps.out;

  ProcessResult fds = test::run({"crit", "x", tmp_.path(), "fds"});
  ASSERT_EQ(fds.exit_code, 0) << fds.err;
  EXPECT_NE(fds.out.find("0: /dev/null"), std::string::npos) << fds.out;
  EXPECT_NE(fds.out.find("2: /tmp/sleep.log"), std::string::npos) << fds.out;
  EXPECT_NE(fds.out.find("cwd: /home/user"), std::string::npos) << fds.out;
  EXPECT_NE(fds.out.find("root: /"), std::string::npos) << fds.out;

  ProcessResult mems = test::run({"crit", "x", tmp_.path(), "mems"});
  ASSERT_EQ(mems.exit_code, 0) << mems.err;
  EXPECT_NE(mems.out.find("/usr/bin/sleep"), std::string::npos) << mems.out;
  EXPECT_NE(mems.out.find("55d0c0a00000-55d0c0a04000"), std::string::npos) << mems.out;
}

// What Ferry writes it reads back with its own reader, unchanged.
TEST_F(ImageSchema, ReadsBackWhatItWrote) {
  ImageDir dir = *ImageDir::open(tmp_.path());
  Result<ImageFileReader> r = ImageFileReader::open(dir, "core-4242.img", magic::kCore, 1 << 20);
  ASSERT_TRUE(r) << r.error().message();
  images::CoreEntry core;
  Result<bool> got = r->next_entry(core);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_TRUE(*got);
  EXPECT_EQ(core.SerializeAsString(), make_core().SerializeAsString());
  got = r->next_entry(core);
  ASSERT_TRUE(got);
  EXPECT_FALSE(*got);

  r = ImageFileReader::open(dir, "files.img", magic::kFiles, 1 << 20);
  ASSERT_TRUE(r) << r.error().message();
  images::FileEntry f;
  std::vector<std::string> names;
  while (true) {
    got = r->next_entry(f);
    ASSERT_TRUE(got) << got.error().message();
    if (!*got) break;
    names.push_back(f.reg().name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"/home/user", "/", "/usr/bin/sleep", "/tmp/sleep.log", "/dev/null"}));
}

}  // namespace
}  // namespace ferry
