// The software page-table walker: what the MMU would do for one access.
#pragma once

#include <expected>

#include "mmu/page_table.hpp"

namespace mmemu {

enum class Access : std::uint8_t { Read, Write, Exec };

struct Translation {
  pfn_t pfn;
  PteRef ref;    // the leaf entry
  pte_t pte;     // its value after any accessed/dirty update
  PteProt prot;  // what the entry allows (read/write/exec)
  bool dirty;
  bool young;
};

enum class WalkFaultKind : std::uint8_t {
  NotPresent,  // an entry on the way was none / invalid (level says which)
  Protection,  // the leaf exists but forbids this access (read-only, no-exec, PROT_NONE, kernel)
};

struct WalkFault {
  WalkFaultKind kind;
  Level level;  // the level whose entry stopped the walk
};

// Translates va for `access`. With set_ad, sets the accessed bit on the leaf (and the tables
// above it, on x86-64) and, for an allowed write, the dirty bit, as the hardware would
// (AArch64: AF, and DBM clears AP[2]). Without set_ad the tables are not modified.
std::expected<Translation, WalkFault> walk(PageTable& pt, vaddr_t va, Access access,
                                           bool set_ad = true);

}  // namespace mmemu
