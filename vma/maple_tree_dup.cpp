// __mt_dup: a node-for-node copy of a tree with the same entries. Nodes are allocated in DFS
// pre-order (a node, then each child's subtree in turn), so "the Nth maple_node allocation of
// a fork" names one node of the parent's tree. On failure the partial copy is freed and the
// destination is left empty.
#include "vma/maple_tree_node.hpp"

namespace mmemu {

namespace {

struct DupState {
  MapleTree* dst = nullptr;
  std::size_t copied = 0;
  std::optional<MapleTree::DupFailure> failure;
};

MapleTree::Node* copy_node(DupState& st, const MapleTree::Node* src, MapleTree::Node* parent,
                           unsigned slot, MapleTree::Index nmin, MapleTree::Index nmax) {
  MapleTree::Node* n = MapleTree::Impl::alloc_fresh(*st.dst);
  if (!n) {
    st.failure = MapleTree::DupFailure{Errno{ENOMEM}, st.copied, nmin, nmax};
    return nullptr;
  }
  ++st.copied;
  *n = *src;
  n->parent = parent;
  n->parent_slot = static_cast<std::uint8_t>(slot);
  if (n->leaf) return n;
  // Children are linked only once copied, so a partial copy frees cleanly.
  for (unsigned i = 0; i < n->count; ++i)
    n->slot[i] = nullptr;
  for (unsigned i = 0; i < src->count; ++i) {
    MapleTree::Node* c = copy_node(st, src->child(i), n, i, src->lo(i, nmin), src->hi(i, nmax));
    n->slot[i] = c;  // a partial child subtree is linked so that it is freed with the rest
    if (st.failure) {
      n->count = static_cast<std::uint8_t>(c ? i + 1 : i);  // free_subtree walks only these
      return n;
    }
  }
  return n;
}

}  // namespace

std::expected<void, MapleTree::DupFailure> MapleTree::dup_from(const MapleTree& src) {
  if (!empty()) return std::unexpected(DupFailure{Errno{EINVAL}, 0, 0, 0});
  if (!src.root_) {
    root_entry_ = src.root_entry_;
    return {};
  }
  DupState st;
  st.dst = this;
  const AllocCaller caller(m_->inject, "mt_dup");
  Node* r = copy_node(st, src.root_, nullptr, 0, 0, kMax);
  if (st.failure) {
    if (r) Impl::free_subtree(*this, r);
    return std::unexpected(*st.failure);
  }
  root_ = r;
  return {};
}

}  // namespace mmemu
