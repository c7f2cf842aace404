#include "mmu/page_table.hpp"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "mmu/free_pgd_range.hpp"
#include "mmu/tlb_flush.hpp"
#include "pt_test_util.hpp"

namespace mmemu {
namespace {

using test::PtFixture;

class PageTableTest : public ::testing::TestWithParam<Arch> {
 protected:
  PtFixture fx{GetParam()};
  PageTable& pt() { return *fx.pt; }
  std::int64_t live_tables() const { return fx.m.live.live(AllocSite::PgTable); }
};

TEST_P(PageTableTest, CreateAllocatesOnlyThePgd) {
  EXPECT_EQ(pt().arch(), GetParam());
  EXPECT_EQ(pt().fmt().arch(), GetParam());
  EXPECT_EQ(pt().nr_tables(Level::Pgd), 1U);
  EXPECT_EQ(pt().nr_tables(Level::Pud), 0U);
  EXPECT_EQ(pt().nr_tables(Level::Pmd), 0U);
  EXPECT_EQ(pt().nr_tables(Level::Pte), 0U);
  EXPECT_EQ(pt().nr_tables_total(), 1U);
  EXPECT_EQ(live_tables(), 1);
  EXPECT_EQ(fx.m.inject.attempts(AllocSite::PgTable), 1U);
  const PageDesc& d = fx.m.phys.desc(pt().pgd());
  EXPECT_EQ(d.refcount, 1U);
  EXPECT_EQ(d.flags, PG_pgtable);
  EXPECT_EQ(pt().nr_used_entries(pt().pgd()), 0U);
  fx.pt.reset();
  EXPECT_EQ(live_tables(), 0);
}

TEST_P(PageTableTest, CreateFailsCleanlyWhenInjected) {
  Machine m(test::kTestPhys);
  m.inject.fail_nth(AllocSite::PgTable, 1);
  auto r = PageTable::create(m.phys, GetParam());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errno{ENOMEM});
  EXPECT_EQ(m.live.live(AllocSite::PgTable), 0);
}

TEST_P(PageTableTest, AllocBuildsEachMissingLevelOnce) {
  const PteFormat& f = pt().fmt();
  EXPECT_FALSE(pt().lookup(0x400000).has_value());
  EXPECT_FALSE(pt().table_for(0x400000, Level::Pud).has_value());
  EXPECT_EQ(pt().table_for(0x400000, Level::Pgd), pt().pgd());

  auto ref = pt().alloc(0x400000);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(pt().nr_tables(Level::Pud), 1U);
  EXPECT_EQ(pt().nr_tables(Level::Pmd), 1U);
  EXPECT_EQ(pt().nr_tables(Level::Pte), 1U);
  EXPECT_EQ(fx.m.inject.attempts(AllocSite::PgTable), 4U);
  EXPECT_EQ(live_tables(), 4);
  // Each level's entry points at the next table, in the architecture's table format.
  const pfn_t pud = *pt().table_for(0x400000, Level::Pud);
  const pfn_t pmd = *pt().table_for(0x400000, Level::Pmd);
  const pfn_t pte = *pt().table_for(0x400000, Level::Pte);
  EXPECT_EQ(pt().get({pt().pgd(), 0}), f.mk_table(pud));
  EXPECT_EQ(pt().get({pud, 0}), f.mk_table(pmd));
  EXPECT_EQ(pt().get({pmd, 2}), f.mk_table(pte));
  EXPECT_EQ(*ref, (PteRef{pte, 0}));
  EXPECT_EQ(pt().lookup(0x400000), *ref);
  for (pfn_t t : {pud, pmd, pte})
    EXPECT_EQ(fx.m.phys.desc(t).flags, PG_pgtable);

  // Same PTE table: nothing new.
  auto ref2 = pt().alloc(0x5ff000);
  ASSERT_TRUE(ref2.has_value());
  EXPECT_EQ(*ref2, (PteRef{pte, 511}));
  EXPECT_EQ(fx.m.inject.attempts(AllocSite::PgTable), 4U);
  // Next PMD range: one PTE table. Next PUD range: PMD + PTE. Next PGD range: PUD + PMD + PTE.
  ASSERT_TRUE(pt().alloc(0x600000).has_value());
  EXPECT_EQ(fx.m.inject.attempts(AllocSite::PgTable), 5U);
  ASSERT_TRUE(pt().alloc(0x40000000).has_value());
  EXPECT_EQ(fx.m.inject.attempts(AllocSite::PgTable), 7U);
  ASSERT_TRUE(pt().alloc(0x8000000000).has_value());
  EXPECT_EQ(fx.m.inject.attempts(AllocSite::PgTable), 10U);
  EXPECT_EQ(pt().nr_tables(Level::Pud), 2U);
  EXPECT_EQ(pt().nr_tables(Level::Pmd), 3U);
  EXPECT_EQ(pt().nr_tables(Level::Pte), 4U);
  EXPECT_EQ(pt().nr_tables_total(), 10U);
  EXPECT_EQ(live_tables(), 10);
  EXPECT_EQ(pt().nr_used_entries(pt().pgd()), 2U);
  EXPECT_EQ(pt().nr_used_entries(pud), 2U);
  EXPECT_EQ(pt().nr_used_entries(pmd), 2U);
}

TEST_P(PageTableTest, ForEachTableIsDepthFirstWithBases) {
  ASSERT_TRUE(pt().alloc(0x8000001000).has_value());
  ASSERT_TRUE(pt().alloc(0x40200000).has_value());
  ASSERT_TRUE(pt().alloc(0x400000).has_value());
  std::vector<std::tuple<Level, vaddr_t>> seen;
  std::vector<pfn_t> pfns;
  pt().for_each_table([&](pfn_t t, Level l, vaddr_t base) {
    seen.emplace_back(l, base);
    pfns.push_back(t);
  });
  const std::vector<std::tuple<Level, vaddr_t>> want{
      {Level::Pgd, 0},
      {Level::Pud, 0},
      {Level::Pmd, 0},
      {Level::Pte, 0x400000},
      {Level::Pmd, 0x40000000},
      {Level::Pte, 0x40200000},
      {Level::Pud, 0x8000000000},
      {Level::Pmd, 0x8000000000},
      {Level::Pte, 0x8000000000},
  };
  EXPECT_EQ(seen, want);
  EXPECT_EQ(pfns.front(), pt().pgd());
  EXPECT_EQ(pfns[3], *pt().table_for(0x400000, Level::Pte));
}

TEST_P(PageTableTest, ForEachPteVisitsNonNoneLeavesInRangeInOrder) {
  const vaddr_t vas[] = {0x400000, 0x401000, 0x5ff000, 0x600000, 0x40000000};
  std::vector<pfn_t> frames;
  for (vaddr_t va : vas)
    frames.push_back(fx.map_page(va));
  // A PROT_NONE entry is visited too (non-none).
  pt().set(*pt().lookup(0x401000), pt().fmt().mk_pte(frames[1], PteProt{}));
  std::vector<std::pair<vaddr_t, pfn_t>> seen;
  pt().for_each_pte(0, ULONG_MAX_ADDR, [&](vaddr_t va, PteRef ref, pte_t e) {
    EXPECT_EQ(pt().get(ref), e);
    EXPECT_EQ(pt().lookup(va), ref);
    seen.emplace_back(va, pt().fmt().pfn(e));
  });
  ASSERT_EQ(seen.size(), 5U);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(seen[i], std::make_pair(vas[i], frames[i]));
  // [start, end): end exclusive, start inclusive.
  seen.clear();
  pt().for_each_pte(0x401000, 0x600000,
                    [&](vaddr_t va, PteRef, pte_t) { seen.emplace_back(va, 0); });
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].first, 0x401000U);
  EXPECT_EQ(seen[1].first, 0x5ff000U);
  seen.clear();
  pt().for_each_pte(0x402000, 0x5ff000,
                    [&](vaddr_t va, PteRef, pte_t) { seen.emplace_back(va, 0); });
  EXPECT_TRUE(seen.empty());
}

TEST_P(PageTableTest, AllocFailureAtEachLevelLeavesEarlierTablesAndNoLeakAfterCleanup) {
  for (std::uint64_t nth = 1; nth <= 3; ++nth) {
    PtFixture f(GetParam());
    const vaddr_t va = 0x7f0000400000;
    f.m.inject.fail_nth(AllocSite::PgTable, nth);
    auto r = f.pt->alloc(va);
    ASSERT_FALSE(r.has_value()) << "nth " << nth;
    EXPECT_EQ(r.error(), Errno{ENOMEM});
    EXPECT_EQ(f.m.inject.failures(AllocSite::PgTable), 1U);
    // The tables allocated before the failing one stay, as in the kernel.
    EXPECT_EQ(f.pt->nr_tables_total(), nth) << "nth " << nth;
    EXPECT_EQ(f.m.live.live(AllocSite::PgTable), static_cast<std::int64_t>(nth));
    EXPECT_EQ(f.pt->nr_tables(Level::Pud), nth >= 2 ? 1U : 0U);
    EXPECT_EQ(f.pt->nr_tables(Level::Pmd), nth >= 3 ? 1U : 0U);
    EXPECT_EQ(f.pt->nr_tables(Level::Pte), 0U);
    // free_pgtables' job: reclaim them.
    {
      RecordingFlusher fl;
      MmuGather tlb(*f.pt, &fl);
      free_pgd_range(tlb, va, va + PAGE_SIZE, 0, 0);
    }
    EXPECT_EQ(f.pt->nr_tables_total(), 1U);
    EXPECT_TRUE(f.pt->freed_in_use().empty());
    f.pt.reset();
    EXPECT_EQ(f.m.live.live(AllocSite::PgTable), 0) << "nth " << nth;
    EXPECT_TRUE(f.m.live.records().empty());
    EXPECT_EQ(f.m.live.unknown_frees(), 0U);
  }
}

TEST_P(PageTableTest, ArchMappingIsRegisteredMappedYoungAndCounted) {
  const vaddr_t va = test::arch_page_va(GetParam());
  auto fr = fx.m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(fr.has_value());
  const PteProt rx{true, false, true, true};
  ASSERT_TRUE(pt().map_arch_pages(va, {*fr}, rx, "[arch]").has_value());
  ASSERT_EQ(pt().arch_mappings().size(), 1U);
  EXPECT_EQ(pt().arch_mappings()[0].start, va);
  EXPECT_EQ(pt().arch_mappings()[0].end, va + PAGE_SIZE);
  EXPECT_EQ(pt().arch_mappings()[0].name, "[arch]");
  EXPECT_EQ(pt().arch_mapping_at(va), &pt().arch_mappings()[0]);
  EXPECT_EQ(pt().arch_mapping_at(va + PAGE_SIZE - 1), &pt().arch_mappings()[0]);
  EXPECT_EQ(pt().arch_mapping_at(va + PAGE_SIZE), nullptr);
  EXPECT_EQ(pt().arch_mapping_at(va - 1), nullptr);
  const auto ref = pt().lookup(va);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(pt().get(*ref), pt().fmt().mkyoung(pt().fmt().mk_pte(*fr, rx)));
  EXPECT_EQ(fx.m.phys.desc(*fr).mapcount, 1);
  EXPECT_EQ(fx.m.phys.desc(*fr).refcount, 1U);
  EXPECT_TRUE(fx.m.phys.desc(*fr).flags & PG_arch);
  EXPECT_EQ(pt().nr_tables_total(), 4U);

  // Overlap and misuse.
  auto fr2 = fx.m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(fr2.has_value());
  EXPECT_EQ(pt().map_arch_pages(va, {*fr2}, rx, "x").error(), Errno{EEXIST});
  EXPECT_EQ(pt().map_arch_pages(va + 8, {*fr2}, rx, "x").error(), Errno{EINVAL});
  EXPECT_EQ(pt().map_arch_pages(va + PAGE_SIZE, {}, rx, "x").error(), Errno{EINVAL});
  // An existing (VMA) PTE in the way.
  fx.map_page(0x400000);
  EXPECT_EQ(pt().map_arch_pages(0x400000, {*fr2}, rx, "x").error(), Errno{EEXIST});
  EXPECT_EQ(pt().arch_mappings().size(), 1U);
  EXPECT_EQ(fx.m.phys.desc(*fr2).mapcount, 0);
  fx.m.phys.put_page(*fr2);
}

TEST_P(PageTableTest, UnmapArchPagesFreesFramesAndEveryTable) {
  const vaddr_t va = test::arch_page_va(GetParam());
  std::vector<pfn_t> frames;
  for (int i = 0; i < 2; ++i)
    frames.push_back(*fx.m.phys.alloc_frame(AllocSite::Page));
  ASSERT_TRUE(pt().map_arch_pages(va, frames, {true, false, true, true}, "[arch]").has_value());
  EXPECT_EQ(pt().nr_tables_total(), 4U);
  RecordingFlusher fl;
  {
    MmuGather tlb(pt(), &fl, /*fullmm=*/true);
    pt().unmap_arch_pages(tlb);
    // Nothing released before the flush.
    EXPECT_EQ(tlb.pending_pages(), 2U);
    EXPECT_EQ(tlb.pending_tables(), 3U);
    for (pfn_t f : frames)
      EXPECT_EQ(fx.m.phys.desc(f).refcount, 1U);
    EXPECT_TRUE(fl.events.empty());
  }
  EXPECT_EQ(fl.events, (std::vector<RecordingFlusher::Event>{{RecordingFlusher::Kind::All, 0, 0}}));
  EXPECT_TRUE(pt().arch_mappings().empty());
  EXPECT_EQ(pt().nr_tables_total(), 1U);
  EXPECT_EQ(pt().nr_used_entries(pt().pgd()), 0U);
  EXPECT_EQ(live_tables(), 1);
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 0);
  for (pfn_t f : frames)
    EXPECT_TRUE(fx.m.phys.is_free(f));
  EXPECT_TRUE(pt().freed_in_use().empty());
}

TEST_P(PageTableTest, MapArchPagesFailureAtEachTableLeavesNothing) {
  // Two pages across a PMD boundary: tables pud, pmd, pte, then a second pte table.
  const vaddr_t va = 0x1ff000;
  for (std::uint64_t nth = 1; nth <= 4; ++nth) {
    PtFixture f(GetParam());
    std::vector<pfn_t> frames{*f.m.phys.alloc_frame(AllocSite::Page),
                              *f.m.phys.alloc_frame(AllocSite::Page)};
    f.m.inject.fail_nth(AllocSite::PgTable, nth);
    auto r = f.pt->map_arch_pages(va, frames, {true, false, false, true}, "[arch]");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Errno{ENOMEM});
    EXPECT_EQ(f.pt->nr_tables_total(), 1U) << "nth " << nth;
    EXPECT_EQ(f.m.live.live(AllocSite::PgTable), 1);
    EXPECT_TRUE(f.pt->arch_mappings().empty());
    EXPECT_EQ(f.pt->nr_used_entries(f.pt->pgd()), 0U);
    for (pfn_t fr : frames) {
      EXPECT_EQ(f.m.phys.desc(fr).refcount, 1U);
      EXPECT_EQ(f.m.phys.desc(fr).mapcount, 0);
      EXPECT_FALSE(f.m.phys.desc(fr).flags & PG_arch);
      f.m.phys.put_page(fr);
    }
    f.pt.reset();
    EXPECT_TRUE(f.m.live.records().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Arches, PageTableTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         test::arch_param_name);

TEST(PageTableX86, UpperHalfBasesAreSignExtended) {
  PtFixture fx(Arch::X86_64);
  const vaddr_t va = 0xffffffffff600000ULL;
  fx.map_page(va);
  std::vector<std::tuple<Level, vaddr_t>> seen;
  fx.pt->for_each_table([&](pfn_t, Level l, vaddr_t base) { seen.emplace_back(l, base); });
  const std::vector<std::tuple<Level, vaddr_t>> want{{Level::Pgd, 0},
                                                     {Level::Pud, 0xffffff8000000000ULL},
                                                     {Level::Pmd, 0xffffffffc0000000ULL},
                                                     {Level::Pte, 0xffffffffff600000ULL}};
  EXPECT_EQ(seen, want);
  std::vector<vaddr_t> ptes;
  fx.pt->for_each_pte(0, ULONG_MAX_ADDR, [&](vaddr_t v, PteRef, pte_t) { ptes.push_back(v); });
  EXPECT_EQ(ptes, std::vector<vaddr_t>{va});
  EXPECT_EQ(fx.pt->entry_va(0, Level::Pgd, 255), 0x00007f8000000000ULL);
  EXPECT_EQ(fx.pt->entry_va(0, Level::Pgd, 256), 0xffff800000000000ULL);
}

TEST(PageTableArm64, PgdIndexesAreNotSignExtended) {
  PtFixture fx(Arch::Arm64);
  EXPECT_EQ(fx.pt->entry_va(0, Level::Pgd, 256), 0x0000800000000000ULL);
  EXPECT_EQ(fx.pt->entry_va(0, Level::Pgd, 511), 0x0000ff8000000000ULL);
}

}  // namespace
}  // namespace mmemu
