// Address-space teardown: exit_mmap and tear_down_vmas.
#pragma once

#include "vma/mm.hpp"

namespace mmemu {

struct TearDown {
  int count = 0;                   // VMAs removed
  std::uint64_t nr_accounted = 0;  // pages of VM_ACCOUNT VMAs among them
  bool met_xa_zero = false;
};

// tear_down_vmas(mm, vmi, vma, max): frees VMAs from `vma` on while vm_end <= max (stopping
// at an XA_ZERO marker), counting them and summing accounted pages. They stay in the tree
// (the caller destroys it). A count that disagrees with map_count is the caller's to report.
TearDown tear_down_vmas(Mm& mm, Vma* vma, vaddr_t max);

// exit_mmap: no VMA (or an XA_ZERO marker first) -> straight to destroy; otherwise
// unmap_vmas over everything, the unlock/relock window (on_exit_unlock runs there, then
// MMF_OOM_SKIP is set; the no-VMA path has the window too, without the bit),
// free_pgtables(FIRST_USER_ADDRESS, USER_PGTABLES_CEILING, USER_PGTABLES_CEILING),
// tear_down_vmas(ULONG_MAX). The arch mappings' pages and tables are freed here on every
// path, then the maple tree is destroyed and the trace event fires. Runs when mm_users
// has dropped to 0 (mmput) or from ~Mm.
ExitMmapReport exit_mmap(Mm& mm);

}  // namespace mmemu
