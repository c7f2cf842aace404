// mprotect: errno for errno with Linux 6.18 (measured natively), the VMA layout after splits
// and merges, the PTE bits after each change, and the flushes of every changed entry.
#include "syscall_test_util.hpp"

namespace mmemu::test {
namespace {

class MprotectTest : public SyscallTest {};

TEST_P(MprotectTest, ErrnoLikeLinux) {
  const vaddr_t a = map_at(8, 8);
  Mm& mm = *f.mm;
  EXPECT_EQ(err_of(do_mprotect(mm, a + 1, PAGE_SIZE, PROT_READ)), EINVAL);
  EXPECT_EQ(err_of(do_mprotect(mm, pg(0), 0, PROT_READ)), 0);  // len 0, unmapped: fine
  EXPECT_EQ(err_of(do_mprotect(mm, pg(0), PAGE_SIZE, PROT_READ)), ENOMEM);
  EXPECT_EQ(err_of(do_mprotect(mm, a, -PAGE_SIZE, PROT_READ)), ENOMEM);  // wraps
  EXPECT_EQ(err_of(do_mprotect(mm, a, ~0ULL, PROT_READ)), ENOMEM);       // rounds to 0
  EXPECT_EQ(err_of(do_mprotect(mm, a, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP)),
            EINVAL);
  EXPECT_EQ(err_of(do_mprotect(mm, a, PAGE_SIZE, PROT_READ | 0x10)), EINVAL);
  EXPECT_EQ(err_of(do_mprotect(mm, a, PAGE_SIZE, PROT_READ | 0x100)), EINVAL);
  EXPECT_EQ(err_of(do_mprotect(mm, a, PAGE_SIZE, PROT_READ | PROT_SEM)), 0);
  EXPECT_EQ(err_of(do_mprotect(mm, a + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN)), EINVAL);
  EXPECT_EQ(err_of(do_mprotect(mm, a + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_GROWSUP)), EINVAL);
  // A length of 1 is one page.
  EXPECT_EQ(err_of(do_mprotect(mm, a + 2 * PAGE_SIZE, 1, PROT_READ)), 0);
  EXPECT_EQ(area_layout(), (Layout{{8, 9}, {9, 10}, {10, 11}, {11, 16}}));
  EXPECT_EQ(ok(), "");
}

// Linux 6.18's is_mergeable_anon_vma: a neighbour without an anon_vma takes over the
// anon_vma of the range that joins it, if that range's VMA was not forked from a parent.
TEST_P(MprotectTest, ANeighbourWithoutAnonVmaTakesTheJoiningRangesOne) {
  const vaddr_t a = map_at(0, 4, PROT_EXEC);
  map_at(4, 4, PROT_WRITE);
  ASSERT_EQ(f.touch(pg(5), Access::Write), FaultResult::Ok);  // [4, 8) gets an anon_vma
  ASSERT_TRUE(do_mprotect(*f.mm, pg(3), 3 * PAGE_SIZE, PROT_WRITE | PROT_EXEC));
  EXPECT_EQ(area_layout(), (Layout{{0, 3}, {3, 6}, {6, 8}}));
  EXPECT_EQ(vma_at(pg(3))->anon_vma, vma_at(pg(6))->anon_vma);
  EXPECT_NE(vma_at(pg(3))->anon_vma, nullptr);
  EXPECT_EQ(vma_at(a)->anon_vma, nullptr);
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, SplitThenMergeBack) {
  const vaddr_t a = map_at(0, 6);
  ASSERT_TRUE(do_mprotect(*f.mm, a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ));
  EXPECT_EQ(area_layout(), (Layout{{0, 2}, {2, 4}, {4, 6}}));
  EXPECT_EQ(flags_at(a + 2 * PAGE_SIZE) & VM_ACCESS_FLAGS, VM_READ);
  EXPECT_EQ(f.mm->map_count, 3);
  EXPECT_EQ(f.mm->data_vm, 4U);  // the read-only part is no longer data
  ASSERT_TRUE(do_mprotect(*f.mm, a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_EQ(area_layout(), (Layout{{0, 6}}));
  EXPECT_EQ(f.mm->map_count, 1);
  EXPECT_EQ(f.mm->data_vm, 6U);
  EXPECT_EQ(f.mm->total_vm, 6U);
  EXPECT_EQ(ok(), "");
}

// The VMAs before a hole are changed, then ENOMEM; a range starting in a hole changes nothing.
TEST_P(MprotectTest, HolesAreEnomemAfterTheWorkBeforeThem) {
  map_at(0, 2);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, pg(0), 4 * PAGE_SIZE, PROT_READ)), ENOMEM);
  EXPECT_EQ(flags_at(pg(0)) & VM_ACCESS_FLAGS, VM_READ);
  map_at(12, 2);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, pg(10), 4 * PAGE_SIZE, PROT_READ)), ENOMEM);
  EXPECT_EQ(flags_at(pg(12)) & VM_ACCESS_FLAGS, VM_READ | VM_WRITE);
  map_at(20, 2);
  map_at(24, 2);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, pg(20), 6 * PAGE_SIZE, PROT_READ)), ENOMEM);
  EXPECT_EQ(flags_at(pg(20)) & VM_ACCESS_FLAGS, VM_READ);
  EXPECT_EQ(flags_at(pg(24)) & VM_ACCESS_FLAGS, VM_READ | VM_WRITE);
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, MayFlagsGiveEacces) {
  // A shared mapping of a read-only file has no VM_MAYWRITE.
  const vaddr_t s = map_file_at(4, 1, PROT_READ, MAP_SHARED);
  EXPECT_EQ(flags_at(s) & VM_MAYWRITE, 0U);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, s, PAGE_SIZE, PROT_READ | PROT_WRITE)), EACCES);
  // Private: copy-on-write makes writing fine.
  const vaddr_t p = map_file_at(8, 1, PROT_READ, MAP_PRIVATE);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, p, PAGE_SIZE, PROT_READ | PROT_WRITE)), 0);
  // The anonymous page before the file is changed first, then EACCES stops the walk.
  map_at(3, 1, PROT_READ);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, pg(3), 2 * PAGE_SIZE, PROT_READ | PROT_WRITE)), EACCES);
  EXPECT_EQ(flags_at(pg(3)) & VM_ACCESS_FLAGS, VM_READ | VM_WRITE);
  EXPECT_EQ(flags_at(s) & VM_ACCESS_FLAGS, VM_READ);
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, GrowsDownStartsAtTheVmaStart) {
  const vaddr_t s = map_at(8, 4, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
  ASSERT_TRUE(do_mprotect(*f.mm, s + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN));
  EXPECT_EQ(area_layout(), (Layout{{8, 11}, {11, 12}}));
  EXPECT_EQ(flags_at(s) & VM_ACCESS_FLAGS, VM_READ);
  // Starting in the hole below: ENOMEM unless the range reaches the VMA.
  EXPECT_EQ(err_of(do_mprotect(*f.mm, s - 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN)),
            ENOMEM);
  ASSERT_TRUE(
      do_mprotect(*f.mm, s - 2 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ | PROT_EXEC | PROT_GROWSDOWN));
  EXPECT_EQ(area_layout(), (Layout{{8, 9}, {9, 11}, {11, 12}}));
  EXPECT_EQ(flags_at(s) & VM_ACCESS_FLAGS, VM_READ | VM_EXEC);
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, PteBitsFollowEachChange) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 2);  // two anonymous pages, dirty
  ASSERT_EQ(f.touch(a + 2 * PAGE_SIZE, Access::Read), FaultResult::Ok);  // the zero page
  const PteFormat& fmt = f.mm->fmt();
  const pfn_t p0 = pfn_at(a);
  ASSERT_TRUE(fmt.write(*pte(a)));
  flush.events.clear();

  ASSERT_TRUE(do_mprotect(*f.mm, a, 4 * PAGE_SIZE, PROT_READ));
  for (int i = 0; i < 2; ++i) {
    const pte_t e = *pte(a + i * PAGE_SIZE);
    EXPECT_FALSE(fmt.write(e));
    EXPECT_TRUE(fmt.dirty(e));  // pte_modify keeps dirty and young
    EXPECT_TRUE(fmt.young(e));
    EXPECT_TRUE(fmt.prot(e).read);
  }
  EXPECT_EQ(pfn_at(a), p0);
  EXPECT_TRUE(flush.covers(a, a + 2 * PAGE_SIZE));
  EXPECT_EQ(f.touch(a, Access::Write), FaultResult::SegvAccErr);

  ASSERT_TRUE(do_mprotect(*f.mm, a, 4 * PAGE_SIZE, PROT_NONE));
  EXPECT_TRUE(fmt.protnone(*pte(a)));
  EXPECT_EQ(pfn_at(a), p0);  // the frame stays recorded
  EXPECT_EQ(f.touch(a, Access::Read), FaultResult::SegvAccErr);

  // Back to writable: the exclusive anonymous pages are writable at once; the zero page is not.
  ASSERT_TRUE(do_mprotect(*f.mm, a, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_TRUE(fmt.write(*pte(a)));
  EXPECT_TRUE(fmt.write(*pte(a + PAGE_SIZE)));
  EXPECT_FALSE(fmt.write(*pte(a + 2 * PAGE_SIZE)));
  EXPECT_EQ(pfn_at(a + 2 * PAGE_SIZE), f.m.phys.zero_pfn());
  EXPECT_EQ(f.read8(a), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 4}}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, SharedAndCowPagesAreNotUpgraded) {
  // A private file mapping: a read maps the page-cache page, which must stay read-only.
  const vaddr_t p = map_file_at(0, 1, PROT_READ, MAP_PRIVATE);
  ASSERT_EQ(f.touch(p, Access::Read), FaultResult::Ok);
  const pfn_t cache = pfn_at(p);
  ASSERT_TRUE(do_mprotect(*f.mm, p, PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_FALSE(f.mm->fmt().write(*pte(p)));
  f.write8(p, 9);
  EXPECT_NE(pfn_at(p), cache);                   // copied on write
  EXPECT_EQ(f.m.phys.desc(cache).refcount, 1U);  // only the page cache holds it now
  // A shared anonymous mapping is writable through vm_page_prot itself.
  const vaddr_t s = map_shared_at(4, 1, PROT_READ);
  ASSERT_EQ(f.touch(s, Access::Read), FaultResult::Ok);
  EXPECT_FALSE(f.mm->fmt().write(*pte(s)));
  ASSERT_TRUE(do_mprotect(*f.mm, s, PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_TRUE(f.mm->fmt().write(*pte(s)));
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, AccountFlagAndDataLimit) {
  const vaddr_t a = map_at(0, 2, PROT_READ);
  EXPECT_EQ(flags_at(a) & VM_ACCOUNT, 0U);
  ASSERT_TRUE(do_mprotect(*f.mm, a, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_EQ(flags_at(a) & VM_ACCOUNT, VM_ACCOUNT);  // becoming writable charges it
  ASSERT_TRUE(do_mprotect(*f.mm, a, 2 * PAGE_SIZE, PROT_READ));
  EXPECT_EQ(flags_at(a) & VM_ACCOUNT, 0U);  // no page yet: the charge goes again
  ASSERT_TRUE(do_mprotect(*f.mm, a, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  f.write8(a, 1);
  ASSERT_TRUE(do_mprotect(*f.mm, a, 2 * PAGE_SIZE, PROT_READ));
  EXPECT_EQ(flags_at(a) & VM_ACCOUNT, VM_ACCOUNT);  // it has an anon_vma now: stays charged
  // RLIMIT_DATA: turning 4 more pages into data would exceed it.
  map_at(8, 4, PROT_READ);
  f.rlimits[Rlim::Data].cur = (f.mm->data_vm + 3) * PAGE_SIZE;
  EXPECT_EQ(err_of(do_mprotect(*f.mm, pg(8), 4 * PAGE_SIZE, PROT_READ | PROT_WRITE)), ENOMEM);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, pg(8), 3 * PAGE_SIZE, PROT_READ | PROT_WRITE)), 0);
  EXPECT_EQ(ok(), "");
}

TEST_P(MprotectTest, LockedPrivateMappingBreaksCowWhenMadeWritable) {
  const vaddr_t a = map_at(0, 3, PROT_READ, MAP_LOCKED);
  EXPECT_EQ(pfn_at(a), f.m.phys.zero_pfn());  // populated read-only: the zero page
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 0);
  ASSERT_TRUE(do_mprotect(*f.mm, a, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 3);
  for (int i = 0; i < 3; ++i) {
    const pfn_t p = pfn_at(a + i * PAGE_SIZE);
    EXPECT_NE(p, f.m.phys.zero_pfn());
    EXPECT_TRUE(desc(p).flags & PG_mlocked);
  }
  EXPECT_EQ(f.mm->locked_vm, 3U);
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(MprotectTest);

}  // namespace
}  // namespace mmemu::test
