#include "mmu/mmu_gather.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "pt_test_util.hpp"

namespace mmemu {
namespace {

using test::PtFixture;
using Ev = RecordingFlusher::Event;
using Kind = RecordingFlusher::Kind;

class MmuGatherTest : public ::testing::TestWithParam<Arch> {
 protected:
  PtFixture fx{GetParam()};
  pfn_t page() { return *fx.m.phys.alloc_frame(AllocSite::Page); }
};

TEST_P(MmuGatherTest, FreesNothingBeforeTheFlushThenFlushesTheRange) {
  RecordingFlusher fl;
  MmuGather tlb(*fx.pt, &fl);
  const pfn_t a = page(), b = page(), c = page();
  const pfn_t t = *fx.m.phys.alloc_frame(AllocSite::PgTable);
  tlb.remove_page(a, 0x401000);
  tlb.remove_page(b, 0x400000);
  tlb.remove_page(c, 0x7ff000);
  tlb.free_table(t, Level::Pte, 0x600000);
  EXPECT_EQ(tlb.pending_pages(), 3U);
  EXPECT_EQ(tlb.pending_tables(), 1U);
  EXPECT_EQ(tlb.range_start(), 0x400000U);
  EXPECT_EQ(tlb.range_end(), 0x800000U);
  for (pfn_t p : {a, b, c, t})
    EXPECT_EQ(fx.m.phys.desc(p).refcount, 1U);
  EXPECT_TRUE(fl.events.empty());
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 3);
  EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), 2);

  tlb.flush();
  EXPECT_EQ(fl.events, (std::vector<Ev>{{Kind::Range, 0x400000, 0x800000}}));
  for (pfn_t p : {a, b, c, t})
    EXPECT_TRUE(fx.m.phys.is_free(p));
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 0);
  EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), 1);
  EXPECT_EQ(tlb.pages_freed(), 3U);
  EXPECT_EQ(tlb.tables_freed(), 1U);
  EXPECT_EQ(tlb.flushes(), 1U);
  EXPECT_EQ(tlb.pending_pages(), 0U);
  EXPECT_GT(tlb.range_start(), tlb.range_end());
  // Nothing pending: finishing flushes nothing more.
  tlb.finish();
  EXPECT_EQ(fl.events.size(), 1U);
  EXPECT_EQ(tlb.flushes(), 1U);
}

TEST_P(MmuGatherTest, PageStillReferencedElsewhereOnlyLosesOneReference) {
  RecordingFlusher fl;
  const pfn_t a = page();
  fx.m.phys.get_page(a);  // e.g. the other side of a fork still maps it
  {
    MmuGather tlb(*fx.pt, &fl);
    tlb.remove_page(a, 0x400000);
  }  // destructor finishes
  EXPECT_EQ(fl.events, (std::vector<Ev>{{Kind::Range, 0x400000, 0x401000}}));
  EXPECT_EQ(fx.m.phys.desc(a).refcount, 1U);
  EXPECT_FALSE(fx.m.phys.is_free(a));
  fx.m.phys.put_page(a);
}

TEST_P(MmuGatherTest, FullMmFlushesEverythingOnce) {
  RecordingFlusher fl;
  const pfn_t a = page(), b = page();
  {
    MmuGather tlb(*fx.pt, &fl, /*fullmm=*/true);
    EXPECT_TRUE(tlb.fullmm());
    tlb.remove_page(a, 0x400000);
    tlb.remove_page(b, 0x7fff0000);
    EXPECT_EQ(fx.m.phys.desc(a).refcount, 1U);
  }
  EXPECT_EQ(fl.events, (std::vector<Ev>{{Kind::All, 0, 0}}));
  EXPECT_TRUE(fx.m.phys.is_free(a));
  EXPECT_TRUE(fx.m.phys.is_free(b));
}

TEST_P(MmuGatherTest, FullBatchFlushesOnItsOwn) {
  RecordingFlusher fl;
  MmuGather tlb(*fx.pt, &fl);
  std::vector<pfn_t> pages;
  for (std::size_t i = 0; i < MmuGather::kMaxBatch + 1; ++i)
    pages.push_back(page());
  for (std::size_t i = 0; i < MmuGather::kMaxBatch - 1; ++i)
    tlb.remove_page(pages[i], 0x400000 + i * PAGE_SIZE);
  EXPECT_TRUE(fl.events.empty());
  EXPECT_EQ(fx.m.phys.desc(pages[0]).refcount, 1U);
  tlb.remove_page(pages[MmuGather::kMaxBatch - 1],
                  0x400000 + (MmuGather::kMaxBatch - 1) * PAGE_SIZE);
  // The batch filled: flushed and released at once, before any further page arrives.
  EXPECT_EQ(fl.events, (std::vector<Ev>{{Kind::Range, 0x400000, 0x600000}}));
  EXPECT_EQ(tlb.pending_pages(), 0U);
  EXPECT_TRUE(fx.m.phys.is_free(pages[0]));
  tlb.remove_page(pages.back(), 0x900000);
  EXPECT_EQ(tlb.pending_pages(), 1U);
  EXPECT_FALSE(fx.m.phys.is_free(pages.back()));
  tlb.finish();
  EXPECT_EQ(fl.events.size(), 2U);
  EXPECT_EQ(fl.events[1], (Ev{Kind::Range, 0x900000, 0x901000}));
  EXPECT_TRUE(fx.m.phys.is_free(pages.back()));
  EXPECT_EQ(fx.m.live.live(AllocSite::Page), 0);
}

TEST_P(MmuGatherTest, TableBatchIsBoundedToo) {
  RecordingFlusher fl;
  MmuGather tlb(*fx.pt, &fl);
  std::vector<pfn_t> tables;
  for (std::size_t i = 0; i < MmuGather::kMaxBatch; ++i)
    tables.push_back(*fx.m.phys.alloc_frame(AllocSite::PgTable));
  for (std::size_t i = 0; i < tables.size(); ++i) {
    EXPECT_EQ(fl.events.size(), 0U);
    tlb.free_table(tables[i], Level::Pte, i * PMD_SIZE);
  }
  EXPECT_EQ(fl.events.size(), 1U);
  EXPECT_EQ(tlb.pending_tables(), 0U);
  EXPECT_EQ(fx.m.live.live(AllocSite::PgTable), 1);
}

TEST_P(MmuGatherTest, NoFlusherStillReleasesAfterFlush) {
  const pfn_t a = page();
  MmuGather tlb(*fx.pt, nullptr);
  tlb.remove_page(a, 0x400000);
  EXPECT_FALSE(fx.m.phys.is_free(a));
  tlb.finish();
  EXPECT_TRUE(fx.m.phys.is_free(a));
  EXPECT_EQ(tlb.flushes(), 1U);
}

TEST_P(MmuGatherTest, TopPageRangeSaturates) {
  RecordingFlusher fl;
  MmuGather tlb(*fx.pt, &fl);
  tlb.track(0x1000, 0x2000);
  tlb.remove_page(page(), 0xfffffffffffff000ULL);
  tlb.finish();
  EXPECT_EQ(fl.events, (std::vector<Ev>{{Kind::Range, 0x1000, ULONG_MAX_ADDR}}));
}

INSTANTIATE_TEST_SUITE_P(Arches, MmuGatherTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         test::arch_param_name);

}  // namespace
}  // namespace mmemu
