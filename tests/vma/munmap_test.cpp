// munmap of a VMA between two neighbours: exactly which page tables unmap_region frees
// (floor = prev->vm_end, ceiling = next->vm_start) and which survive, on both formats.
#include <gtest/gtest.h>

#include "mm_test_util.hpp"
#include "vma/exit_mmap.hpp"

namespace mmemu::test {
namespace {

using TableKey = std::pair<Level, vaddr_t>;

class MunmapTest : public ::testing::TestWithParam<Arch> {
 protected:
  // Maps [a, a + len) fixed and writes every page so all its tables exist.
  void map_fixed_touched(vaddr_t a, std::uint64_t len, int prot = PROT_READ | PROT_WRITE) {
    auto r = sys_mmap(*f.mm, a, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
    ASSERT_TRUE(r) << errno_name(r.error().code);
    const Access acc = (prot & PROT_WRITE) ? Access::Write : Access::Read;
    for (vaddr_t p = a; p < a + len; p += PAGE_SIZE)
      ASSERT_EQ(f.touch(p, acc), FaultResult::Ok);
  }
  std::set<TableKey> table_keys() const {
    std::set<TableKey> out;
    for (const auto& [k, pfn] : f.tables())
      out.insert(k);
    return out;
  }
  // Unmaps [a, a + len) and returns the tables that disappeared.
  std::set<TableKey> unmap_and_diff(vaddr_t a, std::uint64_t len) {
    const auto before = table_keys();
    const auto tables_live = f.m.live.live(AllocSite::PgTable);
    EXPECT_TRUE(do_munmap(*f.mm, a, len).has_value());
    const auto after = table_keys();
    std::set<TableKey> gone;
    for (const auto& k : before)
      if (!after.count(k)) gone.insert(k);
    for (const auto& k : after)
      EXPECT_TRUE(before.count(k)) << "new table appeared";
    EXPECT_EQ(tables_live - f.m.live.live(AllocSite::PgTable),
              static_cast<std::int64_t>(gone.size()));
    EXPECT_EQ(f.problems(), "");
    return gone;
  }

  MmFixture f{GetParam()};
};

constexpr vaddr_t kG = 1ULL << 30;
constexpr vaddr_t kBase = 0x4000000000ULL;  // 256 GiB: inside pgd slot 0

TEST_P(MunmapTest, NeighboursInTheSamePteTableKeepEverything) {
  map_fixed_touched(kBase, PAGE_SIZE);
  map_fixed_touched(kBase + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
  map_fixed_touched(kBase + 4 * PAGE_SIZE, PAGE_SIZE);
  EXPECT_EQ(unmap_and_diff(kBase + 2 * PAGE_SIZE, PAGE_SIZE), std::set<TableKey>{});
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 2);
}

// The floor: a VMA below in the same PTE table, nothing above. free_pgd_range starts at the
// first PMD boundary above prev->vm_end; with FIRST_USER_ADDRESS instead it would free the
// table that still maps the VMA below.
TEST_P(MunmapTest, PrevInTheSamePteTableKeepsItWithNothingAbove) {
  map_fixed_touched(kBase, PAGE_SIZE);
  map_fixed_touched(kBase + 2 * PAGE_SIZE, PAGE_SIZE);
  f.write8(kBase, 0x5a);
  const auto pte = f.tables().at({Level::Pte, kBase});
  EXPECT_EQ(unmap_and_diff(kBase + 2 * PAGE_SIZE, PAGE_SIZE), std::set<TableKey>{});
  EXPECT_EQ(f.tables().at({Level::Pte, kBase}), pte);
  EXPECT_EQ(f.read8(kBase), 0x5a);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 1);
  EXPECT_TRUE(f.m.freed_in_use.empty());
}

// The ceiling: a VMA above in the same PTE table (its start not PMD-aligned), nothing below.
// The ceiling rounds down to the PMD boundary and end is pulled back below it; a ceiling of 0
// (the top), or no pull-back, would free the table that still maps the VMA above.
TEST_P(MunmapTest, NextInTheSamePteTableKeepsItWithNothingBelow) {
  map_fixed_touched(kBase, PAGE_SIZE);
  map_fixed_touched(kBase + 2 * PAGE_SIZE, PAGE_SIZE);
  f.write8(kBase + 2 * PAGE_SIZE, 0xa5);
  const auto pte = f.tables().at({Level::Pte, kBase});
  EXPECT_EQ(unmap_and_diff(kBase, PAGE_SIZE), std::set<TableKey>{});
  EXPECT_EQ(f.tables().at({Level::Pte, kBase}), pte);
  EXPECT_EQ(f.read8(kBase + 2 * PAGE_SIZE), 0xa5);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 1);
  EXPECT_TRUE(f.m.freed_in_use.empty());
}

TEST_P(MunmapTest, OwnPteTableIsFreedPmdTableSurvives) {
  map_fixed_touched(kBase, PAGE_SIZE);
  map_fixed_touched(kBase + 4 * PMD_SIZE, 2 * PAGE_SIZE, PROT_READ);
  map_fixed_touched(kBase + 8 * PMD_SIZE, PAGE_SIZE);
  EXPECT_EQ(unmap_and_diff(kBase + 4 * PMD_SIZE, 2 * PAGE_SIZE),
            (std::set<TableKey>{{Level::Pte, kBase + 4 * PMD_SIZE}}));
}

TEST_P(MunmapTest, OwnPmdTableIsFreedWithItsPteTables) {
  map_fixed_touched(kBase, PAGE_SIZE);
  // B spans two PTE tables inside its own GiB.
  map_fixed_touched(kBase + 2 * kG + PMD_SIZE - PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ);
  map_fixed_touched(kBase + 5 * kG, PAGE_SIZE);
  EXPECT_EQ(unmap_and_diff(kBase + 2 * kG + PMD_SIZE - PAGE_SIZE, 2 * PAGE_SIZE),
            (std::set<TableKey>{{Level::Pte, kBase + 2 * kG},
                                {Level::Pte, kBase + 2 * kG + PMD_SIZE},
                                {Level::Pmd, kBase + 2 * kG}}));
}

TEST_P(MunmapTest, OwnPudTableIsFreedUpToThePgd) {
  const vaddr_t b = 512 * kG;  // pgd slot 1, alone
  map_fixed_touched(kBase, PAGE_SIZE);
  map_fixed_touched(b + 3 * kG, PAGE_SIZE, PROT_READ);
  map_fixed_touched(kBase + 2048 * kG, PAGE_SIZE);
  EXPECT_EQ(
      unmap_and_diff(b + 3 * kG, PAGE_SIZE),
      (std::set<TableKey>{{Level::Pte, b + 3 * kG}, {Level::Pmd, b + 3 * kG}, {Level::Pud, b}}));
}

TEST_P(MunmapTest, ANeighbourPartlyInTheSameTableKeepsIt) {
  // prev ends inside B's PTE table's span: floor rounding keeps the PTE table, but B's
  // second PTE table (wholly between floor and ceiling) goes.
  map_fixed_touched(kBase + PMD_SIZE - 2 * PAGE_SIZE, PAGE_SIZE);
  map_fixed_touched(kBase + PMD_SIZE - PAGE_SIZE, PMD_SIZE, PROT_READ);
  map_fixed_touched(kBase + 8 * PMD_SIZE, PAGE_SIZE);
  EXPECT_EQ(unmap_and_diff(kBase + PMD_SIZE - PAGE_SIZE, PMD_SIZE),
            (std::set<TableKey>{{Level::Pte, kBase + PMD_SIZE}}));
}

TEST_P(MunmapTest, UnmapEverythingLeavesOnlyThePgd) {
  map_fixed_touched(kBase, 3 * PAGE_SIZE);
  map_fixed_touched(kBase + 7 * kG, PAGE_SIZE);
  ASSERT_TRUE(do_munmap(*f.mm, kBase, 8 * kG));
  EXPECT_EQ(table_keys(), (std::set<TableKey>{{Level::Pgd, 0}}));
  EXPECT_EQ(f.mm->map_count, 0);
  EXPECT_EQ(f.m.live.live(AllocSite::Page), 0);
  EXPECT_EQ(f.m.live.live(AllocSite::Vma), 0);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(MunmapTest, SplitInTheMiddleKeepsBothEnds) {
  map_fixed_touched(kBase, 8 * PAGE_SIZE);
  f.write8(kBase, 1);
  f.write8(kBase + 7 * PAGE_SIZE, 8);
  ASSERT_TRUE(do_munmap(*f.mm, kBase + 2 * PAGE_SIZE, 3 * PAGE_SIZE));
  EXPECT_EQ(f.layout(),
            (std::vector<std::pair<vaddr_t, vaddr_t>>{
                {kBase, kBase + 2 * PAGE_SIZE}, {kBase + 5 * PAGE_SIZE, kBase + 8 * PAGE_SIZE}}));
  EXPECT_EQ(f.read8(kBase), 1);
  EXPECT_EQ(f.read8(kBase + 7 * PAGE_SIZE), 8);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 5);
  EXPECT_EQ(f.touch(kBase + 3 * PAGE_SIZE, Access::Read), FaultResult::SegvMapErr);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(MunmapTest, ErrnoLikeLinux) {
  EXPECT_EQ(do_munmap(*f.mm, 0x1001, 10).error(), Errno{EINVAL});
  EXPECT_EQ(do_munmap(*f.mm, 0x10000, 0).error(), Errno{EINVAL});
  EXPECT_TRUE(do_munmap(*f.mm, 0x10000, 4096));  // nothing there: success
  EXPECT_EQ(do_munmap(*f.mm, f.mm->task_size - PAGE_SIZE, 2 * PAGE_SIZE).error(), Errno{EINVAL});
}

// An arch mapping outside VMAs: its tables survive the unmap of every neighbour and are freed
// only by exit_mmap.
class ArchMappingTest : public MunmapTest {
 protected:
  vaddr_t arch_va() const {
    return GetParam() == Arch::X86_64 ? 0xffffffffff600000ULL : f.mm->params().task_size;
  }
  void map_arch_page() {
    auto pfn = f.m.phys.alloc_frame(AllocSite::Page);
    ASSERT_TRUE(pfn);
    f.m.phys.desc(*pfn).flags |= PG_arch;
    ASSERT_TRUE(
        f.mm->pt().map_arch_pages(arch_va(), {*pfn}, PteProt{true, false, true, true}, "[arch]"));
  }
};

TEST_P(ArchMappingTest, SurvivesUnmapOfTheStackBelowIt) {
  map_arch_page();
  // A stack-like VMA right below TASK_SIZE and another far below.
  const vaddr_t top = f.mm->task_size;
  map_fixed_touched(kBase, PAGE_SIZE);
  map_fixed_touched(top - 4 * PAGE_SIZE, 4 * PAGE_SIZE);
  const auto arch_tables_before = f.tables();
  ASSERT_TRUE(do_munmap(*f.mm, top - 4 * PAGE_SIZE, 4 * PAGE_SIZE));
  ASSERT_TRUE(do_munmap(*f.mm, kBase, PAGE_SIZE));
  // Every table on the arch page's path is still there, with the same frame.
  std::set<TableKey> expect{{Level::Pgd, 0}};
  const vaddr_t va = arch_va();
  expect.insert({Level::Pud, va & PGDIR_MASK});
  expect.insert({Level::Pmd, va & PUD_MASK});
  expect.insert({Level::Pte, va & PMD_MASK});
  EXPECT_EQ(table_keys(), expect);
  for (const auto& k : expect)
    EXPECT_EQ(f.tables().at(k), arch_tables_before.at(k));
  auto t = walk(f.mm->pt(), va, Access::Read, false);
  ASSERT_TRUE(t);
  EXPECT_EQ(f.problems(), "");
  exit_mmap(*f.mm);
  EXPECT_EQ(table_keys(), (std::set<TableKey>{{Level::Pgd, 0}}));
  EXPECT_EQ(f.m.live.live(AllocSite::Page), 0);
  EXPECT_EQ(f.m.live.live(AllocSite::PgTable), 1);  // the pgd, freed with the mm
  f.mm.reset();
  EXPECT_EQ(f.m.live.live(AllocSite::PgTable), 0);
}

INSTANTIATE_TEST_SUITE_P(Arches, MunmapTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_test_name);
INSTANTIATE_TEST_SUITE_P(Arches, ArchMappingTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_test_name);

}  // namespace
}  // namespace mmemu::test
