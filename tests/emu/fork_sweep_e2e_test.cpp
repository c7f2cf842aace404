// Every allocation point of a guest's fork, failed one at a time, under each recovery: the
// guest sees ENOMEM and carries on, its memory intact, and nothing leaks.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "emu_test_util.hpp"

namespace mmemu {
namespace {

// The injector's global attempt numbers the first fork's dup_mm used: (before, after].
std::pair<std::uint64_t, std::uint64_t> fork_attempts(const std::string& trace) {
  std::istringstream in(trace);
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j["ev"] == "fork")
      return {j["attempts_before"].get<std::uint64_t>(), j["attempts_after"].get<std::uint64_t>()};
  }
  return {0, 0};
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
