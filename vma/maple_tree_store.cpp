// Maple tree writes: store_range and erase.
//
// A store is planned level by level, bottom up, before anything changes:
//  - level 0: the leaves holding `first` and `last` (and every leaf between) form the run;
//    the new content is what survives of the first leaf before `first`, the new range, and
//    what survives of the last leaf after `last`;
//  - a level's content goes into ceil(n / capacity) nodes, balanced; if it is too small to
//    stand alone the neighbouring node at that level is taken in (the kernel's rebalance);
//  - the run one level up is the parents of the run's ends; its content is the first
//    parent's children before the run, the nodes just written, and the last parent's
//    children after it;
//  - it stops where one node is rewritten in place with its range unchanged (only gaps move
//    further up), or where a level's content fits one node covering everything (the new
//    root: the tree may shrink), or grows a new root when the root itself splits.
// Old nodes of a run are reused for the new nodes, left to right; when a level needs one
// more node than its run has, a sibling with room is taken into the run instead if that
// avoids it (the kernel's push to a sibling). Only the surplus is allocated, so each level
// adds at most one node and a store needs at most height + 1.
// Every node is obtained during planning (reserve first, then the injector); a failure
// returns them and leaves the tree untouched. Apply then writes nodes bottom up and frees
// what is left over.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "vma/maple_tree_node.hpp"

namespace mmemu {

namespace {

using Item = MapleTree::Impl::Item;
using Level = MapleTree::Impl::Level;

[[noreturn]] void overflow(const char* what) {
  std::fprintf(stderr, "maple tree: %s overflow\n", what);
  std::abort();
}

void push(Level& lv, Item it) {
  if (lv.n >= MapleTree::Impl::kMaxItems) overflow("level content");
  lv.items[lv.n++] = it;
}

unsigned chunk_size(unsigned n, unsigned k, unsigned j) {
  return n / k + (j < n % k ? 1U : 0U);
}

}  // namespace

MapleTree::Impl::Plan& MapleTree::Impl::scratch() {
  // Planning is not re-entrant and trees are used from one thread, so one scratch plan per
  // thread serves every tree without a large per-tree or per-call footprint.
  thread_local Plan plan;
  return plan;
}

bool MapleTree::Impl::locate(const MapleTree& t, Index& first, Index& last, void* value, Pos& L,
                             Pos& R) {
  L = descend(t, first);
  R = last <= L.max ? L : descend(t, last);
  if (value) return false;
  // A NULL store takes in the NULL ranges it touches, which may lie in the neighbouring leaf.
  const unsigned i = L.node->slot_of(first);
  if (!L.node->slot[i]) {
    first = L.node->lo(i, L.min);
  } else if (L.node->lo(i, L.min) == first && first > 0) {
    if (i > 0) {
      if (!L.node->slot[i - 1]) first = L.node->lo(i - 1, L.min);
    } else {
      Node* pv = prev_at_level(L.node);
      if (!pv->slot[pv->count - 1]) {
        const Index pmin = node_min(pv);
        first = pv->lo(pv->count - 1U, pmin);
        L = Pos{pv, pmin, L.min - 1};
      }
    }
  }
  const unsigned j = R.node->slot_of(last);
  if (!R.node->slot[j]) {
    last = R.node->hi(j, R.max);
  } else if (R.node->hi(j, R.max) == last && last < kMax) {
    if (j + 1U < R.node->count) {
      if (!R.node->slot[j + 1]) last = R.node->hi(j + 1U, R.max);
    } else {
      Node* nx = next_at_level(R.node);
      if (!nx->slot[0]) {
        const Index nmax = node_max(nx);
        last = nx->hi(0, nmax);
        R = Pos{nx, R.max + 1, nmax};
      }
    }
  }
  return first == 0 && last == kMax;
}

Result<void> MapleTree::Impl::store_small(MapleTree& t, Index first, Index last, void* value,
                                          std::size_t* need) {
  // The old content as ranges: a lone root entry covers [0, 0], NULL the rest.
  Item in[2];
  unsigned nin = 0;
  if (t.root_entry_) in[nin++] = Item{0, t.root_entry_, 0, false};
  in[nin++] = Item{kMax, nullptr, 0, false};

  Item out[6];
  unsigned n = 0;
  auto put = [&](Index hi, void* p) {
    if (n && !p && !out[n - 1].ptr)
      out[n - 1].last = hi;  // merge NULL neighbours
    else
      out[n++] = Item{hi, p, 0, false};
  };
  for (unsigned i = 0; i < nin; ++i) {
    const Index lo = i ? in[i - 1].last + 1 : 0;
    if (in[i].last < first)
      put(in[i].last, in[i].ptr);
    else if (lo < first)
      put(first - 1, in[i].ptr);
  }
  put(last, value);
  for (unsigned i = 0; i < nin; ++i)
    if (in[i].last > last) put(in[i].last, in[i].ptr);

  if (n == 1 && !out[0].ptr) {  // nothing left
    if (!need) t.root_entry_ = nullptr;
    return {};
  }
  if (n == 2 && out[0].last == 0 && out[0].ptr && !out[1].ptr && !is_internal_entry(out[0].ptr)) {
    if (!need) t.root_entry_ = out[0].ptr;  // the kernel keeps a lone entry at 0 in the root
    return {};
  }
  if (need) {
    *need = t.prealloc_.empty() ? 1 : 0;
    return {};
  }
  Node* leaf;
  if (!t.prealloc_.empty()) {
    leaf = t.prealloc_.back();
    t.prealloc_.pop_back();
  } else if (!(leaf = alloc_fresh(t))) {
    return fail(ENOMEM);
  }
  *leaf = Node{};
  leaf->count = static_cast<std::uint8_t>(n);
  for (unsigned i = 0; i < n; ++i) {
    if (i + 1 < n) leaf->pivot[i] = out[i].last;
    leaf->slot[i] = out[i].ptr;
  }
  t.root_ = leaf;
  t.root_entry_ = nullptr;
  return {};
}

namespace {

// Obtains the node for a new output: from the reserve first, then a fresh allocation. A dry
// run only counts.
bool take(MapleTree& t, std::vector<MapleTree::Node*>& reserve, MapleTree::Impl::Plan& p, bool dry,
          MapleTree::Node*& out) {
  if (dry) {
    if (p.from_reserve < reserve.size())
      ++p.from_reserve;
    else
      ++p.fresh_needed;
    out = nullptr;
    return true;
  }
  MapleTree::Node* n;
  if (!reserve.empty()) {
    n = reserve.back();
    reserve.pop_back();
    ++p.from_reserve;
  } else if (!(n = MapleTree::Impl::alloc_fresh(t))) {
    return false;
  }
  p.taken.push_back(n);
  out = n;
  return true;
}

// Every item of node nd (whose range ends at nmax) as level content.
void node_items(const MapleTree::Node* nd, MapleTree::Index nmax, Item* dst) {
  for (unsigned i = 0; i < nd->count; ++i)
    dst[i] = Item{nd->hi(i, nmax), nd->slot[i], nd->leaf ? 0 : nd->gap[i], false};
}

void collect_upper(const MapleTree::Node* n, unsigned level, unsigned keep_level,
                   std::vector<MapleTree::Node*>& out) {
  if (level <= keep_level) return;
  out.push_back(const_cast<MapleTree::Node*>(n));
  for (unsigned i = 0; i < n->count; ++i)
    collect_upper(n->child(i), level - 1, keep_level, out);
}

}  // namespace

Result<void> MapleTree::Impl::plan_store(MapleTree& t, Plan& p, const Pos& L, const Pos& R,
                                         Index first, Index last, void* value, bool dry) {
  p.run.clear();
  p.upper.clear();
  p.taken.clear();
  p.from_reserve = 0;
  p.fresh_needed = 0;
  p.collapse_root = nullptr;

  Level& lv0 = p.levels[0];
  lv0.n = 0;
  for (unsigned i = 0; i < L.node->count; ++i) {
    const Index lo = L.node->lo(i, L.min);
    const Index hi = L.node->hi(i, L.max);
    if (hi < first) {
      push(lv0, Item{hi, L.node->slot[i], 0, false});
    } else {
      if (lo < first) push(lv0, Item{first - 1, L.node->slot[i], 0, false});
      break;
    }
  }
  push(lv0, Item{last, value, 0, false});
  for (unsigned i = 0; i < R.node->count; ++i) {
    const Index hi = R.node->hi(i, R.max);
    if (hi > last) push(lv0, Item{hi, R.node->slot[i], 0, false});
  }

  Node* A = L.node;
  Node* B = R.node;
  Index amin = L.min;
  Index bmax = R.max;
  bool fresh_level = false;  // a level above the old root: no old nodes
  const unsigned old_top = t.height() - 1;

  for (unsigned l = 0;; ++l) {
    if (l + 1 >= kMaxLevels) overflow("height");
    Level& cur = p.levels[l];
    const bool leaf = l == 0;
    const unsigned cap = leaf ? Node::kLeafSlots : Node::kArangeSlots;
    const unsigned min_fill = leaf ? Node::kLeafMin : Node::kArangeMin;
    bool whole = amin == 0 && bmax == kMax;
    if (!whole && cur.n < min_fill) {
      // Too small to stand alone: take in the neighbouring node at this level. It holds at
      // least min_fill, so one is enough.
      if (bmax != kMax) {
        Node* nb = next_at_level(B);
        const Index nmax = node_max(nb);
        if (cur.n + nb->count > kMaxItems) overflow("rebalance");
        node_items(nb, nmax, &cur.items[cur.n]);
        cur.n += nb->count;
        B = nb;
        bmax = nmax;
      } else {
        Node* nb = prev_at_level(A);
        const Index nmin = node_min(nb);
        if (cur.n + nb->count > kMaxItems) overflow("rebalance");
        std::copy_backward(cur.items, cur.items + cur.n, cur.items + cur.n + nb->count);
        node_items(nb, amin - 1, cur.items);
        cur.n += nb->count;
        A = nb;
        amin = nmin;
      }
      whole = amin == 0 && bmax == kMax;
    }
    cur.min = amin;
    cur.max = bmax;
    cur.run_begin = p.run.size();
    if (!fresh_level) {
      for (Node* x = A;; x = next_at_level(x)) {
        p.run.push_back(x);
        if (x == B) break;
      }
    }
    // Rather than allocate a node, spread into a sibling (same parent) that has room
    // (mas_push_data): left first, as the kernel tries.
    if (!whole && (cur.n + cap - 1) / cap > p.run.size() - cur.run_begin) {
      const std::size_t runsz = p.run.size() - cur.run_begin;
      const auto fits = [&](const Node* nb) {
        return cur.n + nb->count <= kMaxItems && (cur.n + nb->count + cap - 1) / cap <= runsz + 1;
      };
      Node* pa = A->parent;
      Node* pb = B->parent;
      if (A->parent_slot > 0 && fits(pa->child(A->parent_slot - 1U)) &&
          !(A->parent_slot == 1 && node_min(pa) == 0 && bmax == kMax)) {
        Node* nb = pa->child(A->parent_slot - 1U);
        std::copy_backward(cur.items, cur.items + cur.n, cur.items + cur.n + nb->count);
        node_items(nb, amin - 1, cur.items);
        cur.n += nb->count;
        amin = pa->lo(A->parent_slot - 1U, node_min(pa));
        A = nb;
        p.run.insert(p.run.begin() + static_cast<std::ptrdiff_t>(cur.run_begin), nb);
      } else if (B->parent_slot + 1U < pb->count && fits(pb->child(B->parent_slot + 1U)) &&
                 !(B->parent_slot + 2U == pb->count && node_max(pb) == kMax && amin == 0)) {
        Node* nb = pb->child(B->parent_slot + 1U);
        const Index nmax = pb->hi(B->parent_slot + 1U, node_max(pb));
        node_items(nb, nmax, &cur.items[cur.n]);
        cur.n += nb->count;
        B = nb;
        bmax = nmax;
        p.run.push_back(nb);
      }
      cur.min = amin;
      cur.max = bmax;
    }
    cur.run_end = p.run.size();
    const std::size_t runsz = cur.run_end - cur.run_begin;
    p.top = l;

    if (whole && !leaf && cur.n == 1) {
      // An internal root with one child: the child becomes the root (the tree shrinks).
      cur.k = 0;
      p.how = Top::Collapse;
      p.collapse_root = static_cast<Node*>(cur.items[0].ptr);
      if (!fresh_level) collect_upper(t.root_, old_top, l, p.upper);  // now purposeless
      return {};
    }
    cur.k = (cur.n + cap - 1) / cap;
    if (cur.k > 3) overflow("split");
    for (unsigned j = 0; j < cur.k; ++j) {
      if (j < runsz)
        cur.out[j] = p.run[cur.run_begin + j];
      else if (!take(t, t.prealloc_, p, dry, cur.out[j]))
        return fail(ENOMEM);
    }
    if (whole && cur.k == 1) {
      p.how = Top::Root;
      if (!fresh_level) collect_upper(t.root_, old_top, l, p.upper);  // now purposeless
      return {};
    }
    if (!whole && runsz == 1 && cur.k == 1) {
      p.how = Top::Stop;  // same node, same range: the levels above only see its gap change
      return {};
    }

    Level& nx = p.levels[l + 1];
    nx.n = 0;
    auto push_outputs = [&] {
      unsigned end = 0;
      for (unsigned j = 0; j < cur.k; ++j) {
        end += chunk_size(cur.n, cur.k, j);
        push(nx, Item{cur.items[end - 1].last, cur.out[j], 0, true});
      }
    };
    if (whole && (fresh_level || l == old_top)) {  // the root split: a new root above it
      push_outputs();
      A = B = nullptr;
      fresh_level = true;
    } else {
      Node* pa = A->parent;
      Node* pb = B->parent;
      const Index pamin = node_min(pa);
      const Index pbmax = node_max(pb);
      for (unsigned i = 0; i < A->parent_slot; ++i)
        push(nx, Item{pa->pivot[i], pa->slot[i], pa->gap[i], false});
      push_outputs();
      for (unsigned i = B->parent_slot + 1U; i < pb->count; ++i)
        push(nx, Item{pb->hi(i, pbmax), pb->slot[i], pb->gap[i], false});
      A = pa;
      B = pb;
      amin = pamin;
      bmax = pbmax;
    }
  }
}

void MapleTree::Impl::rollback(MapleTree& t, Plan& p) {
  // Reserve nodes were taken first, from the back: put them back in reverse order.
  for (std::size_t i = p.taken.size(); i > p.from_reserve; --i)
    free_node(t, p.taken[i - 1]);
  for (std::size_t i = p.from_reserve; i > 0; --i)
    t.prealloc_.push_back(p.taken[i - 1]);
  p.taken.clear();
}

void MapleTree::Impl::apply_store(MapleTree& t, Plan& p) {
  for (unsigned l = 0; l <= p.top; ++l) {
    const Level& cur = p.levels[l];
    unsigned pos = 0;
    Index lo = cur.min;
    for (unsigned j = 0; j < cur.k; ++j) {
      const unsigned sz = chunk_size(cur.n, cur.k, j);
      Node* n = cur.out[j];
      Node* const keep_parent = n->parent;
      const std::uint8_t keep_slot = n->parent_slot;
      *n = Node{};
      n->parent = keep_parent;  // rewritten by the level above, kept when it stops here
      n->parent_slot = keep_slot;
      n->leaf = l == 0;
      n->count = static_cast<std::uint8_t>(sz);
      for (unsigned i = 0; i < sz; ++i) {
        const Item& it = cur.items[pos + i];
        if (i + 1 < sz) n->pivot[i] = it.last;
        n->slot[i] = it.ptr;
        if (!n->leaf) {
          Node* c = static_cast<Node*>(it.ptr);
          c->parent = n;
          c->parent_slot = static_cast<std::uint8_t>(i);
          n->gap[i] = it.fresh ? max_gap(c, lo, it.last) : it.gap;
        }
        lo = it.last + 1;  // wraps after kMax, never used then
      }
      pos += sz;
    }
  }

  const Level& top = p.levels[p.top];
  switch (p.how) {
    case Top::Root:
    case Top::Collapse: {
      Node* r = p.how == Top::Root ? top.out[0] : p.collapse_root;
      r->parent = nullptr;
      r->parent_slot = 0;
      t.root_ = r;
      break;
    }
    case Top::Stop: {
      Node* c = top.out[0];
      Index g = max_gap(c, top.min, top.max);
      for (; c->parent; c = c->parent) {
        Node* par = c->parent;
        par->gap[c->parent_slot] = g;
        g = *std::max_element(par->gap, par->gap + par->count);
      }
      break;
    }
  }

  for (unsigned l = 0; l <= p.top; ++l) {
    const Level& cur = p.levels[l];
    for (std::size_t i = cur.run_begin + cur.k; i < cur.run_end; ++i)
      free_node(t, p.run[i]);
  }
  for (Node* u : p.upper)
    free_node(t, u);
  p.taken.clear();
  p.run.clear();
  p.upper.clear();
}

Result<void> MapleTree::store_range(Index first, Index last, void* value) {
  if (first > last) return fail(EINVAL);
  if (!root_) return Impl::store_small(*this, first, last, value, nullptr);
  Impl::Pos L, R;
  if (Impl::locate(*this, first, last, value, L, R)) {  // clears everything: no allocation
    Impl::free_subtree(*this, root_);
    root_ = nullptr;
    return {};
  }
  Impl::Plan& p = Impl::scratch();
  if (auto r = Impl::plan_store(*this, p, L, R, first, last, value, false); !r) {
    Impl::rollback(*this, p);
    return r;
  }
  Impl::apply_store(*this, p);
  return {};
}

std::size_t MapleTree::nodes_needed(Index first, Index last, void* value) const {
  if (first > last) return 0;
  auto& self = const_cast<MapleTree&>(*this);  // a dry run reads only
  if (!root_) {
    std::size_t need = 0;
    (void)Impl::store_small(self, first, last, value, &need);
    return need;
  }
  Impl::Pos L, R;
  if (Impl::locate(*this, first, last, value, L, R)) return 0;
  Impl::Plan& p = Impl::scratch();
  (void)Impl::plan_store(self, p, L, R, first, last, value, true);
  p.run.clear();
  p.upper.clear();
  return p.fresh_needed;
}

Result<void*> MapleTree::erase(Index index) {
  const Entry e = walk(index);
  if (!e.value) return nullptr;
  if (auto r = store_range(e.first, e.last, nullptr); !r) return std::unexpected(r.error());
  return e.value;
}

}  // namespace mmemu
