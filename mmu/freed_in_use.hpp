// A page table freed while it still held live entries: what Linux does when free_pgd_range
// is given limits that are too wide (it frees a table once the floor/ceiling check passes,
// without looking inside), recorded the way KASAN reports the use-after-free that follows.
// The record is plain data; PageTable fills it in (mmu/page_table.hpp) and the mm layer
// names the owner of each entry before the table goes.
#pragma once

#include <string>
#include <vector>

#include "mmu/types.hpp"

namespace mmemu {

// One entry a freed table still held, directly or in a lower table it pointed at.
struct LiveEntry {
  vaddr_t va = 0;            // first address the entry maps
  Level level = Level::Pte;  // level of the table holding it: Pte maps a page, above a table
  pte_t entry = 0;           // its raw value
  pfn_t pfn = 0;             // the page or lower table it points at (0 when not present)
  bool present = false;      // a present page or a lower table (else a non-present leaf)
  bool guard = false;        // a guard marker (MADV_GUARD_INSTALL): a live entry too
  std::string owner;         // "vma 0x...-0x... rw-p", "arch mapping [sigpage] (no VMA)", ...
};

// The free_pgd_range call that freed the table.
struct FreePgdRangeArgs {
  vaddr_t addr = 0, end = 0, floor = 0, ceiling = 0;
};

struct FreedInUseTable {
  std::uint64_t mm = 0;  // the mm's id (0 outside an mm)
  Arch arch = Arch::X86_64;
  Level level = Level::Pte;  // level of the freed table itself
  pfn_t table = 0;           // its frame
  vaddr_t start = 0;         // first address it covered
  vaddr_t end = 0;           // one past the last (0 when it reached the top)
  FreePgdRangeArgs args;
  std::vector<LiveEntry> entries;  // in address order, a lower table before its entries
  // The call chain, innermost first: free_pgd_range, free_pgtables, unmap_region, munmap ...
  std::vector<std::string> chain;
};

// The report as KASAN prints a use-after-free: a banner naming the bug, the object (the
// table: level, frame, the span it covered), what it still held, and the chain that freed it.
std::string kasan_report(const FreedInUseTable& t);
// One line for a run's list of problems: "page-table use-after-free: pte table 0x... of mm
// 2 covering [...] freed with 3 live entries by free_pgd_range <- free_pgtables <- ...".
std::string freed_in_use_summary(const FreedInUseTable& t);

}  // namespace mmemu
