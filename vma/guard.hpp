// Guard regions (MADV_GUARD_INSTALL / MADV_GUARD_REMOVE, Linux 6.13+): guard markers are
// leaf entries in the page tables (PteFormat::mk_guard_marker), not VMAs, so installing one
// never splits or changes a VMA. What the rest of mmemu does with a marker:
//  - the walker reports WalkFaultKind::Guard, the fault handler FaultResult::SegvGuard
//    (SIGSEGV, SEGV_MAPERR), GUP EFAULT (so MADV_POPULATE_* is EFAULT, mlock ENOMEM);
//  - MADV_DONTNEED/MADV_FREE, truncation and the OOM reaper leave markers in place;
//    munmap and exit drop them (unmap_page_range's drop_markers);
//  - fork copies them (copy_page_range), mremap moves them (move_page_tables), mprotect
//    leaves them alone;
//  - a table holding only markers is a used table (PageTable::nr_used_entries), so a
//    free_pgd_range that frees it is reported as freed while in use.
#pragma once

#include "vma/mm.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

namespace mmemu {

// madvise_guard_install over [start, end) of vma (page aligned, inside vma). EINVAL for a
// VM_SPECIAL or VM_LOCKED VMA; ENOMEM when the anon_vma (anon_vma_prepare: a fork must copy
// the VMA's page tables) or a page table cannot be allocated. Populated entries are zapped
// first (their contents are gone); existing markers stay. On failure the tables allocated
// and the markers installed before the failing allocation stay, as on Linux (the caller may
// retry or MADV_GUARD_REMOVE them).
Result<void> madvise_guard_install(Vma& vma, vaddr_t start, vaddr_t end);

// madvise_guard_remove over [start, end) of vma: every guard marker there becomes none again
// (the next touch faults the page in afresh). EINVAL for a VM_SPECIAL VMA; locked VMAs are
// fine. Allocates nothing, never fails otherwise.
Result<void> madvise_guard_remove(Vma& vma, vaddr_t start, vaddr_t end);

// The number of guard markers mapping [start, end) (tests, dumps).
std::uint64_t count_guard_markers(const Mm& mm, vaddr_t start, vaddr_t end);

}  // namespace mmemu
