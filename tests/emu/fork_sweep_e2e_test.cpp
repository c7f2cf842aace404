// Every allocation point of a guest's fork, failed one at a time, under each recovery: the
// guest sees ENOMEM and carries on, its memory intact, and nothing leaks. Then the guest is
// killed during its fork at a sample of its fatal_signal checks (one per VMA copied): it
// dies of SIGKILL before fork returns, no child ever exists, and nothing leaks.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "emu_test_util.hpp"

namespace mmemu {
namespace {

// The trace's events named `ev`, in order.
std::vector<nlohmann::json> events(const std::string& trace, std::string_view ev) {
  std::vector<nlohmann::json> v;
  std::istringstream in(trace);
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j["ev"] == ev) v.push_back(std::move(j));
  }
  return v;
}

// The injector's global attempt numbers the first fork's dup_mm used: (before, after].
std::pair<std::uint64_t, std::uint64_t> fork_attempts(const std::string& trace) {
  const auto forks = events(trace, "fork");
  if (forks.empty()) return {0, 0};
  return {forks[0]["attempts_before"].get<std::uint64_t>(),
          forks[0]["attempts_after"].get<std::uint64_t>()};
}

struct SweepCase {
  ForkRecovery recovery;
  Arch arch;
};

class ForkSweep : public ::testing::TestWithParam<SweepCase> {};

TEST_P(ForkSweep, EveryAllocationPointOfDupMmapFailsCleanly) {
  const auto [recovery, arch] = GetParam();
  test::RunOptions base;
  base.kernel.fork_recovery = recovery;
  base.trace = true;
  const auto ref = test::run_guest(arch, "fork_fail", {"1"}, base);
  ASSERT_EQ(ref.status, 0) << ref.out << ref.log;
  ASSERT_NE(ref.out.find("fork 0: ok"), std::string::npos) << ref.out;
  const auto [before, after] = fork_attempts(ref.trace);
  ASSERT_GT(after, before);
  const std::string want_tail =
      test::filter_lines(ref.out, [](const std::string& l) { return l.starts_with("fork 0:"); });

#if defined(__SANITIZE_ADDRESS__)
  const std::uint64_t stride = 5;  // the sanitizer build samples the points
#else
  const std::uint64_t stride = 1;
#endif
  int failed_forks = 0;
  for (std::uint64_t n = before + 1; n <= after; n += stride) {
    test::RunOptions o;
    o.kernel.fork_recovery = recovery;
    o.before_run = [n](Kernel& k) {
      k.machine().inject.fail_nth_any(n - k.machine().inject.attempts_total());
    };
    const auto r = test::run_guest(arch, "fork_fail", {"1"}, o);
    SCOPED_TRACE(fmt::format("{} {} failing attempt {} of ({}, {}]", recovery_name(recovery),
                             arch_name(arch), n, before, after));
    EXPECT_EQ(r.status, 0) << r.out << r.err << r.log;
    EXPECT_TRUE(r.summary.problems.empty())
        << fmt::format("{}", fmt::join(r.summary.problems, "\n"));
    // The run is the reference run except for the fork's own line.
    const bool enomem = r.out.find("fork 0: ENOMEM\n") != std::string::npos;
    failed_forks += enomem;
    EXPECT_TRUE(enomem || r.out.find("fork 0: ok\n") != std::string::npos) << r.out;
    EXPECT_EQ(
        test::filter_lines(r.out, [](const std::string& l) { return l.starts_with("fork 0:"); }),
        want_tail);
  }
  // Every point inside dup_mm is a fork failure.
  EXPECT_EQ(static_cast<std::uint64_t>(failed_forks), (after - before + stride - 1) / stride);
}

struct VmaRange {
  vaddr_t start, end;
  bool dontcopy;
};

TEST_P(ForkSweep, EveryFatalSignalPointKillsTheGuest) {
  const auto [recovery, arch] = GetParam();
  // The reference run: the parent's VMAs as its first fork saw them, and its checks.
  test::RunOptions base;
  base.kernel.fork_recovery = recovery;
  base.kernel.dump.fork = true;
  base.trace = true;
  std::vector<VmaRange> vmas;
  base.before_run = [&vmas](Kernel& k) {
    k.set_dump_hook([&vmas](const DumpPoint& at, const Mm& mm, const Machine&) {
      if (at.kind != DumpKind::Fork || !vmas.empty()) return;
      for (const Vma* v : mm.vmas())
        vmas.push_back({v->vm_start, v->vm_end, (v->vm_flags & VM_DONTCOPY) != 0});
    });
  };
  const auto ref = test::run_guest(arch, "fork_fail", {"1"}, base);
  ASSERT_EQ(ref.status, 0) << ref.out << ref.log;
  const auto ref_forks = events(ref.trace, "fork");
  ASSERT_EQ(ref_forks.size(), 1U);
  const auto before = ref_forks[0]["checks_before"].get<std::uint64_t>();
  const auto after = ref_forks[0]["checks_after"].get<std::uint64_t>();
  std::vector<VmaRange> copyable;
  for (const VmaRange& v : vmas)
    if (!v.dontcopy) copyable.push_back(v);
  ASSERT_EQ(after - before, copyable.size());
  ASSERT_GT(copyable.size(), 40U);
  // What the guest printed before it forked: all a killed run prints.
  const std::string want_out = ref.out.substr(0, ref.out.find("fork 0:"));
  ASSERT_LT(want_out.size(), ref.out.size());

  // The first and last checks and a spread between them (every point: the lifecycle sweep).
  std::vector<std::uint64_t> points;
  for (std::uint64_t n = 1; n <= copyable.size(); n += 7)
    points.push_back(n);
  if (points.back() != copyable.size()) points.push_back(copyable.size());
  for (std::uint64_t n : points) {
    const VmaRange& killed_at = copyable[n - 1];
    const std::uint64_t copied = n - 1;
    SCOPED_TRACE(fmt::format("{} {} fatal_signal check {} of {} (VMA {:#x})",
                             recovery_name(recovery), arch_name(arch), n, copyable.size(),
                             killed_at.start));
    test::RunOptions o;
    o.kernel.fork_recovery = recovery;
    o.kernel.check = true;
    o.trace = true;
    o.before_run = [n, before](Kernel& k) {
      k.machine().inject.fail_nth(InjectSite::FatalSignal, before + n);
    };
    const auto r = test::run_guest(arch, "fork_fail", {"1"}, o);
    EXPECT_EQ(r.status, 137) << r.out << r.err << r.log;
    EXPECT_EQ(r.summary.wait_status, 9);
    EXPECT_TRUE(r.summary.problems.empty())
        << fmt::format("{}", fmt::join(r.summary.problems, "\n"));
    EXPECT_EQ(r.out, want_out);
    EXPECT_EQ(r.log, "");

    const auto forks = events(r.trace, "fork");
    ASSERT_EQ(forks.size(), 1U);
    const auto& f = forks[0];
    EXPECT_EQ(f["ok"], false);
    EXPECT_EQ(f["child"], 0);
    EXPECT_EQ(f["failed_step"], "fatal_signal");
    EXPECT_EQ(f["failed_vma"], fmt::format("{:#x}", killed_at.start));
    EXPECT_EQ(f["vmas_copied"], copied);
    EXPECT_EQ(f["checks_after"].get<std::uint64_t>() - f["checks_before"].get<std::uint64_t>(), n);
    std::string note;
    switch (recovery) {
      case ForkRecovery::XaZero:
        note = fmt::format("XA_ZERO_ENTRY stored over [{:#x}, {:#x}]; exit_mmap stops there",
                           killed_at.start, killed_at.end - 1);
        break;
      case ForkRecovery::TreeMax:
        note = copied == 0 ? "max 0: nothing was copied; tree destroyed before unlock"
                           : fmt::format(
                                 "max {:#x}: unmap_region(0, max, max) and "
                                 "tear_down_vmas removed {} VMAs; tree destroyed "
                                 "before unlock",
                                 killed_at.start, copied);
        break;
      case ForkRecovery::Partial: {
        std::size_t rest = 0;
        for (const VmaRange& v : vmas)
          rest += v.start >= killed_at.start;
        note = fmt::format("erased {} entries not yet copied from {:#x}; {} copied VMAs kept", rest,
                           killed_at.start, copied);
        break;
      }
    }
    EXPECT_EQ(f["recovery_note"], note);
    const int parent = f["pid"].get<int>();
    // The kill arrived during the fork (the injector's event) and the parent died of it
    // before running again; nobody else ever ran or exited.
    const auto injected = events(r.trace, "inject");
    ASSERT_EQ(injected.size(), 1U);
    EXPECT_EQ(injected[0]["site"], "fatal_signal");
    EXPECT_EQ(injected[0]["attempt"], before + n);
    const auto sigs = events(r.trace, "signal");
    ASSERT_EQ(sigs.size(), 1U);
    EXPECT_EQ(sigs[0]["pid"], parent);
    EXPECT_EQ(sigs[0]["sig"], 9);
    EXPECT_EQ(sigs[0]["action"], "terminate");
    const auto exits = events(r.trace, "exit");
    ASSERT_EQ(exits.size(), 1U);
    EXPECT_EQ(exits[0]["pid"], parent);
    EXPECT_EQ(exits[0]["status"], "killed by SIGKILL");
  }
}

INSTANTIATE_TEST_SUITE_P(Recoveries, ForkSweep,
                         ::testing::Values(SweepCase{ForkRecovery::XaZero, Arch::X86_64},
                                           SweepCase{ForkRecovery::TreeMax, Arch::X86_64},
                                           SweepCase{ForkRecovery::Partial, Arch::X86_64},
                                           SweepCase{ForkRecovery::TreeMax, Arch::Arm64}),
                         [](const auto& pi) {
                           std::string n = fmt::format("{}_{}", recovery_name(pi.param.recovery),
                                                       arch_name(pi.param.arch));
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace mmemu
