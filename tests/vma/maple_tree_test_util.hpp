// Helpers for the maple tree tests: fake entries, a reference model (std::map of ranges),
// and a sweep that fails each node allocation of an operation in turn.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "mmu/machine.hpp"
#include "vma/maple_tree.hpp"

namespace mmemu::test::maple {

using Index = MapleTree::Index;
inline constexpr Index kMax = MapleTree::kMax;

// A distinct, aligned, never-dereferenced entry value.
inline void* ent(std::uint64_t k) {
  return reinterpret_cast<void*>(std::uintptr_t{0x10000 + 16 * k});
}

// Non-null ranges keyed by first index.
class RefModel {
 public:
  struct R {
    Index last;
    void* value;
  };

  void store(Index first, Index last, void* v) {
    // Cut whatever overlaps [first, last], keeping the pieces outside.
    auto it = m_.upper_bound(first);
    if (it != m_.begin()) --it;
    while (it != m_.end() && it->first <= last) {
      const Index f = it->first;
      const R r = it->second;
      if (r.last < first) {
        ++it;
        continue;
      }
      it = m_.erase(it);
      if (f < first) m_[f] = R{first - 1, r.value};
      if (r.last > last) m_[last + 1] = R{r.last, r.value};
    }
    if (v) m_[first] = R{last, v};
  }

  MapleTree::Entry walk(Index i) const {
    auto it = m_.upper_bound(i);
    Index gap_first = 0;
    if (it != m_.begin()) {
      auto p = std::prev(it);
      if (p->second.last >= i) return {p->first, p->second.last, p->second.value};
      gap_first = p->second.last + 1;
    }
    const Index gap_last = it == m_.end() ? kMax : it->first - 1;
    return {gap_first, gap_last, nullptr};
  }

  std::vector<MapleTree::Entry> entries() const {
    std::vector<MapleTree::Entry> out;
    for (const auto& [f, r] : m_)
      out.push_back({f, r.last, r.value});
    return out;
  }

  // Free ranges, in order.
  std::vector<std::pair<Index, Index>> gaps() const {
    std::vector<std::pair<Index, Index>> out;
    Index next = 0;
    bool done = false;
    for (const auto& [f, r] : m_) {
      if (f > next) out.emplace_back(next, f - 1);
      if (r.last == kMax) {
        done = true;
        break;
      }
      next = r.last + 1;
    }
    if (!done) out.emplace_back(next, kMax);
    return out;
  }

  // mas_empty_area semantics; -EINVAL / -EBUSY as negative numbers in `err`.
  bool empty_area(Index min, Index max, Index size, bool rev, Index& out, int& err) const {
    if (min > max || size == 0 || max - min < size - 1) {
      err = EINVAL;
      return false;
    }
    const auto g = gaps();
    std::optional<Index> best;
    for (auto [a, b] : g) {
      const Index lo = std::max(a, min), hi = std::min(b, max);
      if (lo > hi || hi - lo < size - 1) continue;
      const Index s = rev ? hi - (size - 1) : lo;
      if (!best || (rev ? s > *best : s < *best)) best = s;
    }
    if (!best) {
      err = EBUSY;
      return false;
    }
    out = *best;
    return true;
  }

  std::size_t size() const { return m_.size(); }

 private:
  std::map<Index, R> m_;
};

// Fails the 1st, 2nd, ... maple node allocation of op until it succeeds; every failed run
// must leave the tree as it was (same dump, valid) with no node leaked. Returns the number
// of allocations the successful run made (and checks it equals the number of failures).
inline std::uint64_t sweep_failures(Machine& m, MapleTree& t, const std::function<bool()>& op) {
  const std::string before = t.dump();
  const auto live0 = m.live.live(AllocSite::MapleNode);
  const std::size_t reserve0 = t.prealloc_count();
  for (std::uint64_t n = 1;; ++n) {
    m.inject.fail_nth(AllocSite::MapleNode, n);
    const auto attempts0 = m.inject.attempts(AllocSite::MapleNode);
    const bool ok = op();
    const auto made = m.inject.attempts(AllocSite::MapleNode) - attempts0;
    m.inject.disarm();
    if (ok) {
      EXPECT_EQ(made, n - 1) << "allocations of the successful run";
      return n - 1;
    }
    EXPECT_EQ(made, n) << "failed at allocation " << n;
    EXPECT_EQ(t.dump(), before) << "tree changed after failing allocation " << n;
    EXPECT_EQ(t.validate(), std::nullopt);
    EXPECT_EQ(m.live.live(AllocSite::MapleNode), live0) << "leak after failing allocation " << n;
    EXPECT_EQ(t.prealloc_count(), reserve0);
    if (n > 1000 || ::testing::Test::HasFailure()) {
      ADD_FAILURE() << "stopping sweep at " << n;
      return n;
    }
  }
}

// The [min, max] of each node line of a dump, in dump (DFS pre-order) order.
inline std::vector<std::pair<Index, Index>> dump_ranges(const std::string& dump) {
  std::vector<std::pair<Index, Index>> out;
  std::size_t pos = 0;
  while (pos < dump.size()) {
    std::size_t eol = dump.find('\n', pos);
    if (eol == std::string::npos) eol = dump.size();
    const std::string line = dump.substr(pos, eol - pos);
    pos = eol + 1;
    const std::size_t open = line.find(" [");
    if (line.find('#') == std::string::npos || open == std::string::npos) continue;
    const std::size_t comma = line.find(", ", open);
    out.emplace_back(std::stoull(line.substr(open + 2, comma - open - 2), nullptr, 16),
                     std::stoull(line.substr(comma + 2), nullptr, 16));
  }
  return out;
}

}  // namespace mmemu::test::maple
