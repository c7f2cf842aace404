#include "mmu/phys_mem.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mmu/machine.hpp"

namespace mmemu {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

TEST(PhysMem, ZeroPageIsReservedAndNeverCounted) {
  Machine m(8 * kMiB);
  EXPECT_EQ(m.phys.nr_frames(), 2048U);
  EXPECT_EQ(m.phys.nr_free(), 2047U);
  const pfn_t z = m.phys.zero_pfn();
  EXPECT_TRUE(m.phys.desc(z).flags & PG_zero);
  EXPECT_FALSE(m.phys.put_page(z));
  EXPECT_EQ(m.phys.desc(z).refcount, 1U);
  EXPECT_EQ(m.live.live(AllocSite::Page), 0);
}

TEST(PhysMem, AllocZeroesCountsAndFrees) {
  Machine m(8 * kMiB);
  auto a = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(a);
  std::memset(m.phys.frame(*a), 0xab, PAGE_SIZE);
  EXPECT_EQ(m.live.live(AllocSite::Page), 1);
  EXPECT_EQ(m.phys.desc(*a).refcount, 1U);
  m.phys.get_page(*a);
  EXPECT_FALSE(m.phys.put_page(*a));
  EXPECT_TRUE(m.phys.put_page(*a));
  EXPECT_EQ(m.live.live(AllocSite::Page), 0);
  EXPECT_EQ(m.phys.nr_free(), 2047U);
  auto b = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, *a);  // lowest free frame again, and zeroed
  for (std::uint64_t i = 0; i < PAGE_SIZE; ++i)
    ASSERT_EQ(m.phys.frame(*b)[i], 0);
  m.phys.put_page(*b);
}

TEST(PhysMem, TablesAreFlaggedAndCountedSeparately) {
  Machine m(8 * kMiB);
  auto t = m.phys.alloc_frame(AllocSite::PgTable);
  ASSERT_TRUE(t);
  EXPECT_TRUE(m.phys.desc(*t).flags & PG_pgtable);
  EXPECT_EQ(m.live.live(AllocSite::PgTable), 1);
  EXPECT_EQ(m.live.live(AllocSite::Page), 0);
  m.phys.store_entry(*t, 511, 0x1234'5678'9abc'def0ULL);
  EXPECT_EQ(m.phys.load_entry(*t, 511), 0x1234'5678'9abc'def0ULL);
  m.phys.put_page(*t);
  EXPECT_EQ(m.live.live(AllocSite::PgTable), 0);
}

TEST(PhysMem, ReservationGivesContiguousFramesInAnyFaultOrder) {
  Machine m(16 * kMiB);
  const vaddr_t base = 0x7f00'0020'0000ULL;  // 2 MiB aligned window
  std::vector<pfn_t> got(8);
  for (int i = 7; i >= 0; --i) {  // fault the pages backwards
    AllocHint h{42, base + static_cast<vaddr_t>(i) * PAGE_SIZE};
    auto p = m.phys.alloc_frame(AllocSite::Page, &h);
    ASSERT_TRUE(p);
    got[static_cast<std::size_t>(i)] = *p;
  }
  for (std::size_t i = 1; i < got.size(); ++i)
    EXPECT_EQ(got[i], got[0] + i);
  EXPECT_EQ(got[0] % 512, 0U);  // offset in the block equals offset in the window
  // A general allocation does not land inside the reservation.
  auto g = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(g);
  EXPECT_TRUE(*g < got[0] || *g >= got[0] + 512);
  // Another owner of the same window gets another block.
  AllocHint other{43, base};
  auto o = m.phys.alloc_frame(AllocSite::Page, &other);
  ASSERT_TRUE(o);
  EXPECT_NE(*o / 512, got[0] / 512);
  for (pfn_t p : got)
    m.phys.put_page(p);
  m.phys.put_page(*g);
  m.phys.put_page(*o);
  EXPECT_EQ(m.phys.nr_free(), m.phys.nr_frames() - 1);
}

TEST(PhysMem, ReservationsAreBrokenWhenMemoryRunsOut) {
  Machine m(4 * kMiB);  // two blocks; block 0 holds the zero page
  AllocHint h{7, 0x400000};
  auto r = m.phys.alloc_frame(AllocSite::Page, &h);  // reserves block 1
  ASSERT_TRUE(r);
  EXPECT_EQ(*r / 512, 1U);
  std::vector<pfn_t> all{*r};
  while (true) {
    auto p = m.phys.alloc_frame(AllocSite::Page);
    if (!p) {
      EXPECT_EQ(p.error(), Errno{ENOMEM});
      break;
    }
    all.push_back(*p);
  }
  EXPECT_EQ(all.size(), 1023U);  // every frame but the zero page
  EXPECT_EQ(m.phys.nr_free(), 0U);
  for (pfn_t p : all)
    m.phys.put_page(p);
  EXPECT_EQ(m.live.live(AllocSite::Page), 0);
}

TEST(PhysMem, InjectedFailureChangesNothing) {
  Machine m(8 * kMiB);
  m.inject.fail_nth(AllocSite::Page, 2);
  auto a = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(a);
  const auto free_before = m.phys.nr_free();
  auto b = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), Errno{ENOMEM});
  EXPECT_EQ(m.phys.nr_free(), free_before);
  EXPECT_EQ(m.live.live(AllocSite::Page), 1);
  EXPECT_EQ(m.inject.attempts(AllocSite::Page), 2U);
  EXPECT_EQ(m.inject.failures(AllocSite::Page), 1U);
  auto c = m.phys.alloc_frame(AllocSite::Page);  // one-shot rule: the third succeeds
  ASSERT_TRUE(c);
  m.phys.put_page(*a);
  m.phys.put_page(*c);
}

TEST(PhysMem, LeakRecordsSayWhereFramesCameFrom) {
  Machine m(8 * kMiB);
  m.inject.set_context("mmap pid 1");
  auto a = m.phys.alloc_frame(AllocSite::Page);
  ASSERT_TRUE(a);
  auto recs = m.live.records(AllocSite::Page);
  ASSERT_EQ(recs.size(), 1U);
  EXPECT_EQ(recs[0].key, *a);
  EXPECT_EQ(recs[0].context, "mmap pid 1");
  EXPECT_EQ(recs[0].attempt, 1U);
  m.phys.put_page(*a);
  EXPECT_TRUE(m.live.records().empty());
}

}  // namespace
}  // namespace mmemu
