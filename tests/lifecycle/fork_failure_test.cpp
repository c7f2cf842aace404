// Single fork failures looked at closely: what the parent keeps (its COW entries stay
// read-only and a later write reuses the page), the TLB flush, the __mt_dup failure that
// skips every recovery, and partial's own allocation failing.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "lifecycle_util.hpp"
#include "mmu/tlb_flush.hpp"
#include "vma/exit_mmap.hpp"

namespace mmemu::test {
namespace {

std::optional<pte_t> pte_at(const Mm& mm, vaddr_t va) {
  const auto ref = mm.pt().lookup(va);
  if (!ref || mm.fmt().none(mm.pt().get(*ref))) return std::nullopt;
  return mm.pt().get(*ref);
}

// The parent's VMAs fork copies, in order.
std::vector<const Vma*> copyable(const Mm& mm) {
  std::vector<const Vma*> out;
  for (const Vma* v : mm.vmas())
    if (!(v->vm_flags & VM_DONTCOPY)) out.push_back(v);
  return out;
}

bool cow_copied(const Vma& v) {
  return v.anon_vma && !(v.vm_flags & (VM_DONTCOPY | VM_WIPEONFORK | VM_SHARED));
}

class ForkFailure : public ::testing::TestWithParam<Arch> {};

// The kernel does not give the write bits back after a failed fork: the entries copied
// before the failure stay read-only, and the next write fault finds the page exclusive
// again and reuses it in place.
TEST_P(ForkFailure, ParentKeepsItsPagesWithCowEntriesReadOnly) {
  Machine m(kLifePhys);
  RecordingFlusher flusher;  // outlives the parent, whose exit flushes through it
  MixedParent p = build_mixed_parent(m, GetParam());
  Mm& par = *p.mm;
  par.set_flusher(&flusher);
  const MmSnapshot before = MmSnapshot::of(par);
  const auto live0 = live_now(m);
  const auto vmas = copyable(par);
  const Vma* failing = vmas[25];
  m.inject.fail_nth(AllocSite::Vma, 26);
  ForkReport rep;
  ASSERT_FALSE(dup_mm(par, ForkRecovery::TreeMax, &rep).has_value());
  EXPECT_EQ(rep.failed_step, "vm_area_dup");
  EXPECT_EQ(rep.failed_vma, failing->vm_start);
  EXPECT_EQ(rep.tree_max, failing->vm_start);
  EXPECT_EQ(live_now(m), live0);
  const MmSnapshot after = MmSnapshot::of(par);
  EXPECT_EQ(snapshot_diff(before, after), "");
  // One flush of the whole parent (flush_tlb_mm), after the entries changed.
  ASSERT_EQ(flusher.events.size(), 1U);
  EXPECT_EQ(flusher.events[0].kind, RecordingFlusher::Kind::All);

  std::uint64_t protected_now = 0;
  std::vector<vaddr_t> reprotected;
  for (const auto& [va, w] : before.writable) {
    const Vma* v = par.vma_lookup(va);
    const bool copied = v && v->vm_start < failing->vm_start && cow_copied(*v) && va != p.pinned;
    EXPECT_EQ(after.writable.at(va), w && !copied) << std::hex << va;
    if (w && copied) {
      ++protected_now;
      reprotected.push_back(va);
    }
  }
  EXPECT_EQ(rep.ptes_wrprotected, protected_now);
  ASSERT_GT(reprotected.size(), 5U);
  // A write fault on such an entry reuses the frame (the child's references are gone).
  for (vaddr_t va : reprotected) {
    const pfn_t pfn = par.fmt().pfn(*pte_at(par, va));
    write8(par, va, 0xfe);
    EXPECT_EQ(par.fmt().pfn(*pte_at(par, va)), pfn) << std::hex << va;
    EXPECT_TRUE(par.fmt().write(*pte_at(par, va)));
  }
  EXPECT_EQ(live_now(m), live0);
  EXPECT_EQ(problems({&par}), "");
}

// __mt_dup failing is "goto out": no recovery, no MMF_* flag, nothing copied or protected,
// and exit_mmap finds an empty tree (its event still fires).
TEST_P(ForkFailure, MtDupFailureSkipsTheRecovery) {
  for (ForkRecovery rec : {ForkRecovery::XaZero, ForkRecovery::TreeMax, ForkRecovery::Partial}) {
    Machine m(kLifePhys);
    MixedParent p = build_mixed_parent(m, GetParam());
    Mm& par = *p.mm;
    const MmSnapshot before = MmSnapshot::of(par);
    const auto live0 = live_now(m);
    std::vector<ExitMmapReport> exits;
    par.on_exit_mmap = [&](Mm&, const ExitMmapReport& r) { exits.push_back(r); };
    m.inject.fail_nth(AllocSite::MapleNode, 3);
    ForkReport rep;
    ASSERT_FALSE(dup_mm(par, rec, &rep).has_value());
    EXPECT_EQ(rep.failed_step, "mt_dup");
    EXPECT_EQ(rep.child_flags, 0U);
    EXPECT_EQ(rep.ptes_copied, 0U);
    EXPECT_NE(rep.recovery_note.find("after 2 nodes"), std::string::npos) << rep.recovery_note;
    ASSERT_EQ(exits.size(), 1U);
    EXPECT_TRUE(exits[0].empty);
    EXPECT_EQ(live_now(m), live0);
    EXPECT_EQ(MmSnapshot::of(par).writable, before.writable);
    par.on_exit_mmap = nullptr;
  }
}

// Failing the child's pgd (mm_init) ends fork before dup_mmap: no child, no exit.
TEST_P(ForkFailure, MmInitFailure) {
  Machine m(kLifePhys);
  MixedParent p = build_mixed_parent(m, GetParam());
  const auto live0 = live_now(m);
  int exits = 0;
  p.mm->on_exit_mmap = [&](Mm&, const ExitMmapReport&) { ++exits; };
  m.inject.fail_nth(AllocSite::PgTable, 1);
  ForkReport rep;
  auto r = dup_mm(*p.mm, ForkRecovery::XaZero, &rep);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errno{ENOMEM});
  EXPECT_EQ(rep.failed_step, "mm_init");
  EXPECT_FALSE(rep.exited);
  EXPECT_EQ(exits, 0);
  EXPECT_EQ(live_now(m), live0);
  p.mm->on_exit_mmap = nullptr;
}

// Partial's erase needs nodes of its own. When they cannot be had, it falls back to the
// one store that cannot fail, the XA_ZERO marker, and says so; nothing leaks either way.
TEST_P(ForkFailure, PartialEraseFailureFallsBackToTheMarker) {
  Machine m(kLifePhys);
  MixedParent p = build_mixed_parent(m, GetParam());
  Mm& par = *p.mm;
  const auto live0 = live_now(m);
  const auto vmas = copyable(par);
  // vm_area_dup of the 11th VMA fails, and so does every maple node from then on.
  const std::uint64_t dup_nodes = par.mm_mt.node_count();
  m.inject.fail_nth(AllocSite::Vma, 11);
  m.inject.fail_nth(AllocSite::MapleNode, dup_nodes + 1, /*persistent=*/true);
  auto unuse = make_walker(WalkerKind::UnuseMm, false);
  ForkReport rep;
  ASSERT_FALSE(dup_mm(par, ForkRecovery::Partial, &rep, {unuse.get()}).has_value());
  m.inject.disarm();
  EXPECT_EQ(rep.failed_step, "vm_area_dup");
  ASSERT_TRUE(rep.xa_zero_stored);
  EXPECT_EQ(rep.xa_zero_first, vmas[10]->vm_start);
  EXPECT_EQ(rep.recovery_note,
            fmt::format("erasing [{:#x}, ULONG_MAX] failed (ENOMEM): fell back to XA_ZERO_ENTRY "
                        "over [{:#x}, {:#x}]",
                        vmas[10]->vm_start, vmas[10]->vm_start, vmas[10]->vm_end - 1));
  EXPECT_EQ(rep.child_flags, MMF_UNSTABLE | MMF_OOM_SKIP);
  ASSERT_EQ(rep.walkers.size(), 1U);
  EXPECT_EQ(rep.walkers[0].outcome, "met-xa-zero");
  EXPECT_TRUE(rep.exit.met_xa_zero);
  EXPECT_EQ(rep.exit.vmas_removed, rep.vmas_copied);
  EXPECT_EQ(live_now(m), live0);

  // With memory to spare the same failure erases the tail and keeps a valid tree.
  m.inject.fail_nth(AllocSite::Vma, 11);
  ASSERT_FALSE(dup_mm(par, ForkRecovery::Partial, &rep, {unuse.get()}).has_value());
  EXPECT_FALSE(rep.xa_zero_stored);
  EXPECT_EQ(rep.child_flags, MMF_UNSTABLE);
  EXPECT_EQ(rep.walkers[0].outcome, "walked");
  EXPECT_EQ(rep.walkers[0].vmas_seen, 10);
  EXPECT_EQ(live_now(m), live0);
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, ForkFailure, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
