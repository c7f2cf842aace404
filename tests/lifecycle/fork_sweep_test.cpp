// Every allocation a clean fork makes is made to fail in turn, on both architectures and
// under each recovery, on a parent of 50+ VMAs of every kind; then every fatal_signal check
// (one per VMA copied) finds the task killed, in turn. After each failure: the parent is
// unchanged, nothing of the child is left (live objects back to their count before the
// fork, per site), the report names the failing step and VMA, and the recovery did exactly
// what it promises (marker, max, erase).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <sstream>

#include "lifecycle_util.hpp"
#include "vma/exit_mmap.hpp"
#include "vma/fork_report.hpp"

namespace mmemu::test {
namespace {

struct Step {
  std::string name;  // "mt_dup", "copy_page_range", ...
  vaddr_t vma = 0;   // the VMA the step works on, if any
};

Step parse_step(const std::string& ctx) {
  // "fork: copy_page_range 0x10000000"
  std::istringstream in(ctx);
  std::string fork_word, name, addr;
  in >> fork_word >> name >> addr;
  Step s{name, 0};
  if (!addr.empty()) s.vma = std::stoull(addr, nullptr, 16);
  return s;
}

using Steps = std::array<std::vector<Step>, kInjectSites>;

std::size_t idx(InjectSite s) {
  return static_cast<std::size_t>(s);
}
std::size_t idx(AllocSite s) {
  return idx(inject_site(s));
}

// The clean fork: per site, the step of each allocation attempt (or check), in order.
Steps record_clean_fork(Machine& m, Mm& parent, ForkRecovery rec, std::unique_ptr<Mm>* keep) {
  Steps steps;
  m.inject.on_attempt = [&](const FaultInjector::Event& ev) {
    steps[idx(ev.site)].push_back(parse_step(m.inject.context()));
  };
  ForkReport rep;
  auto child = dup_mm(parent, rec, &rep);
  m.inject.on_attempt = nullptr;
  EXPECT_TRUE(child.has_value());
  EXPECT_TRUE(rep.ok);
  if (child) *keep = std::move(*child);
  return steps;
}

// The entry after the parent's VMA at addr: the kernel's mpnt after a copy_page_range
// failure (the failed VMA itself is already in the child's tree).
const Vma* vma_after(const Mm& parent, vaddr_t addr) {
  return parent.vma_next(*parent.vma_lookup(addr));
}

// The only warning a failed fork may report: tree-max passes tree_max = ULONG_MAX when
// every VMA was copied, with the ceiling USER_PGTABLES_CEILING, as the RFC does; on arm64,
// whose ceiling mmemu sets to TASK_SIZE, free_pgtables' sanity check fires.
std::vector<std::string> expected_warnings(Arch arch, const ForkReport& rep) {
  if (arch != Arch::Arm64 || rep.recovery != ForkRecovery::TreeMax ||
      rep.tree_max != ULONG_MAX_ADDR)
    return {};
  return {
      "free_pgtables: WARN_ON_ONCE(tree_max - 1 > ceiling - 1): tree_max 0xffffffffffffffff, "
      "ceiling 0xffffffe00000 (USER_PGTABLES_CEILING)"};
}

class ForkSweep : public ::testing::TestWithParam<std::tuple<Arch, ForkRecovery>> {};

TEST_P(ForkSweep, EveryAllocationOfACleanForkFailsInTurn) {
  const auto [arch, rec] = GetParam();
  Machine m(kLifePhys);
  MixedParent p = build_mixed_parent(m, arch);
  Mm& parent = *p.mm;
  ASSERT_GE(parent.map_count, 50);
  ASSERT_EQ(problems({&parent}), "");
  const MmSnapshot original = MmSnapshot::of(parent);

  std::unique_ptr<Mm> clean;
  const Steps steps = record_clean_fork(m, parent, rec, &clean);
  ASSERT_TRUE(clean);
  ASSERT_EQ(problems({&parent, clean.get()}), "");

  // Independent counts: what the clean fork had to allocate, derived from the parent.
  std::vector<const Vma*> copyable;
  std::size_t anon_objs = 0;
  for (const Vma* v : parent.vmas()) {
    if (v->vm_flags & VM_DONTCOPY) continue;
    copyable.push_back(v);
    // anon_vma_fork: one chain per ancestor link plus a new anon_vma and its chain (the
    // parent has never forked, so no ancestor can be reused).
    if (v->anon_vma && !(v->vm_flags & VM_WIPEONFORK)) anon_objs += v->anon_vma_chain.size() + 2;
  }
  EXPECT_EQ(steps[idx(AllocSite::Vma)].size(), copyable.size());
  for (std::size_t i = 0; i < copyable.size() && i < steps[idx(AllocSite::Vma)].size(); ++i)
    EXPECT_EQ(steps[idx(AllocSite::Vma)][i].vma, copyable[i]->vm_start);
  EXPECT_EQ(steps[idx(AllocSite::AnonVma)].size(), anon_objs);
  EXPECT_EQ(steps[idx(AllocSite::PgTable)].size(), clean->pt().nr_tables_total());  // pgd too
  EXPECT_EQ(steps[idx(AllocSite::Page)].size(), 1U);  // the pinned page's private copy
  std::size_t dup_nodes = 0;
  for (const Step& s : steps[idx(AllocSite::MapleNode)])
    dup_nodes += s.name == "mt_dup";
  EXPECT_EQ(dup_nodes, parent.mm_mt.node_count());
  clean.reset();

  // From here on the parent's COW entries are read-only (the clean fork left them so); a
  // failed fork must change nothing else, and never add write access.
  const MmSnapshot before = MmSnapshot::of(parent);
  EXPECT_EQ(snapshot_diff(original, before), "");
  for (const auto& [va, w] : before.writable)
    if (w) {
      EXPECT_TRUE(original.writable.at(va)) << std::hex << va;
    }
  const auto live0 = live_now(m);
  int exits = 0;
  parent.on_exit_mmap = [&](Mm&, const ExitMmapReport&) { ++exits; };

  int runs = 0;
  for (AllocSite site : kAllAllocSites) {
    const auto& list = steps[idx(site)];
    for (std::uint64_t n = 1; n <= list.size(); ++n, ++runs) {
      const Step& want = list[n - 1];
      SCOPED_TRACE(arch_label(arch) + " " + std::string(recovery_name(rec)) + " " +
                   std::string(site_name(site)) + ":" + std::to_string(n) + " (" + want.name + ")");
      const int exits_before = exits;
      m.inject.fail_nth(site, n);
      ForkReport rep;
      auto child = dup_mm(parent, rec, &rep);
      EXPECT_EQ(m.inject.failures(site), 1U);
      m.inject.disarm();
      m.inject.reset_counts();
      ASSERT_FALSE(child.has_value());
      EXPECT_EQ(child.error(), Errno{ENOMEM});
      EXPECT_FALSE(rep.ok);
      EXPECT_EQ(rep.failed_step, want.name);
      if (want.vma) {
        EXPECT_EQ(rep.failed_vma, want.vma);
      }
      EXPECT_EQ(rep.errors, expected_warnings(arch, rep));
      EXPECT_TRUE(m.freed_in_use.empty()) << kasan_report(m.freed_in_use.front());

      // Nothing of the child is left; the parent is as it was.
      EXPECT_EQ(live_now(m), live0);
      EXPECT_EQ(snapshot_diff(before, MmSnapshot::of(parent)), "");

      if (want.name == "mm_init") {
        EXPECT_FALSE(rep.exited);
        EXPECT_EQ(exits, exits_before);
        continue;
      }
      EXPECT_TRUE(rep.exited);
      EXPECT_EQ(exits, exits_before + 1);  // the trace event fires on every path
      if (want.name == "mt_dup") {
        EXPECT_EQ(rep.child_flags, 0U);  // "goto out": no recovery ran
        EXPECT_TRUE(rep.exit.empty);
        continue;
      }
      // Where the kernel's mpnt points at loop_out.
      const Vma* mpnt = nullptr;
      if (want.name == "copy_page_range") {
        mpnt = vma_after(parent, want.vma);
      } else if (want.name != "arch_dup_mmap") {
        mpnt = parent.vma_lookup(want.vma);
      }
      EXPECT_EQ(rep.has_failure_point, mpnt != nullptr);
      if (mpnt) {
        EXPECT_EQ(rep.failure_point, mpnt->vm_start);
      }
      EXPECT_TRUE(rep.child_flags & MMF_UNSTABLE);
      switch (rec) {
        case ForkRecovery::XaZero:
          EXPECT_EQ(rep.xa_zero_stored, mpnt != nullptr);
          EXPECT_EQ(bool(rep.child_flags & MMF_OOM_SKIP), mpnt != nullptr);
          if (mpnt) {
            EXPECT_EQ(rep.xa_zero_first, mpnt->vm_start);
            EXPECT_EQ(rep.xa_zero_last, mpnt->vm_end - 1);
            EXPECT_TRUE(rep.exit.met_xa_zero);
          }
          EXPECT_EQ(rep.exit.vmas_removed, rep.vmas_copied);
          break;
        case ForkRecovery::TreeMax: {
          const vaddr_t max = rep.vmas_copied == 0 ? 0 : mpnt ? mpnt->vm_start : ULONG_MAX_ADDR;
          EXPECT_EQ(rep.tree_max, max);
          EXPECT_TRUE(rep.child_flags & MMF_OOM_SKIP);
          EXPECT_EQ(rep.torn_down, max ? rep.vmas_copied : 0);
          EXPECT_TRUE(rep.exit.empty);  // the tree was destroyed before unlocking
          break;
        }
        case ForkRecovery::Partial:
          // A single failure: the erase's own allocations succeed.
          EXPECT_FALSE(rep.xa_zero_stored);
          EXPECT_FALSE(rep.child_flags & MMF_OOM_SKIP);
          EXPECT_FALSE(rep.exit.met_xa_zero);
          EXPECT_EQ(rep.exit.vmas_removed, rep.vmas_copied);
          break;
      }
      // The full checker on a deterministic subset (it scans all of physical memory).
      if (n == 1 || n == list.size() || n % 5 == 0) {
        ASSERT_EQ(problems({&parent}), "");
      }
    }
  }
  EXPECT_GT(runs, 100);
  parent.on_exit_mmap = nullptr;
  // Still a working parent: a last fork succeeds, and everything goes at the end.
  auto last = dup_mm(parent, rec);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(problems({&parent, last->get()}), "");
}

// The task killed during the fork: the N-th fatal_signal_pending check of a clean fork
// (one per VMA dup_mmap copies, VM_DONTCOPY ones skipped before it) finds SIGKILL pending,
// for every N. The copy stops before that VMA with EINTR, having allocated nothing for it;
// the recovery, the walkers and the child's exit_mmap run as after an allocation failure.
TEST_P(ForkSweep, EveryFatalSignalCheckOfACleanForkStopsIt) {
  const auto [arch, rec] = GetParam();
  Machine m(kLifePhys);
  MixedParent p = build_mixed_parent(m, arch);
  Mm& parent = *p.mm;
  std::unique_ptr<Mm> clean;
  const Steps steps = record_clean_fork(m, parent, rec, &clean);
  ASSERT_TRUE(clean);
  clean.reset();

  std::vector<const Vma*> copyable;
  for (const Vma* v : parent.vmas())
    if (!(v->vm_flags & VM_DONTCOPY)) copyable.push_back(v);
  const auto& checks = steps[idx(InjectSite::FatalSignal)];
  ASSERT_EQ(checks.size(), copyable.size());
  for (std::size_t i = 0; i < checks.size(); ++i) {
    EXPECT_EQ(checks[i].name, "fatal_signal");
    EXPECT_EQ(checks[i].vma, copyable[i]->vm_start);
  }

  const MmSnapshot before = MmSnapshot::of(parent);
  const auto live0 = live_now(m);
  int exits = 0;
  parent.on_exit_mmap = [&](Mm&, const ExitMmapReport&) { ++exits; };
  // The walker that trusts the tree: what it meets shows the recovery ran before it.
  const auto walker = make_walker(WalkerKind::UnuseMm, /*checks=*/false);
  const std::vector<ConcurrentWalker*> walkers{walker.get()};
  for (std::uint64_t n = 1; n <= checks.size(); ++n) {
    const Vma& killed_at = *copyable[n - 1];
    const int copied = static_cast<int>(n) - 1;
    SCOPED_TRACE(arch_label(arch) + " " + std::string(recovery_name(rec)) +
                 " fatal_signal:" + std::to_string(n));
    m.inject.fail_nth(InjectSite::FatalSignal, n);
    ForkReport rep;
    const std::uint64_t allocs_before = m.inject.attempts_total();
    auto child = dup_mm(parent, rec, &rep, walkers);
    EXPECT_EQ(m.inject.failures(InjectSite::FatalSignal), 1U);
    EXPECT_EQ(m.inject.failures_total(), 0U);  // no allocation failed
    EXPECT_GT(m.inject.attempts_total(), allocs_before);
    m.inject.disarm();
    m.inject.reset_counts();
    ASSERT_FALSE(child.has_value());
    EXPECT_EQ(child.error(), Errno{EINTR});
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.failed_step, "fatal_signal");
    EXPECT_EQ(rep.failed_vma, killed_at.vm_start);
    EXPECT_EQ(rep.vmas_copied, copied);
    EXPECT_TRUE(rep.has_failure_point);
    EXPECT_EQ(rep.failure_point, killed_at.vm_start);
    EXPECT_TRUE(rep.errors.empty()) << rep.errors.front();
    EXPECT_EQ(fork_failure_headline(rep),
              fmt::format("fatal_signal pending at VMA {:#x}, {} VMA{} copied", killed_at.vm_start,
                          copied, copied == 1 ? "" : "s"));
    EXPECT_TRUE(rep.exited);
    EXPECT_EQ(exits, static_cast<int>(n));
    EXPECT_TRUE(rep.child_flags & MMF_UNSTABLE);
    ASSERT_EQ(rep.walkers.size(), 1U);
    const WalkerReport& w = rep.walkers[0];
    switch (rec) {
      case ForkRecovery::XaZero:
        EXPECT_EQ(rep.recovery_note,
                  fmt::format("XA_ZERO_ENTRY stored over [{:#x}, {:#x}]; exit_mmap stops there",
                              killed_at.vm_start, killed_at.vm_end - 1));
        EXPECT_TRUE(rep.child_flags & MMF_OOM_SKIP);
        EXPECT_EQ(w.outcome, "met-xa-zero");
        EXPECT_EQ(w.addr, killed_at.vm_start);
        EXPECT_EQ(w.vmas_seen, copied);
        EXPECT_TRUE(rep.exit.met_xa_zero);
        EXPECT_EQ(rep.exit.vmas_removed, copied);
        break;
      case ForkRecovery::TreeMax:
        EXPECT_EQ(rep.recovery_note,
                  copied == 0 ? std::string("max 0: nothing was copied; tree destroyed before "
                                            "unlock")
                              : fmt::format("max {:#x}: unmap_region(0, max, max) and "
                                            "tear_down_vmas removed {} VMAs; tree destroyed "
                                            "before unlock",
                                            killed_at.vm_start, copied));
        EXPECT_EQ(rep.tree_max, copied == 0 ? 0 : killed_at.vm_start);
        EXPECT_EQ(rep.torn_down, copied);
        EXPECT_EQ(w.outcome, "empty-tree");
        EXPECT_TRUE(rep.exit.empty);
        break;
      case ForkRecovery::Partial: {
        // The entries not yet copied: every parent VMA from the killed one on (VM_DONTCOPY
        // ones included: they are erased only when the loop reaches them).
        std::size_t rest = 0;
        for (const Vma* v : parent.vmas())
          rest += v->vm_start >= killed_at.vm_start;
        EXPECT_EQ(rep.recovery_note,
                  fmt::format("erased {} entries not yet copied from {:#x}; {} copied VMAs kept",
                              rest, killed_at.vm_start, copied));
        EXPECT_FALSE(rep.child_flags & MMF_OOM_SKIP);
        EXPECT_EQ(w.outcome, copied ? "walked" : "empty-tree");
        EXPECT_EQ(w.vmas_seen, copied);
        EXPECT_FALSE(rep.exit.met_xa_zero);
        EXPECT_EQ(rep.exit.vmas_removed, copied);
        break;
      }
    }
    // Nothing of the child is left; the parent is as it was; every invariant holds.
    EXPECT_EQ(live_now(m), live0);
    EXPECT_EQ(snapshot_diff(before, MmSnapshot::of(parent)), "");
    ASSERT_EQ(problems({&parent}), "");
  }
  parent.on_exit_mmap = nullptr;
  // A caller that answers itself (the emu kernel): asked once per VMA, the injector not at all.
  int asked = 0;
  m.inject.fail_nth(InjectSite::FatalSignal, 1);
  auto ok = dup_mm(parent, rec, nullptr, {}, {}, [&] { return ++asked > 1000; });
  EXPECT_TRUE(ok.has_value());
  EXPECT_EQ(asked, static_cast<int>(copyable.size()));
  EXPECT_EQ(m.inject.attempts(InjectSite::FatalSignal), 0U);
  m.inject.disarm();
}

// Sustained pressure: from the Nth attempt on, every allocation fails (the recovery's own
// allocations included: partial's erase then falls back to the marker). Still leak-free.
TEST_P(ForkSweep, SustainedFailureFromEveryAttempt) {
  const auto [arch, rec] = GetParam();
  Machine m(kLifePhys);
  MixedParent p = build_mixed_parent(m, arch);
  Mm& parent = *p.mm;
  std::uint64_t total = 0;
  {
    m.inject.reset_counts();
    auto child = dup_mm(parent, rec);
    ASSERT_TRUE(child.has_value());
    total = m.inject.attempts_total();
  }
  const MmSnapshot before = MmSnapshot::of(parent);
  const auto live0 = live_now(m);
  int fallbacks = 0;
  for (std::uint64_t n = 1; n <= total; ++n) {
    SCOPED_TRACE("any:" + std::to_string(n) + "+");
    m.inject.fail_nth_any(n, /*persistent=*/true);
    ForkReport rep;
    auto child = dup_mm(parent, rec, &rep);
    m.inject.disarm();
    ASSERT_FALSE(child.has_value());
    EXPECT_EQ(rep.errors, expected_warnings(arch, rep));
    EXPECT_TRUE(m.freed_in_use.empty()) << kasan_report(m.freed_in_use.front());
    EXPECT_EQ(live_now(m), live0);
    EXPECT_EQ(snapshot_diff(before, MmSnapshot::of(parent)), "");
    if (rec == ForkRecovery::Partial && rep.xa_zero_stored) {
      ++fallbacks;
      EXPECT_NE(rep.recovery_note.find("fell back to XA_ZERO_ENTRY"), std::string::npos);
      EXPECT_TRUE(rep.child_flags & MMF_OOM_SKIP);
      EXPECT_TRUE(rep.exit.met_xa_zero);
    }
  }
  if (rec == ForkRecovery::Partial) {
    EXPECT_GT(fallbacks, 0);
  }
  EXPECT_EQ(problems({&parent}), "");
}

std::string sweep_name(const ::testing::TestParamInfo<std::tuple<Arch, ForkRecovery>>& info) {
  std::string r(recovery_name(std::get<1>(info.param)));
  for (char& c : r)
    if (c == '-') c = '_';
  return arch_label(std::get<0>(info.param)) + "_" + r;
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, ForkSweep,
                         ::testing::Combine(::testing::Values(Arch::X86_64, Arch::Arm64),
                                            ::testing::Values(ForkRecovery::XaZero,
                                                              ForkRecovery::TreeMax,
                                                              ForkRecovery::Partial)),
                         sweep_name);

}  // namespace
}  // namespace mmemu::test
