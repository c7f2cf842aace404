// Maple tree gap tracking and free-range search (mas_empty_area / mas_empty_area_rev).
// Internal nodes keep, per child, the largest run of NULL indices below it; NULL ranges are
// never adjacent, so a NULL slot is a whole free range and the gaps are exact. The search
// descends only into children whose gap can hold the request.
#include <algorithm>

#include "vma/maple_tree_node.hpp"

namespace mmemu {

MapleTree::Index MapleTree::Impl::leaf_gap(const Node* n, Index nmin, Index nmax) {
  Index g = 0;
  for (unsigned i = 0; i < n->count; ++i)
    if (!n->slot[i]) g = std::max(g, span(n->lo(i, nmin), n->hi(i, nmax)));
  return g;
}

MapleTree::Index MapleTree::Impl::max_gap(const Node* n, Index nmin, Index nmax) {
  if (n->leaf) return leaf_gap(n, nmin, nmax);
  return *std::max_element(n->gap, n->gap + n->count);
}

namespace {

using Index = MapleTree::Index;

// Lowest s with [s, s + size - 1] free and inside [min, max]. The caller guarantees
// max - min >= size - 1.
template <class NodeT>
std::optional<Index> gap_fwd(const NodeT* n, Index nmin, Index nmax, Index min, Index max,
                             Index size) {
  const Index last_start = max - (size - 1);
  for (unsigned i = 0; i < n->count; ++i) {
    const Index lo = n->lo(i, nmin);
    const Index hi = n->hi(i, nmax);
    if (hi < min) continue;
    if (lo > last_start) break;  // every start from here on runs past max
    if (n->leaf) {
      if (n->slot[i]) continue;
      const Index s = std::max(lo, min);
      if (std::min(hi, max) - s >= size - 1) return s;
    } else if (n->gap[i] >= size) {
      if (auto r = gap_fwd(n->child(i), lo, hi, min, max, size)) return r;
    }
  }
  return std::nullopt;
}

// Highest such s.
template <class NodeT>
std::optional<Index> gap_rev(const NodeT* n, Index nmin, Index nmax, Index min, Index max,
                             Index size) {
  const Index first_end = min + (size - 1);  // no range ending below this can hold it
  for (unsigned k = n->count; k > 0; --k) {
    const unsigned i = k - 1;
    const Index lo = n->lo(i, nmin);
    const Index hi = n->hi(i, nmax);
    if (lo > max) continue;
    if (hi < first_end) break;
    if (n->leaf) {
      if (n->slot[i]) continue;
      const Index e = std::min(hi, max);
      if (e - std::max(lo, min) >= size - 1) return e - (size - 1);
    } else if (n->gap[i] >= size) {
      if (auto r = gap_rev(n->child(i), lo, hi, min, max, size)) return r;
    }
  }
  return std::nullopt;
}

}  // namespace

// Argument checks as mas_empty_area: EINVAL for min > max, size 0, or a window smaller than
// size. A lone root entry occupies index 0 only (mas_sparse_area).
Result<MapleTree::Index> MapleTree::empty_area(Index min, Index max, Index size) const {
  if (min > max || size == 0 || max - min < size - 1) return fail(EINVAL);
  if (!root_) {
    if (root_entry_ && min == 0) {
      min = 1;
      if (min > max || max - min < size - 1) return fail(EBUSY);
    }
    return min;
  }
  if (auto r = gap_fwd(root_, 0, kMax, min, max, size)) return *r;
  return fail(EBUSY);
}

Result<MapleTree::Index> MapleTree::empty_area_rev(Index min, Index max, Index size) const {
  if (min > max || size == 0 || max - min < size - 1) return fail(EINVAL);
  if (!root_) {
    if (root_entry_ && min == 0) {
      min = 1;
      if (min > max || max - min < size - 1) return fail(EBUSY);
    }
    return max - (size - 1);
  }
  if (auto r = gap_rev(root_, 0, kMax, min, max, size)) return *r;
  return fail(EBUSY);
}

}  // namespace mmemu
