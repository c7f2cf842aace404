#include "vma/reclaim.hpp"

#include "vma/rmap.hpp"

namespace mmemu {

namespace {

// folio_referenced: counts young mappings and clears their accessed bits.
int folio_referenced(PhysMem& phys, pfn_t pfn) {
  int young = 0;
  rmap_walk(phys, pfn, [&](const RmapHit& h) {
    PageTable& pt = h.mm->pt();
    const auto ref = pt.lookup(h.addr);
    const pte_t e = pt.get(*ref);
    if (!pt.fmt().young(e)) return;
    ++young;
    pt.set(*ref, pt.fmt().mkold(e));
    h.mm->tlb().flush_page(h.addr);
  });
  return young;
}

}  // namespace

bool reclaim_lazyfree_page(PhysMem& phys, pfn_t pfn, ReclaimReport& rep, bool ignore_references) {
  {
    const PageDesc& d = phys.desc(pfn);
    if (d.refcount == 0 || (d.flags & (PG_anon | PG_lazyfree)) != (PG_anon | PG_lazyfree))
      return false;
  }
  ++rep.scanned;
  if (!ignore_references && folio_referenced(phys, pfn) > 0) {
    ++rep.referenced;
    return true;
  }
  // try_to_unmap: each mapping is cleared and flushed, then the MADV_FREE check decides.
  std::vector<RmapHit> hits;
  rmap_walk(phys, pfn, [&](const RmapHit& h) { hits.push_back(h); });
  for (const RmapHit& h : hits) {
    PageTable& pt = h.mm->pt();
    const PteFormat& fmt = pt.fmt();
    const auto ref = pt.lookup(h.addr);
    const pte_t old = pt.get(*ref);
    pt.set(*ref, 0);  // ptep_clear_flush
    h.mm->tlb().flush_page(h.addr);
    PageDesc& d = phys.desc(pfn);
    if (fmt.dirty(old)) d.flags |= PG_dirty;
    // The lazy-free branch of try_to_unmap_one (mainline, since the fix to 6c8e2a256915
    // that sets swapbacked only when dirty): a page written again, through a mapping or by
    // a GUP user that marked it dirty, is mapped back and swap-backed for good.
    // A droppable page goes even when dirty, and is never made swap-backed.
    if ((d.flags & PG_dirty) && !(h.vma->vm_flags & VM_DROPPABLE)) {
      pt.set(*ref, old);
      d.flags &= ~static_cast<std::uint32_t>(PG_lazyfree);
      ++rep.redirtied;
      break;
    }
    // A clean page held beyond its mappings (a pin, a speculative reference; the kernel
    // adds one for the isolation, which mmemu's reclaim does not take) is only mapped back:
    // it stays lazy-free, and a later pass decides once the reference is gone.
    if (static_cast<std::int64_t>(d.refcount) != d.mapcount) {
      pt.set(*ref, old);
      ++rep.extra_refs;
      break;
    }
    page_remove_rmap(*h.mm, pfn);  // also the MM_ANONPAGES counter
    if (phys.put_page(pfn)) {
      ++rep.dropped;
      rep.dropped_frames.push_back(pfn);
    }
  }
  return true;
}

ReclaimReport reclaim_lazyfree(PhysMem& phys) {
  ReclaimReport rep;
  for (pfn_t pfn = 0; pfn < phys.nr_frames(); ++pfn)
    reclaim_lazyfree_page(phys, pfn, rep);
  return rep;
}

}  // namespace mmemu
