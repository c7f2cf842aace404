// Map-count and RSS bookkeeping when a PTE starts or stops mapping a frame (the
// folio_add_*_rmap / folio_remove_rmap family), and reverse-map walks from a frame.
#pragma once

#include <functional>

#include "vma/anon_vma.hpp"
#include "vma/mm.hpp"

namespace mmemu {

// A freshly allocated anonymous page mapped at addr of vma (folio_add_new_anon_rmap):
// PG_anon, mapping = vma's anon_vma, index = linear page index, mapcount 1, RSS + 1.
void page_add_new_anon_rmap(Vma& vma, pfn_t pfn, vaddr_t addr);
// One more PTE maps an existing page (fork's copy, a page-cache page mapped by a fault).
void page_add_rmap(Mm& mm, pfn_t pfn);
// A PTE stopped mapping pfn: mapcount - 1, RSS - 1, PG_mlocked cleared at zero.
// The caller still owns the PTE's reference (put it directly or through the gather).
void page_remove_rmap(Mm& mm, pfn_t pfn);

// One place a frame is mapped.
struct RmapHit {
  Mm* mm;
  Vma* vma;
  vaddr_t addr;
};
// rmap_walk: every (mm, VMA, address) whose VMA could map pfn and whose PTE does map it,
// found through the anon_vma (anonymous pages) or the file's i_mmap (page cache).
void rmap_walk(PhysMem& phys, pfn_t pfn, const std::function<void(const RmapHit&)>& fn);

}  // namespace mmemu
