// free_pgd_range as munmap uses it: a victim VMA between two neighbours is zapped, then its
// tables are freed with floor = prev->vm_end (or FIRST_USER_ADDRESS) and ceiling =
// next->vm_start (or USER_PGTABLES_CEILING). Each test names exactly which tables go.
#include "mmu/free_pgd_range.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "mmu/walker.hpp"
#include "pt_test_util.hpp"

namespace mmemu {
namespace {

using test::PtFixture;
using Key = std::pair<Level, vaddr_t>;
using Keys = std::vector<Key>;
using Tables = std::map<Key, pfn_t>;

struct Vma {
  vaddr_t start;
  vaddr_t end;
};

class FreePgdRangeTest : public ::testing::TestWithParam<Arch> {
 protected:
  PtFixture fx{GetParam()};
  RecordingFlusher fl;
  const ArchParams& ap() const { return arch_params(GetParam()); }

  // Maps the first and last page of the VMA and one page at every PMD boundary inside it,
  // so every PTE table the VMA spans exists.
  void populate(Vma v) {
    fx.map_page(v.start);
    for (vaddr_t a = (v.start & PMD_MASK) + PMD_SIZE; a < v.end - PAGE_SIZE; a += PMD_SIZE)
      fx.map_page(a);
    if (v.end - PAGE_SIZE != v.start) fx.map_page(v.end - PAGE_SIZE);
  }
  // munmap's unmap_region: zap the leaves, free the tables, finish the gather.
  void unmap(Vma v, vaddr_t floor, vaddr_t ceiling) {
    MmuGather tlb(*fx.pt, &fl);
    fx.zap(tlb, v.start, v.end);
    free_pgd_range(tlb, v.start, v.end, floor, ceiling);
  }
  void unmap_between(std::optional<Vma> prev, Vma v, std::optional<Vma> next) {
    unmap(v, prev ? prev->end : ap().first_user_address,
          next ? next->start : ap().user_pgtables_ceiling);
  }

  // The tables that disappeared are exactly `want`; every other table kept its frame; the
  // freed frames are free again; the per-level counts and the live-object counter agree.
  void expect_gone(const Tables& before, const Keys& want) {
    const Tables after = fx.tables();
    Keys gone;
    for (const auto& [k, pfn] : before) {
      auto it = after.find(k);
      if (it == after.end()) {
        gone.push_back(k);
        EXPECT_TRUE(fx.m.phys.is_free(pfn)) << level_name(k.first) << " " << std::hex << k.second;
      } else {
        EXPECT_EQ(it->second, pfn) << "table replaced at " << std::hex << k.second;
        EXPECT_FALSE(fx.m.phys.is_free(pfn));
      }
    }
    for (const auto& [k, pfn] : after)
      EXPECT_TRUE(before.count(k)) << "new table appeared";
    EXPECT_EQ(gone, want);
    std::size_t per_level[4]{};
    for (const auto& [k, pfn] : after)
      per_level[static_cast<int>(k.first)]++;
    for (Level l : {Level::Pgd, Level::Pud, Level::Pmd, Level::Pte})
      EXPECT_EQ(fx.pt->nr_tables(l), per_level[static_cast<int>(l)]) << level_name(l);
    EXPECT_EQ(fx.pt->nr_tables_total(), after.size());
    EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), static_cast<std::int64_t>(after.size()));
    EXPECT_TRUE(fx.pt->freed_in_use().empty());
  }
};

TEST_P(FreePgdRangeTest, NeighboursInSamePmdRangeKeepEveryTable) {
  const Vma prev{0x400000, 0x401000}, victim{0x402000, 0x403000}, next{0x404000, 0x405000};
  for (Vma v : {prev, victim, next})
    populate(v);
  const Tables before = fx.tables();
  ASSERT_EQ(before.size(), 4U);
  unmap_between(prev, victim, next);
  expect_gone(before, {});
  EXPECT_EQ(fx.pt->get(*fx.pt->lookup(victim.start)), 0U);  // the leaf itself went
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 2);
  EXPECT_TRUE(walk(*fx.pt, prev.start, Access::Read).has_value());
  EXPECT_TRUE(walk(*fx.pt, next.start, Access::Read).has_value());
}

TEST_P(FreePgdRangeTest, OwnPmdRangeNeighboursInSamePudRange) {
  const Vma prev{0x400000, 0x401000}, victim{0x600000, 0x800000}, next{0xa00000, 0xa01000};
  for (Vma v : {prev, victim, next})
    populate(v);
  const Tables before = fx.tables();
  ASSERT_EQ(fx.pt->nr_tables(Level::Pte), 3U);
  unmap_between(prev, victim, next);
  expect_gone(before, {{Level::Pte, 0x600000}});
  // One flush for the zapped pages and the freed table, before anything was released.
  EXPECT_EQ(
      fl.events,
      (std::vector<RecordingFlusher::Event>{{RecordingFlusher::Kind::Range, 0x600000, 0x800000}}));
}

TEST_P(FreePgdRangeTest, VictimStraddlingPmdsKeepsTheOneSharedWithPrev) {
  const Vma prev{0x400000, 0x401000}, victim{0x500000, 0x900000}, next{0xc00000, 0xc01000};
  for (Vma v : {prev, victim, next})
    populate(v);
  const Tables before = fx.tables();
  ASSERT_EQ(fx.pt->nr_tables(Level::Pte), 4U);  // 0x400000 (shared), 0x600000, 0x800000, 0xc00000
  unmap_between(prev, victim, next);
  expect_gone(before, {{Level::Pte, 0x600000}, {Level::Pte, 0x800000}});
}

TEST_P(FreePgdRangeTest, CeilingInsideLastPmdKeepsTheOneSharedWithNext) {
  // No prev: floor is FIRST_USER_ADDRESS. next starts inside the victim's last PMD range, so
  // end is pulled back a whole PMD; the PMD table is kept because the PUD range holds next.
  const Vma victim{0x600000, 0x900000}, next{0x910000, 0x911000};
  for (Vma v : {victim, next})
    populate(v);
  const Tables before = fx.tables();
  unmap_between(std::nullopt, victim, next);
  expect_gone(before, {{Level::Pte, 0x600000}});
}

TEST_P(FreePgdRangeTest, NextInFollowingPudRangeOnlyPteTableGoes) {
  const Vma prev{0x400000, 0x401000}, victim{0x3fe00000, 0x40000000}, next{0x40000000, 0x40001000};
  for (Vma v : {prev, victim, next})
    populate(v);
  const Tables before = fx.tables();
  unmap_between(prev, victim, next);
  expect_gone(before, {{Level::Pte, 0x3fe00000}});
}

TEST_P(FreePgdRangeTest, FarApartVictimAloneInItsPudRange) {
  const Vma prev{0x400000, 0x401000}, victim{0x40000000, 0x40001000};
  const Vma next{0x8000000000, 0x8000001000};
  for (Vma v : {prev, victim, next})
    populate(v);
  const Tables before = fx.tables();
  unmap_between(prev, victim, next);
  // The PMD table's whole 1 GiB is inside [floor, ceiling); the PUD table's 512 GiB is not.
  expect_gone(before, {{Level::Pmd, 0x40000000}, {Level::Pte, 0x40000000}});
}

TEST_P(FreePgdRangeTest, NeighbourNeverFaultedStillKeepsTheTablesItWouldShare) {
  // Neither neighbour has touched its pages, so the tables hold nothing of theirs; the
  // rounding alone decides: the PMD table (shared PUD range with next) and the PUD table
  // (shared PGD range with prev) stay, only the PTE table goes.
  const Vma prev{0x400000, 0x401000}, victim{0x40000000, 0x40001000};
  const Vma next{0x40200000, 0x40201000};
  populate(victim);
  const Tables before = fx.tables();
  ASSERT_EQ(before.size(), 4U);
  unmap_between(prev, victim, next);
  expect_gone(before, {{Level::Pte, 0x40000000}});
  EXPECT_EQ(fx.pt->nr_used_entries(before.at({Level::Pmd, 0x40000000})), 0U);
  // Once next is gone too (ceiling 0), the same range frees the rest above floor.
  unmap_between(prev, victim, std::nullopt);
  expect_gone(before, {{Level::Pmd, 0x40000000}, {Level::Pte, 0x40000000}});
}

TEST_P(FreePgdRangeTest, FarApartVictimAloneInItsPgdRange) {
  const Vma prev{0x400000, 0x401000}, victim{0x8000000000, 0x8000200000};
  const Vma next{0x10000000000, 0x10000001000};
  for (Vma v : {prev, victim, next})
    populate(v);
  const Tables before = fx.tables();
  unmap_between(prev, victim, next);
  expect_gone(before,
              {{Level::Pud, 0x8000000000}, {Level::Pmd, 0x8000000000}, {Level::Pte, 0x8000000000}});
}

TEST_P(FreePgdRangeTest, FloorAndCeilingZeroFreeEverythingButThePgd) {
  const Vma only{0x400000, 0x800000};
  populate(only);
  const Tables before = fx.tables();
  unmap(only, 0, 0);
  expect_gone(before,
              {{Level::Pud, 0}, {Level::Pmd, 0}, {Level::Pte, 0x400000}, {Level::Pte, 0x600000}});
  EXPECT_EQ(fx.pt->nr_tables_total(), 1U);
  EXPECT_EQ(fx.pt->nr_used_entries(fx.pt->pgd()), 0U);
}

TEST_P(FreePgdRangeTest, CeilingZeroAtTopOfUserSpaceFreesTheWholePgdSlot) {
  const Vma prev{0x400000, 0x401000}, stack{0x7ffffff00000, 0x7ffffffff000};
  for (Vma v : {prev, stack})
    populate(v);
  const Tables before = fx.tables();
  unmap(stack, prev.end, 0);  // ceiling 0: nothing above; ceiling - 1 wraps to ULONG_MAX
  expect_gone(
      before,
      {{Level::Pud, 0x7f8000000000}, {Level::Pmd, 0x7fffc0000000}, {Level::Pte, 0x7fffffe00000}});
}

TEST_P(FreePgdRangeTest, FloorInsideFirstPmdKeepsTablesBelow) {
  // prev and victim share the PTE table; a page below floor keeps it alive.
  const Vma prev{0x200000, 0x201000}, victim{0x300000, 0x301000};
  for (Vma v : {prev, victim})
    populate(v);
  const Tables before = fx.tables();
  unmap(victim, prev.end, 0);
  expect_gone(before, {});
  // The same victim with floor 0 (prev gone too) frees everything.
  {
    MmuGather tlb(*fx.pt, &fl);
    fx.zap(tlb, prev.start, prev.end);
  }
  unmap(victim, 0, 0);
  expect_gone(before, {{Level::Pud, 0}, {Level::Pmd, 0}, {Level::Pte, 0x200000}});
}

TEST_P(FreePgdRangeTest, ArchMappingTablesSurviveFreeingEverythingAround) {
  // exit_mmap's free_pgtables: floor FIRST_USER_ADDRESS, each VMA's ceiling is the next
  // VMA's start, the last one's USER_PGTABLES_CEILING.
  const vaddr_t arch_va = test::arch_page_va(GetParam());
  const pfn_t arch_frame = *fx.m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(fx.pt->map_arch_pages(arch_va, {arch_frame}, {true, false, true, true}, "[arch]")
                  .has_value());
  const vaddr_t top = GetParam() == Arch::X86_64 ? ap().task_size : arch_va;
  const std::vector<Vma> vmas{
      {0x400000, 0x401000}, {0x40000000, 0x40200000}, {top - 0x21000, top - 0x1000}};
  for (Vma v : vmas)
    populate(v);
  const auto arch_pte = *fx.pt->table_for(arch_va, Level::Pte);
  const auto arch_pmd = *fx.pt->table_for(arch_va, Level::Pmd);
  const auto arch_pud = *fx.pt->table_for(arch_va, Level::Pud);
  for (std::size_t i = 0; i < vmas.size(); ++i) {
    const vaddr_t ceiling = i + 1 < vmas.size() ? vmas[i + 1].start : ap().user_pgtables_ceiling;
    unmap(vmas[i], ap().first_user_address, ceiling);
  }
  EXPECT_TRUE(fx.pt->freed_in_use().empty());
  // Exactly the arch mapping's own tables are left.
  const Tables after = fx.tables();
  // (On x86 arch_va is already sign-extended, so the masks give the canonical bases.)
  const Tables want{{{Level::Pgd, 0}, fx.pt->pgd()},
                    {{Level::Pud, arch_va & PGDIR_MASK}, arch_pud},
                    {{Level::Pmd, arch_va & PUD_MASK}, arch_pmd},
                    {{Level::Pte, arch_va & PMD_MASK}, arch_pte}};
  EXPECT_EQ(after, want);
  EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), 4);
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 1);
  auto t = walk(*fx.pt, arch_va, Access::Exec);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->pfn, arch_frame);

  // Exit's last step: only the pgd remains.
  {
    MmuGather tlb(*fx.pt, &fl, /*fullmm=*/true);
    fx.pt->unmap_arch_pages(tlb);
  }
  EXPECT_EQ(fx.pt->nr_tables_total(), 1U);
  EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), 1);
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 0);
  EXPECT_TRUE(fx.m.phys.is_free(arch_pte));
  EXPECT_TRUE(fx.m.phys.is_free(arch_frame));
}

TEST_P(FreePgdRangeTest, TablesStillHoldingEntriesAreFreedAndReported) {
  // The caller forgot to zap: like the kernel, free_pgd_range frees the tables without
  // looking inside. The PTE table still mapped the page: that is the use-after-free, reported
  // with the page it held; the pmd and pud tables were empty by the time they went.
  const Vma v{0x400000, 0x401000};
  populate(v);
  const Tables before = fx.tables();
  const pfn_t page = walk(*fx.pt, v.start, Access::Read)->pfn;
  const pte_t entry = fx.pt->get(*fx.pt->lookup(v.start));
  {
    MmuGather tlb(*fx.pt, &fl);
    CallFrame outer(*fx.pt, "test_unmap");
    free_pgd_range(tlb, v.start, v.end, 0, 0);
  }
  ASSERT_EQ(fx.pt->freed_in_use().size(), 1U);
  const FreedInUseTable& t = fx.pt->freed_in_use()[0];
  EXPECT_EQ(t.level, Level::Pte);
  EXPECT_EQ(t.table, before.at({Level::Pte, 0x400000}));
  EXPECT_EQ(t.start, 0x400000U);
  EXPECT_EQ(t.end, 0x600000U);
  EXPECT_EQ(t.args.addr, v.start);
  EXPECT_EQ(t.args.end, v.end);
  ASSERT_EQ(t.entries.size(), 1U);
  EXPECT_EQ(t.entries[0].va, v.start);
  EXPECT_EQ(t.entries[0].level, Level::Pte);
  EXPECT_EQ(t.entries[0].pfn, page);
  EXPECT_EQ(t.entries[0].entry, entry);
  EXPECT_TRUE(t.entries[0].present);
  EXPECT_EQ(t.chain, (std::vector<std::string>{"free_pgd_range", "test_unmap"}));
  // Freed for real: only the pgd is left, the page lost its mapping and its last reference.
  EXPECT_EQ(fx.tables().size(), 1U);
  EXPECT_EQ(fx.pt->nr_tables_total(), 1U);
  EXPECT_FALSE(walk(*fx.pt, v.start, Access::Read).has_value());
  EXPECT_TRUE(fx.m.phys.is_free(page));
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 0);
  EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), 1);
  const std::string report = kasan_report(t);
  EXPECT_NE(report.find("BUG: mmemu: page-table-use-after-free in free_pgd_range"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("test_unmap"), std::string::npos) << report;
}

INSTANTIATE_TEST_SUITE_P(Arches, FreePgdRangeTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         test::arch_param_name);

TEST(FreePgdRangeArm64, TrampolineTablesNeedTheCeiling) {
  // Without USER_PGTABLES_CEILING the stack's free takes the PMD table the trampoline's PTE
  // table hangs from. The kernel would free it regardless, and so does mmemu: it is reported
  // with the trampoline's table and page, and the trampoline is gone.
  PtFixture fx(Arch::Arm64);
  const vaddr_t tramp = test::arch_page_va(Arch::Arm64);
  const pfn_t frame = *fx.m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(
      fx.pt->map_arch_pages(tramp, {frame}, {true, false, true, true}, "[tramp]").has_value());
  const Vma stack{tramp - 0x21000, tramp - 0x1000};
  fx.map_page(stack.start);
  fx.map_page(stack.end - PAGE_SIZE);
  const pfn_t pmd = *fx.pt->table_for(tramp, Level::Pmd);
  const pfn_t tramp_pte = *fx.pt->table_for(tramp, Level::Pte);
  {
    MmuGather tlb(*fx.pt, nullptr);
    fx.zap(tlb, stack.start, stack.end);
    free_pgd_range(tlb, stack.start, stack.end, 0, 0);
  }
  ASSERT_EQ(fx.pt->freed_in_use().size(), 1U);
  const FreedInUseTable& t = fx.pt->freed_in_use()[0];
  EXPECT_EQ(t.level, Level::Pmd);
  EXPECT_EQ(t.table, pmd);
  EXPECT_EQ(t.start, tramp & PUD_MASK);
  ASSERT_EQ(t.entries.size(), 2U);
  EXPECT_EQ(t.entries[0].va, tramp & PMD_MASK);
  EXPECT_EQ(t.entries[0].level, Level::Pmd);
  EXPECT_EQ(t.entries[0].pfn, tramp_pte);
  EXPECT_EQ(t.entries[1].va, tramp);
  EXPECT_EQ(t.entries[1].level, Level::Pte);
  EXPECT_EQ(t.entries[1].pfn, frame);
  EXPECT_FALSE(walk(*fx.pt, tramp, Access::Exec).has_value());
  EXPECT_EQ(fx.pt->nr_tables_total(), 1U);
  EXPECT_TRUE(fx.m.phys.is_free(frame));
  EXPECT_TRUE(fx.m.phys.is_free(tramp_pte));
}

TEST(FreePgdRangeX86, FloorInTopPmdDoesNotWrapToZero) {
  // addr rounded down is below floor, and the next PMD boundary is 2^64 == 0: return, rather
  // than walking from 0 and freeing tables far below.
  PtFixture fx(Arch::X86_64);
  const vaddr_t top = 0xffffffffffe00000ULL;
  fx.map_page(0x400000);
  fx.map_page(top);
  {
    MmuGather tlb(*fx.pt, nullptr);
    fx.zap(tlb, 0x400000, 0x401000);
    fx.zap(tlb, top, top + PAGE_SIZE);
    free_pgd_range(tlb, top, top + PAGE_SIZE, top + PAGE_SIZE, 0);
  }
  EXPECT_EQ(fx.pt->nr_tables_total(), 7U);
  // With floor at the base of the top pgd slot the top tables go, the low ones stay.
  {
    MmuGather tlb(*fx.pt, nullptr);
    free_pgd_range(tlb, top, top + PAGE_SIZE, 0xffffff8000000000ULL, 0);
  }
  EXPECT_EQ(fx.pt->nr_tables_total(), 4U);
  EXPECT_TRUE(fx.pt->table_for(0x400000, Level::Pte).has_value());
  EXPECT_FALSE(fx.pt->table_for(top, Level::Pud).has_value());
}

}  // namespace
}  // namespace mmemu
