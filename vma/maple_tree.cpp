// Maple tree: reads (load, walk, find, iteration), in-place replace, and the geometry
// helpers every other part uses to move between nodes.
#include <cstdint>

#include "vma/maple_tree_node.hpp"

namespace mmemu {

void* MapleTree::zero_entry() {
  // xa_mk_internal(257): bit pattern ...10 below 4096, never a valid object address.
  return reinterpret_cast<void*>(std::uintptr_t{0x406});
}

MapleTree::MapleTree(Machine& m) : m_(&m) {}

MapleTree::~MapleTree() {
  destroy();
}

bool MapleTree::empty() const {
  return root_ == nullptr && root_entry_ == nullptr;
}

// ---------------------------------------------------------------------------------------
// Geometry

MapleTree::Index MapleTree::Impl::node_min(const Node* n) {
  for (; n->parent; n = n->parent)
    if (n->parent_slot) return n->parent->pivot[n->parent_slot - 1] + 1;
  return 0;
}

MapleTree::Index MapleTree::Impl::node_max(const Node* n) {
  for (; n->parent; n = n->parent)
    if (n->parent_slot + 1U < n->parent->count) return n->parent->pivot[n->parent_slot];
  return kMax;
}

MapleTree::Node* MapleTree::Impl::next_at_level(Node* n) {
  unsigned up = 0;
  while (n->parent && n->parent_slot + 1U >= n->parent->count) {
    n = n->parent;
    ++up;
  }
  if (!n->parent) return nullptr;
  Node* x = n->parent->child(n->parent_slot + 1U);
  for (; up; --up)
    x = x->child(0);
  return x;
}

MapleTree::Node* MapleTree::Impl::prev_at_level(Node* n) {
  unsigned up = 0;
  while (n->parent && n->parent_slot == 0) {
    n = n->parent;
    ++up;
  }
  if (!n->parent) return nullptr;
  Node* x = n->parent->child(n->parent_slot - 1U);
  for (; up; --up)
    x = x->child(x->count - 1U);
  return x;
}

MapleTree::Impl::Pos MapleTree::Impl::descend(const MapleTree& t, Index index) {
  Pos p{t.root_, 0, kMax};
  while (!p.node->leaf) {
    const unsigned i = p.node->slot_of(index);
    const Index lo = p.node->lo(i, p.min);
    p.max = p.node->hi(i, p.max);
    p.min = lo;
    p.node = p.node->child(i);
  }
  return p;
}

// ---------------------------------------------------------------------------------------
// Reads

MapleTree::Entry MapleTree::walk(Index index) const {
  if (!root_) {
    if (!root_entry_) return Entry{0, kMax, nullptr};
    return index == 0 ? Entry{0, 0, root_entry_} : Entry{1, kMax, nullptr};
  }
  const Impl::Pos p = Impl::descend(*this, index);
  const unsigned i = p.node->slot_of(index);
  return Entry{p.node->lo(i, p.min), p.node->hi(i, p.max), p.node->slot[i]};
}

void* MapleTree::load(Index index) const {
  if (!root_) return index == 0 ? root_entry_ : nullptr;
  const Node* n = root_;
  for (;;) {
    const unsigned i = n->slot_of(index);
    if (n->leaf) return n->slot[i];
    n = n->child(i);
  }
}

namespace {

// Visits the non-null entries intersecting [start, max] in order (reverse when rev), stopping
// when fn returns false. Returns false if stopped.
template <class NodeT, class Fn>
bool visit(const NodeT* n, MapleTree::Index nmin, MapleTree::Index nmax, MapleTree::Index start,
           MapleTree::Index max, bool rev, Fn& fn) {
  const unsigned cnt = n->count;
  for (unsigned k = 0; k < cnt; ++k) {
    const unsigned i = rev ? cnt - 1 - k : k;
    const MapleTree::Index lo = n->lo(i, nmin);
    const MapleTree::Index hi = n->hi(i, nmax);
    if (hi < start) {
      if (rev) break;
      continue;
    }
    if (lo > max) {
      if (rev) continue;
      break;
    }
    if (n->leaf) {
      if (n->slot[i] && !fn(MapleTree::Entry{lo, hi, n->slot[i]})) return false;
    } else if (!visit(n->child(i), lo, hi, start, max, rev, fn)) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<MapleTree::Entry> MapleTree::find(Index start, Index max) const {
  if (start > max) return std::nullopt;
  if (!root_) {
    if (root_entry_ && start == 0) return Entry{0, 0, root_entry_};
    return std::nullopt;
  }
  std::optional<Entry> out;
  auto fn = [&](const Entry& e) {
    out = e;
    return false;
  };
  visit(root_, 0, kMax, start, max, false, fn);
  return out;
}

std::optional<MapleTree::Entry> MapleTree::find_rev(Index start, Index min) const {
  if (min > start) return std::nullopt;
  if (!root_) {
    if (root_entry_ && min == 0) return Entry{0, 0, root_entry_};
    return std::nullopt;
  }
  std::optional<Entry> out;
  auto fn = [&](const Entry& e) {
    out = e;
    return false;
  };
  visit(root_, 0, kMax, min, start, true, fn);
  return out;
}

std::vector<MapleTree::Entry> MapleTree::entries(Index start, Index max) const {
  std::vector<Entry> out;
  if (start > max) return out;
  if (!root_) {
    if (root_entry_ && start == 0) out.push_back(Entry{0, 0, root_entry_});
    return out;
  }
  auto fn = [&](const Entry& e) {
    out.push_back(e);
    return true;
  };
  visit(root_, 0, kMax, start, max, false, fn);
  return out;
}

namespace {
template <class NodeT>
std::size_t count_entries(const NodeT* n) {
  std::size_t c = 0;
  for (unsigned i = 0; i < n->count; ++i) {
    if (n->leaf)
      c += n->slot[i] != nullptr;
    else
      c += count_entries(n->child(i));
  }
  return c;
}

template <class NodeT>
std::size_t count_nodes(const NodeT* n) {
  std::size_t c = 1;
  if (!n->leaf)
    for (unsigned i = 0; i < n->count; ++i)
      c += count_nodes(n->child(i));
  return c;
}
}  // namespace

std::size_t MapleTree::count() const {
  if (!root_) return root_entry_ ? 1 : 0;
  return count_entries(root_);
}

std::size_t MapleTree::node_count() const {
  return root_ ? count_nodes(root_) : 0;
}

unsigned MapleTree::height() const {
  unsigned h = 0;
  for (const Node* n = root_; n; n = n->leaf ? nullptr : n->child(0))
    ++h;
  return h;
}

bool MapleTree::replace(Index first, Index last, void* value) {
  if (!value || first > last) return false;
  if (!root_) {
    if (!root_entry_ || first != 0 || last != 0) return false;
    root_entry_ = value;
    return true;
  }
  const Impl::Pos p = Impl::descend(*this, first);
  const unsigned i = p.node->slot_of(first);
  if (!p.node->slot[i] || p.node->lo(i, p.min) != first || p.node->hi(i, p.max) != last)
    return false;
  p.node->slot[i] = value;  // non-null for non-null: no gap changes anywhere
  return true;
}

}  // namespace mmemu
