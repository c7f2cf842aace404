// anon_vma reuse on fork, and the sequence behind the old "degree" double-reuse bug (Jann
// Horn, 2022): one counter of children plus VMAs made an anon_vma with no child and one VMA
// look like one with a child and no VMA, so a fork could hand it to a second VMA. With
// separate counts it is not reused, and merges in the grandchild stay correct.
#include <gtest/gtest.h>

#include <set>

#include "lifecycle_util.hpp"
#include "vma/rmap.hpp"

namespace mmemu::test {
namespace {

constexpr vaddr_t kAddr = 0x20000000;
constexpr std::uint64_t kLen = 3 * PAGE_SIZE;

std::unique_ptr<Mm> fork_ok(Mm& parent) {
  auto c = dup_mm(parent, ForkRecovery::TreeMax);
  EXPECT_TRUE(c.has_value());
  return c ? std::move(*c) : nullptr;
}

// What anon_vma_clone used to decide with the single degree counter.
bool old_degree_rule_reuses(const AnonVma* av, const Vma& src) {
  const unsigned old_degree =
      (av->num_children - (av->parent == av ? 1U : 0U)) + av->num_active_vmas;
  return av != src.anon_vma && old_degree < 2;
}

std::set<std::pair<Mm*, vaddr_t>> rmap_of(PhysMem& phys, pfn_t pfn) {
  std::set<std::pair<Mm*, vaddr_t>> out;
  rmap_walk(phys, pfn, [&](const RmapHit& h) { out.emplace(h.mm, h.addr); });
  return out;
}

class AnonVmaReuse : public ::testing::TestWithParam<Arch> {};

TEST_P(AnonVmaReuse, DegreeDoubleReuseSequenceStaysCorrect) {
  Machine m(kLifePhys);
  auto pr = Mm::create(m, GetParam());
  ASSERT_TRUE(pr.has_value());
  std::unique_ptr<Mm> p = std::move(*pr);
  ASSERT_TRUE(sys_mmap(*p, kAddr, kLen, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  for (int i = 0; i < 3; ++i)
    write8(*p, kAddr + i * PAGE_SIZE, static_cast<std::uint8_t>(i + 1));
  AnonVma* A = p->vma_lookup(kAddr)->anon_vma;

  // P -> C1: C1's VMA gets B, a child of A.
  auto c1 = fork_ok(*p);
  AnonVma* B = c1->vma_lookup(kAddr)->anon_vma;
  EXPECT_EQ(B->parent, A);
  // C1 -> C2: A has a child, B a VMA: neither is reused; C2's VMA gets D under B.
  auto c2 = fork_ok(*c1);
  Vma* v2 = c2->vma_lookup(kAddr);
  AnonVma* D = v2->anon_vma;
  EXPECT_EQ(D->parent, B);
  EXPECT_EQ(v2->anon_vma_chain.size(), 3U);
  // C1 unmaps its VMA: B keeps a child (D) and has no VMA any more.
  ASSERT_TRUE(do_munmap(*c1, kAddr, kLen));
  EXPECT_EQ(B->num_active_vmas, 0U);
  EXPECT_EQ(B->num_children, 1U);
  // C2 -> C3: B is reused for C3's VMA, legitimately (one child, no VMA).
  auto c3 = fork_ok(*c2);
  Vma* v3 = c3->vma_lookup(kAddr);
  EXPECT_EQ(v3->anon_vma, B);
  EXPECT_EQ(B->num_active_vmas, 1U);
  // D now sits in C3's chain without being C3's anon_vma, with no child and one VMA (C2's):
  // the old degree (children + VMAs) was 1, which the old rule read as "a child, no VMA".
  EXPECT_EQ(D->num_children, 0U);
  EXPECT_EQ(D->num_active_vmas, 1U);
  EXPECT_TRUE(old_degree_rule_reuses(D, *v3));
  // C3 -> C4: the old rule would have reused D while C2's VMA uses it. Now: a fresh E.
  auto c4 = fork_ok(*c3);
  Vma* v4 = c4->vma_lookup(kAddr);
  AnonVma* E = v4->anon_vma;
  EXPECT_NE(E, D);
  EXPECT_NE(E, B);
  EXPECT_EQ(E->parent, B);
  EXPECT_EQ(D->num_active_vmas, 1U);
  EXPECT_EQ(v4->anon_vma_chain.size(), 4U);  // A, B, D and its own E

  // The merge: split C4's VMA with mprotect and restore it; the pieces share E and the same
  // chain, so they merge back into one VMA. Then give it private pages and check the rmap.
  ASSERT_TRUE(do_mprotect(*c4, kAddr + PAGE_SIZE, PAGE_SIZE, PROT_READ));
  EXPECT_EQ(c4->map_count, 3);
  ASSERT_TRUE(do_mprotect(*c4, kAddr + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_EQ(c4->map_count, 1);
  v4 = c4->vma_lookup(kAddr);
  EXPECT_EQ(v4->vm_end, kAddr + kLen);
  EXPECT_EQ(v4->anon_vma, E);
  write8(*c4, kAddr, 0x44);
  write8(*c2, kAddr + PAGE_SIZE, 0x22);
  EXPECT_EQ(problems({p.get(), c1.get(), c2.get(), c3.get(), c4.get()}), "");

  PhysMem& phys = m.phys;
  const auto pfn_at = [](Mm& mm, vaddr_t va) {
    return mm.fmt().pfn(mm.pt().get(*mm.pt().lookup(va)));
  };
  // C4's new page belongs to E and is found from C4 only.
  const pfn_t n4 = pfn_at(*c4, kAddr);
  EXPECT_EQ(phys.desc(n4).mapping, E);
  EXPECT_EQ(rmap_of(phys, n4), (std::set<std::pair<Mm*, vaddr_t>>{{c4.get(), kAddr}}));
  // C2's new page belongs to D, found from C2 only (C3 and C4 link D but map other frames).
  const pfn_t n2 = pfn_at(*c2, kAddr + PAGE_SIZE);
  EXPECT_EQ(phys.desc(n2).mapping, D);
  EXPECT_EQ(rmap_of(phys, n2), (std::set<std::pair<Mm*, vaddr_t>>{{c2.get(), kAddr + PAGE_SIZE}}));
  // The third page is still the parent's original, shared by all but C1.
  const pfn_t orig = pfn_at(*p, kAddr + 2 * PAGE_SIZE);
  EXPECT_EQ(rmap_of(phys, orig),
            (std::set<std::pair<Mm*, vaddr_t>>{{p.get(), kAddr + 2 * PAGE_SIZE},
                                               {c2.get(), kAddr + 2 * PAGE_SIZE},
                                               {c3.get(), kAddr + 2 * PAGE_SIZE},
                                               {c4.get(), kAddr + 2 * PAGE_SIZE}}));

  // Tear down out of order; every anon_vma goes with its last user.
  c2.reset();
  c4.reset();
  p.reset();
  c3.reset();
  c1.reset();
  for (AllocSite s : kAllAllocSites)
    EXPECT_EQ(m.live.live(s), 0) << site_name(s);
}

// A failed fork gives back what anon_vma_fork took: every count of the parent's anon_vmas
// is as before (the sweep checks this for every failure point; here, the reuse case).
TEST_P(AnonVmaReuse, FailedForkRestoresReuseCounts) {
  Machine m(kLifePhys);
  auto pr = Mm::create(m, GetParam());
  ASSERT_TRUE(pr.has_value());
  std::unique_ptr<Mm> p = std::move(*pr);
  ASSERT_TRUE(sys_mmap(*p, kAddr, kLen, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  write8(*p, kAddr, 1);
  auto c1 = fork_ok(*p);
  auto c2 = fork_ok(*c1);
  ASSERT_TRUE(do_munmap(*c1, kAddr, kLen));
  AnonVma* B = c2->vma_lookup(kAddr)->anon_vma->parent;
  const auto live0 = live_now(m);
  // C2 -> C3 would reuse B; fail at each of its anon_vma allocations and at its tables.
  for (AllocSite site : {AllocSite::AnonVma, AllocSite::PgTable})
    for (std::uint64_t n = 1; n <= 3; ++n) {
      m.inject.fail_nth(site, n);
      ForkReport rep;
      const bool ok = dup_mm(*c2, ForkRecovery::XaZero, &rep).has_value();
      m.inject.disarm();
      EXPECT_FALSE(ok);
      EXPECT_EQ(B->num_active_vmas, 0U) << site_name(site) << n;
      EXPECT_EQ(B->num_children, 1U);
      EXPECT_EQ(live_now(m), live0);
    }
  auto c3 = fork_ok(*c2);
  EXPECT_EQ(c3->vma_lookup(kAddr)->anon_vma, B);
  EXPECT_EQ(problems({p.get(), c1.get(), c2.get(), c3.get()}), "");
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, AnonVmaReuse, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
