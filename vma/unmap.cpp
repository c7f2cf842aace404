#include "vma/unmap.hpp"

#include <algorithm>

#include "vma/free_pgtables.hpp"
#include "vma/rmap.hpp"

namespace mmemu {

void unmap_page_range(MmuGather& tlb, Vma& vma, vaddr_t start, vaddr_t end) {
  Mm& mm = *vma.vm_mm;
  PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  PhysMem& phys = mm.phys();
  pt.for_each_pte(start, end, [&](vaddr_t va, PteRef ref, pte_t e) {
    pt.set(ref, 0);
    tlb.track(va, va + PAGE_SIZE);
    if (!fmt.present(e)) return;
    const pfn_t pfn = fmt.pfn(e);
    if (pfn == phys.zero_pfn()) return;
    // Only a file page's dirtiness needs keeping (zap_present_folio_ptes): an anonymous
    // page is swap-backed anyway, and a lazy-free one must not be redirtied by a zap.
    if (fmt.dirty(e) && !(phys.desc(pfn).flags & PG_anon)) phys.desc(pfn).flags |= PG_dirty;
    page_remove_rmap(mm, pfn);
    tlb.remove_page(pfn, va);
  });
}

void unmap_vmas(MmuGather& tlb, std::span<Vma* const> vmas, vaddr_t start, vaddr_t end) {
  for (Vma* vma : vmas) {
    const vaddr_t s = std::max(start, vma->vm_start);
    const vaddr_t e = std::min(end, vma->vm_end);
    if (s < e) unmap_page_range(tlb, *vma, s, e);
  }
}

std::vector<Vma*> vmas_below(const Mm& mm, const Vma* first, vaddr_t tree_max) {
  std::vector<Vma*> out;
  if (!first) return out;
  // tree_max 0 means the top of the address space: the index wraps on purpose.
  for (const auto& e : mm.mm_mt.entries(first->vm_start, tree_max - 1)) {
    if (MapleTree::is_zero_entry(e.value)) break;
    out.push_back(static_cast<Vma*>(e.value));
  }
  return out;
}

void unmap_region(Mm& mm, std::span<Vma* const> vmas, vaddr_t vma_min, vaddr_t vma_max,
                  vaddr_t pg_max, const Vma* prev, const Vma* next) {
  if (vmas.empty()) return;
  MmuGather tlb(mm.pt(), &mm.tlb());
  unmap_vmas(tlb, vmas, vma_min, vma_max);
  const ArchParams& ap = mm.params();
  // free_pgtables walks only the VMAs below tree_max (pg_max).
  std::vector<Vma*> pg;
  for (Vma* v : vmas)
    if (pg_max == 0 || v->vm_start <= pg_max - 1) pg.push_back(v);
  free_pgtables(tlb, pg, prev ? prev->vm_end : ap.first_user_address,
                next ? next->vm_start : ap.user_pgtables_ceiling, pg_max);
  tlb.finish();
}

void zap_page_range_single(Vma& vma, vaddr_t start, vaddr_t end) {
  Mm& mm = *vma.vm_mm;
  MmuGather tlb(mm.pt(), &mm.tlb());
  unmap_page_range(tlb, vma, std::max(start, vma.vm_start), std::min(end, vma.vm_end));
  tlb.finish();
}

}  // namespace mmemu
