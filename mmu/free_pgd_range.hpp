// free_pgd_range: frees the page tables that map [addr, end) and are not needed by anything
// outside [floor, ceiling). A table is freed only when the whole span it covers, rounded
// to that level, lies inside [floor, ceiling); ceiling 0 means the top of the address
// space (the subtraction ceiling - 1 wraps on purpose). The tables must already be empty
// of present entries in [addr, end) (unmap_vmas ran before); a table that still holds
// entries is kept, with every table above it, and reported in PageTable::busy_tables().
#pragma once

#include "mmu/mmu_gather.hpp"

namespace mmemu {

void free_pgd_range(MmuGather& tlb, vaddr_t addr, vaddr_t end, vaddr_t floor, vaddr_t ceiling);

}  // namespace mmemu
