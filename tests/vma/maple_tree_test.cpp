// Maple tree: targeted tests of shape (splits, merges, height), reads, replace and the
// lone root entry.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "maple_tree_test_util.hpp"

namespace mmemu::test::maple {
namespace {

class MapleTreeTest : public ::testing::Test {
 protected:
  Machine m{16ULL << 20};
  MapleTree t{m};

  std::int64_t live() const { return m.live.live(AllocSite::MapleNode); }
  void ok() {
    auto v = t.validate();
    ASSERT_EQ(v, std::nullopt) << *v << "\n" << t.dump();
    ASSERT_EQ(live(), static_cast<std::int64_t>(t.node_count() + t.prealloc_count()));
  }
  // Entries [16 i, 16 i + 7] for i in [from, to), each followed by a NULL gap.
  void append(unsigned from, unsigned to) {
    for (unsigned i = from; i < to; ++i) {
      ASSERT_TRUE(t.store_range(16 * i, 16 * i + 7, ent(i)));
      ok();
    }
  }
};

TEST_F(MapleTreeTest, EmptyTree) {
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.load(0), nullptr);
  EXPECT_EQ(t.walk(123), (MapleTree::Entry{0, kMax, nullptr}));
  EXPECT_EQ(t.find(0), std::nullopt);
  EXPECT_EQ(t.find_rev(kMax), std::nullopt);
  EXPECT_EQ(t.count(), 0u);
  EXPECT_EQ(t.height(), 0u);
  EXPECT_EQ(t.node_count(), 0u);
  EXPECT_EQ(t.dump(), "maple_tree (empty)\n");
  EXPECT_EQ(t.empty_area(5, 100, 10), 5u);
  EXPECT_EQ(t.empty_area_rev(5, 100, 10), 91u);
  EXPECT_EQ(t.erase(7).value(), nullptr);
  ok();
}

TEST_F(MapleTreeTest, RejectsInvertedRange) {
  EXPECT_EQ(t.store_range(10, 9, ent(1)).error(), Errno{EINVAL});
  EXPECT_TRUE(t.empty());
}

TEST_F(MapleTreeTest, LoneEntryAtZeroLivesInTheRoot) {
  ASSERT_TRUE(t.store(0, ent(1)));
  EXPECT_EQ(t.node_count(), 0u);
  EXPECT_EQ(t.height(), 0u);
  EXPECT_EQ(t.load(0), ent(1));
  EXPECT_EQ(t.walk(1), (MapleTree::Entry{1, kMax, nullptr}));
  EXPECT_EQ(t.find(0), (MapleTree::Entry{0, 0, ent(1)}));
  EXPECT_EQ(t.find(1), std::nullopt);
  EXPECT_EQ(t.dump(), "maple_tree root entry [0x0, 0x0] 0x10010\n");
  // mas_sparse_area: index 0 is taken, the search starts at 1.
  EXPECT_EQ(t.empty_area(0, 100, 10), 1u);
  EXPECT_EQ(t.empty_area(0, 9, 10).error(), Errno{EBUSY});
  EXPECT_EQ(t.empty_area(0, 10, 10), 1u);
  EXPECT_EQ(t.empty_area_rev(0, 100, 10), 91u);
  ok();
  // A second entry needs a leaf.
  ASSERT_TRUE(t.store_range(5, 9, ent(2)));
  EXPECT_EQ(t.node_count(), 1u);
  EXPECT_EQ(t.height(), 1u);
  EXPECT_EQ(t.entries(), (std::vector<MapleTree::Entry>{{0, 0, ent(1)}, {5, 9, ent(2)}}));
  ok();
  ASSERT_EQ(t.erase(5).value(), ent(2));
  ASSERT_EQ(t.erase(0).value(), ent(1));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(live(), 0);
}

TEST_F(MapleTreeTest, ZeroEntryAtZeroNeedsANode) {
  // Like the kernel, an internal entry (XA_ZERO) is never kept as the root pointer.
  ASSERT_TRUE(t.store(0, MapleTree::zero_entry()));
  EXPECT_EQ(t.node_count(), 1u);
  EXPECT_TRUE(MapleTree::is_zero_entry(t.load(0)));
  ok();
}

TEST_F(MapleTreeTest, StoreSplitsAndOverwritesRanges) {
  ASSERT_TRUE(t.store_range(10, 19, ent(1)));
  ASSERT_TRUE(t.store_range(15, 16, ent(2)));
  EXPECT_EQ(t.entries(),
            (std::vector<MapleTree::Entry>{{10, 14, ent(1)}, {15, 16, ent(2)}, {17, 19, ent(1)}}));
  ASSERT_TRUE(t.store_range(12, 18, ent(3)));
  EXPECT_EQ(t.entries(),
            (std::vector<MapleTree::Entry>{{10, 11, ent(1)}, {12, 18, ent(3)}, {19, 19, ent(1)}}));
  EXPECT_EQ(t.walk(15), (MapleTree::Entry{12, 18, ent(3)}));
  EXPECT_EQ(t.walk(25), (MapleTree::Entry{20, kMax, nullptr}));
  EXPECT_EQ(t.walk(3), (MapleTree::Entry{0, 9, nullptr}));
  ok();
}

TEST_F(MapleTreeTest, NullStoresMergeWithNullNeighbours) {
  ASSERT_TRUE(t.store_range(10, 19, ent(1)));
  ASSERT_TRUE(t.store_range(20, 29, ent(2)));
  ASSERT_TRUE(t.store_range(30, 39, ent(3)));
  EXPECT_NE(t.dump().find("slots=[NULL 0x10010 0x10020 0x10030 NULL]"), std::string::npos)
      << t.dump();
  ASSERT_EQ(t.erase(25).value(), ent(2));
  EXPECT_EQ(t.walk(25), (MapleTree::Entry{20, 29, nullptr}));
  ASSERT_EQ(t.erase(10).value(), ent(1));
  EXPECT_EQ(t.walk(25), (MapleTree::Entry{0, 29, nullptr}));
  EXPECT_NE(t.dump().find("pivots=[0x1d 0x27] slots=[NULL 0x10030 NULL]"), std::string::npos)
      << t.dump();
  // Clearing part of a NULL range changes nothing.
  ASSERT_TRUE(t.store_range(3, 5, nullptr));
  EXPECT_EQ(t.walk(4), (MapleTree::Entry{0, 29, nullptr}));
  ok();
  ASSERT_EQ(t.erase(35).value(), ent(3));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(live(), 0);
}

TEST_F(MapleTreeTest, LeafSplitsAtSeventeenSlots) {
  append(1, 8);  // NULL + 7 x (entry, NULL) = 15 slots
  EXPECT_EQ(t.height(), 1u);
  EXPECT_EQ(t.node_count(), 1u);
  ASSERT_TRUE(t.store_range(16 * 8, 16 * 8 + 7, ent(8)));  // 17 slots: two leaves of 9 and 8
  ok();
  EXPECT_EQ(t.height(), 2u);
  EXPECT_EQ(t.node_count(), 3u);
  const auto r = dump_ranges(t.dump());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (std::pair<Index, Index>{0, kMax}));
  EXPECT_EQ(r[1], (std::pair<Index, Index>{0, 16 * 5 - 1}));  // NULL e1 .. e4 NULL: 9 slots
  EXPECT_EQ(r[2], (std::pair<Index, Index>{16 * 5, kMax}));
  // The root tracks each leaf's largest gap: 8 below the first leaf, the open end after.
  EXPECT_NE(t.dump().find("gaps=[0x10 0xffffffffffffff78]"), std::string::npos) << t.dump();
}

TEST_F(MapleTreeTest, HeightGrowsThenShrinksToEmpty) {
  unsigned n = 0;
  while (t.height() < 3) {
    append(n, n + 1);
    ++n;
  }
  EXPECT_GT(n, 40u);
  unsigned h = t.height();
  for (unsigned i = 0; i < n; ++i) {
    const unsigned k = (i * 37) % n;  // scattered order
    ASSERT_EQ(t.erase(16 * k + 3).value(), ent(k));
    ok();
    EXPECT_LE(t.height(), h);
    h = t.height();
  }
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(live(), 0);
}

TEST_F(MapleTreeTest, SpanningStoresRebalanceAndFree) {
  append(0, 1000);
  const std::size_t nodes = t.node_count();
  EXPECT_EQ(t.height(), 4u);
  // Clear a wide middle span: hundreds of nodes go, the rest are rebalanced.
  ASSERT_TRUE(t.store_range(16 * 100 + 4, 16 * 900 + 2, nullptr));
  ok();
  EXPECT_EQ(t.count(), 201u);
  EXPECT_EQ(t.walk(16 * 500), (MapleTree::Entry{16 * 100 + 4, 16 * 900 + 2, nullptr}));
  EXPECT_EQ(t.load(16 * 100 + 3), ent(100));
  EXPECT_EQ(t.load(16 * 900 + 3), ent(900));
  EXPECT_LT(t.node_count(), nodes / 3);
  // Overwrite almost everything with one entry.
  ASSERT_TRUE(t.store_range(1, kMax - 1, ent(5000)));
  ok();
  EXPECT_EQ(t.node_count(), 1u);
  EXPECT_EQ(t.entries(), (std::vector<MapleTree::Entry>{{0, 0, ent(0)}, {1, kMax - 1, ent(5000)}}));
  ASSERT_TRUE(t.store_range(0, kMax, ent(7)));
  EXPECT_EQ(t.entries(), (std::vector<MapleTree::Entry>{{0, kMax, ent(7)}}));
  ok();
  ASSERT_TRUE(t.store_range(0, kMax, nullptr));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(live(), 0);
}

TEST_F(MapleTreeTest, EdgesOfTheIndexSpace) {
  ASSERT_TRUE(t.store(kMax, ent(1)));
  ASSERT_TRUE(t.store_range(0, 0, ent(2)));
  ok();
  EXPECT_EQ(t.walk(kMax), (MapleTree::Entry{kMax, kMax, ent(1)}));
  EXPECT_EQ(t.walk(kMax - 1), (MapleTree::Entry{1, kMax - 1, nullptr}));
  EXPECT_EQ(t.find(1), (MapleTree::Entry{kMax, kMax, ent(1)}));
  EXPECT_EQ(t.find_rev(kMax - 1), (MapleTree::Entry{0, 0, ent(2)}));
  EXPECT_EQ(t.empty_area(0, kMax, kMax - 1), 1u);
  EXPECT_EQ(t.empty_area(0, kMax, kMax).error(), Errno{EBUSY});
  ASSERT_EQ(t.erase(kMax).value(), ent(1));
  EXPECT_EQ(t.walk(kMax), (MapleTree::Entry{1, kMax, nullptr}));
  ok();
}

TEST_F(MapleTreeTest, FindAndFindRevSkipNullsAcrossLeaves) {
  append(0, 300);
  EXPECT_EQ(t.find(16 * 10 + 8), (MapleTree::Entry{16 * 11, 16 * 11 + 7, ent(11)}));
  EXPECT_EQ(t.find(16 * 10 + 8, 16 * 11 - 1), std::nullopt);
  EXPECT_EQ(t.find(16 * 10 + 5, 16 * 10 + 5), (MapleTree::Entry{16 * 10, 16 * 10 + 7, ent(10)}));
  EXPECT_EQ(t.find_rev(16 * 10 + 8), (MapleTree::Entry{16 * 10, 16 * 10 + 7, ent(10)}));
  EXPECT_EQ(t.find_rev(16 * 10 - 1, 16 * 9 + 8), std::nullopt);
  EXPECT_EQ(t.find(16 * 299 + 8), std::nullopt);
  EXPECT_EQ(t.find_rev(kMax), (MapleTree::Entry{16 * 299, 16 * 299 + 7, ent(299)}));
  const auto e = t.entries(16 * 50 + 7, 16 * 53);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e.front().value, ent(50));
  EXPECT_EQ(e.back().value, ent(53));
  EXPECT_EQ(t.count(), 300u);
  EXPECT_EQ(t.entries().size(), 300u);
}

TEST_F(MapleTreeTest, ReplaceIsExactRangeInPlaceAndAllocatesNothing) {
  append(0, 200);
  const std::string before = t.dump();
  const auto attempts = m.inject.attempts(AllocSite::MapleNode);
  EXPECT_FALSE(t.replace(16 * 7, 16 * 7 + 6, ent(1000)));      // not the whole range
  EXPECT_FALSE(t.replace(16 * 7 + 8, 16 * 8 - 1, ent(1000)));  // a NULL range
  EXPECT_FALSE(t.replace(16 * 7, 16 * 7 + 7, nullptr));
  EXPECT_EQ(t.dump(), before);
  EXPECT_TRUE(t.replace(16 * 7, 16 * 7 + 7, ent(1000)));
  EXPECT_TRUE(t.replace(16 * 8, 16 * 8 + 7, MapleTree::zero_entry()));
  EXPECT_EQ(m.inject.attempts(AllocSite::MapleNode), attempts);
  EXPECT_EQ(t.load(16 * 7 + 3), ent(1000));
  EXPECT_TRUE(MapleTree::is_zero_entry(t.load(16 * 8 + 3)));
  std::string expect = before;
  const std::string old7 = fmt::format("{}", ent(7)), old8 = fmt::format("{}", ent(8));
  expect.replace(expect.find(old7), old7.size(), fmt::format("{}", ent(1000)));
  expect.replace(expect.find(old8), old8.size(), "XA_ZERO");
  EXPECT_EQ(t.dump(), expect);
  ok();
}

TEST_F(MapleTreeTest, ZeroEntryIsReturnedAndOccupiesItsRange) {
  ASSERT_TRUE(t.store_range(100, 199, MapleTree::zero_entry()));
  EXPECT_TRUE(MapleTree::is_zero_entry(t.load(150)));
  ASSERT_TRUE(t.find(0).has_value());
  EXPECT_TRUE(MapleTree::is_zero_entry(t.find(0)->value));
  EXPECT_EQ(t.count(), 1u);
  EXPECT_EQ(t.empty_area(100, 199, 1).error(), Errno{EBUSY});
  EXPECT_EQ(t.empty_area(100, 300, 1), 200u);
  EXPECT_EQ(t.empty_area_rev(0, 199, 100), 0u);
  EXPECT_FALSE(MapleTree::is_zero_entry(ent(0)));
  ok();
}

TEST_F(MapleTreeTest, DestroyFreesEverythingIncludingTheReserve) {
  append(0, 500);
  ASSERT_TRUE(t.preallocate());
  EXPECT_GT(live(), 0);
  t.destroy();
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.prealloc_count(), 0u);
  EXPECT_EQ(live(), 0);
  EXPECT_EQ(m.live.unknown_frees(), 0u);
}

}  // namespace
}  // namespace mmemu::test::maple
