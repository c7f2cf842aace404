// Maple tree against std::map over the same VMA-like ranges: load, store, erase and free-range
// search. Pairs are named BM_Maple_X / BM_StdMap_X and run at 1,000 and 100,000 ranges.
//
// Layout: ranges of 1..8 pages separated by 1-page holes, plus one 32-page hole every 512
// ranges (the only holes a 16-page search can use). std::map holds start -> (last, entry);
// its load is upper_bound + one step back, its free-range search walks neighbours.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "mmu/machine.hpp"
#include "vma/maple_tree.hpp"

namespace {

using mmemu::Machine;
using mmemu::MapleTree;
using Index = MapleTree::Index;
constexpr Index kPage = 4096;
constexpr Index kBase = 0x10000;

void* entry_for(std::size_t i) {
  return reinterpret_cast<void*>(std::uintptr_t{0x100000 + 16 * i});
}

struct Layout {
  std::vector<std::pair<Index, Index>> ranges;  // [first, last]
  std::vector<std::pair<Index, Index>> holes;   // the 1-page holes after each range
  Index end = 0;
};

Layout make_layout(std::size_t n) {
  Layout l;
  std::mt19937_64 rng(42);
  Index at = kBase;
  for (std::size_t i = 0; i < n; ++i) {
    const Index len = (1 + rng() % 8) * kPage;
    l.ranges.emplace_back(at, at + len - 1);
    at += len;
    const Index hole = (i % 512 == 511) ? 32 * kPage : kPage;
    l.holes.emplace_back(at, at + hole - 1);
    at += hole;
  }
  l.end = at;
  return l;
}

struct MapleFixture {
  Machine m{16ULL << 20};
  MapleTree t{m};
  explicit MapleFixture(const Layout& l) {
    for (std::size_t i = 0; i < l.ranges.size(); ++i)
      (void)t.store_range(l.ranges[i].first, l.ranges[i].second, entry_for(i));
  }
};

struct MapRange {
  Index last;
  void* value;
};
using RangeMap = std::map<Index, MapRange>;

RangeMap make_map(const Layout& l) {
  RangeMap m;
  for (std::size_t i = 0; i < l.ranges.size(); ++i)
    m.emplace(l.ranges[i].first, MapRange{l.ranges[i].second, entry_for(i)});
  return m;
}

void* map_load(const RangeMap& m, Index i) {
  auto it = m.upper_bound(i);
  if (it == m.begin()) return nullptr;
  --it;
  return it->second.last >= i ? it->second.value : nullptr;
}

// Lowest start >= min of a free run of size in [min, max], walking the ranges in order.
std::optional<Index> map_empty_area(const RangeMap& m, Index min, Index max, Index size) {
  auto it = m.upper_bound(min);
  Index free_from = min;
  if (it != m.begin()) {
    auto p = std::prev(it);
    if (p->second.last >= min) free_from = p->second.last + 1;
  }
  for (;; ++it) {
    const Index free_to = it == m.end() ? max : std::min(max, it->first - 1);
    if (free_to >= free_from && free_to - free_from >= size - 1) return free_from;
    if (it == m.end() || it->first > max) return std::nullopt;
    free_from = it->second.last + 1;
  }
}

// Highest start of such a run, walking the ranges backwards from max.
std::optional<Index> map_empty_area_rev(const RangeMap& m, Index min, Index max, Index size) {
  auto it = m.upper_bound(max);  // first range starting above max
  Index hi = max;                // top of the free run being looked at
  for (;;) {
    if (it == m.begin()) break;
    const auto p = std::prev(it);
    if (p->second.last < hi) {
      const Index lo = std::max(min, p->second.last + 1);
      if (hi >= lo && hi - lo >= size - 1) return hi - (size - 1);
      if (p->second.last < min) return std::nullopt;
    }
    if (p->first <= min) return std::nullopt;
    hi = p->first - 1;
    it = p;
  }
  if (hi >= min && hi - min >= size - 1) return hi - (size - 1);
  return std::nullopt;
}

std::vector<Index> random_addresses(const Layout& l, std::size_t n) {
  std::mt19937_64 rng(7);
  std::vector<Index> out(n);
  for (auto& a : out)
    a = kBase + rng() % (l.end - kBase);
  return out;
}

std::vector<std::size_t> shuffled(std::size_t n, std::size_t k) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = i;
  std::shuffle(v.begin(), v.end(), std::mt19937_64(9));
  v.resize(std::min(n, k));
  return v;
}

// --- load ------------------------------------------------------------------------------

void BM_Maple_Load(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  MapleFixture f(l);
  const auto addrs = random_addresses(l, 4096);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.t.load(addrs[i++ & 4095]));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StdMap_Load(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  const RangeMap m = make_map(l);
  const auto addrs = random_addresses(l, 4096);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map_load(m, addrs[i++ & 4095]));
  }
  state.SetItemsProcessed(state.iterations());
}

// --- store / erase -----------------------------------------------------------------------
// Batches of one-page ranges (a tenth of the size, at most 1,000) stored into random holes
// (timed), then erased (untimed), and the reverse for erase, so the structure stays near
// its size.

std::size_t batch(std::size_t n) {
  return std::min<std::size_t>(n / 10, 1000);
}

void BM_Maple_Store(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  MapleFixture f(l);
  const auto which = shuffled(l.holes.size(), batch(l.holes.size()));
  for (auto _ : state) {
    for (std::size_t h : which)
      benchmark::DoNotOptimize(
          f.t.store_range(l.holes[h].first, l.holes[h].first + kPage - 1, entry_for(h + 1)));
    state.PauseTiming();
    for (std::size_t h : which)
      (void)f.t.erase(l.holes[h].first);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(which.size()));
}

void BM_StdMap_Store(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  RangeMap m = make_map(l);
  const auto which = shuffled(l.holes.size(), batch(l.holes.size()));
  for (auto _ : state) {
    for (std::size_t h : which)
      benchmark::DoNotOptimize(
          m.emplace(l.holes[h].first, MapRange{l.holes[h].first + kPage - 1, entry_for(h + 1)}));
    state.PauseTiming();
    for (std::size_t h : which)
      m.erase(l.holes[h].first);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(which.size()));
}

void BM_Maple_Erase(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  MapleFixture f(l);
  const auto which = shuffled(l.ranges.size(), batch(l.ranges.size()));
  for (auto _ : state) {
    for (std::size_t r : which)
      benchmark::DoNotOptimize(f.t.erase(l.ranges[r].first));
    state.PauseTiming();
    for (std::size_t r : which)
      (void)f.t.store_range(l.ranges[r].first, l.ranges[r].second, entry_for(r));
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(which.size()));
}

void BM_StdMap_Erase(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  RangeMap m = make_map(l);
  const auto which = shuffled(l.ranges.size(), batch(l.ranges.size()));
  for (auto _ : state) {
    for (std::size_t r : which)
      benchmark::DoNotOptimize(m.erase(l.ranges[r].first));
    state.PauseTiming();
    for (std::size_t r : which)
      m.emplace(l.ranges[r].first, MapRange{l.ranges[r].second, entry_for(r)});
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(which.size()));
}

bool searches_agree(const Layout& l, const RangeMap& m);

// --- free-range search -------------------------------------------------------------------
// 16 pages from a random start: only the 32-page holes (one per 512 ranges) fit.

void BM_Maple_EmptyArea(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  MapleFixture f(l);
  const auto starts = random_addresses(l, 4096);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.t.empty_area(starts[i++ & 4095], l.end + 64 * kPage, 16 * kPage));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StdMap_EmptyArea(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  const RangeMap m = make_map(l);
  if (!searches_agree(l, m)) {
    state.SkipWithError("maple tree and std::map searches disagree");
    return;
  }
  const auto starts = random_addresses(l, 4096);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map_empty_area(m, starts[i++ & 4095], l.end + 64 * kPage, 16 * kPage));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Maple_EmptyAreaRev(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  MapleFixture f(l);
  const auto tops = random_addresses(l, 4096);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.t.empty_area_rev(0, tops[i++ & 4095], 16 * kPage));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StdMap_EmptyAreaRev(benchmark::State& state) {
  const Layout l = make_layout(static_cast<std::size_t>(state.range(0)));
  const RangeMap m = make_map(l);
  if (!searches_agree(l, m)) {
    state.SkipWithError("maple tree and std::map searches disagree");
    return;
  }
  const auto tops = random_addresses(l, 4096);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map_empty_area_rev(m, 0, tops[i++ & 4095], 16 * kPage));
  }
  state.SetItemsProcessed(state.iterations());
}

// Both searches must give the same answers, or the comparison means nothing.
bool searches_agree(const Layout& l, const RangeMap& m) {
  MapleFixture f(l);
  for (Index s : random_addresses(l, 256)) {
    const auto a = f.t.empty_area(s, l.end + 64 * kPage, 16 * kPage);
    const auto b = map_empty_area(m, s, l.end + 64 * kPage, 16 * kPage);
    const auto c = f.t.empty_area_rev(0, s, 16 * kPage);
    const auto d = map_empty_area_rev(m, 0, s, 16 * kPage);
    if (a.has_value() != b.has_value() || (a && *a != *b) || c.has_value() != d.has_value() ||
        (c && *c != *d))
      return false;
  }
  return true;
}

}  // namespace

BENCHMARK(BM_Maple_Load)->Arg(1000)->Arg(100000);
BENCHMARK(BM_StdMap_Load)->Arg(1000)->Arg(100000);
BENCHMARK(BM_Maple_Store)->Arg(1000)->Arg(100000);
BENCHMARK(BM_StdMap_Store)->Arg(1000)->Arg(100000);
BENCHMARK(BM_Maple_Erase)->Arg(1000)->Arg(100000);
BENCHMARK(BM_StdMap_Erase)->Arg(1000)->Arg(100000);
BENCHMARK(BM_Maple_EmptyArea)->Arg(1000)->Arg(100000);
BENCHMARK(BM_StdMap_EmptyArea)->Arg(1000)->Arg(100000);
BENCHMARK(BM_Maple_EmptyAreaRev)->Arg(1000)->Arg(100000);
BENCHMARK(BM_StdMap_EmptyAreaRev)->Arg(1000)->Arg(100000);
