// free_pgd_range and its per-level helpers, modelled on mm/memory.c. At each level the
// entries under [addr, end) are visited first; then the table itself is freed only when the
// whole span its parent entry covers, rounded to that level, lies inside [floor, ceiling).
// All arithmetic is unsigned 64-bit: ceiling 0 means "top", and `ceiling - 1` wrapping to
// ULONG_MAX is what makes that work. Like the kernel, it never looks inside a table before
// freeing it; PageTable::release_in_use reports one that was still in use.
#include "mmu/free_pgd_range.hpp"

namespace mmemu {

namespace {

struct Ctx {
  MmuGather& tlb;
  PageTable& pt;
  const PteFormat& f;
  FreePgdRangeArgs args;
};

// pXd_addr_end: the next boundary of `size` after addr, or end if that comes first.
vaddr_t addr_end(vaddr_t addr, vaddr_t end, std::uint64_t size) {
  const vaddr_t boundary = (addr + size) & ~(size - 1);
  return boundary - 1 < end - 1 ? boundary : end;
}

// The span check shared by the pmd and pud levels: may a table whose parent entry covers
// [start & mask, +size) go, given floor and ceiling? Mirrors the kernel's early returns.
bool span_free(vaddr_t start, vaddr_t end, vaddr_t floor, vaddr_t ceiling, std::uint64_t mask) {
  start &= mask;
  if (start < floor) return false;
  if (ceiling) {
    ceiling &= mask;
    if (!ceiling) return false;
  }
  return !(end - 1 > ceiling - 1);
}

// pte_free_tlb / pmd_free_tlb / pud_free_tlb: frees `child` (of level `child_level`, pointed
// at by parent[idx]) without looking inside, as the kernel does. Only the report looks: a
// table that still holds entries is a use-after-free in the making, recorded and released.
void free_table(Ctx& c, pfn_t parent, unsigned idx, Level child_level, vaddr_t base) {
  const pfn_t child = c.f.pfn(c.pt.get(PteRef{parent, idx}));
  if (c.pt.nr_used_entries(child)) c.pt.release_in_use(child, child_level, base, c.args, c.tlb);
  c.pt.detach_table(parent, idx, child_level, base, c.tlb);
}

// pXd_none_or_clear_bad: a non-none entry that is not a table where a table belongs. mmemu
// never builds one (its table allocation refuses with EEXIST), so it is only skipped.
bool bad_entry(Ctx& c, pte_t e) {
  return !c.f.is_table(e);
}

void free_pte_range(Ctx& c, pfn_t pmd_table, unsigned idx, vaddr_t addr) {
  free_table(c, pmd_table, idx, Level::Pte, addr & PMD_MASK);
}

void free_pmd_range(Ctx& c, pfn_t pud_table, unsigned pud_idx, vaddr_t addr, vaddr_t end,
                    vaddr_t floor, vaddr_t ceiling) {
  const pfn_t pmd_table = c.f.pfn(c.pt.get(PteRef{pud_table, pud_idx}));
  const vaddr_t start = addr;
  do {
    const vaddr_t next = addr_end(addr, end, PMD_SIZE);
    const unsigned idx = table_index(addr, Level::Pmd);
    const pte_t e = c.pt.get(PteRef{pmd_table, idx});
    if (!c.f.none(e) && !bad_entry(c, e)) free_pte_range(c, pmd_table, idx, addr);
    addr = next;
  } while (addr != end);

  if (!span_free(start, end, floor, ceiling, PUD_MASK)) return;
  free_table(c, pud_table, pud_idx, Level::Pmd, start & PUD_MASK);
}

// p4d is folded: the pud table hangs straight off the pgd, and is freed when its whole
// PGDIR span is inside [floor, ceiling) (free_pud_range's P4D_MASK is PGDIR_MASK here).
void free_pud_range(Ctx& c, unsigned pgd_idx, vaddr_t addr, vaddr_t end, vaddr_t floor,
                    vaddr_t ceiling) {
  const pfn_t pud_table = c.f.pfn(c.pt.get(PteRef{c.pt.pgd(), pgd_idx}));
  const vaddr_t start = addr;
  do {
    const vaddr_t next = addr_end(addr, end, PUD_SIZE);
    const unsigned idx = table_index(addr, Level::Pud);
    const pte_t e = c.pt.get(PteRef{pud_table, idx});
    if (!c.f.none(e) && !bad_entry(c, e))
      free_pmd_range(c, pud_table, idx, addr, next, floor, ceiling);
    addr = next;
  } while (addr != end);

  if (!span_free(start, end, floor, ceiling, PGDIR_MASK)) return;
  free_table(c, c.pt.pgd(), pgd_idx, Level::Pud, start & PGDIR_MASK);
}

}  // namespace

void free_pgd_range(MmuGather& tlb, vaddr_t addr, vaddr_t end, vaddr_t floor, vaddr_t ceiling) {
  const FreePgdRangeArgs args{addr, end, floor, ceiling};
  // The PTE table at addr may be shared with something below floor: start at the first PMD
  // boundary that floor allows. Likewise end is pulled back below a ceiling that does not
  // lie on a PMD boundary.
  addr &= PMD_MASK;
  if (addr < floor) {
    addr += PMD_SIZE;
    if (!addr) return;
  }
  if (ceiling) {
    ceiling &= PMD_MASK;
    if (!ceiling) return;
  }
  if (end - 1 > ceiling - 1) end -= PMD_SIZE;
  if (addr > end - 1) return;

  Ctx c{tlb, tlb.page_table(), tlb.page_table().fmt(), args};
  const pfn_t pgd = c.pt.pgd();
  do {
    const vaddr_t next = addr_end(addr, end, PGDIR_SIZE);
    const unsigned idx = table_index(addr, Level::Pgd);
    const pte_t e = c.pt.get(PteRef{pgd, idx});
    // init_mm's kernel-half entries are shared by every mm: never this mm's to free (no
    // user range reaches them; the what-if script step could ask).
    if (!c.f.none(e) && !bad_entry(c, e) && !c.pt.kernel_entry(idx))
      free_pud_range(c, idx, addr, next, floor, ceiling);
    addr = next;
  } while (addr != end);
}

}  // namespace mmemu
