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

bool reclaim_lazyfree_page(PhysMem& phys, pfn_t pfn, ReclaimReport& rep) {
  {
    const PageDesc& d = phys.desc(pfn);
    if (d.refcount == 0 || (d.flags & (PG_anon | PG_lazyfree)) != (PG_anon | PG_lazyfree))
      return false;
  }
  ++rep.scanned;
  if (folio_referenced(phys, pfn) > 0) {
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
    // The only references may be the mappings themselves (the kernel adds one for the
    // isolation, which mmemu's reclaim does not take).
    const bool only_mapped = static_cast<std::int64_t>(d.refcount) == d.mapcount;
    if (only_mapped && !(d.flags & PG_dirty)) {
      page_remove_rmap(*h.mm, pfn);  // also the MM_ANONPAGES counter
      if (phys.put_page(pfn)) {
        ++rep.dropped;
        rep.dropped_frames.push_back(pfn);
      }
      continue;
    }
    // Redirtied or held by someone else: map it back; it is swap-backed again.
    pt.set(*ref, old);
    d.flags &= ~static_cast<std::uint32_t>(PG_lazyfree);
    ++((d.flags & PG_dirty) ? rep.redirtied : rep.extra_refs);
    break;
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
