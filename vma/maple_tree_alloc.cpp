// Maple tree node allocation: every node comes from the maple_node site (asks the injector,
// recorded in LiveObjects), the preallocation reserve, and destroy.
#include "vma/maple_tree_node.hpp"

namespace mmemu {

MapleTree::Node* MapleTree::Impl::alloc_fresh(MapleTree& t) {
  if (t.m_->inject.should_fail(AllocSite::MapleNode, "mas_alloc_nodes")) return nullptr;
  Node* n = new Node;
  t.m_->live.created(AllocSite::MapleNode, n);
  return n;
}

void MapleTree::Impl::free_node(MapleTree& t, Node* n) {
  t.m_->live.destroyed(AllocSite::MapleNode, n);
  delete n;
}

void MapleTree::Impl::free_subtree(MapleTree& t, Node* n) {
  if (!n->leaf)
    for (unsigned i = 0; i < n->count; ++i)
      if (n->slot[i]) free_subtree(t, n->child(i));
  free_node(t, n);
}

void MapleTree::destroy() {
  if (root_) Impl::free_subtree(*this, root_);
  root_ = nullptr;
  root_entry_ = nullptr;
  release_prealloc();
}

std::size_t MapleTree::prealloc_count() const {
  return prealloc_.size();
}

void MapleTree::release_prealloc() {
  for (Node* n : prealloc_)
    Impl::free_node(*this, n);
  prealloc_.clear();
}

// Tops the reserve up to `want` nodes; on failure frees what this call added.
Result<void> MapleTree::Impl::top_up(MapleTree& t, std::size_t want) {
  const std::size_t before = t.prealloc_.size();
  while (t.prealloc_.size() < want) {
    Node* n = alloc_fresh(t);
    if (!n) {
      while (t.prealloc_.size() > before) {
        free_node(t, t.prealloc_.back());
        t.prealloc_.pop_back();
      }
      return fail(ENOMEM);
    }
    t.prealloc_.push_back(n);
  }
  return {};
}

Result<void> MapleTree::preallocate() {
  // A store rewrites each level's nodes and adds at most one node per level plus a new root
  // (see plan_store), so height + 1 always suffices.
  const AllocCaller caller(m_->inject, "mas_preallocate");
  return Impl::top_up(*this, height() + 1U);
}

Result<void> MapleTree::preallocate(Index first, Index last, void* value) {
  if (first > last) return fail(EINVAL);
  const std::size_t need = nodes_needed(first, last, value) + prealloc_.size();
  const AllocCaller caller(m_->inject, "mas_preallocate");
  return Impl::top_up(*this, need);
}

}  // namespace mmemu
