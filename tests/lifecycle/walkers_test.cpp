// The race from the linux-mm thread, reproduced on demand: walkers run at the lock-drop
// point of a failed fork. Under xa-zero an unchecked walker walks into the marker (where
// the kernel would dereference XA_ZERO_ENTRY as a VMA) and the report says where; a walker
// that tests the flag first leaves the mm alone; under tree-max the tree is already empty;
// under partial every entry is a real VMA of the child.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "lifecycle_util.hpp"

namespace mmemu::test {
namespace {

struct Walkers {
  std::vector<std::unique_ptr<ConcurrentWalker>> own;
  std::vector<ConcurrentWalker*> list;
  Walkers() {
    // The reaper unmaps what it walks, so it runs last (checking variant first).
    for (WalkerKind k : {WalkerKind::UnuseMm, WalkerKind::Rmap, WalkerKind::OomReaper})
      for (bool checks : {k == WalkerKind::OomReaper, k != WalkerKind::OomReaper}) {
        own.push_back(make_walker(k, checks));
        list.push_back(own.back().get());
      }
  }
};

const WalkerReport& by_name(const ForkReport& rep, const std::string& name) {
  for (const WalkerReport& w : rep.walkers)
    if (w.walker == name) return w;
  ADD_FAILURE() << "no walker " << name;
  static const WalkerReport none;
  return none;
}

class WalkerRace : public ::testing::TestWithParam<Arch> {
 protected:
  // Fails vm_area_dup of the 21st copyable VMA (group 2, with anon memory copied before it).
  ForkReport fork_failing(ForkRecovery rec) {
    const auto live0 = live_now(m);
    std::vector<const Vma*> vmas;
    for (const Vma* v : p.mm->vmas())
      if (!(v->vm_flags & VM_DONTCOPY)) vmas.push_back(v);
    failing = vmas[20];
    m.inject.fail_nth(AllocSite::Vma, 21);
    ForkReport rep;
    EXPECT_FALSE(dup_mm(*p.mm, rec, &rep, w.list).has_value());
    EXPECT_EQ(rep.failed_vma, failing->vm_start);
    EXPECT_EQ(rep.walkers.size(), 6U);
    EXPECT_EQ(live_now(m), live0);  // reaped or not, nothing is left
    EXPECT_EQ(problems({p.mm.get()}), "");
    return rep;
  }
  void SetUp() override { p = build_mixed_parent(m, GetParam()); }
  Machine m{kLifePhys};
  MixedParent p;
  Walkers w;
  const Vma* failing = nullptr;
};

TEST_P(WalkerRace, XaZeroUncheckedWalkersMeetTheMarker) {
  const ForkReport rep = fork_failing(ForkRecovery::XaZero);
  const std::string entry =
      fmt::format("XA_ZERO_ENTRY [{:#x}, {:#x}]", failing->vm_start, failing->vm_end - 1);
  ASSERT_EQ(rep.vmas_copied, 20);
  for (const char* name : {"unuse_mm-nocheck", "oom_reaper-nocheck"}) {
    const WalkerReport& r = by_name(rep, name);
    EXPECT_EQ(r.outcome, "met-xa-zero") << name;
    EXPECT_EQ(r.addr, failing->vm_start) << name;
    EXPECT_EQ(r.entry, entry) << name;
    EXPECT_EQ(r.vmas_seen, 20) << name;  // every copied VMA, then the marker
    EXPECT_FALSE(r.checks);
  }
  // The reaper unmapped what it walked before the marker (the pages it could reach).
  EXPECT_GT(by_name(rep, "oom_reaper-nocheck").pages_reaped, 0U);
  // The rmap walk reaches the child through a COW-shared frame of a copied VMA, then
  // follows the child's tree into the marker.
  const WalkerReport& rm = by_name(rep, "rmap-nocheck");
  EXPECT_EQ(rm.outcome, "met-xa-zero");
  EXPECT_EQ(rm.addr, failing->vm_start);
  EXPECT_EQ(rm.entry, entry);
  EXPECT_GT(rm.vmas_seen, 0);
  // Checking variants: unuse_mm and rmap test MMF_UNSTABLE, the reaper MMF_OOM_SKIP.
  EXPECT_EQ(by_name(rep, "unuse_mm").outcome, "skipped-unstable");
  EXPECT_EQ(by_name(rep, "rmap").outcome, "skipped-unstable");
  EXPECT_EQ(by_name(rep, "oom_reaper").outcome, "skipped-oom-skip");
  EXPECT_EQ(rep.child_flags, MMF_UNSTABLE | MMF_OOM_SKIP);
  // exit_mmap still stopped at the marker and freed the copied part.
  EXPECT_TRUE(rep.exit.met_xa_zero);
  EXPECT_EQ(rep.exit.vmas_removed, 20);
}

TEST_P(WalkerRace, TreeMaxWalkersFindAnEmptyTree) {
  const ForkReport rep = fork_failing(ForkRecovery::TreeMax);
  EXPECT_EQ(rep.tree_max, failing->vm_start);
  EXPECT_EQ(rep.torn_down, 20);
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck").outcome, "empty-tree");
  EXPECT_EQ(by_name(rep, "oom_reaper-nocheck").outcome, "empty-tree");
  EXPECT_EQ(by_name(rep, "oom_reaper-nocheck").pages_reaped, 0U);
  // The child's VMAs left the anon_vma chains with the tree: no rmap walk can reach it.
  EXPECT_EQ(by_name(rep, "rmap-nocheck").outcome, "unreachable");
  EXPECT_EQ(by_name(rep, "unuse_mm").outcome, "skipped-unstable");
  EXPECT_EQ(by_name(rep, "oom_reaper").outcome, "skipped-oom-skip");
  EXPECT_TRUE(rep.exit.empty);
}

TEST_P(WalkerRace, PartialLeavesOnlyRealVmas) {
  const ForkReport rep = fork_failing(ForkRecovery::Partial);
  EXPECT_EQ(rep.child_flags, MMF_UNSTABLE);
  const WalkerReport& u = by_name(rep, "unuse_mm-nocheck");
  EXPECT_EQ(u.outcome, "walked");
  EXPECT_EQ(u.vmas_seen, 20);
  EXPECT_EQ(by_name(rep, "rmap-nocheck").outcome, "walked");
  // No OOM_SKIP: the checking reaper walks (and reaps) the valid tree.
  const WalkerReport& o = by_name(rep, "oom_reaper");
  EXPECT_EQ(o.outcome, "walked");
  EXPECT_EQ(o.vmas_seen, 20);
  EXPECT_EQ(by_name(rep, "unuse_mm").outcome, "skipped-unstable");
  EXPECT_FALSE(rep.exit.met_xa_zero);
  EXPECT_EQ(rep.exit.vmas_removed, 20);
}

// A failure after the last VMA (arch_dup_mmap): no marker even under xa-zero.
TEST_P(WalkerRace, NoMarkerWhenEveryVmaWasCopied) {
  std::uint64_t tables = 0;
  {
    m.inject.reset_counts();
    auto c = dup_mm(*p.mm, ForkRecovery::XaZero);
    ASSERT_TRUE(c.has_value());
    tables = m.inject.attempts(AllocSite::PgTable);
  }
  const auto live0 = live_now(m);
  m.inject.fail_nth(AllocSite::PgTable, tables);  // the arch page's last table
  ForkReport rep;
  ASSERT_FALSE(dup_mm(*p.mm, ForkRecovery::XaZero, &rep, w.list).has_value());
  EXPECT_EQ(rep.failed_step, "arch_dup_mmap");
  EXPECT_FALSE(rep.xa_zero_stored);
  EXPECT_EQ(rep.child_flags, MMF_UNSTABLE);
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck").outcome, "walked");
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck").vmas_seen, rep.vmas_copied);
  EXPECT_EQ(by_name(rep, "oom_reaper").outcome, "walked");
  EXPECT_EQ(live_now(m), live0);
}

TEST(WalkerNames, RoundTrip) {
  for (WalkerKind k : {WalkerKind::UnuseMm, WalkerKind::OomReaper, WalkerKind::Rmap})
    for (bool checks : {false, true}) {
      const auto w = make_walker(k, checks);
      const auto parsed = parse_walker(w->name());
      ASSERT_TRUE(parsed.has_value()) << w->name();
      EXPECT_EQ(parsed->first, k);
      EXPECT_EQ(parsed->second, checks);
    }
  EXPECT_EQ(make_walker(WalkerKind::OomReaper, false)->name(), "oom_reaper-nocheck");
  EXPECT_FALSE(parse_walker("swapoff").has_value());
  EXPECT_EQ(parse_recovery("tree-max"), ForkRecovery::TreeMax);
  EXPECT_FALSE(parse_recovery("treemax").has_value());
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, WalkerRace, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
