// anon_vma and anon_vma_chain: the reverse map of anonymous pages. Each anonymous page
// points at the anon_vma of the VMA that faulted it in; a VMA is linked (by chains) to its
// own anon_vma and to every ancestor's, so a COW-shared page can be found from all the VMAs
// that may map it. Reuse on fork is decided from two separate counts — child anon_vmas
// (num_children) and VMAs using it as their anon_vma (num_active_vmas) — not one ambiguous
// "degree", the fix for the double-reuse bug.
#pragma once

#include <cstdint>
#include <vector>

#include "mmu/types.hpp"

namespace mmemu {

class Mm;
struct Vma;

struct AnonVma;

struct AnonVmaChain {
  Vma* vma;
  AnonVma* anon_vma;
};

struct AnonVma {
  AnonVma* root = nullptr;
  AnonVma* parent = nullptr;
  // Kernel refcount: 1 for itself while VMAs link to it, +1 on the root per descendant.
  int refcount = 1;
  unsigned num_children = 0;          // anon_vmas whose parent is this one (a root counts itself)
  unsigned num_active_vmas = 0;       // VMAs whose vma->anon_vma is this one
  std::vector<AnonVmaChain*> chains;  // rb_root: every chain that links a VMA to this anon_vma
  std::uint64_t id = 0;               // stable number for dumps
};

// anon_vma_prepare: gives vma an anon_vma (a neighbour's, if it can be shared, or a new
// one) before its first anonymous page. ENOMEM from the anon_vma site.
Result<void> anon_vma_prepare(Vma& vma);
// anon_vma_clone: links dst to every anon_vma src is linked to (split, mremap, fork).
// On failure dst's partial chain is undone. In fork, may reuse an ancestor's anon_vma
// for dst (when nothing else uses it: num_children < 2 and num_active_vmas == 0).
Result<void> anon_vma_clone(Vma& dst, const Vma& src, bool for_fork = false);
// anon_vma_fork: clone the parent's chain and give the child VMA an anon_vma of its own
// (unless clone reused one).
Result<void> anon_vma_fork(Vma& vma, const Vma& pvma);
// unlink_anon_vmas: drops every chain of vma and frees anon_vmas that became unused.
void unlink_anon_vmas(Vma& vma);
// anon_vma_merge: vma absorbed `next`, which shared its anon_vma; drop next's links.
void anon_vma_merge(Vma& vma, Vma& next);

// For rmap walks and dumps.
std::uint64_t anon_vma_id(const AnonVma* av);

}  // namespace mmemu
