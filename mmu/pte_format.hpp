// Page-table entry formats. Code above this file never looks at bits: it asks the
// address space's PteFormat to build, test and change entries, so x86-64 and AArch64
// tables are both real and both handled by the same mm code.
#pragma once

#include <string>

#include "mmu/types.hpp"

namespace mmemu {

// What a mapping allows, as a VMA's vm_page_prot would say it. All false = PROT_NONE:
// the entry keeps its frame (pte_present in the kernel's sense) but no access is allowed.
struct PteProt {
  bool read = false;
  bool write = false;
  bool exec = false;
  bool user = true;  // false only for kernel-only arch mappings
  friend constexpr bool operator==(PteProt, PteProt) = default;
};

class PteFormat {
 public:
  virtual ~PteFormat() = default;
  virtual Arch arch() const = 0;

  // Leaf entry for `pfn`: present, old (not young), clean, writable iff prot.write.
  virtual pte_t mk_pte(pfn_t pfn, PteProt prot) const = 0;
  // Non-leaf entry pointing at the next-level table in frame `table`.
  virtual pte_t mk_table(pfn_t table) const = 0;

  virtual bool none(pte_t e) const { return e == 0; }
  // Maps a frame: valid, or PROT_NONE (kernel's pte_present).
  virtual bool present(pte_t e) const = 0;
  // Points at a next-level table (only meaningful above the PTE level).
  virtual bool is_table(pte_t e) const = 0;
  virtual pfn_t pfn(pte_t e) const = 0;       // frame of a leaf or table entry
  virtual PteProt prot(pte_t e) const = 0;    // what the entry allows right now
  virtual bool write(pte_t e) const = 0;      // logically writable (pte_write)
  virtual bool young(pte_t e) const = 0;
  virtual bool dirty(pte_t e) const = 0;
  virtual bool protnone(pte_t e) const = 0;   // PROT_NONE entry

  virtual pte_t mkwrite(pte_t e) const = 0;
  virtual pte_t wrprotect(pte_t e) const = 0;
  virtual pte_t mkyoung(pte_t e) const = 0;
  virtual pte_t mkold(pte_t e) const = 0;
  virtual pte_t mkdirty(pte_t e) const = 0;
  virtual pte_t mkclean(pte_t e) const = 0;
  // New protection, keeping frame, young and dirty (pte_modify).
  virtual pte_t modify(pte_t e, PteProt prot) const = 0;

  // Raw bits decoded for dumps, e.g. "P RW US A D NX" or "PAGE AF AP=RW_EL0 UXN DBM".
  virtual std::string decode(pte_t e, Level level) const = 0;
};

const PteFormat& pte_format(Arch arch);

}  // namespace mmemu
