// Maple tree validate() and dump().
//
// validate() checks, for every node:
//  - fill: 1..capacity slots; a non-root leaf holds >= 7 slots and a non-root internal node
//    >= 5 (the kernel's mt_min_slots, 6 and 4, are the lowest data end, i.e. slots - 1; the
//    kernel's check exempts the rightmost node, this tree does not need to); an internal root
//    has >= 2 children; a root leaf is not one NULL (that tree is empty);
//  - pivots strictly increasing inside the node's range, every slot's range non-empty,
//    unused pivots, slots and gaps zero;
//  - each child's parent pointer and parent slot, every leaf at the same depth;
//  - each gap equal to the largest NULL run below that child;
//  - across the whole tree (leaf to leaf): ranges contiguous from 0 to kMax and no two
//    adjacent NULL ranges.
#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "vma/maple_tree_node.hpp"

namespace mmemu {

namespace {

using Index = MapleTree::Index;
using Node = MapleTree::Node;

struct Checker {
  std::optional<std::string> err;
  int leaf_depth = -1;
  Index next = 0;  // first index the next leaf slot must start at
  bool seen_any = false;
  bool prev_null = false;

  void fail(const Node*, Index nmin, Index nmax, const std::string& what) {
    if (!err) err = fmt::format("node [{:#x}, {:#x}]: {}", nmin, nmax, what);
  }

  // Returns the largest NULL run in n's subtree.
  Index check(const Node* n, Index nmin, Index nmax, int depth, bool is_root) {
    if (err) return 0;
    const unsigned cap = n->capacity();
    if (n->count < 1 || n->count > cap)
      return fail(n, nmin, nmax, fmt::format("{} slots used of {}", n->count, cap)), 0;
    if (!is_root && n->count < n->min_fill())
      return fail(n, nmin, nmax, fmt::format("underfull: {} < {}", n->count, n->min_fill())), 0;
    if (is_root && !n->leaf && n->count < 2) return fail(n, nmin, nmax, "root with one child"), 0;
    if (is_root && n->leaf && n->count == 1 && !n->slot[0])
      return fail(n, nmin, nmax, "root leaf holding only NULL"), 0;
    for (unsigned i = 0; i + 1 < n->count; ++i) {
      if (n->pivot[i] < n->lo(i, nmin) || n->pivot[i] >= nmax)
        return fail(n, nmin, nmax, fmt::format("pivot {} = {:#x} out of order", i, n->pivot[i])), 0;
    }
    for (unsigned i = n->count ? n->count - 1U : 0U; i < Node::kLeafSlots - 1; ++i)
      if (n->pivot[i]) return fail(n, nmin, nmax, fmt::format("stale pivot {}", i)), 0;
    for (unsigned i = n->count; i < Node::kLeafSlots; ++i)
      if (n->slot[i]) return fail(n, nmin, nmax, fmt::format("stale slot {}", i)), 0;
    for (unsigned i = n->leaf ? 0U : n->count; i < Node::kArangeSlots; ++i)
      if (n->gap[i]) return fail(n, nmin, nmax, fmt::format("stale gap {}", i)), 0;

    if (n->leaf) {
      if (leaf_depth < 0) leaf_depth = depth;
      if (leaf_depth != depth)
        return fail(n, nmin, nmax,
                    fmt::format("leaf at depth {}, others at {}", depth, leaf_depth)),
               0;
      for (unsigned i = 0; i < n->count; ++i) {
        const Index lo = n->lo(i, nmin);
        if (seen_any && lo != next)
          return fail(n, nmin, nmax,
                      fmt::format("slot {} starts at {:#x}, expected {:#x}", i, lo, next)),
                 0;
        if (!seen_any && lo != 0) return fail(n, nmin, nmax, "first range does not start at 0"), 0;
        const bool null = n->slot[i] == nullptr;
        if (null && prev_null && seen_any)
          return fail(n, nmin, nmax, fmt::format("adjacent NULL ranges at slot {}", i)), 0;
        prev_null = null;
        seen_any = true;
        next = n->hi(i, nmax) + 1;
      }
      return MapleTree::Impl::leaf_gap(n, nmin, nmax);
    }
    Index g = 0;
    for (unsigned i = 0; i < n->count; ++i) {
      const Node* c = n->child(i);
      if (!c) return fail(n, nmin, nmax, fmt::format("missing child {}", i)), 0;
      if (c->parent != n || c->parent_slot != i)
        return fail(n, nmin, nmax, fmt::format("child {} has a wrong parent link", i)), 0;
      const Index cg = check(c, n->lo(i, nmin), n->hi(i, nmax), depth + 1, false);
      if (err) return 0;
      if (cg != n->gap[i])
        return fail(n, nmin, nmax,
                    fmt::format("gap {} is {:#x}, the subtree's largest is {:#x}", i, n->gap[i],
                                cg)),
               0;
      g = std::max(g, cg);
    }
    return g;
  }
};

std::string entry_str(const void* p) {
  if (!p) return "NULL";
  if (MapleTree::is_zero_entry(p)) return "XA_ZERO";
  return fmt::format("{}", p);
}

void number(const Node* n, std::unordered_map<const Node*, std::size_t>& ids) {
  ids.emplace(n, ids.size());
  if (!n->leaf)
    for (unsigned i = 0; i < n->count; ++i)
      number(n->child(i), ids);
}

void print(const Node* n, Index nmin, Index nmax, unsigned depth,
           const std::unordered_map<const Node*, std::size_t>& ids, std::string& out) {
  out.append(2 * depth, ' ');
  out += fmt::format("#{} {} [{:#x}, {:#x}] pivots=[", ids.at(n), n->leaf ? "leaf_64" : "arange_64",
                     nmin, nmax);
  for (unsigned i = 0; i + 1 < n->count; ++i)
    out += fmt::format("{}{:#x}", i ? " " : "", n->pivot[i]);
  out += "] slots=[";
  for (unsigned i = 0; i < n->count; ++i) {
    if (i) out += ' ';
    out += n->leaf ? entry_str(n->slot[i]) : fmt::format("#{}", ids.at(n->child(i)));
  }
  out += ']';
  if (!n->leaf) {
    out += " gaps=[";
    for (unsigned i = 0; i < n->count; ++i)
      out += fmt::format("{}{:#x}", i ? " " : "", n->gap[i]);
    out += ']';
  }
  out += '\n';
  if (!n->leaf)
    for (unsigned i = 0; i < n->count; ++i)
      print(n->child(i), n->lo(i, nmin), n->hi(i, nmax), depth + 1, ids, out);
}

}  // namespace

std::optional<std::string> MapleTree::validate() const {
  if (!root_) return std::nullopt;
  if (root_entry_) return "both a root node and a root entry";
  if (root_->parent) return "root node has a parent";
  Checker c;
  c.check(root_, 0, kMax, 0, true);
  if (!c.err && c.next != 0) c.err = "ranges do not reach kMax";  // next wraps to 0 at kMax
  return c.err;
}

std::string MapleTree::dump() const {
  if (!root_) {
    if (!root_entry_) return "maple_tree (empty)\n";
    return fmt::format("maple_tree root entry [0x0, 0x0] {}\n", entry_str(root_entry_));
  }
  std::string out =
      fmt::format("maple_tree height {} nodes {} entries {}\n", height(), node_count(), count());
  std::unordered_map<const Node*, std::size_t> ids;
  number(root_, ids);
  print(root_, 0, kMax, 0, ids, out);
  return out;
}

}  // namespace mmemu
