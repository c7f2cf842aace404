#include "mmu/fault_inject.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "mmu/live_objects.hpp"

namespace mmemu {
namespace {

// Which of the next `n` attempts at `site` fail (1-based).
std::vector<int> failing(FaultInjector& inj, AllocSite site, int n) {
  std::vector<int> out;
  for (int i = 1; i <= n; ++i)
    if (inj.should_fail(site)) out.push_back(i);
  return out;
}

TEST(FaultInjector, UnarmedNeverFailsButCounts) {
  FaultInjector inj;
  EXPECT_FALSE(inj.armed());
  EXPECT_TRUE(failing(inj, AllocSite::Page, 5).empty());
  EXPECT_EQ(inj.attempts(AllocSite::Page), 5U);
  EXPECT_EQ(inj.attempts(AllocSite::Vma), 0U);
  EXPECT_EQ(inj.attempts_total(), 5U);
  EXPECT_EQ(inj.failures_total(), 0U);
}

TEST(FaultInjector, FailNthAtSiteCountsFromArming) {
  FaultInjector inj;
  failing(inj, AllocSite::PgTable, 3);  // before arming: not counted by the rule
  inj.fail_nth(AllocSite::PgTable, 2);
  EXPECT_TRUE(inj.armed());
  EXPECT_FALSE(inj.should_fail(AllocSite::Page));  // other sites do not advance the rule
  EXPECT_EQ(failing(inj, AllocSite::PgTable, 5), (std::vector<int>{2}));
  EXPECT_EQ(inj.attempts(AllocSite::PgTable), 8U);
  EXPECT_EQ(inj.failures(AllocSite::PgTable), 1U);
  EXPECT_EQ(inj.failures(AllocSite::Page), 0U);
}

TEST(FaultInjector, PersistentKeepsFailing) {
  FaultInjector inj;
  inj.fail_nth(AllocSite::MapleNode, 3, /*persistent=*/true);
  EXPECT_EQ(failing(inj, AllocSite::MapleNode, 6), (std::vector<int>{3, 4, 5, 6}));
  inj.disarm();
  EXPECT_FALSE(inj.armed());
  EXPECT_TRUE(failing(inj, AllocSite::MapleNode, 3).empty());
  EXPECT_EQ(inj.failures(AllocSite::MapleNode), 4U);  // counters survive disarm
}

TEST(FaultInjector, FailNthAnyCountsEverySite) {
  FaultInjector inj;
  inj.fail_nth_any(3);
  EXPECT_FALSE(inj.should_fail(AllocSite::Vma));
  EXPECT_FALSE(inj.should_fail(AllocSite::AnonVma));
  EXPECT_TRUE(inj.should_fail(AllocSite::Page));
  EXPECT_FALSE(inj.should_fail(AllocSite::Page));
  EXPECT_EQ(inj.failures(AllocSite::Page), 1U);
  EXPECT_EQ(inj.failures_total(), 1U);
}

TEST(FaultInjector, RandomIsReproducibleFromTheSeed) {
  auto run = [](std::uint64_t seed) {
    FaultInjector inj;
    inj.fail_random(0.3, seed, AllocSite::Page);
    auto v = failing(inj, AllocSite::Page, 200);
    EXPECT_TRUE(failing(inj, AllocSite::Vma, 50).empty());  // restricted to its site
    return v;
  };
  const auto a = run(42), b = run(42), c = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GT(a.size(), 20U);
  EXPECT_LT(a.size(), 100U);
}

TEST(FaultInjector, ObserverSeesEveryDecision) {
  FaultInjector inj;
  std::vector<FaultInjector::Event> evs;
  inj.on_attempt = [&](const FaultInjector::Event& e) { evs.push_back(e); };
  inj.fail_nth(AllocSite::Vma, 2);
  inj.should_fail(AllocSite::Vma);
  inj.should_fail(AllocSite::Page);
  inj.should_fail(AllocSite::Vma);
  ASSERT_EQ(evs.size(), 3U);
  EXPECT_EQ(evs[2].site, AllocSite::Vma);
  EXPECT_EQ(evs[2].attempt, 2U);
  EXPECT_EQ(evs[2].global, 3U);
  EXPECT_TRUE(evs[2].failed);
  EXPECT_FALSE(evs[1].failed);
  inj.reset_counts();
  EXPECT_EQ(inj.attempts_total(), 0U);
  EXPECT_EQ(inj.failures_total(), 0U);
}

TEST(FaultInjector, SiteNamesAndRuleParsing) {
  for (AllocSite s : kAllAllocSites)
    EXPECT_EQ(parse_site(site_name(s)), s);
  EXPECT_EQ(site_name(AllocSite::PgTable), "pgtable");
  EXPECT_EQ(site_name(AllocSite::MapleNode), "maple_node");
  EXPECT_FALSE(parse_site("pte").has_value());
  auto r = parse_inject_rule("pgtable:3");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->site, AllocSite::PgTable);
  EXPECT_EQ(r->nth, 3U);
  EXPECT_FALSE(r->persistent);
  r = parse_inject_rule("any:7+");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->site.has_value());
  EXPECT_EQ(r->nth, 7U);
  EXPECT_TRUE(r->persistent);
  for (const char* bad : {"pgtable", "pgtable:", "pgtable:0", "pgtable:x", "nope:1", "page:1x"})
    EXPECT_FALSE(parse_inject_rule(bad).has_value()) << bad;
}

// fatal_signal is a check, not an allocation: only a rule or random rate that names it
// decides it; "any", a site-less random rate and the allocation totals never see it.
TEST(FaultInjector, FatalSignalIsAPseudoSiteNamedOnly) {
  EXPECT_EQ(site_name(InjectSite::FatalSignal), "fatal_signal");
  EXPECT_EQ(parse_inject_site("fatal_signal"), InjectSite::FatalSignal);
  EXPECT_FALSE(parse_site("fatal_signal").has_value());  // not an allocation site
  EXPECT_FALSE(alloc_site(InjectSite::FatalSignal).has_value());
  for (AllocSite s : kAllAllocSites) {
    EXPECT_EQ(parse_inject_site(site_name(s)), inject_site(s));
    EXPECT_EQ(alloc_site(inject_site(s)), s);
  }
  EXPECT_EQ(inject_site_names(" "), "vma anon_vma maple_node pgtable page fatal_signal");
  auto r = parse_inject_rule("fatal_signal:4+");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->site, InjectSite::FatalSignal);
  EXPECT_EQ(r->nth, 4U);
  EXPECT_TRUE(r->persistent);

  FaultInjector inj;
  std::vector<FaultInjector::Event> evs;
  inj.on_attempt = [&](const FaultInjector::Event& e) { evs.push_back(e); };
  inj.fail_nth_any(1, /*persistent=*/true);
  inj.fail_random(1.0, 7);
  EXPECT_FALSE(inj.should_fail(InjectSite::FatalSignal));
  EXPECT_TRUE(inj.should_fail(AllocSite::Vma));
  inj.disarm();
  inj.fail_nth(InjectSite::FatalSignal, 2);
  EXPECT_FALSE(inj.should_fail(AllocSite::Page));  // allocations do not advance it
  EXPECT_FALSE(inj.should_fail(InjectSite::FatalSignal));
  EXPECT_TRUE(inj.should_fail(InjectSite::FatalSignal));
  EXPECT_FALSE(inj.should_fail(InjectSite::FatalSignal));
  EXPECT_EQ(inj.attempts(InjectSite::FatalSignal), 4U);
  EXPECT_EQ(inj.failures(InjectSite::FatalSignal), 1U);
  EXPECT_EQ(inj.attempts_total(), 2U);  // the allocations only
  EXPECT_EQ(inj.failures_total(), 1U);
  ASSERT_EQ(evs.size(), 6U);
  EXPECT_EQ(evs[4].site, InjectSite::FatalSignal);
  EXPECT_EQ(evs[4].attempt, 3U);
  EXPECT_EQ(evs[4].global, 2U);  // a check does not advance the allocation numbering
  EXPECT_TRUE(evs[4].failed);
  inj.disarm();
  inj.fail_random(1.0, 7, InjectSite::FatalSignal);
  EXPECT_TRUE(inj.should_fail(InjectSite::FatalSignal));
  EXPECT_FALSE(inj.should_fail(AllocSite::Vma));
}

TEST(LiveObjects, CountsPeakAndRecordsWhereObjectsCameFrom) {
  FaultInjector inj;
  LiveObjects live(inj);
  inj.set_context("fork pid 3");
  inj.should_fail(AllocSite::PgTable);
  live.created(AllocSite::PgTable, 10);
  inj.should_fail(AllocSite::PgTable);
  live.created(AllocSite::PgTable, 11);
  inj.set_context("mmap");
  inj.should_fail(AllocSite::Vma);
  int obj = 0;
  live.created(AllocSite::Vma, &obj);
  EXPECT_EQ(live.live(AllocSite::PgTable), 2);
  EXPECT_EQ(live.live(AllocSite::Vma), 1);
  live.destroyed(AllocSite::PgTable, 10);
  EXPECT_EQ(live.live(AllocSite::PgTable), 1);
  EXPECT_EQ(live.peak(AllocSite::PgTable), 2);
  const auto recs = live.records();
  ASSERT_EQ(recs.size(), 2U);
  EXPECT_EQ(recs[0].site, AllocSite::Vma);  // ordered by site, then by creation
  EXPECT_EQ(recs[0].context, "mmap");
  EXPECT_EQ(recs[0].attempt, 3U);
  EXPECT_EQ(recs[1].key, 11U);
  EXPECT_EQ(recs[1].context, "fork pid 3");
  EXPECT_EQ(recs[1].attempt, 2U);
  EXPECT_EQ(live.records(AllocSite::PgTable).size(), 1U);
  live.destroyed(AllocSite::Vma, &obj);
  EXPECT_EQ(live.snapshot()[static_cast<std::size_t>(AllocSite::Vma)], 0);
}

TEST(LiveObjects, UnknownFreeIsCountedNotFatal) {
  FaultInjector inj;
  LiveObjects live(inj);
  live.destroyed(AllocSite::Page, 99);
  EXPECT_EQ(live.unknown_frees(), 1U);
  EXPECT_EQ(live.live(AllocSite::Page), 0);
  live.created(AllocSite::Page, 5);
  live.destroyed(AllocSite::Page, 5);
  live.destroyed(AllocSite::Page, 5);  // double free
  EXPECT_EQ(live.unknown_frees(), 2U);
  EXPECT_EQ(live.live(AllocSite::Page), 0);
}

}  // namespace
}  // namespace mmemu
