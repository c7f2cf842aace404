// Internals of the maple tree shared by its source files: the node layout and the
// algorithms' helpers. Not for use outside vma/maple_tree*.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "vma/maple_tree.hpp"

namespace mmemu {

// One node. Leaves (maple_leaf_64) use 16 slots and 15 pivots; internal nodes
// (maple_arange_64) use 10 slots, 9 pivots and a gap per child. Slot i covers
// [pivot[i-1] + 1, pivot[i]]; the last used slot's upper bound is not stored but implied by
// the node's max, which the parent (or the tree, for the root) defines.
struct MapleTree::Node {
  static constexpr unsigned kLeafSlots = 16;
  static constexpr unsigned kArangeSlots = 10;
  // Fewest slots a non-root node may use: the kernel's mt_min_slots (6 for leaves, 4 for
  // arange nodes) are the lowest allowed data end, so one more in counts.
  static constexpr unsigned kLeafMin = 7;
  static constexpr unsigned kArangeMin = 5;

  Node* parent = nullptr;  // null for the root
  std::uint8_t parent_slot = 0;
  bool leaf = true;
  std::uint8_t count = 0;  // slots in use
  Index pivot[kLeafSlots - 1]{};
  void* slot[kLeafSlots]{};   // entries (leaf) or Node* (internal)
  Index gap[kArangeSlots]{};  // internal only: the largest NULL run below each child

  unsigned capacity() const { return leaf ? kLeafSlots : kArangeSlots; }
  unsigned min_fill() const { return leaf ? kLeafMin : kArangeMin; }
  Node* child(unsigned i) const { return static_cast<Node*>(slot[i]); }
  Index lo(unsigned i, Index nmin) const { return i == 0 ? nmin : pivot[i - 1] + 1; }
  Index hi(unsigned i, Index nmax) const { return i + 1 < count ? pivot[i] : nmax; }
  // The slot whose range holds index (the node's range must hold it).
  unsigned slot_of(Index index) const {
    // Pivots are sorted: the slot is the number of pivots below index (branch-free count).
    unsigned i = 0;
    for (unsigned j = 0; j + 1U < count; ++j)
      i += index > pivot[j] ? 1U : 0U;
    return i;
  }
};

struct MapleTree::Impl {
  struct Pos {
    Node* node;
    Index min;
    Index max;
  };

  // --- allocation (maple_tree_alloc.cpp) ---
  // A new node: asks the injector, records it live. nullptr on (injected) failure.
  static Node* alloc_fresh(MapleTree& t);
  static void free_node(MapleTree& t, Node* n);
  static void free_subtree(MapleTree& t, Node* n);
  static Result<void> top_up(MapleTree& t, std::size_t want);

  // --- geometry (maple_tree.cpp) ---
  static Index node_min(const Node* n);
  static Index node_max(const Node* n);
  static Node* next_at_level(Node* n);
  static Node* prev_at_level(Node* n);
  static Pos descend(const MapleTree& t, Index index);  // to the leaf holding index
  static bool is_internal_entry(const void* p) {
    return (reinterpret_cast<std::uintptr_t>(p) & 3U) == 2U;
  }

  // --- gaps (maple_tree_gap.cpp) ---
  // Number of indices in [lo, hi], saturated (only [0, kMax] would overflow).
  static Index span(Index lo, Index hi) { return hi - lo == kMax ? kMax : hi - lo + 1; }
  static Index leaf_gap(const Node* n, Index nmin, Index nmax);
  static Index max_gap(const Node* n, Index nmin, Index nmax);

  // --- the write path (maple_tree_store.cpp) ---
  struct Item {
    Index last;  // upper bound of the slot's range
    void* ptr;   // entry or child
    Index gap;   // child's gap, valid unless fresh
    bool fresh;  // child is an output of the level below: its gap is computed when written
  };
  static constexpr unsigned kMaxItems = 48;
  static constexpr unsigned kMaxLevels = 24;
  struct Level {
    Item items[kMaxItems];
    unsigned n;
    Index min, max;                  // range the items cover
    std::size_t run_begin, run_end;  // old nodes at this level being rewritten (in Plan::run)
    unsigned k;                      // nodes the items are written into
    Node* out[3];
  };
  enum class Top { Root, Collapse, Stop };
  struct Plan {
    Level levels[kMaxLevels];
    unsigned top;  // highest level planned
    Top how;
    Node* collapse_root;
    std::vector<Node*> run;    // old nodes rewritten or freed, level by level
    std::vector<Node*> upper;  // old nodes above the new root, freed
    std::vector<Node*> taken;  // nodes this store obtained (reserve first, then fresh)
    std::size_t from_reserve;  // how many of `taken` came from the reserve
    std::size_t fresh_needed;  // dry run: allocations beyond the reserve
  };
  static Plan& scratch();
  // Plans a store of value over [first, last] on a tree with nodes (range already widened
  // over neighbouring NULLs). With dry set nothing is taken; fresh_needed is counted.
  static Result<void> plan_store(MapleTree& t, Plan& p, const Pos& L, const Pos& R, Index first,
                                 Index last, void* value, bool dry);
  static void apply_store(MapleTree& t, Plan& p);
  static void rollback(MapleTree& t, Plan& p);
  // Finds the leaves holding first and last; for a NULL store first widens [first, last]
  // over the NULL ranges it touches, so no two NULLs end up adjacent. Returns true if the
  // store would clear the whole tree.
  static bool locate(const MapleTree& t, Index& first, Index& last, void* value, Pos& L, Pos& R);
  // Stores on an empty tree or a lone root entry; `need` counts nodes only (dry run).
  static Result<void> store_small(MapleTree& t, Index first, Index last, void* value,
                                  std::size_t* need);
};

}  // namespace mmemu
