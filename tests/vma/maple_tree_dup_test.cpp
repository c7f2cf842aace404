// Maple tree duplication (__mt_dup): same shape, same entries, independent afterwards;
// every node allocation of a 1000-entry dup failing in turn leaves the destination empty,
// leaks nothing and reports the node it stopped at.
#include <gtest/gtest.h>

#include "maple_tree_test_util.hpp"

namespace mmemu::test::maple {
namespace {

class MapleTreeDup : public ::testing::Test {
 protected:
  Machine m{16ULL << 20};
  MapleTree src{m};

  void fill(unsigned n) {
    for (unsigned i = 0; i < n; ++i)
      ASSERT_TRUE(src.store_range(4096 * (2 * i + 1), 4096 * (2 * i + 2) - 1, ent(i)));
  }
};

TEST_F(MapleTreeDup, SameShapeSameEntriesThenIndependent) {
  fill(1000);
  MapleTree dst{m};
  const auto a0 = m.inject.attempts(AllocSite::MapleNode);
  ASSERT_TRUE(dst.dup_from(src));
  EXPECT_EQ(m.inject.attempts(AllocSite::MapleNode) - a0, src.node_count());
  EXPECT_EQ(dst.dump(), src.dump());  // child ids are DFS positions: same text = same shape
  EXPECT_EQ(dst.node_count(), src.node_count());
  EXPECT_EQ(dst.height(), src.height());
  EXPECT_EQ(dst.entries(), src.entries());
  ASSERT_EQ(dst.validate(), std::nullopt);
  // The dup_mmap pattern: replace every entry in place.
  for (const auto& e : src.entries())
    ASSERT_TRUE(dst.replace(e.first, e.last, ent(10000 + (e.first >> 12))));
  EXPECT_EQ(dst.node_count(), src.node_count());
  EXPECT_EQ(src.load(4096), ent(0));
  EXPECT_EQ(dst.load(4096), ent(10001));
  ASSERT_TRUE(dst.store_range(0, 4096 * 600, nullptr));
  EXPECT_EQ(src.count(), 1000u);
  ASSERT_EQ(src.validate(), std::nullopt);
  ASSERT_EQ(dst.validate(), std::nullopt);
  dst.destroy();
  EXPECT_EQ(m.live.live(AllocSite::MapleNode), static_cast<std::int64_t>(src.node_count()));
}

TEST_F(MapleTreeDup, EmptyAndRootEntryTrees) {
  MapleTree d1{m};
  ASSERT_TRUE(d1.dup_from(src));
  EXPECT_TRUE(d1.empty());
  ASSERT_TRUE(src.store(0, ent(1)));
  MapleTree d2{m};
  const auto a0 = m.inject.attempts(AllocSite::MapleNode);
  ASSERT_TRUE(d2.dup_from(src));
  EXPECT_EQ(m.inject.attempts(AllocSite::MapleNode), a0);
  EXPECT_EQ(d2.load(0), ent(1));
  EXPECT_EQ(d2.dump(), src.dump());
}

TEST_F(MapleTreeDup, IntoNonEmptyTreeIsEinval) {
  fill(10);
  MapleTree dst{m};
  ASSERT_TRUE(dst.store_range(5, 6, ent(99)));
  const auto r = dst.dup_from(src);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, Errno{EINVAL});
  EXPECT_EQ(dst.entries(), (std::vector<MapleTree::Entry>{{5, 6, ent(99)}}));
}

TEST_F(MapleTreeDup, EveryAllocationFailingOfAThousandEntryDup) {
  fill(1000);
  const std::string src_dump = src.dump();
  const auto ranges = dump_ranges(src_dump);
  const std::size_t nodes = src.node_count();
  ASSERT_EQ(ranges.size(), nodes);
  ASSERT_GT(nodes, 100u);
  const auto live0 = m.live.live(AllocSite::MapleNode);
  MapleTree dst{m};
  for (std::size_t n = 1; n <= nodes; ++n) {
    m.inject.fail_nth(AllocSite::MapleNode, n);
    const auto r = dst.dup_from(src);
    m.inject.disarm();
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().err, Errno{ENOMEM});
    EXPECT_EQ(r.error().nodes_copied, n - 1);
    // The node that failed is the nth in pre-order: its range is the nth dump line's.
    EXPECT_EQ(r.error().node_min, ranges[n - 1].first) << n;
    EXPECT_EQ(r.error().node_max, ranges[n - 1].second) << n;
    EXPECT_TRUE(dst.empty());
    EXPECT_EQ(m.live.live(AllocSite::MapleNode), live0) << n;
    if (HasFailure()) return;
  }
  ASSERT_TRUE(dst.dup_from(src));
  EXPECT_EQ(dst.dump(), src_dump);
  EXPECT_EQ(src.dump(), src_dump);
  EXPECT_EQ(m.live.unknown_frees(), 0u);
}

}  // namespace
}  // namespace mmemu::test::maple
