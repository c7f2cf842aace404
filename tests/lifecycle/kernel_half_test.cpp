// x86-64's vsyscall page lives in init_mm's kernel half, not in any mm: in vsyscall=emulate
// its tables are shared by every mm through the copied top-level entry, survive any mm's
// exit_mmap, and fork allocates nothing for them; in xonly there are no tables at all. A
// fork allocates exactly what Linux's does: the pgd and the tables its VMAs need.
#include <gtest/gtest.h>

#include "lifecycle_util.hpp"
#include "mmu/mmu_gather.hpp"
#include "mmu/walker.hpp"
#include "vma/exit_mmap.hpp"

namespace mmemu::test {
namespace {

constexpr vaddr_t kVsyscall = 0xffffffffff600000ULL;
constexpr PteProt kVvar{true, false, false, true};  // PAGE_KERNEL_VVAR: user, read-only, NX
constexpr PteProt kGate{true, false, true, true};   // the gate VMA's r-x

template <class T>
T must(Result<T> r) {
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

std::int64_t live_tables(const Machine& m) {
  return m.live.live(AllocSite::PgTable);
}

// What emu/image's setup_vsyscall does in emulate mode.
void map_vsyscall(Machine& m) {
  auto f = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(f.has_value());
  ASSERT_TRUE(m.init_mm(Arch::X86_64).map(kVsyscall, {*f}, kVvar, kGate, "[vsyscall]"));
}

TEST(KernelHalf, EmulateTablesAreSharedByEveryMmAndSurviveExit) {
  Machine m(kLifePhys);
  map_vsyscall(m);
  const PageTable* init = m.init_mm(Arch::X86_64).tables();
  ASSERT_NE(init, nullptr);
  EXPECT_EQ(m.init_mm(Arch::X86_64).nr_shared_tables(), 3U);
  EXPECT_EQ(live_tables(m), 4);  // init_mm's pgd, pud, pmd, pte
  const auto shared_pud = init->table_for(kVsyscall, Level::Pud);
  const auto shared_pte = init->table_for(kVsyscall, Level::Pte);
  ASSERT_TRUE(shared_pud && shared_pte);

  auto a = must(Mm::create(m, Arch::X86_64));
  auto b = must(Mm::create(m, Arch::X86_64));
  EXPECT_EQ(live_tables(m), 6);  // one pgd each, nothing else
  for (Mm* mm : {a.get(), b.get()}) {
    EXPECT_EQ(mm->pt().table_for(kVsyscall, Level::Pud), shared_pud);
    EXPECT_EQ(mm->pt().table_for(kVsyscall, Level::Pte), shared_pte);
    EXPECT_TRUE(mm->pt().kernel_entry(511));
    EXPECT_EQ(mm->pt().nr_tables_total(), 1U);  // the shared tables are init_mm's
    std::size_t own = 0, shared = 0;
    mm->pt().for_each_table([&](pfn_t, Level, vaddr_t) { ++own; });
    mm->pt().for_each_kernel_table([&](pfn_t, Level, vaddr_t) { ++shared; });
    EXPECT_EQ(own, 1U);
    EXPECT_EQ(shared, 3U);
    // The walker translates through them: readable, not executable (fetches are emulated).
    auto t = walk(mm->pt(), kVsyscall, Access::Read);
    ASSERT_TRUE(t.has_value());
    EXPECT_TRUE(m.phys.desc(t->pfn).flags & PG_arch);
    auto x = walk(mm->pt(), kVsyscall, Access::Exec);
    ASSERT_FALSE(x.has_value());
    EXPECT_EQ(x.error().reason, ProtReason::NoExec);
    EXPECT_EQ(problems({mm}), "");
  }

  // a gets a VMA with tables of its own, then exits: only those go.
  must(sys_mmap(*a, 0x40000000, PAGE_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  write8(*a, 0x40000000, 1);
  EXPECT_EQ(a->pt().nr_tables_total(), 4U);
  const ExitMmapReport er = exit_mmap(*a);
  EXPECT_EQ(er.tables_freed, 3U);  // the VMA's pud, pmd, pte: never init_mm's
  a.reset();
  EXPECT_EQ(live_tables(m), 5);  // init_mm's 4 and b's pgd
  EXPECT_FALSE(m.phys.is_free(*shared_pud));
  EXPECT_FALSE(m.phys.is_free(*shared_pte));
  EXPECT_TRUE(walk(b->pt(), kVsyscall, Access::Read).has_value());
  EXPECT_EQ(problems({b.get()}), "");
  b.reset();
  EXPECT_EQ(live_tables(m), 4);
  m.init_mm(Arch::X86_64).release();
  EXPECT_EQ(live_tables(m), 0);
  EXPECT_EQ(m.live.live(AllocSite::Page), 0);
}

TEST(KernelHalf, XonlyHasARangeAndNoEntry) {
  Machine m(kLifePhys);
  ASSERT_TRUE(m.init_mm(Arch::X86_64)
                  .add_unmapped(kVsyscall, kVsyscall + PAGE_SIZE, PteProt{false, false, true, true},
                                "[vsyscall]"));
  EXPECT_EQ(m.init_mm(Arch::X86_64).tables(), nullptr);
  EXPECT_EQ(live_tables(m), 0);
  auto a = must(Mm::create(m, Arch::X86_64));
  EXPECT_EQ(live_tables(m), 1);
  EXPECT_FALSE(a->pt().lookup(kVsyscall).has_value());
  EXPECT_TRUE(a->pt().kernel_entries().empty());
  auto t = walk(a->pt(), kVsyscall, Access::Exec);
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().kind, WalkFaultKind::NotPresent);
  EXPECT_EQ(t.error().level, Level::Pgd);
  // Overlaps and lower-half ranges are refused.
  EXPECT_EQ(m.init_mm(Arch::X86_64)
                .add_unmapped(kVsyscall, kVsyscall + PAGE_SIZE, PteProt{}, "x")
                .error(),
            Errno{EEXIST});
  EXPECT_EQ(m.init_mm(Arch::X86_64).add_unmapped(0x1000, 0x2000, PteProt{}, "x").error(),
            Errno{EINVAL});
}

// Every table allocation of init_mm's mapping can fail; nothing is left behind.
TEST(KernelHalf, MapFailsCleanlyAtEachTable) {
  for (std::uint64_t n = 1; n <= 4; ++n) {
    SCOPED_TRACE(n);
    Machine m(kLifePhys);
    auto f = m.phys.alloc_frame(AllocSite::Page);
    ASSERT_TRUE(f.has_value());
    m.inject.fail_nth(AllocSite::PgTable, n);
    auto r = m.init_mm(Arch::X86_64).map(kVsyscall, {*f}, kVvar, kGate, "[vsyscall]");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Errno{ENOMEM});
    EXPECT_EQ(live_tables(m), 0);
    EXPECT_EQ(m.init_mm(Arch::X86_64).tables(), nullptr);
    EXPECT_TRUE(m.init_mm(Arch::X86_64).ranges().empty());
    EXPECT_EQ(m.phys.desc(*f).mapcount, 0);
    EXPECT_FALSE(m.phys.desc(*f).flags & PG_arch);
    m.phys.put_page(*f);
    // An mm created after the failure has nothing in the kernel half.
    auto a = must(Mm::create(m, Arch::X86_64));
    EXPECT_TRUE(a->pt().kernel_entries().empty());
  }
  Machine m(kLifePhys);
  m.inject.fail_nth(AllocSite::PgTable, 5);
  map_vsyscall(m);
  EXPECT_EQ(m.inject.attempts(AllocSite::PgTable), 4U);
}

// A fork of an x86-64 process allocates its pgd and the tables its VMAs need, and nothing
// for the vsyscall page, whatever the mode: 4 table attempts for one touched page.
class ForkAllocations : public ::testing::TestWithParam<bool> {};

TEST_P(ForkAllocations, OnlyThePgdAndTheVmasTables) {
  Machine m(kLifePhys);
  if (GetParam()) map_vsyscall(m);
  auto parent = must(Mm::create(m, Arch::X86_64));
  must(sys_mmap(*parent, 0x40000000, PAGE_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  write8(*parent, 0x40000000, 7);
  const std::uint64_t before = m.inject.attempts(AllocSite::PgTable);
  const std::uint64_t pages_before = m.inject.attempts(AllocSite::Page);
  auto child = must(dup_mm(*parent, ForkRecovery::TreeMax));
  EXPECT_EQ(m.inject.attempts(AllocSite::PgTable) - before, 4U);  // pgd, pud, pmd, pte
  EXPECT_EQ(m.inject.attempts(AllocSite::Page) - pages_before, 0U);
  EXPECT_EQ(child->pt().nr_tables_total(), 4U);
  EXPECT_TRUE(child->pt().arch_mappings().empty());
  EXPECT_EQ(child->pt().kernel_entries().size(), GetParam() ? 1U : 0U);
  EXPECT_EQ(read8(*child, 0x40000000), 7);
  EXPECT_EQ(problems({parent.get(), child.get()}), "");
  // A fifth table attempt would be a vsyscall table: none is made, so failing it changes
  // nothing; failing the fourth (the pte table) fails the fork.
  m.inject.fail_nth(AllocSite::PgTable, 5);
  auto again = dup_mm(*parent, ForkRecovery::TreeMax);
  EXPECT_TRUE(again.has_value());
  m.inject.disarm();
  m.inject.fail_nth(AllocSite::PgTable, 4);
  auto failed = dup_mm(*parent, ForkRecovery::TreeMax);
  EXPECT_FALSE(failed.has_value());
  m.inject.disarm();
}

INSTANTIATE_TEST_SUITE_P(Vsyscall, ForkAllocations, ::testing::Values(false, true),
                         [](const auto& i) { return i.param ? "emulate" : "xonly"; });

}  // namespace
}  // namespace mmemu::test
