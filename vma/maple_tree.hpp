// The maple tree: a B-tree of non-overlapping ranges [first, last] -> entry, shaped like
// the kernel's (leaves of 16 slots / 15 pivots, internal "arange" nodes of 10 slots /
// 9 pivots tracking the largest gap below each child). Empty ranges are NULL entries, so
// free-range search walks gaps top-down without a scan. Nodes come from the maple_node
// allocation site: every fallible operation either completes or leaves the tree exactly as
// it was, with nothing leaked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mmu/machine.hpp"
#include "mmu/types.hpp"

namespace mmemu {

class MapleTree {
 public:
  using Index = std::uint64_t;
  static constexpr Index kMax = ~0ULL;

  struct Entry {
    Index first;
    Index last;
    void* value;
    friend bool operator==(const Entry&, const Entry&) = default;
  };

  // Where mt_dup stopped: the number of nodes copied before the failing allocation, and
  // the index range the node that could not be copied covers.
  struct DupFailure {
    Errno err;
    std::size_t nodes_copied;
    Index node_min;
    Index node_max;
  };

  // The reserved marker the legacy fork recovery stores at the failure point (XA_ZERO_ENTRY,
  // the same value as the kernel's: an "internal" pointer no allocation can return).
  static void* zero_entry();
  static bool is_zero_entry(const void* p) { return p == zero_entry(); }

  explicit MapleTree(Machine& m);
  ~MapleTree();  // destroy()
  MapleTree(const MapleTree&) = delete;
  MapleTree& operator=(const MapleTree&) = delete;

  Machine& machine() const { return *m_; }

  bool empty() const;
  void* load(Index index) const;  // the entry whose range holds index, or nullptr
  // The range holding index and its entry, NULL ranges included (mas_walk): in an empty tree
  // that is [0, kMax] -> nullptr.
  Entry walk(Index index) const;
  // First non-null entry intersecting [start, max] (mt_find / mas_find).
  std::optional<Entry> find(Index start, Index max = kMax) const;
  // Last non-null entry intersecting [min, start] (mas_find_rev / mas_prev).
  std::optional<Entry> find_rev(Index start, Index min = 0) const;
  // Every non-null entry intersecting [start, max], in order.
  std::vector<Entry> entries(Index start = 0, Index max = kMax) const;
  std::size_t count() const;  // non-null entries

  // Stores value over [first, last], overwriting (and splitting) whatever was there;
  // nullptr clears the range. May allocate nodes; ENOMEM leaves the tree unchanged,
  // EINVAL if first > last. Draws from the preallocation reserve before allocating.
  Result<void> store_range(Index first, Index last, void* value);
  Result<void> store(Index index, void* value) { return store_range(index, index, value); }
  // Clears the entry holding index (mtree_erase). Returns the old entry or nullptr.
  Result<void*> erase(Index index);

  // mas_preallocate: reserves nodes so that a later store cannot fail (stores draw from the
  // reserve first). The no-argument form reserves the worst case of any single store on the
  // tree as it is now (height + 1); the ranged form reserves exactly what that store needs.
  // The reserve is kept until release_prealloc() (or destroy()); on ENOMEM the reserve is
  // left as it was. release_prealloc() frees what was not used.
  Result<void> preallocate();
  Result<void> preallocate(Index first, Index last, void* value);
  void release_prealloc();
  std::size_t prealloc_count() const;
  // Nodes the store would allocate beyond the reserve it would draw from (a dry run).
  std::size_t nodes_needed(Index first, Index last, void* value) const;

  // Replaces the entry that occupies exactly [first, last] without changing the shape
  // (the slot store dup_mmap uses on the duplicated tree). Never allocates. Returns false
  // if no non-null entry occupies exactly that range, or if value is nullptr (clearing
  // needs store_range, which may merge NULL neighbours).
  bool replace(Index first, Index last, void* value);

  // __mt_dup: makes *this (which must be empty; EINVAL otherwise) a node-for-node copy of src
  // with the same entries, allocating nodes in DFS pre-order. On failure *this is left empty,
  // nothing leaks, and the failure says where.
  std::expected<void, DupFailure> dup_from(const MapleTree& src);

  void destroy();  // frees every node and the reserve; the tree is empty after

  // Lowest start s in [min, max] with [s, s + size - 1] entirely empty and inside [min, max]
  // (mas_empty_area). EINVAL if min > max, size == 0 or the window is smaller than size;
  // EBUSY if there is no such gap.
  Result<Index> empty_area(Index min, Index max, Index size) const;
  // Highest such start (mas_empty_area_rev).
  Result<Index> empty_area_rev(Index min, Index max, Index size) const;

  // Checks every structural invariant (pivot order, parent links, gap values, node fill,
  // height, no adjacent NULLs); returns a description of the first violation.
  std::optional<std::string> validate() const;
  // Text dump, one node per line in DFS pre-order, indented by depth: "#id type [min, max]"
  // then pivots, slots (entries, or child ids) and, for internal nodes, gaps. Two trees of the
  // same shape holding the same entries dump identically.
  std::string dump() const;
  std::size_t node_count() const;
  unsigned height() const;  // 0 for an empty tree or a lone root entry, 1 for a root leaf

  // Implementation types, defined in vma/maple_tree_node.hpp; opaque to users.
  struct Node;
  struct Impl;

 private:
  Machine* m_;
  Node* root_ = nullptr;
  // A tree whose only entry is at index 0 keeps it here, with no node (the kernel's root
  // pointer); root_ is then null.
  void* root_entry_ = nullptr;
  std::vector<Node*> prealloc_;
};

}  // namespace mmemu
