// Maple tree allocation failures: every node allocation of representative operations fails
// in turn and must leave the tree exactly as it was, with nothing leaked; preallocation
// makes a store infallible.
#include <gtest/gtest.h>

#include "maple_tree_test_util.hpp"

namespace mmemu::test::maple {
namespace {

class MapleTreeFail : public ::testing::Test {
 protected:
  Machine m{16ULL << 20};
  MapleTree t{m};

  void fill(unsigned n, Index stride = 16, Index len = 8) {
    for (unsigned i = 0; i < n; ++i)
      ASSERT_TRUE(t.store_range(stride * i, stride * i + len - 1, ent(i)));
  }
};

TEST_F(MapleTreeFail, LargeSpanningStoreEveryAllocation) {
  // Adjacent entries (no NULLs between) fill the leaves. A store from inside entry 200 to
  // inside entry 800 keeps a piece of each, drops 599 entries and frees most of the nodes
  // they were in; the nodes it rewrites are reused, so it allocates only what the two cut
  // leaves may need beyond them.
  for (unsigned i = 0; i < 1000; ++i)
    ASSERT_TRUE(t.store_range(16 * i, 16 * i + 15, ent(i)));
  const std::size_t nodes = t.node_count();
  const Index first = 16 * 200 + 5, last = 16 * 800 + 9;
  const std::size_t need = t.nodes_needed(first, last, ent(5000));
  const std::uint64_t n =
      sweep_failures(m, t, [&] { return t.store_range(first, last, ent(5000)).has_value(); });
  EXPECT_EQ(n, need);
  ASSERT_EQ(t.validate(), std::nullopt);
  EXPECT_EQ(t.count(), 402u);
  EXPECT_EQ(t.walk(16 * 500), (MapleTree::Entry{first, last, ent(5000)}));
  EXPECT_EQ(t.walk(first - 1), (MapleTree::Entry{16 * 200, first - 1, ent(200)}));
  EXPECT_EQ(t.walk(last + 1), (MapleTree::Entry{last + 1, 16 * 800 + 15, ent(800)}));
  EXPECT_LT(t.node_count(), nodes / 2);
  EXPECT_EQ(m.live.live(AllocSite::MapleNode), static_cast<std::int64_t>(t.node_count()));
}

TEST_F(MapleTreeFail, StoreAcrossFullLeavesEveryAllocation) {
  // Cutting into two neighbouring entries keeps both pieces and adds the new range: where
  // the leaves (and their siblings) are full this needs new nodes. Take the store of that
  // kind needing the most.
  for (unsigned i = 0; i < 1000; ++i)
    ASSERT_TRUE(t.store_range(16 * i, 16 * i + 15, ent(i)));
  unsigned best = 0;
  std::size_t best_need = 0;
  for (unsigned k = 0; k + 1 < 1000; ++k) {
    const std::size_t need = t.nodes_needed(16 * k + 5, 16 * k + 16 + 9, ent(5000));
    if (need > best_need) {
      best_need = need;
      best = k;
    }
  }
  ASSERT_GE(best_need, 1u);
  const std::uint64_t n = sweep_failures(
      m, t, [&] { return t.store_range(16 * best + 5, 16 * best + 25, ent(5000)).has_value(); });
  EXPECT_EQ(n, best_need);
  ASSERT_EQ(t.validate(), std::nullopt);
  EXPECT_EQ(t.walk(16 * best + 16), (MapleTree::Entry{16 * best + 5, 16 * best + 25, ent(5000)}));
  EXPECT_EQ(t.count(), 1001u);
}

TEST_F(MapleTreeFail, SplitCascadeEveryAllocation) {
  // Find the append that splits a leaf, its parent, and the root (height 3 -> 4) by trying
  // each next append on a duplicate of the tree.
  unsigned i = 0;
  for (;; ++i) {
    MapleTree probe{m};
    ASSERT_TRUE(probe.dup_from(t));
    ASSERT_TRUE(probe.store_range(16 * i, 16 * i + 7, ent(i)));
    if (probe.height() == 4) break;
    ASSERT_TRUE(t.store_range(16 * i, 16 * i + 7, ent(i)));
  }
  ASSERT_EQ(t.height(), 3u);
  const std::size_t nodes = t.node_count();
  const std::uint64_t n =
      sweep_failures(m, t, [&] { return t.store_range(16 * i, 16 * i + 7, ent(i)).has_value(); });
  EXPECT_EQ(n, 4u) << "a new leaf, a new internal node at each of two levels, a new root";
  EXPECT_EQ(t.height(), 4u);
  EXPECT_EQ(t.node_count(), nodes + 4);
  ASSERT_EQ(t.validate(), std::nullopt);
}

TEST_F(MapleTreeFail, NullStorePunchingAHoleEveryAllocation) {
  // Clearing the middle of an entry splits it in two around a new NULL range: two more
  // slots, which a full leaf with full siblings cannot take without a new node.
  fill(1000, 16, 16);  // adjacent ranges
  unsigned k = 0;
  while (k < 1000 && t.nodes_needed(16 * k + 3, 16 * k + 4, nullptr) == 0)
    ++k;
  ASSERT_LT(k, 1000u);
  const std::uint64_t n = sweep_failures(
      m, t, [&] { return t.store_range(16 * k + 3, 16 * k + 4, nullptr).has_value(); });
  EXPECT_GE(n, 1u);
  EXPECT_EQ(t.walk(16 * k + 3), (MapleTree::Entry{16 * k + 3, 16 * k + 4, nullptr}));
  EXPECT_EQ(t.walk(16 * k + 5), (MapleTree::Entry{16 * k + 5, 16 * k + 15, ent(k)}));
  EXPECT_EQ(t.count(), 1001u);
  ASSERT_EQ(t.validate(), std::nullopt);
}

TEST_F(MapleTreeFail, FailureAfterUsingTheReserveGivesItBack) {
  // A reserve of one node (preallocated while empty), then a full root leaf (duplicated in,
  // which leaves the reserve alone). The next append needs two nodes: the reserve's and one
  // fresh; when the fresh one fails the reserve must come back as it was.
  ASSERT_TRUE(t.preallocate());
  ASSERT_EQ(t.prealloc_count(), 1u);
  MapleTree src{m};
  for (unsigned i = 1; i < 8; ++i)
    ASSERT_TRUE(src.store_range(16 * i, 16 * i + 7, ent(i)));
  ASSERT_TRUE(t.dup_from(src));
  EXPECT_EQ(t.nodes_needed(16 * 8, 16 * 8 + 7, ent(8)), 1u);
  const std::uint64_t n =
      sweep_failures(m, t, [&] { return t.store_range(16 * 8, 16 * 8 + 7, ent(8)).has_value(); });
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(t.prealloc_count(), 0u);
  EXPECT_EQ(t.height(), 2u);
  ASSERT_EQ(t.validate(), std::nullopt);
}

TEST_F(MapleTreeFail, PreallocatedStoreDrawsFromReserveAndKeepsTheRest) {
  fill(400);
  ASSERT_TRUE(t.preallocate());
  const std::size_t reserved = t.prealloc_count();
  EXPECT_EQ(reserved, t.height() + 1u);
  const auto live0 = m.live.live(AllocSite::MapleNode);
  m.inject.fail_nth(AllocSite::MapleNode, 1, true);
  // Exact overwrite: in place, the reserve is untouched.
  ASSERT_TRUE(t.store_range(16 * 3, 16 * 3 + 7, MapleTree::zero_entry()));
  EXPECT_EQ(t.prealloc_count(), reserved);
  m.inject.disarm();
  t.release_prealloc();
  EXPECT_EQ(m.live.live(AllocSite::MapleNode), live0 - static_cast<std::int64_t>(reserved));
  ASSERT_EQ(t.validate(), std::nullopt);
}

TEST_F(MapleTreeFail, FirstStoreIntoEmptyTreeFailsCleanly) {
  m.inject.fail_nth(AllocSite::MapleNode, 1);
  EXPECT_EQ(t.store_range(100, 200, ent(1)).error(), Errno{ENOMEM});
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(m.live.live(AllocSite::MapleNode), 0);
  EXPECT_EQ(t.nodes_needed(100, 200, ent(1)), 1u);
  EXPECT_EQ(t.nodes_needed(0, 0, ent(1)), 0u);  // stays in the root
  ASSERT_TRUE(t.store_range(100, 200, ent(1)));
  EXPECT_EQ(t.node_count(), 1u);
}

TEST_F(MapleTreeFail, EraseNeverAllocates) {
  fill(1000);
  const auto a0 = m.inject.attempts(AllocSite::MapleNode);
  m.inject.fail_nth(AllocSite::MapleNode, 1, true);
  for (unsigned i = 0; i < 1000; i += 3)
    ASSERT_TRUE(t.erase(16 * i + 2));
  m.inject.disarm();
  EXPECT_EQ(m.inject.attempts(AllocSite::MapleNode), a0);
  ASSERT_EQ(t.validate(), std::nullopt);
}

}  // namespace
}  // namespace mmemu::test::maple
