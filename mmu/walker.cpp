#include "mmu/walker.hpp"

#include <array>

namespace mmemu {

namespace {

constexpr std::array<Level, 3> kUpper{Level::Pgd, Level::Pud, Level::Pmd};

std::unexpected<WalkFault> not_present(Level l) {
  return std::unexpected(WalkFault{WalkFaultKind::NotPresent, l, ProtReason::None});
}
std::unexpected<WalkFault> guard_fault() {
  return std::unexpected(WalkFault{WalkFaultKind::Guard, Level::Pte, ProtReason::None});
}
std::unexpected<WalkFault> prot_fault(ProtReason r) {
  return std::unexpected(WalkFault{WalkFaultKind::Protection, Level::Pte, r});
}

Translation result(PageTable& pt, PteRef ref, pte_t e) {
  const PteFormat& f = pt.fmt();
  return Translation{f.pfn(e), ref, e, f.prot(e), f.dirty(e), f.young(e)};
}

// x86-64: permissions are the AND of RW and US and the OR of NX over all four levels.
std::expected<Translation, WalkFault> walk_x86(PageTable& pt, vaddr_t va, Access access,
                                               bool set_ad) {
  using namespace x86_bits;
  const auto top = static_cast<std::int64_t>(va) >> 47;
  if (top != 0 && top != -1)
    return std::unexpected(WalkFault{WalkFaultKind::NonCanonical, Level::Pgd, ProtReason::None});
  std::array<PteRef, 3> upper{};
  pte_t all = P | RW | US;  // AND of RW/US
  pte_t nx = 0;             // OR of NX
  pfn_t t = pt.pgd();
  for (std::size_t i = 0; i < kUpper.size(); ++i) {
    const PteRef ref{t, table_index(va, kUpper[i])};
    const pte_t e = pt.get(ref);
    // A PS entry would be a huge leaf; mmemu never builds one, so it cannot be walked.
    if (!(e & P) || (e & PS)) return not_present(kUpper[i]);
    all &= e;
    nx |= e & NX;
    upper[i] = ref;
    t = pt.fmt().pfn(e);
  }
  const PteRef leaf{t, table_index(va, Level::Pte)};
  pte_t e = pt.get(leaf);
  if (!(e & P)) {
    if (pt.fmt().is_guard_marker(e)) return guard_fault();
    if (e & PROTNONE) return prot_fault(ProtReason::ProtNone);
    return not_present(Level::Pte);
  }
  all &= e;
  nx |= e & NX;
  if (!(all & US)) return prot_fault(ProtReason::KernelOnly);
  // Protection keys apply to data accesses only (an execute-only key still lets code run).
  const auto key = static_cast<unsigned>((e & PKEY_MASK) >> PKEY_SHIFT);
  if (access != Access::Exec && pkey_denies(pt.pkru, key, access))
    return prot_fault(ProtReason::Pkey);
  if (access == Access::Write && !(all & RW)) return prot_fault(ProtReason::ReadOnly);
  if (access == Access::Exec && nx) return prot_fault(ProtReason::NoExec);
  if (set_ad) {
    for (const PteRef& r : upper) {
      const pte_t u = pt.get(r);
      if (!(u & A)) pt.set(r, u | A);
    }
    const pte_t n = e | A | (access == Access::Write ? D : 0);
    if (n != e) pt.set(leaf, n);
    e = n;
  }
  return result(pt, leaf, e);
}

// AArch64 EL0 stage 1: data access needs AP[1]; a write needs AP[2] clear or DBM (the
// hardware then clears AP[2]); a fetch needs UXN clear.
std::expected<Translation, WalkFault> walk_arm64(PageTable& pt, vaddr_t va, Access access,
                                                 bool set_ad) {
  using namespace arm64_bits;
  if (va >> 48) return not_present(Level::Pgd);
  pfn_t t = pt.pgd();
  for (Level l : kUpper) {
    const pte_t e = pt.get(PteRef{t, table_index(va, l)});
    // Invalid, or a block descriptor (never built by mmemu).
    if ((e & TYPE_MASK) != TYPE_TABLE) return not_present(l);
    t = pt.fmt().pfn(e);
  }
  const PteRef leaf{t, table_index(va, Level::Pte)};
  pte_t e = pt.get(leaf);
  if (!(e & VALID)) {
    if (pt.fmt().is_guard_marker(e)) return guard_fault();
    if (e & PROTNONE) return prot_fault(ProtReason::ProtNone);
    return not_present(Level::Pte);
  }
  if ((e & TYPE_MASK) != TYPE_PAGE) return not_present(Level::Pte);  // reserved encoding
  const bool el0 = (e & USER) != 0;
  if (access == Access::Exec) {
    if (e & UXN) return prot_fault(el0 ? ProtReason::NoExec : ProtReason::KernelOnly);
  } else {
    if (!el0) return prot_fault(ProtReason::KernelOnly);
    if (access == Access::Write && (e & RDONLY) && !(e & DBM))
      return prot_fault(ProtReason::ReadOnly);
  }
  if (set_ad) {
    pte_t n = e | AF;
    if (access == Access::Write) n &= ~RDONLY;  // DBM: hardware marks it dirty
    if (n != e) pt.set(leaf, n);
    e = n;
  }
  return result(pt, leaf, e);
}

}  // namespace

std::expected<Translation, WalkFault> walk(PageTable& pt, vaddr_t va, Access access, bool set_ad) {
  return pt.arch() == Arch::X86_64 ? walk_x86(pt, va, access, set_ad)
                                   : walk_arm64(pt, va, access, set_ad);
}

std::string_view walk_fault_name(const WalkFault& f) {
  switch (f.kind) {
    case WalkFaultKind::NotPresent:
      return "not-present";
    case WalkFaultKind::NonCanonical:
      return "non-canonical";
    case WalkFaultKind::Guard:
      return "guard";
    case WalkFaultKind::Protection:
      break;
  }
  switch (f.reason) {
    case ProtReason::ReadOnly:
      return "read-only";
    case ProtReason::NoExec:
      return "no-exec";
    case ProtReason::ProtNone:
      return "prot-none";
    case ProtReason::KernelOnly:
      return "kernel-only";
    case ProtReason::Pkey:
      return "pkey";
    case ProtReason::None:
      break;
  }
  return "protection";
}

}  // namespace mmemu
