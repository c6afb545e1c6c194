// /proc/PID/maps and smaps: the parser on lines the kernel prints, and the
// mappings of a real child read back with the attributes it gave them.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "proc/proc_maps.h"
#include "support/subprocess.h"
#include "unit/proc_test_child.h"

namespace ferry {
namespace {

using test::ChildLink;
using test::TestChild;

constexpr size_t kPage = 4096;

const MapsEntry* find_vma(const std::vector<MapsEntry>& maps, uint64_t start) {
  auto it = std::find_if(maps.begin(), maps.end(), [start](const MapsEntry& e) { return e.start == start; });
  return it == maps.end() ? nullptr : &*it;
}

TEST(MapsLine, ParsesEveryField) {
  Result<MapsEntry> e = parse_maps_line(
      "7f7c5fa3e000-7f7c5fb94000 r-xp 00026000 fe:01 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->start, 0x7f7c5fa3e000u);
  EXPECT_EQ(e->end, 0x7f7c5fb94000u);
  EXPECT_EQ(e->size(), 0x156000u);
  EXPECT_EQ(e->prot, PROT_READ | PROT_EXEC);
  EXPECT_FALSE(e->shared);
  EXPECT_EQ(e->pgoff, 0x26000u);
  EXPECT_EQ(e->dev_major, 0xfeu);
  EXPECT_EQ(e->dev_minor, 1u);
  EXPECT_EQ(e->inode, 332835u);
  EXPECT_EQ(e->path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_TRUE(e->is_file_backed());
  EXPECT_FALSE(e->is_anonymous());
  EXPECT_FALSE(e->is_deleted());
  EXPECT_EQ(e->describe(), "7f7c5fa3e000-7f7c5fb94000 r-xp /usr/lib/x86_64-linux-gnu/libc.so.6");
}

TEST(MapsLine, KeepsSpacesInPathsAndSeesDeletedFiles) {
  Result<MapsEntry> e = parse_maps_line("7f00000000-7f00002000 rw-s 10000000000 103:02 77 /tmp/a dir/with  two spaces (deleted)");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_TRUE(e->shared);
  EXPECT_EQ(e->prot, PROT_READ | PROT_WRITE);
  EXPECT_EQ(e->pgoff, 0x10000000000u);
  EXPECT_EQ(e->dev_major, 0x103u);
  EXPECT_EQ(e->dev_minor, 2u);
  EXPECT_EQ(e->path, "/tmp/a dir/with  two spaces (deleted)");
  EXPECT_TRUE(e->is_deleted());
  EXPECT_EQ(e->file_path(), "/tmp/a dir/with  two spaces");
}

TEST(MapsLine, ClassifiesKernelAndAnonymousMappings) {
  auto entry = [](const std::string& path) {
    return *parse_maps_line("7fff0000-7fff2000 r--p 00000000 00:00 0                          " + path);
  };
  EXPECT_TRUE(entry("[vdso]").is_vdso());
  EXPECT_TRUE(entry("[vvar]").is_vvar());
  EXPECT_TRUE(entry("[vvar_vclock]").is_vvar());
  EXPECT_TRUE(entry("[vsyscall]").is_vsyscall());
  for (const char* special : {"[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]"}) {
    EXPECT_TRUE(entry(special).is_special()) << special;
    EXPECT_FALSE(entry(special).is_anonymous()) << special;
    EXPECT_FALSE(entry(special).is_file_backed()) << special;
  }
  EXPECT_TRUE(entry("[stack]").is_stack());
  EXPECT_TRUE(entry("[heap]").is_heap());
  for (const char* anon : {"[stack]", "[heap]", "[anon:my buffer]", ""}) {
    EXPECT_TRUE(entry(anon).is_anonymous()) << anon;
    EXPECT_FALSE(entry(anon).is_special()) << anon;
  }
  // An unnamed anonymous mapping: the line ends after the inode and a space.
  Result<MapsEntry> bare = parse_maps_line("7fff0000-7fff2000 rw-p 00000000 00:00 0 ");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->path, "");
  EXPECT_TRUE(bare->is_anonymous());
}

TEST(MapsLine, RefusesMalformedLines) {
  for (const char* bad : {"", "7fff0000 r--p 00000000 00:00 0", "zz-7fff2000 r--p 00000000 00:00 0",
                          "7fff2000-7fff0000 r--p 00000000 00:00 0", "7fff0000-7fff2000 rwzp 00000000 00:00 0",
                          "7fff0000-7fff2000 r--p 00000000 0000 0", "7fff0000-7fff2000 r--p 00000000 00:00",
                          "7fff0000-7fff2000 r--p 0000000g 00:00 0", "7fff0001-7fff2000 r--p 00000000 00:00 0"}) {
    EXPECT_FALSE(parse_maps_line(bad)) << bad;
  }
  Result<std::vector<MapsEntry>> maps = parse_maps("7fff0000-7fff2000 r--p 00000000 00:00 0\nbroken\n");
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().message().find("line 2"), std::string::npos) << maps.error().message();
}

TEST(Smaps, AttachesVmFlagsToTheirVma) {
  const char* text =
      "7fff0000-7fff2000 rw-p 00000000 00:00 0                          [stack]\n"
      "Size:                  8 kB\n"
      "KernelPageSize:        4 kB\n"
      "VmFlags: rd wr mr mw me gd ac \n"
      "7fff4000-7fff5000 rw-p 00000000 00:00 0 \n"
      "Size:                  4 kB\n"
      "VmFlags: rd wr mr mw me lo dd ht zz \n";
  Result<std::vector<MapsEntry>> maps = parse_smaps(text);
  ASSERT_TRUE(maps) << maps.error().message();
  ASSERT_EQ(maps->size(), 2u);
  EXPECT_EQ((*maps)[0].vm_flags, kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec | kVmGrowsDown | kVmAccount);
  EXPECT_TRUE((*maps)[0].has(kVmGrowsDown));
  EXPECT_TRUE((*maps)[1].has(kVmLocked));
  EXPECT_TRUE((*maps)[1].has(kVmDontDump));
  EXPECT_TRUE((*maps)[1].has(kVmHugetlb));
  EXPECT_FALSE((*maps)[1].has(kVmGrowsDown));
  EXPECT_EQ((*maps)[1].unknown_vm_flags, "zz");
  EXPECT_FALSE(parse_smaps("VmFlags: rd\n"));
}

// What a child mapped, reported to the test by address.
struct ChildMappings {
  uint64_t file_shared = 0;   // 2 pages of the file from offset 4096, read-only, MAP_SHARED
  uint64_t anon_dontdump = 0; // 4 pages read-write, MADV_DONTDUMP
  uint64_t anon_locked = 0;   // 1 page, mlock()ed
  uint64_t deleted_exec = 0;  // 1 page of an unlinked file, r-x private
  uint64_t shared_anon = 0;   // 1 page MAP_SHARED | MAP_ANONYMOUS
  uint64_t growsdown = 0;     // 2 pages MAP_GROWSDOWN
};

TEST(ProcMaps, ReadsTheMappingsAChildMade) {
  test::TempDir tmp;
  std::string file = tmp.file("mapped file with spaces.bin");
  std::string doomed = tmp.file("doomed file");
  test::write_file(file, std::string(3 * kPage, 'f'));
  test::write_file(doomed, std::string(kPage, 'd'));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);

  TestChild child([&](const ChildLink& link) {
    ChildMappings m;
    int fd = ::open(file.c_str(), O_RDONLY);
    void* p = ::mmap(nullptr, 2 * kPage, PROT_READ, MAP_SHARED, fd, kPage);
    if (fd < 0 || p == MAP_FAILED) return 1;
    m.file_shared = reinterpret_cast<uint64_t>(p);
    ::close(fd);
    p = ::mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || ::madvise(p, 4 * kPage, MADV_DONTDUMP) != 0) return 2;
    m.anon_dontdump = reinterpret_cast<uint64_t>(p);
    p = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // The raw call: AddressSanitizer turns mlock() into a no-op.
    if (p == MAP_FAILED || ::syscall(SYS_mlock, p, kPage) != 0) return 3;
    m.anon_locked = reinterpret_cast<uint64_t>(p);
    fd = ::open(doomed.c_str(), O_RDONLY);
    p = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (fd < 0 || p == MAP_FAILED || ::unlink(doomed.c_str()) != 0) return 4;
    m.deleted_exec = reinterpret_cast<uint64_t>(p);
    ::close(fd);
    p = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 5;
    m.shared_anon = reinterpret_cast<uint64_t>(p);
    p = ::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    if (p == MAP_FAILED) return 6;
    m.growsdown = reinterpret_cast<uint64_t>(p);
    link.report(m);
    link.await();
    return 0;
  });
  ASSERT_TRUE(child.started());
  std::optional<ChildMappings> m = child.receive<ChildMappings>();
  ASSERT_TRUE(m) << "the child did not report (exit " << child.wait_exit().value_or(-1) << ")";

  Result<std::vector<MapsEntry>> smaps = read_smaps(child.pid());
  ASSERT_TRUE(smaps) << smaps.error().message();
  Result<std::vector<MapsEntry>> maps = read_maps(child.pid());
  ASSERT_TRUE(maps) << maps.error().message();
  // The same VMAs either way; only smaps has the flags.
  ASSERT_EQ(maps->size(), smaps->size());
  for (size_t i = 0; i < maps->size(); ++i) {
    EXPECT_EQ((*maps)[i].start, (*smaps)[i].start);
    EXPECT_EQ((*maps)[i].path, (*smaps)[i].path);
    EXPECT_EQ((*maps)[i].vm_flags, 0u);
    EXPECT_NE((*smaps)[i].vm_flags, 0u) << (*smaps)[i].describe();
  }

  const MapsEntry* f = find_vma(*smaps, m->file_shared);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path, file);
  EXPECT_EQ(f->size(), 2 * kPage);
  EXPECT_EQ(f->prot, PROT_READ);
  EXPECT_TRUE(f->shared);
  EXPECT_EQ(f->pgoff, kPage);
  EXPECT_EQ(f->inode, st.st_ino);
  EXPECT_EQ(makedev(f->dev_major, f->dev_minor), st.st_dev);
  EXPECT_TRUE(f->is_file_backed());
  // 's' comes from VM_MAYSHARE; a file opened read-only gets no VM_SHARED ("sh").
  EXPECT_TRUE(f->has(kVmMayShare));
  EXPECT_FALSE(f->has(kVmShared));

  const MapsEntry* d = find_vma(*smaps, m->anon_dontdump);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->size(), 4 * kPage);
  EXPECT_EQ(d->prot, PROT_READ | PROT_WRITE);
  EXPECT_FALSE(d->shared);
  EXPECT_TRUE(d->is_anonymous());
  EXPECT_TRUE(d->has(kVmDontDump));
  EXPECT_FALSE(d->has(kVmLocked));

  const MapsEntry* l = find_vma(*smaps, m->anon_locked);
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(l->has(kVmLocked));
  EXPECT_FALSE(l->has(kVmDontDump));

  const MapsEntry* x = find_vma(*smaps, m->deleted_exec);
  ASSERT_NE(x, nullptr);
  EXPECT_TRUE(x->is_deleted());
  EXPECT_EQ(x->file_path(), doomed);
  EXPECT_EQ(x->prot, PROT_READ | PROT_EXEC);
  EXPECT_TRUE(x->has(kVmExec));

  const MapsEntry* s = find_vma(*smaps, m->shared_anon);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shared);
  EXPECT_TRUE(s->is_file_backed()) << s->describe();  // the kernel's shmem file
  EXPECT_TRUE(s->path.starts_with("/dev/zero")) << s->describe();

  const MapsEntry* g = find_vma(*smaps, m->growsdown);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->has(kVmGrowsDown));

  auto count = [&](auto pred) { return std::count_if(smaps->begin(), smaps->end(), pred); };
  EXPECT_EQ(count([](const MapsEntry& e) { return e.is_vdso(); }), 1);
  EXPECT_GE(count([](const MapsEntry& e) { return e.is_vvar(); }), 1);
  auto stack = std::find_if(smaps->begin(), smaps->end(), [](const MapsEntry& e) { return e.is_stack(); });
  ASSERT_NE(stack, smaps->end());
  EXPECT_TRUE(stack->has(kVmGrowsDown));

  child.send();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(ProcMaps, NamesTheProcessThatIsNotThere) {
  Result<std::vector<MapsEntry>> maps = read_maps(999999999);
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().message().find("/proc/999999999/maps"), std::string::npos) << maps.error().message();
}

}  // namespace
}  // namespace ferry
