// x86-64 4-level entries, bit for bit as Linux builds them (arch/x86/include/asm/
// pgtable_types.h): P/RW/US/A/D/NX in hardware positions, PROT_NONE as P clear with
// _PAGE_PROTNONE (the G bit) set so the frame stays recorded.
#include <string>

#include "mmu/pte_format.hpp"

namespace mmemu {

namespace {

using namespace x86_bits;

class PteX86 final : public PteFormat {
 public:
  Arch arch() const override { return Arch::X86_64; }

  pte_t mk_pte(pfn_t pfn, PteProt prot) const override { return frame_bits(pfn) | prot_bits(prot); }
  pte_t mk_table(pfn_t table) const override { return frame_bits(table) | TABLE; }

  bool present(pte_t e) const override { return (e & (P | PROTNONE)) != 0; }
  bool is_table(pte_t e) const override { return (e & P) && !(e & PS); }
  pfn_t pfn(pte_t e) const override { return (e & PFN_MASK) >> PAGE_SHIFT; }
  PteProt prot(pte_t e) const override {
    if (!(e & P)) return PteProt{};
    return PteProt{true, (e & RW) != 0, (e & NX) == 0, (e & US) != 0,
                   static_cast<std::uint8_t>((e & PKEY_MASK) >> PKEY_SHIFT)};
  }
  bool write(pte_t e) const override { return (e & RW) != 0; }
  bool young(pte_t e) const override { return (e & A) != 0; }
  bool dirty(pte_t e) const override { return (e & D) != 0; }
  bool protnone(pte_t e) const override { return (e & (P | PROTNONE)) == PROTNONE; }

  pte_t mkwrite(pte_t e) const override { return e | RW; }
  pte_t wrprotect(pte_t e) const override { return e & ~RW; }
  pte_t mkyoung(pte_t e) const override { return e | A; }
  pte_t mkold(pte_t e) const override { return e & ~A; }
  pte_t mkdirty(pte_t e) const override { return e | D; }
  pte_t mkclean(pte_t e) const override { return e & ~D; }

  // pte_modify: _PAGE_CHG_MASK (frame, cache bits, A, D) survives, the rest is the new prot.
  pte_t modify(pte_t e, PteProt prot) const override {
    constexpr pte_t kKeep = PFN_MASK | PCD | PWT | A | D;
    return (e & kKeep) | prot_bits(prot);
  }

  // __swp_entry(SWP_PTE_MARKER, PTE_MARKER_GUARD): the type in the top 5 bits, the offset
  // inverted (the L1TF mitigation: a stray walk sees a frame above physical memory) in the
  // bits from _PAGE_BIT_PROTNONE + 1 up.
  pte_t mk_guard_marker() const override { return swp_entry(kSwpPteMarkerType, kPteMarkerGuard); }
  bool is_guard_marker(pte_t e) const override {
    if (e == 0 || (e & (P | PROTNONE))) return false;
    return swp_type(e) == kSwpPteMarkerType && (swp_offset(e) & kPteMarkerGuard);
  }

  std::string decode(pte_t e, Level level) const override {
    if (e == 0) return "none";
    if (level == Level::Pte && is_guard_marker(e)) return "guard";
    std::string s;
    auto add = [&s](const char* tok) {
      if (!s.empty()) s += ' ';
      s += tok;
    };
    if (e & P) add("P");
    if (e & RW) add("RW");
    if (e & US) add("US");
    if (e & PWT) add("PWT");
    if (e & PCD) add("PCD");
    if (e & A) add("A");
    if (e & D) add("D");
    if (e & PS) add(level == Level::Pte ? "PAT" : "PS");
    if (e & G) add((e & P) ? "G" : "PROTNONE");
    if (e & NX) add("NX");
    if (e & PKEY_MASK) add(("PKEY=" + std::to_string((e & PKEY_MASK) >> PKEY_SHIFT)).c_str());
    if (s.empty()) add("NP");  // not present, only a frame or software bits
    return s;
  }

 private:
  static constexpr unsigned kSwpTypeBits = 5;
  static constexpr unsigned kSwpOffsetShift = 9 + kSwpTypeBits;  // SWP_OFFSET_SHIFT
  static constexpr pte_t swp_entry(std::uint64_t type, std::uint64_t offset) {
    return (~offset << kSwpOffsetShift >> kSwpTypeBits) | (type << (64 - kSwpTypeBits));
  }
  static constexpr std::uint64_t swp_type(pte_t e) { return e >> (64 - kSwpTypeBits); }
  static constexpr std::uint64_t swp_offset(pte_t e) {
    return ~e << kSwpTypeBits >> kSwpOffsetShift;
  }
  static pte_t frame_bits(pfn_t pfn) { return (pfn << PAGE_SHIFT) & PFN_MASK; }
  // The protection bits mk_pte/modify install: PAGE_SHARED/PAGE_READONLY and their _EXEC
  // forms without _PAGE_ACCESSED; kernel-only entries are global, as __PAGE_KERNEL is.
  static pte_t prot_bits(PteProt p) {
    const pte_t key = (static_cast<pte_t>(p.pkey) << PKEY_SHIFT) & PKEY_MASK;
    if (!p.read && !p.write && !p.exec) return PROTNONE | key;
    pte_t v = P | key;
    if (p.write) v |= RW;
    if (p.user)
      v |= US;
    else
      v |= G;
    if (!p.exec) v |= NX;
    return v;
  }
};

}  // namespace

const PteFormat& pte_format_x86() {
  static const PteX86 fmt;
  return fmt;
}

}  // namespace mmemu
