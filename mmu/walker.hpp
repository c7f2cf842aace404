// The software page-table walker: what the MMU would do for one user-mode access.
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
  NotPresent,    // an entry on the way was none / invalid (level says which)
  Protection,    // the leaf exists but forbids this access (reason says why)
  NonCanonical,  // x86-64: bits 63:47 not a sign extension (#GP, not a page fault)
  Guard,         // the leaf is a guard marker (MADV_GUARD_INSTALL): not present to the
                 // hardware; the fault handler answers SIGSEGV
};

// Why a Protection fault happened.
enum class ProtReason : std::uint8_t {
  None,        // not a protection fault
  ReadOnly,    // write to an entry that is not writable
  NoExec,      // fetch from an entry with NX / UXN
  ProtNone,    // PROT_NONE entry: frame kept, no access at all
  KernelOnly,  // user access to an entry without US / AP[1]
  Pkey,        // x86-64: PKRU denies this data access to the entry's protection key
};

struct WalkFault {
  WalkFaultKind kind;
  Level level;  // the level whose entry stopped the walk
  ProtReason reason = ProtReason::None;
  friend bool operator==(const WalkFault&, const WalkFault&) = default;
};

// Translates va for a user-mode `access`. With set_ad, sets the accessed bit on the leaf (and
// the tables above it, on x86-64) and, for an allowed write, the dirty bit, as the hardware
// would (AArch64 with FEAT_HAFDBS: AF, and a write through DBM clears AP[2]). Without set_ad
// nothing is modified, and a write to a clean DBM entry is still allowed. Faults never modify
// an entry. AArch64 addresses with any of bits 63:48 set (TTBR1's half) fault as not present
// at the pgd level.
std::expected<Translation, WalkFault> walk(PageTable& pt, vaddr_t va, Access access,
                                           bool set_ad = true);

std::string_view walk_fault_name(const WalkFault& f);  // "not-present", "read-only", ...

// PKRU's verdict for a data access to a page of protection key `key` (AD bit 2*key, WD bit
// 2*key + 1; key 0 is checked like any other).
constexpr bool pkey_denies(std::uint32_t pkru, unsigned key, Access access) {
  const std::uint32_t bits = pkru >> (2 * key);
  return (bits & 1) || (access == Access::Write && (bits & 2));
}

}  // namespace mmemu
