// Maple tree against a reference model (std::map of ranges) under long random sequences of
// stores, NULL stores, erases, gap searches and finds, validating after every operation.
// Some stores run with random allocation failures (the tree must then be unchanged), some
// after preallocate() (they must then allocate nothing), and every store's allocation count
// must equal nodes_needed().
#include <gtest/gtest.h>

#include <random>

#include "maple_tree_test_util.hpp"

namespace mmemu::test::maple {
namespace {

class MapleTreeRandom : public ::testing::TestWithParam<std::uint64_t> {
 protected:
  Machine m{16ULL << 20};
  MapleTree t{m};
  RefModel ref;
  std::mt19937_64 rng;
  std::uint64_t next_value = 1;

  Index pick(Index universe) {
    const auto r = rng() % 100;
    if (r < 2) return rng() % 64;         // near 0
    if (r < 4) return kMax - rng() % 64;  // near the top
    return rng() % universe;
  }

  void check_all() {
    auto v = t.validate();
    ASSERT_EQ(v, std::nullopt) << *v << "\n" << t.dump();
    ASSERT_EQ(t.entries(), ref.entries());
    ASSERT_EQ(m.live.live(AllocSite::MapleNode),
              static_cast<std::int64_t>(t.node_count() + t.prealloc_count()));
  }

  void do_store(Index first, Index last, void* value) {
    const auto mode = rng() % 10;
    const auto a0 = m.inject.attempts(AllocSite::MapleNode);
    if (mode == 0) {  // preallocated: cannot fail, allocates nothing more
      ASSERT_TRUE(t.preallocate());
      ASSERT_EQ(t.prealloc_count(), t.height() + 1u);
      const auto a1 = m.inject.attempts(AllocSite::MapleNode);
      m.inject.fail_nth(AllocSite::MapleNode, 1, true);
      ASSERT_TRUE(t.store_range(first, last, value)) << t.dump();
      m.inject.disarm();
      ASSERT_EQ(m.inject.attempts(AllocSite::MapleNode), a1);
      t.release_prealloc();
      ref.store(first, last, value);
    } else if (mode == 1) {  // random failures
      const std::size_t need = t.nodes_needed(first, last, value);
      const std::string before = need ? t.dump() : std::string();
      m.inject.fail_random(0.5, rng(), AllocSite::MapleNode);
      const auto r = t.store_range(first, last, value);
      m.inject.disarm();
      if (r) {
        ref.store(first, last, value);
      } else {
        ASSERT_EQ(r.error(), Errno{ENOMEM});
        ASSERT_GT(need, 0u);
        ASSERT_EQ(t.dump(), before);
      }
    } else {
      const std::size_t need = t.nodes_needed(first, last, value);
      ASSERT_TRUE(t.store_range(first, last, value));
      ASSERT_EQ(m.inject.attempts(AllocSite::MapleNode) - a0, need);
      ref.store(first, last, value);
    }
  }

  void check_queries(Index universe) {
    for (int q = 0; q < 3; ++q) {
      Index lo = pick(universe), hi = pick(universe);
      if (lo > hi) std::swap(lo, hi);
      Index size = 1 + rng() % (rng() % 4 == 0 ? 4096 : 64);
      if (rng() % 20 == 0) size = 0;
      for (bool rev : {false, true}) {
        Index want = 0;
        int err = 0;
        const bool found = ref.empty_area(lo, hi, size, rev, want, err);
        const auto got = rev ? t.empty_area_rev(lo, hi, size) : t.empty_area(lo, hi, size);
        ASSERT_EQ(got.has_value(), found) << lo << " " << hi << " " << size << " rev " << rev;
        if (found)
          ASSERT_EQ(*got, want) << lo << " " << hi << " " << size << " rev " << rev;
        else
          ASSERT_EQ(got.error(), Errno{err});
      }
      const auto all = ref.entries();
      std::optional<MapleTree::Entry> f, fr;
      for (const auto& e : all) {
        if (!f && e.last >= lo && e.first <= hi) f = e;
        if (e.last >= lo && e.first <= hi) fr = e;
      }
      ASSERT_EQ(t.find(lo, hi), f);
      ASSERT_EQ(t.find_rev(hi, lo), fr);
      const Index i = pick(universe);
      ASSERT_EQ(t.walk(i), ref.walk(i));
      ASSERT_EQ(t.load(i), ref.walk(i).value);
    }
  }
};

TEST_P(MapleTreeRandom, MatchesReferenceModel) {
  rng.seed(GetParam());
  const Index universe = 1ULL << 16;
  std::size_t max_height = 0;
  // Start from a deep tree: 1500 small ranges scattered over the universe.
  for (int i = 0; i < 1500; ++i) {
    const Index first = rng() % universe;
    const Index last = std::min(universe - 1, first + rng() % 16);
    ASSERT_TRUE(t.store_range(first, last, ent(next_value)));
    ref.store(first, last, ent(next_value++));
  }
  check_all();
  EXPECT_GE(t.height(), 4u);
  for (int op = 0; op < 1600; ++op) {
    // Alternate growing and shrinking phases so the tree both deepens and collapses.
    const bool grow = (op / 400) % 2 == 1;
    const auto r = rng() % 100;
    if (r < (grow ? 70u : 25u) || r >= 99) {
      const Index first = pick(universe);
      const Index len = r >= 99 ? rng() % (universe / 4) : rng() % (rng() % 8 == 0 ? 512 : 24);
      const Index last = first > kMax - len ? kMax : first + len;
      void* v = rng() % 8 == 0 ? nullptr : ent(next_value++);
      if (rng() % 50 == 0) v = MapleTree::zero_entry();
      do_store(first, last, v);
    } else if (r < 80) {
      // Erase: usually an existing entry.
      const auto all = ref.entries();
      const Index i = all.empty() || rng() % 4 == 0 ? pick(universe)
                                                    : all[rng() % all.size()].first + rng() % 2;
      void* want = ref.walk(i).value;
      const auto got = t.erase(i);
      ASSERT_TRUE(got);
      ASSERT_EQ(*got, want);
      const auto w = ref.walk(i);
      if (w.value) ref.store(w.first, w.last, nullptr);
    } else {
      check_queries(universe);
    }
    check_all();
    if (HasFatalFailure()) {
      ADD_FAILURE() << "seed " << GetParam() << " op " << op;
      return;
    }
    max_height = std::max<std::size_t>(max_height, t.height());
  }
  EXPECT_GE(max_height, 4u);
  t.destroy();
  EXPECT_EQ(m.live.live(AllocSite::MapleNode), 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, MapleTreeRandom, ::testing::Values(1, 2, 3, 4));

// Sequential fills and drains in both directions: the patterns mmap (top-down) and brk
// (bottom-up) produce, which stress the rightmost and leftmost nodes.
TEST(MapleTreeSequential, AscendingAndDescendingFillsAndDrains) {
  Machine m{16ULL << 20};
  for (bool down : {false, true}) {
    MapleTree t{m};
    RefModel ref;
    for (unsigned i = 0; i < 2000; ++i) {
      const Index k = down ? 4000 - i : i;
      ASSERT_TRUE(t.store_range(k * 4096, k * 4096 + 4095, ent(k)));  // adjacent, no gaps
      ref.store(k * 4096, k * 4096 + 4095, ent(k));
    }
    ASSERT_EQ(t.validate(), std::nullopt);
    ASSERT_EQ(t.entries(), ref.entries());
    for (unsigned i = 0; i < 2000; ++i) {
      const Index k = down ? 4000 - 1999 + i : 1999 - i;
      ASSERT_TRUE(t.erase(k * 4096));
      auto v = t.validate();
      ASSERT_EQ(v, std::nullopt) << *v;
    }
    EXPECT_TRUE(t.empty());
  }
  EXPECT_EQ(m.live.live(AllocSite::MapleNode), 0);
}

}  // namespace
}  // namespace mmemu::test::maple
