// Maple tree gap tracking and mas_empty_area / mas_empty_area_rev semantics, including the
// kernel's argument checks and the edges of the index space.
#include <gtest/gtest.h>

#include "maple_tree_test_util.hpp"

namespace mmemu::test::maple {
namespace {

class MapleTreeGap : public ::testing::Test {
 protected:
  Machine m{16ULL << 20};
  MapleTree t{m};
  static constexpr Index P = 4096;

  // Pages [1, 1000) occupied one page per entry, except the holes given as [first, last].
  void fill_with_holes(std::initializer_list<std::pair<Index, Index>> holes) {
    ASSERT_TRUE(t.store_range(P, 1000 * P - 1, ent(0)));
    for (Index i = 1; i < 1000; ++i)
      ASSERT_TRUE(t.store_range(i * P, i * P + P - 1, ent(i)));
    for (auto [a, b] : holes)
      ASSERT_TRUE(t.store_range(a * P, b * P + P - 1, nullptr));
    ASSERT_EQ(t.validate(), std::nullopt);
  }
};

TEST_F(MapleTreeGap, ArgumentChecksAreEinval) {
  fill_with_holes({});
  EXPECT_EQ(t.empty_area(10, 9, 1).error(), Errno{EINVAL});
  EXPECT_EQ(t.empty_area(0, 100, 0).error(), Errno{EINVAL});
  EXPECT_EQ(t.empty_area(0, 99, 101).error(), Errno{EINVAL});  // window smaller than size
  EXPECT_EQ(t.empty_area_rev(10, 9, 1).error(), Errno{EINVAL});
  EXPECT_EQ(t.empty_area_rev(0, 100, 0).error(), Errno{EINVAL});
  EXPECT_EQ(t.empty_area_rev(0, 99, 101).error(), Errno{EINVAL});
  // A window of exactly size, and a one-index window, are valid.
  EXPECT_EQ(t.empty_area(0, 99, 100), 0u);
  EXPECT_EQ(t.empty_area(5, 5, 1), 5u);
  EXPECT_EQ(t.empty_area_rev(5, 5, 1), 5u);
  EXPECT_EQ(t.empty_area(P, P, 1).error(), Errno{EBUSY});
}

TEST_F(MapleTreeGap, LowestAndHighestFittingHoles) {
  fill_with_holes({{100, 101}, {300, 304}, {500, 502}, {700, 704}});
  ASSERT_GE(t.height(), 3u);
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 2 * P), 100 * P);
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 3 * P), 300 * P);
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 5 * P), 300 * P);
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 6 * P).error(), Errno{EBUSY});
  EXPECT_EQ(t.empty_area_rev(P, 1000 * P - 1, 2 * P), 703 * P);
  EXPECT_EQ(t.empty_area_rev(P, 1000 * P - 1, 5 * P), 700 * P);
  EXPECT_EQ(t.empty_area_rev(P, 600 * P - 1, 3 * P), 500 * P);
  EXPECT_EQ(t.empty_area_rev(P, 600 * P - 1, 4 * P), 301 * P);
  // The window cuts a hole: only the part inside counts.
  EXPECT_EQ(t.empty_area(302 * P, 1000 * P - 1, 3 * P), 302 * P);
  EXPECT_EQ(t.empty_area(303 * P, 1000 * P - 1, 3 * P), 500 * P);
  EXPECT_EQ(t.empty_area_rev(P, 302 * P - 1, 2 * P), 300 * P);
  EXPECT_EQ(t.empty_area_rev(P, 302 * P - 2, 2 * P), 100 * P);
  // Unaligned sizes land at the hole's start (forward) or end (reverse).
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 2 * P + 1), 300 * P);
  EXPECT_EQ(t.empty_area_rev(P, 1000 * P - 1, 2 * P + 1), 705 * P - (2 * P + 1));
}

TEST_F(MapleTreeGap, HolesTouchingZeroAndTheTop) {
  fill_with_holes({});
  EXPECT_EQ(t.empty_area(0, kMax, P), 0u);            // [0, P) is free
  EXPECT_EQ(t.empty_area(0, kMax, P + 1), 1000 * P);  // only the open top fits
  EXPECT_EQ(t.empty_area_rev(0, kMax, P), kMax - P + 1);
  EXPECT_EQ(t.empty_area_rev(0, kMax, kMax - 1000 * P + 1), 1000 * P);
  EXPECT_EQ(t.empty_area_rev(0, kMax, kMax - 1000 * P + 2).error(), Errno{EBUSY});
  EXPECT_EQ(t.empty_area_rev(0, 1000 * P - 1, P), 0u);
  ASSERT_TRUE(t.store_range(1000 * P, kMax, ent(5)));  // close the top
  EXPECT_EQ(t.empty_area(0, kMax, P + 1).error(), Errno{EBUSY});
  EXPECT_EQ(t.empty_area_rev(0, kMax, P), 0u);
  ASSERT_TRUE(t.store_range(0, 0, ent(6)));  // and index 0
  EXPECT_EQ(t.empty_area(0, kMax, P - 1), 1u);
  EXPECT_EQ(t.empty_area(0, kMax, P).error(), Errno{EBUSY});
  ASSERT_EQ(t.validate(), std::nullopt);
}

TEST_F(MapleTreeGap, GapsFollowStoresAndErases) {
  fill_with_holes({});
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 1).error(), Errno{EBUSY});
  ASSERT_TRUE(t.erase(640 * P));
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, P), 640 * P);
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, P + 1).error(), Errno{EBUSY});
  ASSERT_TRUE(t.erase(641 * P));  // merges with the NULL beside it
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 2 * P), 640 * P);
  ASSERT_TRUE(t.store_range(640 * P + 5, 640 * P + 5, ent(1)));
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, 2 * P).error(), Errno{EBUSY});
  EXPECT_EQ(t.empty_area(P, 1000 * P - 1, P), 640 * P + 6);
  ASSERT_EQ(t.validate(), std::nullopt);
}

}  // namespace
}  // namespace mmemu::test::maple
