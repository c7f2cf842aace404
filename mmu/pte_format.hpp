// Page-table entry formats. Code above this file never looks at bits: it asks the
// address space's PteFormat to build, test and change entries, so x86-64 and AArch64
// tables are both real and both handled by the same mm code.
#pragma once

#include <string>

#include "mmu/types.hpp"

namespace mmemu {

// Raw bits, named as Linux names them. Only the walker, the dumps and tests should need them.
namespace x86_bits {
inline constexpr pte_t P = 1ULL << 0;       // _PAGE_PRESENT
inline constexpr pte_t RW = 1ULL << 1;      // _PAGE_RW
inline constexpr pte_t US = 1ULL << 2;      // _PAGE_USER
inline constexpr pte_t PWT = 1ULL << 3;     // _PAGE_PWT
inline constexpr pte_t PCD = 1ULL << 4;     // _PAGE_PCD
inline constexpr pte_t A = 1ULL << 5;       // _PAGE_ACCESSED
inline constexpr pte_t D = 1ULL << 6;       // _PAGE_DIRTY
inline constexpr pte_t PS = 1ULL << 7;      // _PAGE_PSE (PAT at the PTE level)
inline constexpr pte_t G = 1ULL << 8;       // _PAGE_GLOBAL
inline constexpr pte_t PROTNONE = G;        // _PAGE_PROTNONE: same bit, meaningful only when !P
inline constexpr pte_t NX = 1ULL << 63;     // _PAGE_NX
inline constexpr unsigned PKEY_SHIFT = 59;  // _PAGE_PKEY_BIT0..3: the protection key
inline constexpr pte_t PKEY_MASK = 0xfULL << PKEY_SHIFT;
inline constexpr pte_t PFN_MASK = ((1ULL << 52) - 1) & ~((1ULL << 12) - 1);  // bits 12-51
inline constexpr pte_t TABLE = P | RW | US | A | D;                          // _PAGE_TABLE
}  // namespace x86_bits

namespace arm64_bits {
inline constexpr pte_t VALID = 1ULL << 0;      // PTE_VALID
inline constexpr pte_t TABLE_BIT = 1ULL << 1;  // PTE_TABLE_BIT (page at level 3)
inline constexpr pte_t TYPE_MASK = 3ULL;       // bits[1:0]
inline constexpr pte_t TYPE_PAGE = 3ULL;       // PTE_TYPE_PAGE (level 3)
inline constexpr pte_t TYPE_TABLE = 3ULL;      // PMD_TYPE_TABLE (levels 0-2)
inline constexpr pte_t ATTRINDX_MASK = 7ULL << 2;
inline constexpr pte_t ATTR_MT_NORMAL = 0ULL << 2;  // PTE_ATTRINDX(MT_NORMAL), MT_NORMAL = 0
inline constexpr pte_t USER = 1ULL << 6;            // PTE_USER, AP[1]: EL0 access
inline constexpr pte_t RDONLY = 1ULL << 7;          // PTE_RDONLY, AP[2]
inline constexpr pte_t SH_MASK = 3ULL << 8;
inline constexpr pte_t SH_IS = 3ULL << 8;      // PTE_SHARED: inner shareable
inline constexpr pte_t AF = 1ULL << 10;        // PTE_AF
inline constexpr pte_t NG = 1ULL << 11;        // PTE_NG
inline constexpr pte_t DBM = 1ULL << 51;       // PTE_DBM
inline constexpr pte_t WRITE = DBM;            // PTE_WRITE: Linux uses DBM as the write bit
inline constexpr pte_t CONT = 1ULL << 52;      // PTE_CONT
inline constexpr pte_t PXN = 1ULL << 53;       // PTE_PXN
inline constexpr pte_t UXN = 1ULL << 54;       // PTE_UXN
inline constexpr pte_t DIRTY = 1ULL << 55;     // PTE_DIRTY (software)
inline constexpr pte_t PROTNONE = 1ULL << 58;  // PTE_PROT_NONE (only when !VALID)
inline constexpr pte_t ADDR_MASK = ((1ULL << 48) - 1) & ~((1ULL << 12) - 1);  // bits 12-47
}  // namespace arm64_bits

// What a mapping allows, as a VMA's vm_page_prot would say it. All false = PROT_NONE:
// the entry keeps its frame (pte_present in the kernel's sense) but no access is allowed.
// Neither format can express write-only or exec-only: those entries also allow reads
// (as Linux's protection_map does on CPUs without execute-only support).
struct PteProt {
  bool read = false;
  bool write = false;
  bool exec = false;
  bool user = true;       // false only for kernel-only arch mappings
  std::uint8_t pkey = 0;  // x86-64 protection key (VM_PKEY_BIT*); arm64 ignores it
  friend constexpr bool operator==(PteProt, PteProt) = default;
};

class PteFormat {
 public:
  virtual ~PteFormat() = default;
  virtual Arch arch() const = 0;

  // Leaf entry for `pfn`: present, old (not young), clean, writable iff prot.write.
  // (Linux's vm_page_prot carries _PAGE_ACCESSED / PTE_AF, so a fault handler that wants
  // the kernel's exact bits applies mkyoung itself.)
  virtual pte_t mk_pte(pfn_t pfn, PteProt prot) const = 0;
  // Non-leaf entry pointing at the next-level table in frame `table`.
  virtual pte_t mk_table(pfn_t table) const = 0;

  virtual bool none(pte_t e) const { return e == 0; }
  // Maps a frame: valid, or PROT_NONE (kernel's pte_present).
  virtual bool present(pte_t e) const = 0;
  // Points at a next-level table (only meaningful above the PTE level).
  virtual bool is_table(pte_t e) const = 0;
  virtual pfn_t pfn(pte_t e) const = 0;     // frame of a leaf or table entry
  virtual PteProt prot(pte_t e) const = 0;  // what the entry allows right now
  virtual bool write(pte_t e) const = 0;    // logically writable (pte_write)
  virtual bool young(pte_t e) const = 0;
  virtual bool dirty(pte_t e) const = 0;
  virtual bool protnone(pte_t e) const = 0;  // PROT_NONE entry

  virtual pte_t mkwrite(pte_t e) const = 0;
  virtual pte_t wrprotect(pte_t e) const = 0;
  virtual pte_t mkyoung(pte_t e) const = 0;
  virtual pte_t mkold(pte_t e) const = 0;
  virtual pte_t mkdirty(pte_t e) const = 0;
  virtual pte_t mkclean(pte_t e) const = 0;
  // New protection, keeping frame, young and dirty (pte_modify).
  virtual pte_t modify(pte_t e, PteProt prot) const = 0;

  // Raw bits decoded for dumps, e.g. "P RW US A D NX" or
  // "PAGE AF nG AP=rw-el0 SH=IS DBM PXN UXN DIRTY"; "none" for an empty entry, "guard" for a
  // guard marker.
  virtual std::string decode(pte_t e, Level level) const = 0;

  // --- PTE markers (leaf level only) ---
  // A guard marker (MADV_GUARD_INSTALL): make_pte_marker(PTE_MARKER_GUARD), i.e. the swap
  // entry of type SWP_PTE_MARKER (31, the last of the 5-bit swap types) with offset
  // PTE_MARKER_GUARD (bit 2), encoded as each arch encodes swap entries, so the hardware
  // sees a non-present (x86-64: P and PROTNONE clear; arm64: VALID and PROT_NONE clear)
  // entry that is not none:
  //   x86-64: 0xfffffffffffff600  (type in bits 59-63, offset inverted in bits 9-58)
  //   arm64:  0x00000000000004f8  (type in bits 3-7, offset in bits 8-57)
  // mmemu has no swap, migration or other marker entries, so a non-none, non-present leaf is
  // a guard marker or a bug. present() is false for it, and pfn() means nothing.
  virtual pte_t mk_guard_marker() const = 0;
  // is_guard_pte_marker: a marker entry with the guard bit (the pagemap's PM_GUARD_REGION,
  // the fault handler's VM_FAULT_SIGSEGV).
  virtual bool is_guard_marker(pte_t e) const = 0;
};

// Linux's swap-entry fields of a PTE marker (include/linux/swapops.h, swap.h).
inline constexpr unsigned kSwpPteMarkerType = 31;          // SWP_PTE_MARKER
inline constexpr std::uint64_t kPteMarkerGuard = 1U << 2;  // PTE_MARKER_GUARD

const PteFormat& pte_format_x86();    // pte_x86.cpp
const PteFormat& pte_format_arm64();  // pte_arm64.cpp
inline const PteFormat& pte_format(Arch arch) {
  return arch == Arch::X86_64 ? pte_format_x86() : pte_format_arm64();
}

}  // namespace mmemu
