// Reclaim of lazy-free (MADV_FREE'd, or any page of a MAP_DROPPABLE mapping) anonymous
// pages, as shrink_folio_list does for them:
// through the reverse map, a page whose mappings were not used again is unmapped; if it is
// still clean and nothing but those mappings holds it, it is dropped and the next read of
// the address gives zeros; a page written after MADV_FREE (dirty) is mapped back and stops
// being lazy-free; a clean one held by anyone else (a pin, as a direct-IO request holds) is
// mapped back but stays lazy-free, for a later pass to drop once the reference is gone
// (mainline try_to_unmap_one, since the fix to 6c8e2a256915). A page of a VM_DROPPABLE
// mapping is dropped even when dirty.
#pragma once

#include <cstdint>
#include <vector>

#include "mmu/phys_mem.hpp"

namespace mmemu {

struct ReclaimReport {
  std::uint64_t scanned = 0;     // lazy-free anonymous pages looked at
  std::uint64_t dropped = 0;     // discarded: their mappings cleared, frames freed
  std::uint64_t referenced = 0;  // a mapping was young: kept for this pass, young cleared
  std::uint64_t redirtied = 0;   // written after MADV_FREE: kept, no longer lazy-free
  std::uint64_t extra_refs =
      0;  // clean but held beyond its mappings (pinned): kept, still lazy-free
  std::vector<pfn_t> dropped_frames;
};

// One reclaim pass over every lazy-free anonymous page of the machine (lowest frame first).
// Every entry it clears is flushed through the owning mm's TlbFlusher.
ReclaimReport reclaim_lazyfree(PhysMem& phys);

// The same decision for one frame (false if it is not a lazy-free anonymous page).
// ignore_references: MADV_PAGEOUT's reclaim_pages, which takes the page even if it was
// used recently.
bool reclaim_lazyfree_page(PhysMem& phys, pfn_t pfn, ReclaimReport& rep,
                           bool ignore_references = false);

}  // namespace mmemu
