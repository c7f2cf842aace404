// free_pgtables: frees the page tables under a run of VMAs that are going away.
#pragma once

#include <span>
#include <string>

#include "mmu/mmu_gather.hpp"
#include "vma/mm.hpp"

namespace mmemu {

// Walks `vmas` (in address order, all with vm_start below tree_max), groups neighbours
// closer than a PMD, unlinks their rmap (anon_vma chains and file i_mmap), and frees each
// group's tables with free_pgd_range(addr, end, floor, next ? next->vm_start : ceiling).
// ceiling 0 means the top of the address space. Returns false when the sanity check
// tree_max - 1 <= ceiling - 1 fails (the kernel's WARN_ON_ONCE); the tables are freed all the
// same, and the caller reports it.
// What a failed sanity check says: "free_pgtables: WARN_ON_ONCE(tree_max - 1 > ceiling - 1):
// tree_max 0x..., ceiling 0x...".
std::string free_pgtables_warning(vaddr_t tree_max, vaddr_t ceiling);
[[nodiscard]] bool free_pgtables(MmuGather& tlb, std::span<Vma* const> vmas, vaddr_t floor,
                                 vaddr_t ceiling, vaddr_t tree_max);

// unlink_file_vma: drops vma from its file's i_mmap.
void unlink_file_vma(Vma& vma);

}  // namespace mmemu
