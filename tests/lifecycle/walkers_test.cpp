// The race from the linux-mm thread, reproduced on demand: walkers run at the lock-drop
// point of a failed fork, or inside the dying child's exit_mmap unlock window. Under xa-zero
// an unchecked tree walker walks into the marker (where the kernel would dereference
// XA_ZERO_ENTRY as a VMA) and the report says where; a walker that tests the flag first
// leaves the mm alone; under tree-max the tree is already empty; under partial every entry
// is a real VMA of the child. The rmap walker goes from a frame through its anon_vma to
// the child's VMAs and their PTEs, never through a tree. mm_users / mm_count follow Linux.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>

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

const WalkerReport& by_name(const ForkReport& rep, const std::string& name,
                            const std::string& point = "lock-drop") {
  for (const WalkerReport& w : rep.walkers)
    if (w.walker == name && w.point == point) return w;
  ADD_FAILURE() << "no walker " << name;
  static const WalkerReport none;
  return none;
}

class WalkerRace : public ::testing::TestWithParam<Arch> {
 protected:
  // Fails vm_area_dup of the 21st copyable VMA (group 2, with anon memory copied before it).
  ForkReport fork_failing(ForkRecovery rec, bool in_exit_window = false) {
    const auto live0 = live_now(m);
    std::vector<const Vma*> vmas;
    for (const Vma* v : p.mm->vmas())
      if (!(v->vm_flags & VM_DONTCOPY)) vmas.push_back(v);
    failing = vmas[20];
    m.inject.fail_nth(AllocSite::Vma, 21);
    ForkReport rep;
    const std::vector<ConcurrentWalker*> none;
    EXPECT_FALSE(
        dup_mm(*p.mm, rec, &rep, in_exit_window ? none : w.list, in_exit_window ? w.list : none)
            .has_value());
    EXPECT_EQ(rep.failed_vma, failing->vm_start);
    EXPECT_EQ(rep.walkers.size(), 6U);
    EXPECT_TRUE(rep.exited);
    EXPECT_EQ(rep.errors, std::vector<std::string>{});
    // dup_mm's own use, until its mmput.
    EXPECT_EQ(rep.child_mm_users, 1);
    EXPECT_EQ(rep.child_mm_count, 1);
    // The parent's counts are not touched by a fork.
    EXPECT_EQ(p.mm->mm_users, 1);
    EXPECT_EQ(p.mm->mm_count, 1);
    EXPECT_EQ(live_now(m), live0);  // reaped or not, nothing is left
    EXPECT_EQ(problems({p.mm.get()}), "");
    return rep;
  }
  void SetUp() override {
    p = build_mixed_parent(m, GetParam());
    const auto ref = p.mm->pt().lookup(p.locked);
    ASSERT_TRUE(ref.has_value());
    locked_pfn = p.mm->fmt().pfn(p.mm->pt().get(*ref));
  }
  // One rmap visit of the locked VMA's first page: the parent's VMA or the child's copy
  // (same range, same address), its mm's flags, and what the PTE lookup found.
  void expect_visit(const RmapVisit& v, bool child, std::uint32_t flags, bool looked, bool present,
                    pfn_t pfn) {
    EXPECT_EQ(v.child, child);
    if (child)
      EXPECT_NE(v.mm, p.mm->id());
    else
      EXPECT_EQ(v.mm, p.mm->id());
    EXPECT_EQ(v.mm_flags, flags);
    EXPECT_FALSE(v.tree_empty);
    EXPECT_EQ(v.vm_start, p.locked);
    EXPECT_EQ(v.vm_end, p.locked + 2 * PAGE_SIZE);
    EXPECT_EQ(v.addr, p.locked);
    EXPECT_EQ(v.looked, looked);
    EXPECT_EQ(v.has_table, looked);  // the child's tables are all there until free_pgtables
    EXPECT_EQ(v.present, present);
    EXPECT_EQ(v.pfn, pfn);
  }
  Machine m{kLifePhys};
  MixedParent p;
  Walkers w;
  const Vma* failing = nullptr;
  pfn_t locked_pfn = 0;
  // vm_start of the 21st copyable VMA, the one whose vm_area_dup fails.
  vaddr_t failing_start() const {
    int n = 0;
    for (const Vma* v : p.mm->vmas())
      if (!(v->vm_flags & VM_DONTCOPY) && ++n == 21) return v->vm_start;
    return 0;
  }
};

// exit_mmap's unlock window: mm_users is 0, so swapoff's mmget_not_zero fails; the reaper
// (mm_count only) still walks the tree and meets the marker the first unmap_vmas stopped
// at, with nothing left to reap; rmap still finds the child's VMA on the anon_vma (until
// free_pgtables unlinks it), its table still there but the PTE cleared by unmap_vmas.
TEST_P(WalkerRace, ExitWindowXaZero) {
  const ForkReport rep = fork_failing(ForkRecovery::XaZero, /*in_exit_window=*/true);
  for (const WalkerReport& r : rep.walkers) {
    EXPECT_EQ(r.point, "exit-unlock") << r.walker;
    EXPECT_EQ(r.mm_users, 0) << r.walker;
    EXPECT_EQ(r.mm_count, 1) << r.walker;  // the users' reference, dropped after exit_mmap
  }
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck", "exit-unlock").outcome, "no-mm-users");
  EXPECT_EQ(by_name(rep, "unuse_mm", "exit-unlock").outcome, "no-mm-users");
  const WalkerReport& o = by_name(rep, "oom_reaper-nocheck", "exit-unlock");
  EXPECT_EQ(o.outcome, "met-xa-zero");
  EXPECT_EQ(o.addr, failing->vm_start);
  EXPECT_EQ(o.vmas_seen, 20);
  EXPECT_EQ(o.pages_reaped, 0U);
  EXPECT_EQ(by_name(rep, "oom_reaper", "exit-unlock").outcome, "skipped-oom-skip");
  const WalkerReport& rm = by_name(rep, "rmap-nocheck", "exit-unlock");
  EXPECT_EQ(rm.outcome, "met-child-vma");
  ASSERT_EQ(rm.visits.size(), 2U);
  expect_visit(rm.visits[0], false, 0, true, true, locked_pfn);
  // Flags: the recovery's, and MMF_EXITED from exit_mmap's start.
  expect_visit(rm.visits[1], true, MMF_UNSTABLE | MMF_OOM_SKIP | MMF_EXITED, true, false, 0);
  EXPECT_EQ(by_name(rep, "rmap", "exit-unlock").outcome, "skipped-unstable");
  EXPECT_TRUE(rep.exit.met_xa_zero);
  EXPECT_EQ(rep.exit.vmas_removed, 20);
}

// Partial leaves no MMF_OOM_SKIP: in the window (before exit_mmap sets it) rmap sees the
// child unstable and exited only, and the checking reaper walks the child's 20 VMAs and
// finds nothing to reap.
TEST_P(WalkerRace, ExitWindowPartial) {
  const ForkReport rep = fork_failing(ForkRecovery::Partial, /*in_exit_window=*/true);
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck", "exit-unlock").outcome, "no-mm-users");
  const WalkerReport& o = by_name(rep, "oom_reaper", "exit-unlock");
  EXPECT_EQ(o.outcome, "walked");
  EXPECT_EQ(o.vmas_seen, 20);
  EXPECT_EQ(o.pages_reaped, 0U);
  const WalkerReport& rm = by_name(rep, "rmap-nocheck", "exit-unlock");
  EXPECT_EQ(rm.outcome, "met-child-vma");
  ASSERT_EQ(rm.visits.size(), 2U);
  expect_visit(rm.visits[1], true, MMF_UNSTABLE | MMF_EXITED, true, false, 0);
  EXPECT_EQ(rep.exit.vmas_removed, 20);
}

// Tree-max destroyed the tree before the lock drop: exit_mmap takes its no-VMA path, which
// unlocks and relocks too; nothing is left to meet there.
TEST_P(WalkerRace, ExitWindowTreeMax) {
  const ForkReport rep = fork_failing(ForkRecovery::TreeMax, /*in_exit_window=*/true);
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck", "exit-unlock").outcome, "no-mm-users");
  EXPECT_EQ(by_name(rep, "oom_reaper-nocheck", "exit-unlock").outcome, "empty-tree");
  EXPECT_EQ(by_name(rep, "oom_reaper", "exit-unlock").outcome, "skipped-oom-skip");
  EXPECT_EQ(by_name(rep, "rmap-nocheck", "exit-unlock").outcome, "unreachable");
  EXPECT_TRUE(rep.exit.empty);
}

// Both points with the same walkers: lock-drop reports first, then exit-unlock ones.
TEST_P(WalkerRace, BothPoints) {
  const auto live0 = live_now(m);
  m.inject.fail_nth(AllocSite::Vma, 21);
  ForkReport rep;
  ASSERT_FALSE(dup_mm(*p.mm, ForkRecovery::XaZero, &rep, w.list, w.list).has_value());
  ASSERT_EQ(rep.walkers.size(), 12U);
  for (std::size_t i = 0; i < 12; ++i)
    EXPECT_EQ(rep.walkers[i].point, i < 6 ? "lock-drop" : "exit-unlock") << i;
  // The unchecked reaper unmapped the child's pages at the lock drop already.
  EXPECT_GT(by_name(rep, "oom_reaper-nocheck").pages_reaped, 0U);
  EXPECT_EQ(by_name(rep, "oom_reaper-nocheck", "exit-unlock").pages_reaped, 0U);
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck").outcome, "met-xa-zero");
  EXPECT_EQ(by_name(rep, "unuse_mm-nocheck", "exit-unlock").outcome, "no-mm-users");
  EXPECT_EQ(live_now(m), live0);
}

// An rmap walk from a given frame: a page-cache page of the FilePrivate VMA goes through
// the file's i_mmap, which holds the parent's VMA and, right after it, the child's.
TEST_P(WalkerRace, RmapFromAFileFrame) {
  const Vma* fv = nullptr;
  for (const auto& [start, kind] : p.vmas)
    if (kind == Kind::FileReadOnly) {
      fv = p.mm->vma_lookup(start);
      break;
    }
  ASSERT_NE(fv, nullptr);
  const auto ref = p.mm->pt().lookup(fv->vm_start);
  ASSERT_TRUE(ref.has_value());
  const pfn_t pfn = p.mm->fmt().pfn(p.mm->pt().get(*ref));
  auto rw = make_rmap_walker(false, pfn);
  m.inject.fail_nth(AllocSite::Vma, 21);
  ForkReport rep;
  ASSERT_FALSE(dup_mm(*p.mm, ForkRecovery::XaZero, &rep, {rw.get()}).has_value());
  const WalkerReport& r = by_name(rep, "rmap-nocheck");
  EXPECT_EQ(r.outcome, "met-child-vma");
  EXPECT_EQ(r.via, fmt::format("i_mmap of {}", fv->vm_file->name()));
  EXPECT_EQ(r.via_pfn, pfn);
  // Every group's FileReadOnly VMA maps the same file at offset 0 in the parent; the
  // copied ones (the groups before the failure) have their child copy right after.
  // The parent's PTE at addr maps the frame: what a child copy shows when copy_page_range
  // copied that VMA (it has an anon_vma: the private file mapping that was written).
  const std::uint64_t idx = m.phys.desc(pfn).index;
  auto parent_maps = [&](vaddr_t a) {
    const auto pr = p.mm->pt().lookup(a);
    if (!pr) return false;
    const pte_t e = p.mm->pt().get(*pr);
    return p.mm->fmt().present(e) && p.mm->fmt().pfn(e) == pfn;
  };
  std::vector<std::pair<std::uint64_t, vaddr_t>> seen, want;
  for (const RmapVisit& v : r.visits) {
    seen.emplace_back(v.child ? 2 : 1, v.vm_start);
    EXPECT_TRUE(v.looked);
    const Vma* pv = p.mm->vma_lookup(v.vm_start);
    ASSERT_NE(pv, nullptr);
    const bool copied = v.child ? pv->anon_vma != nullptr : true;
    EXPECT_EQ(v.present && v.pfn == pfn, copied && parent_maps(v.addr)) << std::hex << v.addr;
  }
  for (const Vma* v : p.mm->vmas())
    if (v->vm_file == fv->vm_file && idx >= v->vm_pgoff && idx - v->vm_pgoff < v->pages()) {
      want.emplace_back(1, v->vm_start);
      if (v->vm_start < failing_start()) want.emplace_back(2, v->vm_start);
    }
  std::sort(want.begin(), want.end(), [](auto a, auto b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  std::sort(seen.begin(), seen.end(), [](auto a, auto b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  EXPECT_EQ(seen, want);
}

// mm_users / mm_count at each step: a new mm, a successful fork, extra users and grabs,
// and the last mmput running exit_mmap exactly when mm_users reaches 0.
TEST_P(WalkerRace, MmUsersAndMmCount) {
  EXPECT_EQ(p.mm->mm_users, 1);
  EXPECT_EQ(p.mm->mm_count, 1);
  auto c = dup_mm(*p.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(c.has_value());
  Mm& child = **c;
  EXPECT_EQ(child.mm_users, 1);  // the child task's use
  EXPECT_EQ(child.mm_count, 1);
  EXPECT_EQ(p.mm->mm_users, 1);
  int exits = 0, users_at_exit = -1, count_at_exit = -1;
  child.on_exit_mmap = [&](Mm& mm, const ExitMmapReport&) {
    ++exits;
    users_at_exit = mm.mm_users;
    count_at_exit = mm.mm_count;
  };
  mmget(child);  // a vfork child, say
  EXPECT_EQ(child.mm_users, 2);
  EXPECT_TRUE(mmget_not_zero(child));  // swapoff
  EXPECT_EQ(child.mm_users, 3);
  mmgrab(child);  // the OOM killer's victim record
  EXPECT_EQ(child.mm_count, 2);
  EXPECT_FALSE(mmput(child));
  EXPECT_FALSE(mmput(child));
  EXPECT_EQ(exits, 0);
  EXPECT_EQ(child.mm_users, 1);
  EXPECT_FALSE(child.flags & MMF_EXITED);
  ExitMmapReport er;
  EXPECT_TRUE(mmput(child, &er));  // the last user: exit_mmap runs now, once
  EXPECT_EQ(exits, 1);
  EXPECT_EQ(users_at_exit, 0);
  EXPECT_EQ(count_at_exit, 2);  // the users' reference goes after exit_mmap
  EXPECT_EQ(er.vmas_removed, er.map_count);
  EXPECT_GT(er.vmas_removed, 0);
  EXPECT_EQ(child.mm_users, 0);
  EXPECT_EQ(child.mm_count, 1);
  EXPECT_FALSE(mmget_not_zero(child));  // nobody gets a use of a dead address space
  EXPECT_EQ(child.mm_users, 0);
  EXPECT_TRUE(mmdrop(child));  // the grab was the last reference: the struct may go
  c->reset();                  // ~Mm: exit_mmap does not run again
  EXPECT_EQ(exits, 1);
  EXPECT_EQ(problems({p.mm.get()}), "");
}

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
  // The rmap walk starts from the parent's lowest mapped frame (the locked VMA's first
  // page), goes through its anon_vma to the two VMAs linked there, the parent's and the
  // child's copy, and finds the COW-shared frame in both PTEs. It never sees the marker.
  const WalkerReport& rm = by_name(rep, "rmap-nocheck");
  EXPECT_EQ(rm.outcome, "met-child-vma");
  EXPECT_EQ(rm.via_pfn, locked_pfn);
  EXPECT_EQ(rm.via, fmt::format("anon_vma #{}", anon_vma_id(p.mm->vma_lookup(p.locked)->anon_vma)));
  ASSERT_EQ(rm.visits.size(), 2U);
  expect_visit(rm.visits[0], false, 0, true, true, locked_pfn);
  expect_visit(rm.visits[1], true, MMF_UNSTABLE | MMF_OOM_SKIP, true, true, locked_pfn);
  EXPECT_EQ(rm.vmas_seen, 2);
  EXPECT_EQ(rm.ref, "none");
  // Checking variants: unuse_mm and rmap test MMF_UNSTABLE, the reaper MMF_OOM_SKIP.
  EXPECT_EQ(by_name(rep, "unuse_mm").outcome, "skipped-unstable");
  const WalkerReport& rc = by_name(rep, "rmap");
  EXPECT_EQ(rc.outcome, "skipped-unstable");
  ASSERT_EQ(rc.visits.size(), 2U);
  expect_visit(rc.visits[0], false, 0, true, true, locked_pfn);
  expect_visit(rc.visits[1], true, MMF_UNSTABLE | MMF_OOM_SKIP, false, false, 0);
  // What each took: swapoff a use (1 -> 2 -> 1), the reaper a grab of the struct.
  for (const char* name : {"unuse_mm-nocheck", "unuse_mm"}) {
    EXPECT_EQ(by_name(rep, name).mm_users, 1) << name;
    EXPECT_EQ(by_name(rep, name).mm_count, 1) << name;
    EXPECT_EQ(by_name(rep, name).ref, "mmget_not_zero") << name;
  }
  for (const char* name : {"oom_reaper-nocheck", "oom_reaper"}) {
    EXPECT_EQ(by_name(rep, name).mm_users, 1) << name;
    EXPECT_EQ(by_name(rep, name).mm_count, 1) << name;
    EXPECT_EQ(by_name(rep, name).ref, "mmgrab") << name;
  }
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
  // unmap_region's free_pgtables unlinked the child's VMAs from their anon_vmas (and
  // i_mmap) before the tree went: no frame of the parent leads to the child any more.
  EXPECT_EQ(by_name(rep, "rmap-nocheck").outcome, "unreachable");
  EXPECT_EQ(by_name(rep, "rmap-nocheck").visits.size(), 0U);
  EXPECT_EQ(by_name(rep, "rmap").outcome, "unreachable");
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
  const WalkerReport& rm = by_name(rep, "rmap-nocheck");
  EXPECT_EQ(rm.outcome, "met-child-vma");
  ASSERT_EQ(rm.visits.size(), 2U);
  expect_visit(rm.visits[1], true, MMF_UNSTABLE, true, true, locked_pfn);
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
  EXPECT_EQ(by_name(rep, "rmap-nocheck").outcome, "met-child-vma");
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
