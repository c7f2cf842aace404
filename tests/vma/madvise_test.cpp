// madvise: errno for errno with Linux 6.18 (measured natively), flag advice splitting and
// merging VMAs, DONTNEED and FREE on the page tables and frames, POPULATE_READ/WRITE with
// their partial-population semantics, and REMOVE punching a hole in shmem.
#include "syscall_test_util.hpp"

namespace mmemu::test {
namespace {

class MadviseTest : public SyscallTest {
 protected:
  int adv(vaddr_t a, std::uint64_t len, int advice) {
    return err_of(do_madvise(*f.mm, a, len, advice));
  }
  std::vector<std::uint8_t> resident(vaddr_t a, std::uint64_t pages) {
    auto r = do_mincore(*f.mm, a, pages * PAGE_SIZE);
    EXPECT_TRUE(r);
    return r ? *r : std::vector<std::uint8_t>{};
  }
  using Bytes = std::vector<std::uint8_t>;
};

constexpr std::uint64_t P = PAGE_SIZE;

TEST_P(MadviseTest, ErrnoLikeLinux) {
  const vaddr_t a = map_at(8, 8);
  EXPECT_EQ(adv(a, P, 999), EINVAL);
  EXPECT_EQ(adv(a + 1, P, 999), EINVAL);
  EXPECT_EQ(adv(pg(0), P, 999), EINVAL);
  EXPECT_EQ(adv(a, P, -1), EINVAL);
  EXPECT_EQ(adv(a, P, 104), EINVAL);
  EXPECT_EQ(adv(a, P, 5), EINVAL);  // unused advice numbers
  EXPECT_EQ(adv(a + 1, P, MADV_NORMAL), EINVAL);
  EXPECT_EQ(adv(pg(0), 0, MADV_NORMAL), 0);
  EXPECT_EQ(adv(a, ~0ULL, MADV_NORMAL), EINVAL);  // rounds to 0 from non-zero
  EXPECT_EQ(adv(a, -P, MADV_NORMAL), EINVAL);     // wraps
  EXPECT_EQ(adv(pg(0), P, MADV_NORMAL), ENOMEM);
  EXPECT_EQ(adv(pg(0), P, MADV_DONTNEED), ENOMEM);
  EXPECT_EQ(adv(pg(0), P, MADV_WILLNEED), ENOMEM);
  EXPECT_EQ(adv(pg(0), 0, MADV_POPULATE_READ), 0);
  // Not modelled (see madvise.cpp): EINVAL.
  EXPECT_EQ(adv(a, P, MADV_COLLAPSE), EINVAL);
  EXPECT_EQ(adv(a, P, MADV_HWPOISON), EINVAL);
  // Accepted advice that needs nothing here.
  for (int advice : {MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM, MADV_WILLNEED, MADV_COLD,
                     MADV_PAGEOUT, MADV_DONTDUMP, MADV_DODUMP, MADV_MERGEABLE, MADV_UNMERGEABLE,
                     MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK,
                     MADV_KEEPONFORK, MADV_FREE, MADV_DONTNEED})
    EXPECT_EQ(adv(a, P, advice), 0) << advice;
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, HolesAreEnomemAfterTheWorkAroundThem) {
  const vaddr_t a = map_at(8, 8);
  EXPECT_EQ(adv(a + 6 * P, 4 * P, MADV_RANDOM), ENOMEM);
  EXPECT_EQ(area_layout(), (Layout{{8, 14}, {14, 16}}));
  EXPECT_TRUE(flags_at(a + 6 * P) & VM_RAND_READ);
  // Starting in a hole: the VMA after it is still advised.
  EXPECT_EQ(adv(a - 2 * P, 4 * P, MADV_DONTFORK), ENOMEM);
  EXPECT_EQ(area_layout(), (Layout{{8, 10}, {10, 14}, {14, 16}}));
  EXPECT_TRUE(flags_at(a) & VM_DONTCOPY);
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, FlagAdviceSplitsAndMerges) {
  const vaddr_t a = map_at(0, 2);
  EXPECT_EQ(adv(a, P, MADV_WIPEONFORK), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 1}, {1, 2}}));
  EXPECT_TRUE(flags_at(a) & VM_WIPEONFORK);
  EXPECT_EQ(adv(a, P, MADV_KEEPONFORK), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 2}}));
  EXPECT_EQ(adv(a, P, MADV_HUGEPAGE), 0);
  EXPECT_EQ(flags_at(a) & (VM_HUGEPAGE | VM_NOHUGEPAGE), VM_HUGEPAGE);
  EXPECT_EQ(adv(a, P, MADV_NOHUGEPAGE), 0);
  EXPECT_EQ(flags_at(a) & (VM_HUGEPAGE | VM_NOHUGEPAGE), VM_NOHUGEPAGE);
  EXPECT_EQ(adv(a + P, P, MADV_MERGEABLE), 0);
  EXPECT_TRUE(flags_at(a + P) & VM_MERGEABLE);
  EXPECT_EQ(adv(a, 2 * P, MADV_DONTDUMP), 0);
  EXPECT_TRUE(flags_at(a) & VM_DONTDUMP);
  EXPECT_EQ(adv(a, 2 * P, MADV_SEQUENTIAL), 0);
  EXPECT_EQ(flags_at(a) & (VM_SEQ_READ | VM_RAND_READ), VM_SEQ_READ);
  EXPECT_EQ(adv(a, 2 * P, MADV_RANDOM), 0);
  EXPECT_EQ(flags_at(a) & (VM_SEQ_READ | VM_RAND_READ), VM_RAND_READ);
  EXPECT_EQ(adv(a, 2 * P, MADV_NORMAL), 0);
  EXPECT_EQ(flags_at(a) & (VM_SEQ_READ | VM_RAND_READ), 0U);
  // Shared and file mappings cannot be wiped on fork; KSM ignores shared memory.
  const vaddr_t s = map_shared_at(8, 2);
  EXPECT_EQ(adv(s, P, MADV_WIPEONFORK), EINVAL);
  EXPECT_EQ(adv(s, P, MADV_KEEPONFORK), 0);
  EXPECT_EQ(adv(s, P, MADV_MERGEABLE), 0);
  EXPECT_FALSE(flags_at(s) & VM_MERGEABLE);
  const vaddr_t p = map_file_at(16, 1, PROT_READ, MAP_PRIVATE);
  EXPECT_EQ(adv(p, P, MADV_WIPEONFORK), EINVAL);
  // VM_IO cannot be forked; VM_SPECIAL cannot be dumped.
  const_cast<Vma*>(vma_at(p))->vm_flags |= VM_IO;
  EXPECT_EQ(adv(p, P, MADV_DOFORK), EINVAL);
  EXPECT_EQ(adv(p, P, MADV_DODUMP), EINVAL);
  const_cast<Vma*>(vma_at(p))->vm_flags &= ~VM_IO;
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, FlagChangeFailureIsEagain) {
  const vaddr_t a = map_at(0, 4);
  f.m.inject.fail_nth(AllocSite::Vma, 1);  // the split's VMA copy
  EXPECT_EQ(adv(a + P, P, MADV_DONTFORK), EAGAIN);
  EXPECT_EQ(area_layout(), (Layout{{0, 4}}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, DontneedDropsPagesButNotSharedData) {
  const vaddr_t a = map_at(0, 8);
  touch_all(a, 8);
  f.write8(a + 2 * P, 7);
  const pfn_t gone = pfn_at(a + 2 * P);
  flush.events.clear();
  EXPECT_EQ(adv(a + 2 * P, 2 * P, MADV_DONTNEED), 0);
  EXPECT_EQ(resident(a, 8), (Bytes{1, 1, 0, 0, 1, 1, 1, 1}));
  EXPECT_TRUE(f.m.phys.is_free(gone));
  EXPECT_TRUE(flush.covers(a + 2 * P, a + 4 * P));
  EXPECT_EQ(f.read8(a + 2 * P), 0);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 6);
  // Locked memory refuses DONTNEED but not DONTNEED_LOCKED.
  ASSERT_TRUE(do_mlock(*f.mm, a, 2 * P, 0));
  EXPECT_EQ(adv(a, 4 * P, MADV_DONTNEED), EINVAL);
  EXPECT_EQ(adv(a, 2 * P, MADV_DONTNEED_LOCKED), 0);
  EXPECT_EQ(resident(a, 2), (Bytes{0, 0}));
  // Shared anonymous memory keeps its data in shmem.
  const vaddr_t s = map_shared_at(16, 2);
  f.write8(s, 9);
  EXPECT_EQ(adv(s, 2 * P, MADV_DONTNEED), 0);
  EXPECT_FALSE(pte(s));
  EXPECT_EQ(f.read8(s), 9);
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, FreeMakesPagesLazyCleanAndOld) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 2);
  ASSERT_EQ(f.touch(a + 2 * P, Access::Read), FaultResult::Ok);  // zero page
  const PteFormat& fmt = f.mm->fmt();
  ASSERT_TRUE(fmt.dirty(*pte(a)));
  flush.events.clear();
  EXPECT_EQ(adv(a, 4 * P, MADV_FREE), 0);
  for (int i = 0; i < 2; ++i) {
    const pte_t e = *pte(a + i * P);
    EXPECT_FALSE(fmt.dirty(e));
    EXPECT_FALSE(fmt.young(e));
    EXPECT_TRUE(fmt.present(e));
    EXPECT_TRUE(desc(fmt.pfn(e)).flags & PG_lazyfree);
  }
  EXPECT_TRUE(flush.covers(a, a + 2 * P));
  EXPECT_EQ(pfn_at(a + 2 * P), f.m.phys.zero_pfn());
  EXPECT_FALSE(desc(f.m.phys.zero_pfn()).flags & PG_lazyfree);
  EXPECT_EQ(f.read8(a), 0);  // still mapped, still readable
  // Private anonymous memory only; not locked memory.
  const vaddr_t s = map_shared_at(8, 1);
  EXPECT_EQ(adv(s, P, MADV_FREE), EINVAL);
  const vaddr_t p = map_file_at(12, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  EXPECT_EQ(adv(p, P, MADV_FREE), EINVAL);
  ASSERT_TRUE(do_mlock(*f.mm, a, P, 0));
  EXPECT_EQ(adv(a, P, MADV_FREE), EINVAL);
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, PopulateRead) {
  const vaddr_t a = map_at(0, 4);
  EXPECT_EQ(adv(a, 4 * P, MADV_POPULATE_READ), 0);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(pfn_at(a + i * P), f.m.phys.zero_pfn());  // private anonymous: the zero page
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 0);
  // A file beyond its end: SIGBUS becomes EFAULT, the pages before it stay populated.
  const vaddr_t p = map_file_at(8, 4, PROT_READ, MAP_PRIVATE, true, 1);
  EXPECT_EQ(adv(p, 4 * P, MADV_POPULATE_READ), EFAULT);
  EXPECT_EQ(resident(p, 4), (Bytes{1, 0, 0, 0}));
  // Not readable: EINVAL (PROT_NONE, write-only, exec-only, VM_IO/VM_PFNMAP).
  EXPECT_EQ(adv(map_at(16, 1, PROT_NONE), P, MADV_POPULATE_READ), EINVAL);
  EXPECT_EQ(adv(map_at(18, 1, PROT_WRITE), P, MADV_POPULATE_READ), EINVAL);
  EXPECT_EQ(adv(map_at(20, 1, PROT_EXEC), P, MADV_POPULATE_READ), EINVAL);
  const vaddr_t io = map_at(22, 1, PROT_READ);
  const_cast<Vma*>(vma_at(io))->vm_flags |= VM_PFNMAP;
  EXPECT_EQ(adv(io, P, MADV_POPULATE_READ), EINVAL);
  const_cast<Vma*>(vma_at(io))->vm_flags &= ~VM_PFNMAP;
  EXPECT_EQ(adv(pg(100), P, MADV_POPULATE_READ), ENOMEM);
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, PopulateWriteBreaksCowAndStopsAtProblems) {
  const vaddr_t a = map_at(0, 4);
  ASSERT_EQ(f.touch(a, Access::Read), FaultResult::Ok);
  EXPECT_EQ(adv(a, 4 * P, MADV_POPULATE_WRITE), 0);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 4);
  EXPECT_NE(pfn_at(a), f.m.phys.zero_pfn());  // the zero page was replaced
  EXPECT_TRUE(f.mm->fmt().write(*pte(a)));
  EXPECT_TRUE(f.mm->fmt().dirty(*pte(a + 3 * P)));
  // [rw][hole]: the rw part is populated, then ENOMEM.
  const vaddr_t b = map_at(10, 2);
  EXPECT_EQ(adv(b, 4 * P, MADV_POPULATE_WRITE), ENOMEM);
  EXPECT_EQ(resident(b, 2), (Bytes{1, 1}));
  // [hole][rw]: ENOMEM at once.
  const vaddr_t c = map_at(22, 2);
  EXPECT_EQ(adv(c - 2 * P, 4 * P, MADV_POPULATE_WRITE), ENOMEM);
  EXPECT_EQ(resident(c, 2), (Bytes{0, 0}));
  // [rw][ro]: EINVAL after the rw part.
  const vaddr_t d = map_at(30, 2);
  map_at(32, 2, PROT_READ);
  EXPECT_EQ(adv(d, 4 * P, MADV_POPULATE_WRITE), EINVAL);
  EXPECT_EQ(resident(d, 4), (Bytes{1, 1, 0, 0}));
  EXPECT_EQ(adv(map_at(40, 1, PROT_WRITE), P, MADV_POPULATE_WRITE), 0);  // write-only is fine
  // Shared memory is written in place; a clean entry's page is marked dirty (FOLL_TOUCH).
  const vaddr_t s = map_shared_at(50, 1);
  ASSERT_EQ(f.touch(s, Access::Read), FaultResult::Ok);
  const pfn_t sp = pfn_at(s);
  EXPECT_FALSE(desc(sp).flags & PG_dirty);
  EXPECT_EQ(adv(s, P, MADV_POPULATE_WRITE), 0);
  EXPECT_EQ(pfn_at(s), sp);
  EXPECT_TRUE(desc(sp).flags & PG_dirty);
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, RemovePunchesAHoleInShmem) {
  const vaddr_t a = map_at(0, 2);
  EXPECT_EQ(adv(a, P, MADV_REMOVE), EINVAL);  // private anonymous
  const vaddr_t p = map_file_at(4, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  EXPECT_EQ(adv(p, P, MADV_REMOVE), EACCES);  // not shared
  const vaddr_t s = map_shared_at(8, 4);
  for (int i = 0; i < 4; ++i)
    f.write8(s + i * P, static_cast<std::uint8_t>(10 + i));
  File* shm = vma_at(s)->vm_file;
  const pfn_t hole = shm->cached_page(1);
  ASSERT_NE(hole, 0U);
  EXPECT_EQ(adv(s + P, 2 * P, MADV_REMOVE), 0);
  EXPECT_FALSE(pte(s + P));
  EXPECT_EQ(shm->cached_page(1), 0U);
  EXPECT_EQ(shm->cached_page(2), 0U);
  EXPECT_TRUE(f.m.phys.is_free(hole));
  EXPECT_EQ(f.read8(s), 10);
  EXPECT_EQ(f.read8(s + P), 0);  // the hole reads zero
  EXPECT_EQ(f.read8(s + 3 * P), 13);
  // Read-only shared is still "may write": allowed. Locked: EINVAL.
  const vaddr_t ro = map_shared_at(20, 1, PROT_READ);
  EXPECT_EQ(adv(ro, P, MADV_REMOVE), 0);
  ASSERT_TRUE(do_mlock(*f.mm, s, P, 0));
  EXPECT_EQ(adv(s, P, MADV_REMOVE), EINVAL);
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, WillneedReadsAFileIntoThePageCache) {
  const vaddr_t p = map_file_at(0, 4, PROT_READ, MAP_PRIVATE, true, 3);
  File* file = vma_at(p)->vm_file;
  EXPECT_TRUE(file->page_cache().empty());
  EXPECT_EQ(adv(p, 4 * P, MADV_WILLNEED), 0);
  EXPECT_EQ(file->page_cache().size(), 3U);  // not past the end of the file
  EXPECT_FALSE(pte(p));                      // nothing is mapped
  EXPECT_EQ(resident(p, 4), (Bytes{1, 1, 1, 0}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MadviseTest, ColdMakesPagesOld) {
  const vaddr_t a = map_at(0, 2);
  touch_all(a, 2);
  ASSERT_TRUE(f.mm->fmt().young(*pte(a)));
  EXPECT_EQ(adv(a, 2 * P, MADV_COLD), 0);
  EXPECT_FALSE(f.mm->fmt().young(*pte(a)));
  EXPECT_TRUE(f.mm->fmt().dirty(*pte(a)));
  ASSERT_TRUE(do_mlock(*f.mm, a, P, 0));
  EXPECT_EQ(adv(a, 2 * P, MADV_COLD), EINVAL);
  EXPECT_EQ(adv(a, 2 * P, MADV_PAGEOUT), EINVAL);
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(MadviseTest);

}  // namespace
}  // namespace mmemu::test
