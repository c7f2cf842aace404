#include "mmu/walker.hpp"

#include <gtest/gtest.h>

#include "pt_test_util.hpp"

namespace mmemu {
namespace {

using test::PtFixture;

constexpr PteProt R{true, false, false, true};
constexpr PteProt RW{true, true, false, true};
constexpr PteProt RX{true, false, true, true};
constexpr PteProt NONE{};
constexpr PteProt KR{true, false, false, false};
constexpr vaddr_t kVa = 0x400000;

WalkFault prot_fault(ProtReason r) {
  return WalkFault{WalkFaultKind::Protection, Level::Pte, r};
}
WalkFault not_present(Level l) {
  return WalkFault{WalkFaultKind::NotPresent, l, ProtReason::None};
}

class WalkerTest : public ::testing::TestWithParam<Arch> {
 protected:
  PtFixture fx{GetParam()};
  PageTable& pt() { return *fx.pt; }
  const PteFormat& f() { return fx.pt->fmt(); }
  pte_t leaf(vaddr_t va) { return pt().get(*pt().lookup(va)); }
};

TEST_P(WalkerTest, NotPresentReportsTheLevel) {
  EXPECT_EQ(walk(pt(), kVa, Access::Read).error(), not_present(Level::Pgd));
  fx.map_page(kVa);
  EXPECT_EQ(walk(pt(), kVa + PAGE_SIZE, Access::Read).error(), not_present(Level::Pte));
  EXPECT_EQ(walk(pt(), kVa + PMD_SIZE, Access::Read).error(), not_present(Level::Pmd));
  EXPECT_EQ(walk(pt(), kVa + PUD_SIZE, Access::Write).error(), not_present(Level::Pud));
  EXPECT_EQ(walk(pt(), kVa + PGDIR_SIZE, Access::Exec).error(), not_present(Level::Pgd));
  EXPECT_EQ(walk_fault_name(not_present(Level::Pmd)), "not-present");
}

TEST_P(WalkerTest, ReadSetsAccessedOnlyWithSetAd) {
  const pfn_t fr = fx.map_page(kVa, R);
  const pte_t before = leaf(kVa);
  auto peek = walk(pt(), kVa + 0x123, Access::Read, /*set_ad=*/false);
  ASSERT_TRUE(peek.has_value());
  EXPECT_EQ(peek->pfn, fr);
  EXPECT_EQ(peek->pte, before);
  EXPECT_FALSE(peek->young);
  EXPECT_EQ(leaf(kVa), before);
  auto t = walk(pt(), kVa, Access::Read);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->pfn, fr);
  EXPECT_EQ(t->ref, *pt().lookup(kVa));
  EXPECT_EQ(t->prot, R);
  EXPECT_TRUE(t->young);
  EXPECT_FALSE(t->dirty);
  EXPECT_EQ(leaf(kVa), f().mkyoung(before));
  EXPECT_EQ(t->pte, leaf(kVa));
}

TEST_P(WalkerTest, WriteToReadOnlyFaultsAndChangesNothing) {
  fx.map_page(kVa, R);
  const pte_t before = leaf(kVa);
  EXPECT_EQ(walk(pt(), kVa, Access::Write).error(), prot_fault(ProtReason::ReadOnly));
  EXPECT_EQ(leaf(kVa), before);
  EXPECT_EQ(walk_fault_name(prot_fault(ProtReason::ReadOnly)), "read-only");
}

TEST_P(WalkerTest, WriteToCleanWritableSucceedsAndDirtiesOnlyWithSetAd) {
  fx.map_page(kVa, RW);
  const pte_t clean = leaf(kVa);
  ASSERT_FALSE(f().dirty(clean));
  auto peek = walk(pt(), kVa, Access::Write, /*set_ad=*/false);
  ASSERT_TRUE(peek.has_value());
  EXPECT_FALSE(peek->dirty);
  EXPECT_EQ(leaf(kVa), clean);
  auto t = walk(pt(), kVa, Access::Write);
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->dirty);
  EXPECT_TRUE(t->young);
  const pte_t after = leaf(kVa);
  if (GetParam() == Arch::X86_64) {
    EXPECT_EQ(after, clean | x86_bits::A | x86_bits::D);
  } else {
    // AF set, and the DBM write cleared AP[2]: hardware-dirty, no software bit.
    EXPECT_EQ(after, (clean | arm64_bits::AF) & ~arm64_bits::RDONLY);
    EXPECT_FALSE(after & arm64_bits::DIRTY);
  }
  EXPECT_TRUE(f().dirty(after));
  EXPECT_TRUE(f().write(after));
  // A read afterwards keeps it dirty.
  ASSERT_TRUE(walk(pt(), kVa, Access::Read).has_value());
  EXPECT_EQ(leaf(kVa), after);
}

TEST_P(WalkerTest, ExecNeedsExecutableEntry) {
  fx.map_page(kVa, R);
  fx.map_page(kVa + PAGE_SIZE, RX);
  EXPECT_EQ(walk(pt(), kVa, Access::Exec).error(), prot_fault(ProtReason::NoExec));
  auto t = walk(pt(), kVa + PAGE_SIZE, Access::Exec);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->prot, RX);
  EXPECT_EQ(walk(pt(), kVa + PAGE_SIZE, Access::Write).error(), prot_fault(ProtReason::ReadOnly));
}

TEST_P(WalkerTest, ProtNoneForbidsEveryAccess) {
  fx.map_page(kVa, NONE);
  const pte_t before = leaf(kVa);
  ASSERT_TRUE(f().present(before));
  for (Access a : {Access::Read, Access::Write, Access::Exec})
    EXPECT_EQ(walk(pt(), kVa, a).error(), prot_fault(ProtReason::ProtNone));
  EXPECT_EQ(leaf(kVa), before);
  EXPECT_EQ(walk_fault_name(prot_fault(ProtReason::ProtNone)), "prot-none");
}

TEST_P(WalkerTest, KernelOnlyEntryFaultsForUser) {
  fx.map_page(kVa, KR);
  for (Access a : {Access::Read, Access::Write, Access::Exec})
    EXPECT_EQ(walk(pt(), kVa, a).error(), prot_fault(ProtReason::KernelOnly));
}

TEST_P(WalkerTest, ArchMappingIsWalkable) {
  const vaddr_t va = test::arch_page_va(GetParam());
  const pfn_t fr = *fx.m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(pt().map_arch_pages(va, {fr}, RX, "[arch]").has_value());
  auto t = walk(pt(), va + 0x10, Access::Exec);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->pfn, fr);
  EXPECT_EQ(walk(pt(), va, Access::Write).error(), prot_fault(ProtReason::ReadOnly));
}

INSTANTIATE_TEST_SUITE_P(Arches, WalkerTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         test::arch_param_name);

TEST(WalkerX86, NonCanonicalAddressIsNotAPageFault) {
  PtFixture fx(Arch::X86_64);
  const WalkFault want{WalkFaultKind::NonCanonical, Level::Pgd, ProtReason::None};
  EXPECT_EQ(walk(*fx.pt, 0x0000800000000000ULL, Access::Read).error(), want);
  EXPECT_EQ(walk(*fx.pt, 0xfff0000000000000ULL, Access::Read).error(), want);
  EXPECT_EQ(walk(*fx.pt, 0xffff800000000000ULL, Access::Read).error(), not_present(Level::Pgd));
  EXPECT_EQ(walk_fault_name(want), "non-canonical");
}

TEST(WalkerX86, UpperLevelBitsCombine) {
  PtFixture fx(Arch::X86_64);
  fx.map_page(kVa, PteProt{true, true, true, true});
  PageTable& pt = *fx.pt;
  const pfn_t pud = *pt.table_for(kVa, Level::Pud);
  const pfn_t pmd = *pt.table_for(kVa, Level::Pmd);
  const PteRef pud_e{pud, 0};
  const PteRef pmd_e{pmd, table_index(kVa, Level::Pmd)};
  const pte_t pud_orig = pt.get(pud_e);
  const pte_t pmd_orig = pt.get(pmd_e);
  // RW clear in the pud entry makes the whole range read-only.
  pt.set(pud_e, pud_orig & ~x86_bits::RW);
  EXPECT_EQ(walk(pt, kVa, Access::Write).error(), prot_fault(ProtReason::ReadOnly));
  ASSERT_TRUE(walk(pt, kVa, Access::Read).has_value());
  pt.set(pud_e, pud_orig);
  // NX in the pmd entry forbids fetches below it.
  pt.set(pmd_e, pmd_orig | x86_bits::NX);
  EXPECT_EQ(walk(pt, kVa, Access::Exec).error(), prot_fault(ProtReason::NoExec));
  // US clear makes it supervisor-only.
  pt.set(pmd_e, pmd_orig & ~x86_bits::US);
  EXPECT_EQ(walk(pt, kVa, Access::Read).error(), prot_fault(ProtReason::KernelOnly));
  // A clear A bit in an upper entry is set by a successful walk, like the hardware does.
  pt.set(pmd_e, pmd_orig & ~x86_bits::A);
  ASSERT_TRUE(walk(pt, kVa, Access::Read, /*set_ad=*/false).has_value());
  EXPECT_EQ(pt.get(pmd_e), pmd_orig & ~x86_bits::A);
  ASSERT_TRUE(walk(pt, kVa, Access::Read).has_value());
  EXPECT_EQ(pt.get(pmd_e), pmd_orig);
  // A PS (huge) pmd entry is not something mmemu builds: not walkable.
  pt.set(pmd_e, pmd_orig | x86_bits::PS);
  EXPECT_EQ(walk(pt, kVa, Access::Read).error(), not_present(Level::Pmd));
  pt.set(pmd_e, pmd_orig);
}

TEST(WalkerArm64, UpperHalfAndBadDescriptors) {
  PtFixture fx(Arch::Arm64);
  fx.map_page(kVa, RW);
  PageTable& pt = *fx.pt;
  EXPECT_EQ(walk(pt, 0x0001000000000000ULL, Access::Read).error(), not_present(Level::Pgd));
  EXPECT_EQ(walk(pt, 0xffff000000400000ULL, Access::Read).error(), not_present(Level::Pgd));
  // Invalid (bit 0 clear) and block (bits[1:0] = 01) descriptors stop the walk.
  const pfn_t pmd = *pt.table_for(kVa, Level::Pmd);
  const PteRef pmd_e{pmd, table_index(kVa, Level::Pmd)};
  const pte_t orig = pt.get(pmd_e);
  pt.set(pmd_e, orig & ~arm64_bits::VALID);
  EXPECT_EQ(walk(pt, kVa, Access::Read).error(), not_present(Level::Pmd));
  pt.set(pmd_e, orig & ~arm64_bits::TABLE_BIT);
  EXPECT_EQ(walk(pt, kVa, Access::Read).error(), not_present(Level::Pmd));
  pt.set(pmd_e, orig);
  // A level-3 descriptor with bits[1:0] = 01 is reserved: translation fault.
  const PteRef leaf = *pt.lookup(kVa);
  const pte_t e = pt.get(leaf);
  pt.set(leaf, e & ~arm64_bits::TABLE_BIT);
  EXPECT_EQ(walk(pt, kVa, Access::Read).error(), not_present(Level::Pte));
  // Without DBM a read-only page really is read-only.
  pt.set(leaf, e & ~arm64_bits::DBM);
  EXPECT_EQ(walk(pt, kVa, Access::Write).error(), prot_fault(ProtReason::ReadOnly));
}

}  // namespace
}  // namespace mmemu
