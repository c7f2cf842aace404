// Structural VMA operations: linking a new VMA into the tree, splitting one in two, and
// changing part of one (vma_modify), merging with neighbours when Linux would. Each
// operation does its allocations (VMA, anon_vma chains, maple nodes) before it changes
// anything, so a failure leaves the address space as it was.
#pragma once

#include "vma/mm.hpp"

namespace mmemu {

inline constexpr int kMaxMapCount = 65530;  // sysctl_max_map_count's default

// vma_iter_prealloc + vma_iter_store: reserves the worst case for one store (so the
// maple_node site is asked on every such store, as in the kernel), then stores.
Result<void> vma_iter_store_prealloc(Mm& mm, vaddr_t first, vaddr_t last, Vma* v);

// vma_link: inserts a new VMA (not yet in the tree) and counts it; links it to its file.
Result<void> vma_link(Mm& mm, Vma& vma);

// __split_vma: splits vma at addr. new_below: the new VMA is [vm_start, addr), otherwise
// [addr, vm_end). Returns the new VMA. Does not check map_count (split_vma does).
Result<Vma*> __split_vma(Mm& mm, Vma& vma, vaddr_t addr, bool new_below);
// split_vma: ENOMEM when map_count has reached the limit, else __split_vma.
Result<Vma*> split_vma(Mm& mm, Vma& vma, vaddr_t addr, bool new_below);

// is_mergeable_anon_vma (Linux 6.18): may `tgt` take over a range whose pages belong to
// src_anon? src is the VMA the range comes from (the middle of an existing-range merge,
// or the VMA mremap copies from), nullptr for a new mapping or vma_merge_extend's growth.
// A tgt without anon_vma takes src_anon unless src is a fork child (its anon_vma_chain is
// not singular); a range without one joins tgt unless tgt is a fork child; else the two
// must be equal.
bool is_mergeable_anon_vma(const Vma& tgt, const Vma* src, const AnonVma* src_anon);

// vma_modify_flags: gives [start, end) of vma (which must cover it) the flags new_flags,
// merging with prev/next or splitting as Linux does. Returns the VMA that now covers
// [start, end). On ENOMEM the tree is valid (a split that already happened stays, as in
// Linux).
Result<Vma*> vma_modify_flags(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, vm_flags_t new_flags);

// vma_merge_new_range: a new mapping [start, end) with these properties would be placed
// between prev and next: expand a neighbour instead of creating a VMA when Linux would.
// Returns the expanded VMA, or nullptr if no merge applies (or ENOMEM from the tree).
// anon_vma: the one the new range's pages already belong to (mremap's copy_vma and
// vma_merge_extend); null for a brand-new mapping.
// src: the VMA the range's pages come from (mremap), nullptr for a new mapping; the VMA
// that grows over the range is linked to src's anon_vmas (dup_anon_vma), so ENOMEM (the
// anon_vma site) may also come from there, leaving everything as it was.
Result<Vma*> vma_merge_new_range(Mm& mm, vaddr_t start, vaddr_t end, vm_flags_t flags, File* file,
                                 std::uint64_t pgoff, const AnonVma* anon_vma = nullptr,
                                 const Vma* src = nullptr);

// Removes a VMA that is already out of the tree and has no pages mapped: unlinks rmap,
// drops the file, frees it (remove_vma).
void remove_vma(Vma* vma);

}  // namespace mmemu
