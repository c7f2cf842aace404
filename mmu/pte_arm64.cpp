// AArch64 stage-1 descriptors, 4K granule, 48-bit VA, as Linux builds them
// (arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h, pgtable.h): PTE_WRITE is the
// DBM bit, a clean writable page is DBM|RDONLY, and dirtiness lives either in hardware
// (DBM && !RDONLY) or in the software PTE_DIRTY bit.
#include <string>

#include "mmu/pte_format.hpp"

namespace mmemu {

namespace {

using namespace arm64_bits;

class PteArm64 final : public PteFormat {
 public:
  Arch arch() const override { return Arch::Arm64; }

  pte_t mk_pte(pfn_t pfn, PteProt prot) const override { return addr_bits(pfn) | prot_bits(prot); }
  pte_t mk_table(pfn_t table) const override { return addr_bits(table) | TYPE_TABLE; }

  bool present(pte_t e) const override { return (e & (VALID | PROTNONE)) != 0; }
  bool is_table(pte_t e) const override { return (e & TYPE_MASK) == TYPE_TABLE; }
  pfn_t pfn(pte_t e) const override { return (e & ADDR_MASK) >> PAGE_SHIFT; }
  PteProt prot(pte_t e) const override {
    if (!(e & VALID)) return PteProt{};
    const bool user = (e & USER) != 0;
    const bool w = (e & WRITE) || !(e & RDONLY);  // DBM lets the hardware make it writable
    const bool x = user ? !(e & UXN) : !(e & PXN);
    return PteProt{true, w, x, user};
  }
  bool write(pte_t e) const override { return (e & WRITE) != 0; }
  bool young(pte_t e) const override { return (e & AF) != 0; }
  bool dirty(pte_t e) const override { return sw_dirty(e) || hw_dirty(e); }
  bool protnone(pte_t e) const override { return (e & (VALID | PROTNONE)) == PROTNONE; }

  pte_t mkwrite(pte_t e) const override {
    e |= WRITE;
    if (sw_dirty(e)) e &= ~RDONLY;
    return e;
  }
  pte_t wrprotect(pte_t e) const override {
    if (hw_dirty(e)) e |= DIRTY;  // keep the dirtiness the hardware recorded
    return (e & ~WRITE) | RDONLY;
  }
  pte_t mkyoung(pte_t e) const override { return e | AF; }
  pte_t mkold(pte_t e) const override { return e & ~AF; }
  pte_t mkdirty(pte_t e) const override {
    e |= DIRTY;
    if (e & WRITE) e &= ~RDONLY;
    return e;
  }
  pte_t mkclean(pte_t e) const override { return (e & ~DIRTY) | RDONLY; }

  pte_t modify(pte_t e, PteProt prot) const override {
    constexpr pte_t kMask = USER | PXN | UXN | RDONLY | PROTNONE | VALID | WRITE | ATTRINDX_MASK;
    if (hw_dirty(e)) e |= DIRTY;
    e = (e & ~kMask) | (prot_bits(prot) & kMask);
    if (sw_dirty(e)) e = mkdirty(e);  // a still-writable dirty page stays hardware-dirty
    return e;
  }

  // __swp_entry(SWP_PTE_MARKER, PTE_MARKER_GUARD): bits 1:0 clear (invalid), bit 2 the
  // swap-exclusive bit (clear), the type in bits 3-7, the offset in bits 8-57; bit 58
  // (PROT_NONE here) stays clear, so the entry is not present either.
  pte_t mk_guard_marker() const override {
    return (pte_t{kSwpPteMarkerType} << kSwpTypeShift) | (kPteMarkerGuard << kSwpOffsetShift);
  }
  bool is_guard_marker(pte_t e) const override {
    if (e == 0 || (e & (VALID | PROTNONE))) return false;
    return ((e >> kSwpTypeShift) & 0x1f) == kSwpPteMarkerType &&
           (((e >> kSwpOffsetShift) & kSwpOffsetMask) & kPteMarkerGuard);
  }

  std::string decode(pte_t e, Level level) const override {
    if (e == 0) return "none";
    if (level == Level::Pte && is_guard_marker(e)) return "guard";
    std::string s;
    auto add = [&s](const std::string& tok) {
      if (!s.empty()) s += ' ';
      s += tok;
    };
    const bool leaf_level = level == Level::Pte;
    if (e & VALID) {
      if (e & TABLE_BIT) {
        add(leaf_level ? "PAGE" : "TABLE");
      } else {
        add(leaf_level ? "RESERVED" : "BLOCK");
      }
    } else {
      add((e & PROTNONE) ? "PROT_NONE" : "INVALID");
    }
    if (!leaf_level && (e & VALID) && (e & TABLE_BIT)) return s;  // table attrs unused
    if (const pte_t attr = (e & ATTRINDX_MASK) >> 2) add("ATTR=" + std::to_string(attr));
    if (e & AF) add("AF");
    if (e & NG) add("nG");
    add(std::string("AP=") + ((e & RDONLY) ? "ro" : "rw") + ((e & USER) ? "-el0" : "-el1"));
    switch (e & SH_MASK) {
      case SH_IS:
        add("SH=IS");
        break;
      case 2ULL << 8:
        add("SH=OS");
        break;
      case 1ULL << 8:
        add("SH=1?");
        break;
      default:
        break;
    }
    if (e & DBM) add("DBM");
    if (e & CONT) add("CONT");
    if (e & PXN) add("PXN");
    if (e & UXN) add("UXN");
    if (e & DIRTY) add("DIRTY");
    return s;
  }

 private:
  static constexpr unsigned kSwpTypeShift = 3;    // __SWP_TYPE_SHIFT
  static constexpr unsigned kSwpOffsetShift = 8;  // __SWP_OFFSET_SHIFT
  static constexpr pte_t kSwpOffsetMask = (1ULL << 50) - 1;
  static pte_t addr_bits(pfn_t pfn) { return (pfn << PAGE_SHIFT) & ADDR_MASK; }
  static bool sw_dirty(pte_t e) { return (e & DIRTY) != 0; }
  static bool hw_dirty(pte_t e) { return (e & WRITE) && !(e & RDONLY); }

  // Linux's PAGE_NONE / PAGE_READONLY[_EXEC] / PAGE_SHARED[_EXEC] without PTE_AF; kernel-only
  // entries as PAGE_KERNEL[_RO|_ROX] (global, UXN, PXN unless executable) but clean.
  static pte_t prot_bits(PteProt p) {
    constexpr pte_t kDefault = TYPE_PAGE | ATTR_MT_NORMAL | SH_IS;
    if (!p.read && !p.write && !p.exec)
      return (kDefault & ~VALID) | PROTNONE | RDONLY | NG | PXN | UXN;
    pte_t v = kDefault | RDONLY;  // born clean: writable pages are DBM|RDONLY
    if (p.write) v |= WRITE;
    if (p.user) {
      v |= USER | NG | PXN;
      if (!p.exec) v |= UXN;
    } else {
      v |= UXN;
      if (!p.exec) v |= PXN;
    }
    return v;
  }
};

}  // namespace

const PteFormat& pte_format_arm64() {
  static const PteArm64 fmt;
  return fmt;
}

}  // namespace mmemu
