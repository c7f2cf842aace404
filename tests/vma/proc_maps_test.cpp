// /proc/PID/maps and smaps text: exact lines (widths, names, the [heap]/[stack] rules, shmem,
// the x86_64 gate VMA) and smaps counts from the page tables and frame descriptors, in the
// layout Linux 6.18 prints (compared with this machine's /proc/self/smaps by eye and by the
// guests' end-to-end runs).
#include "vma/proc_maps.hpp"

#include "syscall_test_util.hpp"
#include "vma/fork.hpp"

namespace mmemu::test {
namespace {

class ProcMapsTest : public SyscallTest {
 protected:
  // The smaps record of the VMA containing va.
  std::string smaps_of(vaddr_t va) const { return smaps_entry(*f.mm, *vma_at(va)); }
  SmapsStats stats_of(vaddr_t va) const { return smaps_gather(*f.mm, *vma_at(va)); }
  // x86-64: the machine's kernel-half range (what emu/image's setup_vsyscall registers in
  // vsyscall=xonly, or with `readable` as in emulate); arm64: one frame as an arch mapping
  // (what emu/image's map_arch_pages does at exec).
  void map_gate(vaddr_t at, std::string name, bool readable = false) {
    if (GetParam() == Arch::X86_64) {
      ASSERT_TRUE(
          f.m.init_mm(Arch::X86_64)
              .add_unmapped(at, at + PAGE_SIZE, PteProt{readable, false, true, true}, name));
      return;
    }
    auto pfn = f.m.phys.alloc_frame(AllocSite::Page);
    ASSERT_TRUE(pfn);
    ASSERT_TRUE(f.mm->pt().map_arch_pages(at, {*pfn}, PteProt{true, false, true, true}, name));
  }
};

constexpr std::uint64_t P = PAGE_SIZE;

TEST_P(ProcMapsTest, AnonymousLineEndsWithABlank) {
  const vaddr_t a = map_at(0, 3);
  EXPECT_EQ(maps_line(*f.mm, *vma_at(a)), "4000000000-4000003000 rw-p 00000000 00:00 0 ");
  map_at(5, 1, PROT_NONE);
  EXPECT_EQ(maps_line(*f.mm, *vma_at(pg(5))), "4000005000-4000006000 ---p 00000000 00:00 0 ");
  map_at(7, 1, PROT_READ | PROT_EXEC);
  EXPECT_EQ(maps_line(*f.mm, *vma_at(pg(7))), "4000007000-4000008000 r-xp 00000000 00:00 0 ");
}

TEST_P(ProcMapsTest, LowAddressesKeepEightDigits) {
  auto r =
      sys_mmap(*f.mm, 0x10000, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(maps_line(*f.mm, *vma_at(0x10000)), "00010000-00011000 r--p 00000000 00:00 0 ");
}

TEST_P(ProcMapsTest, FileLinePadsTheNameToColumn73) {
  std::vector<std::uint8_t> data(4 * P, 7);
  File* file = File::create(f.m, "/usr/bin/cat", std::move(data), true, false, 0xfe00, 247134);
  auto r = sys_mmap(*f.mm, pg(0), 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 2 * P);
  ASSERT_TRUE(r);
  file->put();
  const std::string line = maps_line(*f.mm, *vma_at(pg(0)));
  EXPECT_EQ(line,
            "4000000000-4000002000 r--p 00002000 fe:00 247134"
            "                         /usr/bin/cat");
  EXPECT_EQ(line.find('/'), 73u);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(0))), "/usr/bin/cat");
}

TEST_P(ProcMapsTest, DeviceNumbersUseTheUserspaceEncoding) {
  // major 259, minor 3 (an NVMe partition): glibc's makedev puts major bits 8-19.
  const std::uint64_t dev = (259ULL << 8) | 3;
  File* file = File::create(f.m, "/x", std::vector<std::uint8_t>(P), true, false, dev, 12);
  auto r = sys_mmap(*f.mm, pg(0), P, PROT_READ, MAP_SHARED | MAP_FIXED, file, 0);
  ASSERT_TRUE(r);
  file->put();
  EXPECT_EQ(maps_line(*f.mm, *vma_at(pg(0))).substr(0, 49),
            "4000000000-4000001000 r--s 00000000 103:03 12    ");
}

TEST_P(ProcMapsTest, SharedAnonymousIsDevZeroDeletedWithItsInode) {
  const vaddr_t a = map_shared_at(0, 4);
  const Vma* v = vma_at(a);
  ASSERT_NE(v->vm_file, nullptr);
  const std::string ino = std::to_string(v->vm_file->ino());
  std::string want = "4000000000-4000004000 rw-s 00000000 00:01 " + ino + " ";
  want.append(73 - want.size(), ' ');
  want += "/dev/zero (deleted)";
  EXPECT_EQ(maps_line(*f.mm, *v), want);
  // After a split the second half shows its offset into the shmem object.
  ASSERT_TRUE(do_mprotect(*f.mm, pg(2), 2 * P, PROT_READ));
  EXPECT_EQ(maps_line(*f.mm, *vma_at(pg(2))).substr(0, 35), "4000002000-4000004000 r--s 00002000");
}

TEST_P(ProcMapsTest, HeapIsTheVmaOverlappingStartBrkToBrkStrictly) {
  map_at(0, 4);  // [0, 4): heap candidate
  map_at(4, 1, PROT_READ);
  map_at(6, 1, PROT_READ);
  f.mm->start_brk = pg(0);
  f.mm->brk = pg(4);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(0))), "[heap]");
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(4))), "");  // starts at brk: not heap (6.6+ rule)
  f.mm->start_brk = pg(7);
  f.mm->brk = pg(7);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(6))), "");  // ends at start_brk: not heap
  f.mm->start_brk = pg(2);
  f.mm->brk = pg(3);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(0))), "[heap]");
  // brk == start_brk strictly inside a VMA still marks it (0 < brk && 4 > start_brk) ...
  f.mm->start_brk = f.mm->brk = pg(2);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(0))), "[heap]");
  // ... but not at its start.
  f.mm->start_brk = f.mm->brk = pg(0);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(0))), "");
}

TEST_P(ProcMapsTest, StackIsTheVmaContainingStartStackInclusive) {
  map_at(0, 4);
  map_at(8, 2);
  f.mm->start_stack = pg(4);  // == vm_end of [0, 4): inclusive, as vma_is_initial_stack
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(0))), "[stack]");
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(8))), "");
  f.mm->start_stack = pg(8) + 16;
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(8))), "[stack]");
  // The heap rule wins when both apply.
  f.mm->start_brk = pg(8);
  f.mm->brk = pg(9);
  EXPECT_EQ(maps_name(*f.mm, *vma_at(pg(8))), "[heap]");
  // File mappings always show their file.
  const vaddr_t fa = map_file_at(20, 1, PROT_READ, MAP_PRIVATE);
  f.mm->start_stack = fa;
  EXPECT_EQ(maps_name(*f.mm, *vma_at(fa)), "/tmp/t");
}

TEST_P(ProcMapsTest, ProcMapsListsEveryVmaThenTheGateVma) {
  map_at(0, 1);
  map_at(2, 1, PROT_READ);
  const vaddr_t gate = GetParam() == Arch::X86_64 ? 0xffffffffff600000ULL : 0xfffffffff000ULL;
  map_gate(gate, GetParam() == Arch::X86_64 ? "[vsyscall]" : "[sigpage]");
  std::string want =
      "4000000000-4000001000 rw-p 00000000 00:00 0 \n"
      "4000002000-4000003000 r--p 00000000 00:00 0 \n";
  if (GetParam() == Arch::X86_64)
    want +=
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0"
        "                  [vsyscall]\n";
  EXPECT_EQ(proc_maps(*f.mm), want);
}

TEST_P(ProcMapsTest, EmptyMmHasNoLines) {
  EXPECT_EQ(proc_maps(*f.mm), "");
  EXPECT_EQ(proc_smaps(*f.mm), "");
}

TEST_P(ProcMapsTest, SmapsRecordOfADirtyAnonymousMappingIsExact) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 2, Access::Write);
  std::string want =
      "4000000000-4000004000 rw-p 00000000 00:00 0 \n"
      "Size:                 16 kB\n"
      "KernelPageSize:        4 kB\n"
      "MMUPageSize:           4 kB\n"
      "Rss:                   8 kB\n"
      "Pss:                   8 kB\n"
      "Pss_Dirty:             8 kB\n"
      "Shared_Clean:          0 kB\n"
      "Shared_Dirty:          0 kB\n"
      "Private_Clean:         0 kB\n"
      "Private_Dirty:         8 kB\n"
      "Referenced:            8 kB\n"
      "Anonymous:             8 kB\n"
      "KSM:                   0 kB\n"
      "LazyFree:              0 kB\n"
      "AnonHugePages:         0 kB\n"
      "ShmemPmdMapped:        0 kB\n"
      "FilePmdMapped:         0 kB\n"
      "Shared_Hugetlb:        0 kB\n"
      "Private_Hugetlb:       0 kB\n"
      "Swap:                  0 kB\n"
      "SwapPss:               0 kB\n"
      "Locked:                0 kB\n"
      "THPeligible:           0\n";
  if (GetParam() == Arch::X86_64) want += "ProtectionKey:         0\n";
  want += "VmFlags: rd wr mr mw me ac \n";
  EXPECT_EQ(smaps_of(a), want);
}

TEST_P(ProcMapsTest, ZeroPageReadsAreNotResident) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 4, Access::Read);  // every page maps the shared zero page
  const SmapsStats s = stats_of(a);
  EXPECT_EQ(s.resident, 0u);
  EXPECT_EQ(s.anonymous, 0u);
  EXPECT_EQ(s.pss, 0u);
}

TEST_P(ProcMapsTest, FilePageMappedTwiceIsSharedAndHalvesPss) {
  std::vector<std::uint8_t> data(2 * P, 1);
  File* file = File::create(f.m, "/tmp/two", std::move(data));
  ASSERT_TRUE(sys_mmap(*f.mm, pg(0), 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 0));
  ASSERT_TRUE(sys_mmap(*f.mm, pg(4), P, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 0));
  file->put();
  touch_all(pg(0), 2, Access::Read);
  touch_all(pg(4), 1, Access::Read);
  const SmapsStats s = stats_of(pg(0));
  EXPECT_EQ(s.resident, 2 * P);
  EXPECT_EQ(s.shared_clean, P);   // page 0: mapcount 2
  EXPECT_EQ(s.private_clean, P);  // page 1: page cache + one mapping, mapcount 1
  EXPECT_EQ(s.pss, (P << kPssShift) / 2 + (P << kPssShift));
  EXPECT_EQ(s.pss_file, s.pss);
  EXPECT_EQ(s.referenced, 2 * P);
  EXPECT_EQ(s.anonymous, 0u);
  const std::string text = smaps_of(pg(0));
  EXPECT_NE(text.find("Pss:                   6 kB\n"), std::string::npos) << text;
  EXPECT_NE(text.find("VmFlags: rd mr mw me \n"), std::string::npos) << text;
}

TEST_P(ProcMapsTest, ForkedAnonymousPagesAreSharedUntilWritten) {
  const vaddr_t a = map_at(0, 3);
  touch_all(a, 3, Access::Write);
  auto child = dup_mm(*f.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(child);
  SmapsStats s = stats_of(a);
  EXPECT_EQ(s.shared_dirty, 3 * P);
  EXPECT_EQ(s.private_dirty, 0u);
  EXPECT_EQ(s.pss, 3 * (P << kPssShift) / 2);
  // The parent breaks COW on one page: that page is private again in both.
  ASSERT_EQ(f.touch(a, Access::Write), FaultResult::Ok);
  s = stats_of(a);
  EXPECT_EQ(s.private_dirty, P);
  EXPECT_EQ(s.shared_dirty, 2 * P);
  const SmapsStats c = smaps_gather(**child, *(*child)->vma_lookup(a));
  EXPECT_EQ(c.private_dirty, P);
  EXPECT_EQ(c.shared_dirty, 2 * P);
  EXPECT_EQ(c.pss_anon, c.pss);
  child->reset();
}

TEST_P(ProcMapsTest, MadvFreeShowsLazyFreeUntilRedirtied) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 4, Access::Write);
  ASSERT_TRUE(do_madvise(*f.mm, a, 4 * P, MADV_FREE));
  SmapsStats s = stats_of(a);
  EXPECT_EQ(s.lazyfree, 4 * P);
  EXPECT_EQ(s.anonymous, 4 * P);
  EXPECT_EQ(s.private_clean, 4 * P);
  ASSERT_EQ(f.touch(a + P, Access::Write), FaultResult::Ok);
  s = stats_of(a);
  EXPECT_EQ(s.lazyfree, 3 * P);
  EXPECT_EQ(s.private_dirty, P);
}

TEST_P(ProcMapsTest, LockedCountsPssOfLockedVmas) {
  const vaddr_t a = map_at(0, 3);
  ASSERT_TRUE(do_mlock(*f.mm, a, 2 * P, 0));
  EXPECT_EQ(stats_of(a).pss_locked, 2 * (P << kPssShift));
  EXPECT_EQ(smaps_vm_flags(flags_at(a)), "rd wr mr mw me lo ac ");
  EXPECT_EQ(stats_of(pg(2)).pss_locked, 0u);
}

TEST_P(ProcMapsTest, SharedAnonymousCountsAsShmem) {
  const vaddr_t a = map_shared_at(0, 2);
  touch_all(a, 2, Access::Write);
  const SmapsStats s = stats_of(a);
  EXPECT_EQ(s.resident, 2 * P);
  EXPECT_EQ(s.anonymous, 0u);
  EXPECT_EQ(s.pss_shmem, s.pss);
  EXPECT_EQ(s.private_dirty, 2 * P);  // shmem cache + one mapping, mapcount 1
  EXPECT_EQ(smaps_vm_flags(flags_at(a)), "rd wr sh mr mw me ms ");
}

TEST_P(ProcMapsTest, GateVmaSmapsHasNoRss) {
  if (GetParam() == Arch::Arm64) {
    // The sigreturn trampoline is not a gate VMA: neither file shows it.
    map_gate(0xfffffffff000ULL, "[sigpage]");
    EXPECT_EQ(proc_smaps(*f.mm), "");
    return;
  }
  map_gate(0xffffffffff600000ULL, "[vsyscall]");
  const std::string text = proc_smaps(*f.mm);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0"
            "                  [vsyscall]");
  EXPECT_NE(text.find("Size:                  4 kB\n"), std::string::npos);
  EXPECT_NE(text.find("Rss:                   0 kB\n"), std::string::npos);
  EXPECT_NE(text.find("VmFlags: ex \n"), std::string::npos);
}

// vsyscall=emulate: the page is readable, the gate VMA is r-x; none: no line at all.
TEST_P(ProcMapsTest, GateVmaFollowsTheVsyscallMode) {
  if (GetParam() == Arch::Arm64) GTEST_SKIP() << "x86-64 only";
  EXPECT_EQ(proc_maps(*f.mm), "");  // none: nothing registered
  map_gate(0xffffffffff600000ULL, "[vsyscall]", /*readable=*/true);
  EXPECT_EQ(proc_maps(*f.mm),
            "ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0"
            "                  [vsyscall]\n");
  EXPECT_NE(proc_smaps(*f.mm).find("VmFlags: rd ex \n"), std::string::npos);
}

TEST_P(ProcMapsTest, RollupSumsEveryVmaWithoutTheGate) {
  const vaddr_t a = map_at(0, 2);
  const vaddr_t b = map_at(6, 3, PROT_READ);
  touch_all(a, 2, Access::Write);
  touch_all(b, 1, Access::Read);
  std::string text = proc_smaps_rollup(*f.mm);
  std::string head = "4000000000-4000009000 ---p 00000000 00:00 0 ";
  head.append(73 - head.size(), ' ');
  head += "[rollup]\n";
  EXPECT_EQ(text.substr(0, head.size()), head);
  EXPECT_NE(text.find("Rss:                   8 kB\nPss:                   8 kB\n"
                      "Pss_Dirty:             8 kB\nPss_Anon:              8 kB\n"
                      "Pss_File:              0 kB\nPss_Shmem:             0 kB\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("THPeligible"), std::string::npos);
  // No VMA: the span is 0-0.
  ASSERT_TRUE(do_munmap(*f.mm, pg(0), 16 * P));
  text = proc_smaps_rollup(*f.mm);
  EXPECT_EQ(text.substr(0, 40), "00000000-00000000 ---p 00000000 00:00 0 ");
}

INSTANTIATE_ARCHES(ProcMapsTest);

}  // namespace
}  // namespace mmemu::test
