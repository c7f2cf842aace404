// Tearing mappings down: zap_pte_range / unmap_page_range / unmap_vmas clear PTEs and
// release frames through an mmu_gather; unmap_region adds free_pgtables with the floor and
// ceiling that keep tables a neighbour (or an arch mapping) still needs.
#pragma once

#include <span>

#include "mmu/mmu_gather.hpp"
#include "vma/mm.hpp"

namespace mmemu {

// Clears every PTE of [start, end) (inside vma): rmap and RSS dropped, dirty bits moved to
// the frame, frames handed to the gather. Tables stay. Guard markers go only with
// drop_markers (ZAP_FLAG_DROP_MARKER: munmap, exit, a table freed in use); MADV_DONTNEED,
// truncation and the OOM reaper zap with it false and leave them in place.
void unmap_page_range(MmuGather& tlb, Vma& vma, vaddr_t start, vaddr_t end,
                      bool drop_markers = true);

// unmap_vmas: unmap_page_range over each VMA of `vmas` clipped to [start, end).
void unmap_vmas(MmuGather& tlb, std::span<Vma* const> vmas, vaddr_t start, vaddr_t end);

// The VMAs of mm's tree from `first` on whose vm_start is below tree_max, in order,
// stopping at an XA_ZERO marker (the legacy fork-failure recovery's end of the copy).
std::vector<Vma*> vmas_below(const Mm& mm, const Vma* first, vaddr_t tree_max);

// unmap_region(mas, vma, vma_min, vma_max, pg_max, prev, next): unmap_vmas of the VMAs
// over [vma_min, vma_max), then free_pgtables with floor = prev ? prev->vm_end :
// FIRST_USER_ADDRESS, ceiling = next ? next->vm_start : USER_PGTABLES_CEILING, and tree_max =
// pg_max. `vmas` are the VMAs being removed (already detached from the tree, or still in
// it when the whole tail is going). Returns free_pgtables' sanity check.
[[nodiscard]] bool unmap_region(Mm& mm, std::span<Vma* const> vmas, vaddr_t vma_min,
                                vaddr_t vma_max, vaddr_t pg_max, const Vma* prev, const Vma* next);
// The same with the limits given directly: floor, ceiling and tree_max as the RFC's
// free_pgtables takes them (mmemu script's what-if step; unmap_region computes them).
[[nodiscard]] bool unmap_region_limits(Mm& mm, std::span<Vma* const> vmas, vaddr_t vma_min,
                                       vaddr_t vma_max, vaddr_t floor, vaddr_t ceiling,
                                       vaddr_t tree_max);

// The mm's part of a page-table use-after-free (PageTable::on_free_in_use, installed by
// Mm): names the owner of each live entry (the VMA or arch mapping it maps), unmaps the pages
// of its VMAs as unmap_page_range would (rmap, RSS, dirty bits), so the VMA simply faults
// afresh as it would on Linux once the table is gone, and adds the record to the machine's
// list (Machine::freed_in_use), which fails the run.
void mm_free_in_use(Mm& mm, FreedInUseTable& rec, MmuGather& tlb);

// zap_page_range_single: MADV_DONTNEED-style unmap of [start, end) inside one VMA, tables and
// guard markers kept.
void zap_page_range_single(Vma& vma, vaddr_t start, vaddr_t end);

}  // namespace mmemu
