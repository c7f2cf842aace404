// The allocation-failure sweep of the injection tests: a workload runs once cleanly to count
// its allocation attempts per site, then once per attempt with just that attempt failing.
// After every step of every run the invariant checker must stay green; in a failing run the
// armed failure must have happened exactly once, and once the mm is gone no object of any
// kind may be left.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <string>

#include "mm_test_util.hpp"

namespace mmemu::test {

// Runs a workload on the fixture's mm, calling `step` after every operation.
using InjectWorkload = std::function<void(MmFixture& f, const std::function<void()>& step)>;

// Allocation attempts per site.
struct SiteAttempts {
  std::array<std::uint64_t, kAllocSites> n{};
  std::uint64_t operator[](AllocSite s) const { return n[static_cast<std::size_t>(s)]; }
};

// The clean run on a fresh fixture, checked after every step; `check` then looks at the
// fixture before it goes. Returns the attempts the run made at each site.
inline SiteAttempts inject_clean_run(Arch arch, const InjectWorkload& workload,
                                     const std::function<void(MmFixture&)>& check = {}) {
  SiteAttempts attempts;
  MmFixture f(arch);
  f.m.inject.reset_counts();
  workload(f, [&] { ASSERT_EQ(f.problems(), ""); });
  for (AllocSite s : kAllAllocSites)
    attempts.n[static_cast<std::size_t>(s)] = f.m.inject.attempts(s);
  if (check) check(f);
  return attempts;
}

// For every site and every n from 1 to its count of attempts: a fresh fixture whose nth
// attempt at that site fails runs the workload.
inline void inject_sweep(Arch arch, const InjectWorkload& workload, const SiteAttempts& attempts) {
  for (AllocSite site : kAllAllocSites) {
    for (std::uint64_t n = 1; n <= attempts[site]; ++n) {
      SCOPED_TRACE(std::string(arch_name(arch)) + " " + std::string(site_name(site)) + ":" +
                   std::to_string(n));
      MmFixture f(arch);
      f.m.inject.fail_nth(site, n);
      workload(f, [&] { ASSERT_EQ(f.problems(), ""); });
      EXPECT_EQ(f.m.inject.failures(site), 1U);
      f.mm.reset();
      for (AllocSite s : kAllAllocSites)
        EXPECT_EQ(f.m.live.live(s), 0) << site_name(s);
    }
  }
}

}  // namespace mmemu::test
