// mremap: errno for errno with Linux 6.18 (measured natively), shrinking and growing in
// place, and moves that carry the page-table entries — the same frames, found by rmap at
// their new address — with MREMAP_FIXED, MREMAP_DONTUNMAP and the multi-VMA move.
#include "syscall_test_util.hpp"
#include "vma/rmap.hpp"

namespace mmemu::test {
namespace {

class MremapTest : public SyscallTest {
 protected:
  Result<vaddr_t> mremap(vaddr_t a, std::uint64_t old_len, std::uint64_t new_len, int flags = 0,
                         vaddr_t new_addr = 0) {
    return do_mremap(*f.mm, a, old_len, new_len, flags, new_addr);
  }
  // Writes page i of [a, a + pages) with the byte i + 1 and returns the frames.
  std::vector<pfn_t> fill(vaddr_t a, std::uint64_t pages) {
    std::vector<pfn_t> out;
    for (std::uint64_t i = 0; i < pages; ++i) {
      f.write8(a + i * PAGE_SIZE, static_cast<std::uint8_t>(i + 1));
      out.push_back(pfn_at(a + i * PAGE_SIZE));
    }
    return out;
  }
  std::vector<pfn_t> frames(vaddr_t a, std::uint64_t pages) {
    std::vector<pfn_t> out;
    for (std::uint64_t i = 0; i < pages; ++i)
      out.push_back(pfn_at(a + i * PAGE_SIZE));
    return out;
  }
  // Every (mm, address) rmap finds for pfn.
  std::vector<vaddr_t> rmap_addrs(pfn_t pfn) {
    std::vector<vaddr_t> out;
    rmap_walk(f.m.phys, pfn, [&](const RmapHit& h) { out.push_back(h.addr); });
    return out;
  }
};

constexpr int kMay = MREMAP_MAYMOVE;
constexpr int kFixed = MREMAP_FIXED | MREMAP_MAYMOVE;
constexpr int kDontunmap = MREMAP_DONTUNMAP | MREMAP_MAYMOVE;
constexpr std::uint64_t P = PAGE_SIZE;

TEST_P(MremapTest, ErrnoLikeLinux) {
  const vaddr_t a = map_at(8, 4);
  const vaddr_t hole = pg(100);
  EXPECT_EQ(err_of(mremap(a, P, P, 8)), EINVAL);
  EXPECT_EQ(err_of(mremap(a + 1, P, P)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, P, 0)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, P, 0, kMay)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, P, P, MREMAP_FIXED, hole)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, P, P, kFixed, hole + 1)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, P, 2 * P, kDontunmap)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, P, P, MREMAP_DONTUNMAP)), EINVAL);
  EXPECT_EQ(err_of(mremap(hole, P, P)), EFAULT);
  EXPECT_EQ(err_of(mremap(hole, P, 2 * P, kMay)), EFAULT);
  EXPECT_EQ(err_of(mremap(hole, 2 * P, P)), EFAULT);
  EXPECT_EQ(err_of(mremap(hole, P, P, kFixed, hole)), EINVAL);  // parameters first
  EXPECT_EQ(err_of(mremap(hole, P, 1ULL << 48)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, 8 * P, 10 * P, kMay)), EFAULT);  // across the VMA's end
  EXPECT_EQ(err_of(mremap(a, 0, P, kMay)), EINVAL);           // duplicating a private one
  EXPECT_EQ(err_of(mremap(a, ~0ULL, P)), EINVAL);             // old_len rounds to 0
  EXPECT_EQ(err_of(mremap(a, P, ~0ULL)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, 2 * P, 2 * P, kFixed, a + P)), EINVAL);  // overlap
  EXPECT_EQ(err_of(mremap(a, 2 * P, 2 * P, kFixed, f.mm->task_size - P)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, 4 * P, 1ULL << 48, kMay)), EINVAL);
  EXPECT_EQ(err_of(mremap(a, 4 * P, -P, kMay)), EINVAL);
  // Same size, even across the VMA's end, is a no-op returning addr.
  EXPECT_EQ(*mremap(a, 8 * P, 8 * P), a);
  EXPECT_EQ(*mremap(a, 4 * P - 5, 4 * P), a);
  // Growing is blocked by the next mapping, and a middle part cannot grow in place.
  map_at(12, 1, PROT_READ);
  EXPECT_EQ(err_of(mremap(a, 4 * P, 5 * P)), ENOMEM);
  EXPECT_EQ(err_of(mremap(a, 2 * P, 3 * P)), ENOMEM);
  EXPECT_EQ(ok(), "");
}

// check_prep_vma: the part a shrink unmaps may cross VMA boundaries (and holes); only the
// part that stays must lie in the first VMA.
TEST_P(MremapTest, AShrinkMayCrossVmaBoundariesInThePartItUnmaps) {
  const vaddr_t a = map_at(0, 2);
  map_at(3, 2, PROT_READ);
  EXPECT_EQ(err_of(do_mremap(*f.mm, a, 5 * PAGE_SIZE, PAGE_SIZE, 0, 0)), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 1}}));
  map_at(4, 2);
  // Moving while shrinking: the same rule, then the kept page moves.
  auto r = do_mremap(*f.mm, pg(4), 4 * PAGE_SIZE, PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, pg(10));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, pg(10));
  EXPECT_EQ(area_layout(), (Layout{{0, 1}, {10, 11}}));
  EXPECT_EQ(err_of(do_mremap(*f.mm, pg(10), 2 * PAGE_SIZE, 3 * PAGE_SIZE, 0, 0)), EFAULT);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, ShrinkUnmapsTheTail) {
  const vaddr_t a = map_at(8, 4);
  const auto fr = fill(a, 4);
  EXPECT_EQ(*mremap(a, 4 * P, P + 1), a);  // new_len rounds up to 2 pages
  EXPECT_EQ(area_layout(), (Layout{{8, 10}}));
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 2);
  EXPECT_TRUE(f.m.phys.is_free(fr[2]));
  EXPECT_TRUE(f.m.phys.is_free(fr[3]));
  // A shrink without a new address needs no VMA past the new end: the rest of the old range
  // is simply unmapped, holes and all.
  map_at(12, 1);
  EXPECT_EQ(*mremap(a, 8 * P, P), a);
  EXPECT_EQ(area_layout(), (Layout{{8, 9}}));
  EXPECT_EQ(f.read8(a), 1);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, GrowInPlaceKeepsTheVmaAndFrames) {
  const vaddr_t a = map_at(8, 2);
  const auto fr = fill(a, 2);
  const Vma* v = vma_at(a);
  EXPECT_EQ(*mremap(a, 2 * P, 5 * P), a);
  EXPECT_EQ(area_layout(), (Layout{{8, 13}}));
  EXPECT_EQ(vma_at(a), v);
  EXPECT_EQ(frames(a, 2), fr);
  EXPECT_EQ(f.mm->total_vm, 5U);
  EXPECT_EQ(f.mm->data_vm, 5U);
  f.write8(a + 4 * P, 5);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, GrowInPlaceMergesWithTheNextVma) {
  const vaddr_t g = map_at(4, 2);
  map_at(8, 2);
  EXPECT_EQ(*mremap(g, 2 * P, 4 * P), g);
  EXPECT_EQ(area_layout(), (Layout{{4, 10}}));
  EXPECT_EQ(f.mm->map_count, 1);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, MaymoveMovesTheEntriesNotTheData) {
  const vaddr_t a = map_at(8, 4);
  map_at(12, 1, PROT_READ);  // blocks growth in place
  const auto fr = fill(a, 4);
  const Vma* old = vma_at(a);
  const AnonVma* av = old->anon_vma;
  const std::uint64_t pgoff = old->vm_pgoff;
  const std::uint64_t copies = f.m.inject.attempts(AllocSite::Page);
  flush.events.clear();
  auto r = mremap(a, 4 * P, 8 * P, kMay);
  ASSERT_TRUE(r) << errno_name(err_of(r));
  const vaddr_t n = *r;
  EXPECT_NE(n, a);
  EXPECT_EQ(frames(n, 4), fr);                              // the same frames...
  EXPECT_EQ(f.m.inject.attempts(AllocSite::Page), copies);  // ...none allocated
  EXPECT_EQ(vma_at(n)->anon_vma, av);                       // same anon_vma
  EXPECT_EQ(vma_at(n)->vm_pgoff, pgoff);                    // same page offset
  EXPECT_EQ(vma_at(n)->vm_end - vma_at(n)->vm_start, 8 * P);
  for (std::uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(rmap_addrs(fr[i]), std::vector<vaddr_t>{n + i * P});  // rmap finds the new place
    EXPECT_EQ(desc(fr[i]).mapcount, 1);
    EXPECT_EQ(f.read8(n + i * P), i + 1);
  }
  EXPECT_TRUE(flush.covers(a, a + 4 * P));  // the old translations are gone
  EXPECT_EQ(f.touch(a, Access::Read), FaultResult::SegvMapErr);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 4);
  EXPECT_EQ(f.mm->total_vm, 9U);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, FixedReplacesWhatIsThere) {
  const vaddr_t a = map_at(8, 2);
  const auto fr = fill(a, 2);
  const vaddr_t t = map_at(40, 4);
  const auto victim = fill(t, 4);
  ASSERT_EQ(*mremap(a, 2 * P, 2 * P, kFixed, t + P), t + P);
  EXPECT_EQ(area_layout(), (Layout{{40, 41}, {41, 43}, {43, 44}}));
  EXPECT_EQ(frames(t + P, 2), fr);
  EXPECT_TRUE(f.m.phys.is_free(victim[1]));
  EXPECT_TRUE(f.m.phys.is_free(victim[2]));
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 4);
  // Moving with growth to a fixed place: the grown part is fresh memory.
  ASSERT_EQ(*mremap(t + P, 2 * P, 3 * P, kFixed, pg(60)), pg(60));
  EXPECT_EQ(frames(pg(60), 2), fr);
  EXPECT_EQ(f.read8(pg(62)), 0);
  // Shrinking to a fixed place: the tail is unmapped first.
  ASSERT_EQ(*mremap(pg(60), 3 * P, P, kFixed, pg(80)), pg(80));
  EXPECT_EQ(pfn_at(pg(80)), fr[0]);
  EXPECT_TRUE(f.m.phys.is_free(fr[1]));
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, DontunmapLeavesTheOldRangeEmpty) {
  const vaddr_t a = map_at(8, 4);
  const auto fr = fill(a, 4);
  auto r = mremap(a, 2 * P, 2 * P, kDontunmap);
  ASSERT_TRUE(r);
  EXPECT_EQ(frames(*r, 2), (std::vector<pfn_t>{fr[0], fr[1]}));
  EXPECT_EQ(area_layout(), (Layout{{8, 12}}));  // the source VMA stays whole
  EXPECT_FALSE(pte(a));
  EXPECT_EQ(f.read8(a), 0);  // reads the zero page now
  EXPECT_EQ(f.read8(a + 2 * P), 3);
  EXPECT_EQ(f.read8(*r + P), 2);
  // MREMAP_FIXED with DONTUNMAP goes exactly there; moving the whole VMA drops its anon_vmas.
  ASSERT_EQ(*mremap(a + 2 * P, 2 * P, 2 * P, kDontunmap | MREMAP_FIXED, pg(40)), pg(40));
  EXPECT_EQ(frames(pg(40), 2), (std::vector<pfn_t>{fr[2], fr[3]}));
  const vaddr_t w = map_at(50, 2);
  fill(w, 2);
  ASSERT_TRUE(mremap(w, 2 * P, 2 * P, kDontunmap | MREMAP_FIXED, pg(60)));
  EXPECT_EQ(vma_at(w)->anon_vma, nullptr);
  EXPECT_TRUE(vma_at(w)->anon_vma_chain.empty());
  EXPECT_NE(vma_at(pg(60))->anon_vma, nullptr);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, DontunmapWorksOnSharedAndFileMappings) {
  const vaddr_t s = map_shared_at(8, 4);
  f.write8(s, 5);
  auto r = mremap(s, 4 * P, 4 * P, kDontunmap);
  ASSERT_TRUE(r);
  EXPECT_EQ(f.read8(*r), 5);
  EXPECT_EQ(f.read8(s), 5);  // the same shmem page, faulted in again
  const vaddr_t p = map_file_at(20, 1, PROT_READ, MAP_PRIVATE);
  EXPECT_TRUE(mremap(p, P, P, kDontunmap));
  // old_len 0 duplicates a shared mapping.
  auto d = mremap(s, 0, 4 * P, kMay);
  ASSERT_TRUE(d);
  EXPECT_EQ(f.read8(*d), 5);
  EXPECT_EQ(vma_at(*d)->vm_file, vma_at(s)->vm_file);
  EXPECT_EQ(ok(), "");
}

// Linux 6.17+: MREMAP_FIXED without resizing moves every VMA of the range, gaps kept.
TEST_P(MremapTest, MultiVmaMoveKeepsTheGaps) {
  const vaddr_t a = map_at(20, 6);
  ASSERT_TRUE(do_mprotect(*f.mm, a + 2 * P, 2 * P, PROT_READ));
  const auto fr = fill(a, 2);
  ASSERT_EQ(*mremap(a, 6 * P, 6 * P, kFixed, pg(40)), pg(40));
  EXPECT_EQ(area_layout(), (Layout{{40, 42}, {42, 44}, {44, 46}}));
  EXPECT_EQ(frames(pg(40), 2), fr);
  const vaddr_t b = map_at(60, 6);
  ASSERT_TRUE(do_munmap(*f.mm, b + 2 * P, 2 * P));
  ASSERT_EQ(*mremap(b, 6 * P, 6 * P, kFixed, pg(80)), pg(80));
  EXPECT_EQ(area_layout(), (Layout{{40, 42}, {42, 44}, {44, 46}, {80, 82}, {84, 86}}));
  // Not without MREMAP_FIXED, not starting in a gap, not when resizing.
  EXPECT_EQ(err_of(mremap(pg(40), 6 * P, 6 * P, kDontunmap)), EFAULT);
  EXPECT_EQ(*mremap(pg(40), 6 * P, 6 * P, kMay), pg(40));  // no resize, no move: a no-op
  ASSERT_TRUE(do_munmap(*f.mm, pg(40), 2 * P));
  EXPECT_EQ(err_of(mremap(pg(40), 6 * P, 6 * P, kFixed, pg(100))), EFAULT);
  EXPECT_EQ(err_of(mremap(pg(42), 4 * P, 3 * P, kFixed, pg(100))), EFAULT);
  // DONTUNMAP with FIXED moves them all and leaves them all.
  ASSERT_EQ(*mremap(pg(42), 4 * P, 4 * P, kDontunmap | MREMAP_FIXED, pg(100)), pg(100));
  EXPECT_EQ(area_layout(),
            (Layout{{42, 44}, {44, 46}, {80, 82}, {84, 86}, {100, 102}, {102, 104}}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, LockedMemoryIsCountedAndPopulated) {
  const vaddr_t a = map_at(8, 4, PROT_READ | PROT_WRITE, MAP_LOCKED);
  EXPECT_EQ(f.mm->locked_vm, 4U);
  ASSERT_EQ(*mremap(a, 4 * P, 6 * P), a);
  EXPECT_EQ(f.mm->locked_vm, 6U);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 6);  // the grown part was faulted in
  EXPECT_TRUE(desc(pfn_at(a + 5 * P)).flags & PG_mlocked);
  ASSERT_EQ(*mremap(a + 2 * P, 2 * P, 2 * P, kFixed, pg(40)), pg(40));
  EXPECT_EQ(f.mm->locked_vm, 6U);
  EXPECT_TRUE(flags_at(pg(40)) & VM_LOCKED);
  EXPECT_EQ(area_layout(), (Layout{{8, 10}, {12, 14}, {40, 42}}));
  // DONTUNMAP of part of a locked VMA: the whole source VMA loses VM_LOCKED (it is not split)
  // and the pages left in it their PG_mlocked.
  const vaddr_t b = map_at(70, 4, PROT_READ | PROT_WRITE, MAP_LOCKED);
  EXPECT_EQ(f.mm->locked_vm, 10U);
  const pfn_t stay = pfn_at(b + 3 * P);
  ASSERT_TRUE(mremap(b, 2 * P, 2 * P, kDontunmap | MREMAP_FIXED, pg(90)));
  EXPECT_EQ(area_layout(), (Layout{{8, 10}, {12, 14}, {40, 42}, {70, 74}, {90, 92}}));
  EXPECT_FALSE(flags_at(b) & VM_LOCKED);
  EXPECT_TRUE(flags_at(pg(90)) & VM_LOCKED);
  EXPECT_FALSE(desc(stay).flags & PG_mlocked);
  EXPECT_TRUE(desc(pfn_at(pg(90))).flags & PG_mlocked);
  // Linux 6.18 would report 12 here (measured: it never uncounts the source).
  EXPECT_EQ(f.mm->locked_vm, 8U);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, UnprivilegedLimits) {
  f.mm->caps = 0;
  f.rlimits[Rlim::Memlock] = {4 * P, 4 * P};
  const vaddr_t l = map_at(8, 3, PROT_READ | PROT_WRITE, MAP_LOCKED);
  EXPECT_EQ(err_of(mremap(l, 3 * P, 5 * P)), EAGAIN);
  EXPECT_EQ(*mremap(l, 3 * P, 4 * P), l);
  EXPECT_EQ(err_of(mremap(l, 4 * P, 5 * P, kMay)), EAGAIN);
  EXPECT_EQ(*mremap(l, 4 * P, 2 * P), l);
  EXPECT_EQ(f.mm->locked_vm, 2U);
  // A shrinking move of locked memory needs no headroom.
  EXPECT_EQ(*mremap(l, 2 * P, P, kFixed, pg(40)), pg(40));
  f.rlimits[Rlim::As].cur = (f.mm->total_vm + 2) * P;
  const vaddr_t e = map_at(60, 1);
  EXPECT_EQ(err_of(mremap(e, P, 4 * P, kMay)), ENOMEM);
  EXPECT_EQ(ok(), "");
}

// A moved range's page tables go with it: the source's tables are freed by the unmap.
TEST_P(MremapTest, SourceTablesAreFreedAfterAMove) {
  const vaddr_t a = pg(0) + 64 * PMD_SIZE;
  ASSERT_TRUE(sys_mmap(*f.mm, a, 2 * P, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  fill(a, 2);
  const auto tables = f.m.live.live(AllocSite::PgTable);
  const vaddr_t to = pg(0) + 128 * PMD_SIZE;
  ASSERT_EQ(*mremap(a, 2 * P, 2 * P, kFixed, to), to);
  EXPECT_FALSE(f.mm->pt().table_for(a, Level::Pte));
  EXPECT_TRUE(f.mm->pt().table_for(to, Level::Pte));
  EXPECT_EQ(f.m.live.live(AllocSite::PgTable), tables);  // one PTE table made, one freed
  EXPECT_EQ(ok(), "");
}

// Where source and destination line up on a PMD (PUD) boundary over a whole PMD (PUD), the
// kernel moves the PTE (PMD) table itself: the same table frame serves the new address.
TEST_P(MremapTest, AlignedMovesTakeWholeTablesAlong) {
  const vaddr_t a = pg(0) + 64 * PMD_SIZE;
  ASSERT_TRUE(sys_mmap(*f.mm, a, PMD_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  f.write8(a, 1);
  f.write8(a + PMD_SIZE - P, 2);
  const pfn_t table = *f.mm->pt().table_for(a, Level::Pte);
  const pfn_t first = pfn_at(a);
  const auto attempts = f.m.inject.attempts(AllocSite::PgTable);
  const vaddr_t b = pg(0) + 256 * PMD_SIZE;
  ASSERT_EQ(*mremap(a, PMD_SIZE, PMD_SIZE, kFixed, b), b);
  EXPECT_EQ(f.m.inject.attempts(AllocSite::PgTable), attempts);  // no table was needed
  EXPECT_EQ(*f.mm->pt().table_for(b, Level::Pte), table);
  EXPECT_FALSE(f.mm->pt().table_for(a, Level::Pte));
  EXPECT_EQ(pfn_at(b), first);
  EXPECT_EQ(f.read8(b + PMD_SIZE - P), 2);
  EXPECT_TRUE(flush.covers(a, a + PMD_SIZE));
  // A whole GiB moves its PMD table.
  const vaddr_t g = 0x8000000000ULL;
  ASSERT_TRUE(sys_mmap(*f.mm, g, PUD_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  f.write8(g + 5 * PMD_SIZE, 3);
  const pfn_t pmd = *f.mm->pt().table_for(g, Level::Pmd);
  ASSERT_EQ(*mremap(g, PUD_SIZE, PUD_SIZE, kFixed, g + 4 * PUD_SIZE), g + 4 * PUD_SIZE);
  EXPECT_EQ(*f.mm->pt().table_for(g + 4 * PUD_SIZE, Level::Pmd), pmd);
  EXPECT_EQ(f.read8(g + 4 * PUD_SIZE + 5 * PMD_SIZE), 3);
  EXPECT_EQ(ok(), "");
}

// try_realign_addr: a VMA starting inside a PMD and reaching past its end, moved to the same
// offset with nothing mapped below either side, moves from the PMD boundary: its first PTE
// table goes along whole.
TEST_P(MremapTest, MisalignedMoveRealignsToThePmd) {
  const vaddr_t a = pg(0) + 64 * PMD_SIZE + 16 * P;
  const std::uint64_t len = PMD_SIZE - 16 * P + 4 * P;
  ASSERT_TRUE(sys_mmap(*f.mm, a, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  f.write8(a, 1);
  f.write8(a + len - P, 2);
  const pfn_t first_table = *f.mm->pt().table_for(a, Level::Pte);
  const vaddr_t b = pg(0) + 256 * PMD_SIZE + 16 * P;
  ASSERT_EQ(*mremap(a, len, len, kFixed, b), b);
  EXPECT_EQ(*f.mm->pt().table_for(b, Level::Pte), first_table);
  EXPECT_EQ(f.read8(b), 1);
  EXPECT_EQ(f.read8(b + len - P), 2);
  // Something mapped below the destination: entry by entry instead.
  map_at(512 * 300, 1, PROT_READ);
  const vaddr_t c = pg(512 * 300) + 16 * P;
  const pfn_t t2 = *f.mm->pt().table_for(b, Level::Pte);
  ASSERT_EQ(*mremap(b, len, len, kFixed, c), c);
  EXPECT_NE(*f.mm->pt().table_for(c, Level::Pte), t2);
  EXPECT_EQ(f.read8(c), 1);
  EXPECT_EQ(ok(), "");
}

// A destination table that cannot be allocated: the entries already moved go back, the new
// VMA is unmapped, and the call fails with the source exactly as it was.
TEST_P(MremapTest, MoveFailureMovesEverythingBack) {
  const vaddr_t a = map_at(8, 4);
  const auto fr = fill(a, 4);
  const vaddr_t to = pg(0) + 64 * PMD_SIZE - 2 * P;  // the last two pages of a PTE table
  ASSERT_TRUE(sys_mmap(*f.mm, to - 8 * P, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       nullptr, 0));
  ASSERT_EQ(f.touch(to - 8 * P, Access::Read), FaultResult::Ok);  // that table exists
  const Layout before = area_layout(64 * 512 + 8);
  f.m.inject.fail_nth(AllocSite::PgTable, 1);  // the next PTE table, for the last two pages
  EXPECT_EQ(err_of(mremap(a, 4 * P, 4 * P, kFixed, to)), ENOMEM);
  EXPECT_EQ(f.m.inject.failures(AllocSite::PgTable), 1U);
  EXPECT_EQ(area_layout(64 * 512 + 8), before);
  EXPECT_EQ(frames(a, 4), fr);
  for (std::uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(rmap_addrs(fr[i]), std::vector<vaddr_t>{a + i * P});
    EXPECT_EQ(f.read8(a + i * P), i + 1);
  }
  EXPECT_FALSE(pte(to));
  EXPECT_EQ(f.mm->total_vm, 5U);
  EXPECT_EQ(ok(), "");
}

// A moved VMA with pages that merges with a neighbour that has none (copy_vma through
// vma_merge_new_range): the neighbour grows over the moved range and must take over the
// moved VMA's anon_vma (dup_anon_vma from the copied-from VMA, as Linux does since the fix
// for 879bca0a2c4f), or rmap cannot find the pages and the anon_vma is freed under them.
TEST_P(MremapTest, MoveNextToAnUnfaultedPrevHandsItTheAnonVma) {
  map_at(1, 1, PROT_READ);  // keeps X apart while it is set up
  const vaddr_t x = map_at(2, 1);
  const auto fr = fill(x, 1);
  const AnonVma* av = vma_at(x)->anon_vma;
  ASSERT_EQ(*mremap(x, P, P, kFixed, pg(6)), pg(6));
  ASSERT_TRUE(do_munmap(*f.mm, pg(1), P));
  map_at(1, 1);  // unfaulted, page offset right before X's
  ASSERT_EQ(*mremap(pg(6), P, P, kFixed, pg(2)), pg(2));
  EXPECT_EQ(area_layout(), (Layout{{1, 3}}));
  EXPECT_EQ(vma_at(pg(1))->anon_vma, av);
  EXPECT_EQ(rmap_addrs(fr[0]), std::vector<vaddr_t>{pg(2)});
  EXPECT_EQ(f.read8(pg(2)), 1);
  EXPECT_EQ(ok(), "");
}

TEST_P(MremapTest, MoveNextToAnUnfaultedNextHandsItTheAnonVma) {
  const vaddr_t x = map_at(2, 1);
  const auto fr = fill(x, 1);
  const AnonVma* av = vma_at(x)->anon_vma;
  ASSERT_EQ(*mremap(x, P, P, kFixed, pg(6)), pg(6));
  map_at(3, 1);  // unfaulted, page offset right after X's
  ASSERT_EQ(*mremap(pg(6), P, P, kFixed, pg(2)), pg(2));
  EXPECT_EQ(area_layout(), (Layout{{2, 4}}));
  EXPECT_EQ(vma_at(pg(3))->anon_vma, av);
  EXPECT_EQ(rmap_addrs(fr[0]), std::vector<vaddr_t>{pg(2)});
  EXPECT_EQ(f.read8(pg(2)), 1);
  EXPECT_EQ(ok(), "");
}

// The anon_vma link that merge needs cannot be allocated: ENOMEM, nothing moved.
TEST_P(MremapTest, MoveMergeWithoutMemoryForTheLinkChangesNothing) {
  map_at(1, 1, PROT_READ);
  const vaddr_t x = map_at(2, 1);
  const auto fr = fill(x, 1);
  ASSERT_EQ(*mremap(x, P, P, kFixed, pg(6)), pg(6));
  ASSERT_TRUE(do_munmap(*f.mm, pg(1), P));
  map_at(1, 1);
  const Layout before = area_layout();
  f.m.inject.fail_nth(AllocSite::AnonVma, 1);
  EXPECT_EQ(err_of(mremap(pg(6), P, P, kFixed, pg(2))), ENOMEM);
  EXPECT_EQ(f.m.inject.failures(AllocSite::AnonVma), 1U);
  EXPECT_EQ(area_layout(), before);
  EXPECT_EQ(vma_at(pg(1))->anon_vma, nullptr);
  EXPECT_EQ(rmap_addrs(fr[0]), std::vector<vaddr_t>{pg(6)});
  EXPECT_EQ(f.read8(pg(6)), 1);
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(MremapTest);

}  // namespace
}  // namespace mmemu::test
