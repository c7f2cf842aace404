// free_pgd_range: frees the page tables that map [addr, end) and are not needed by anything
// outside [floor, ceiling). A table is freed only when the whole span it covers, rounded
// to that level, lies inside [floor, ceiling); ceiling 0 means the top of the address
// space (the subtraction ceiling - 1 wraps on purpose). The caller must have cleared the
// entries of [addr, end) (unmap_vmas); like the kernel, free_pgd_range frees a table the
// limits allow without looking inside. A table that still held entries (limits too wide:
// a neighbour's pages, an arch mapping) is the kernel's page-table use-after-free: it is
// freed all the same, and PageTable::release_in_use records it (freed_in_use()) and
// releases what it held, so the emulated machine stays sound.
#pragma once

#include "mmu/mmu_gather.hpp"

namespace mmemu {

void free_pgd_range(MmuGather& tlb, vaddr_t addr, vaddr_t end, vaddr_t floor, vaddr_t ceiling);

}  // namespace mmemu
