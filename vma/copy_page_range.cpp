// fork's page-table copy: copy_page_range walks the parent's tables level by level over
// one VMA and builds the child's, allocating a child table only where the parent has one
// (pud_alloc / pmd_alloc / pte_alloc), then copies each leaf as copy_present_pte does.
#include <algorithm>
#include <cstring>

#include "vma/file.hpp"
#include "vma/fork.hpp"
#include "vma/rmap.hpp"

namespace mmemu {

namespace {

// End of the `level`-sized block holding addr, clipped to end (no wrap at the top).
vaddr_t block_end(vaddr_t addr, Level level, vaddr_t end) {
  const std::uint64_t size = entry_span(level);
  const vaddr_t b = (addr & ~(size - 1)) + size;
  return (b == 0 || b > end) ? end : b;
}

bool is_cow_mapping(vm_flags_t f) {
  return (f & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}

// vma_needs_copy: entries a fault would fill correctly are not copied (shared and
// read-only file mappings, anonymous memory that never had a private page).
bool vma_needs_copy(const Vma& src) {
  return (src.vm_flags & VM_PFNMAP) || src.anon_vma != nullptr;
}

struct CopyCtx {
  Vma& dst;
  Vma& src;
  PageTable& dpt;
  PageTable& spt;
  PhysMem& phys;
  const PteFormat& fmt;
  bool cow;
  ForkReport* stats;
};

// copy_present_page: a possibly DMA-pinned anonymous page cannot be shared (the pin would
// stop seeing the child's writes, or the child the pin's); the child gets its own copy now.
Result<pte_t> copy_pinned_page(CopyCtx& c, vaddr_t addr, pfn_t src_pfn) {
  const AllocHint h{c.dst.vm_mm->id(), addr};
  const AllocCaller caller(c.phys.injector(), "copy_present_page", addr);
  auto np = c.phys.alloc_frame(AllocSite::Page, &h);
  if (!np) return std::unexpected(np.error());
  c.phys.copy_frame(*np, src_pfn);
  page_add_new_anon_rmap(c.dst, *np, addr);
  pte_t e = c.fmt.mkyoung(c.fmt.mkdirty(c.fmt.mk_pte(*np, c.dst.vm_page_prot)));
  if (c.dst.vm_flags & VM_WRITE) e = c.fmt.mkwrite(e);
  if (c.stats) ++c.stats->pages_copied;
  return e;
}

// copy_present_pte for one source entry; returns the child's entry.
Result<pte_t> copy_present_pte(CopyCtx& c, vaddr_t addr, PteRef sref, pte_t e) {
  const pfn_t pfn = c.fmt.pfn(e);
  Mm& child = *c.dst.vm_mm;
  if (pfn != c.phys.zero_pfn()) {  // vm_normal_page: the zero page has no rmap/refcount
    const PageDesc& d = c.phys.desc(pfn);
    if ((d.flags & PG_anon) && d.pincount > 0) return copy_pinned_page(c, addr, pfn);
    c.phys.get_page(pfn);
    page_add_rmap(child, pfn);
  }
  if (c.cow && c.fmt.write(e)) {
    // ptep_set_wrprotect: the parent's entry too; dup_mmap flushes its TLB at the end.
    c.spt.set(sref, c.fmt.wrprotect(e));
    e = c.fmt.wrprotect(e);
    if (c.stats) ++c.stats->ptes_wrprotected;
  }
  if (c.src.vm_flags & VM_SHARED) e = c.fmt.mkclean(e);
  return c.fmt.mkold(e);
}

Result<void> copy_pte_range(CopyCtx& c, vaddr_t addr, vaddr_t end) {
  const auto stable = c.spt.table_for(addr, Level::Pte);
  auto dtable = c.dpt.alloc_table(addr, Level::Pte);
  if (!dtable) return std::unexpected(dtable.error());
  for (vaddr_t va = addr; va < end; va += PAGE_SIZE) {
    const PteRef sref{*stable, table_index(va, Level::Pte)};
    const pte_t e = c.spt.get(sref);
    if (c.fmt.none(e)) continue;
    if (c.fmt.is_guard_marker(e)) {
      // copy_nonpresent_pte -> copy_pte_marker: a guard marker is always copied. (Installing
      // one gave the VMA an anon_vma, so vma_needs_copy sent even a shared VMA here.)
      c.dpt.set(PteRef{*dtable, table_index(va, Level::Pte)}, e);
      if (c.stats) ++c.stats->ptes_copied;
      continue;
    }
    // mmemu has no swap or migration entries: any other non-none leaf maps a frame.
    auto ne = copy_present_pte(c, va, sref, e);
    if (!ne) return std::unexpected(ne.error());
    c.dpt.set(PteRef{*dtable, table_index(va, Level::Pte)}, *ne);
    if (c.stats) ++c.stats->ptes_copied;
  }
  return {};
}

// copy_pud_range / copy_pmd_range: `level` is the level of the tables walked here; a child
// table one level down is allocated for each source entry that is a table.
Result<void> copy_range(CopyCtx& c, Level level, vaddr_t addr, vaddr_t end) {
  for (vaddr_t a = addr; a < end;) {
    const vaddr_t next = block_end(a, level, end);
    const Level below = next_level(level);
    if (c.spt.table_for(a, below)) {
      Result<void> r;
      if (below == Level::Pte) {
        r = copy_pte_range(c, a, next);
      } else if (auto t = c.dpt.alloc_table(a, below); !t) {
        r = std::unexpected(t.error());
      } else {
        r = copy_range(c, below, a, next);
      }
      if (!r) return r;
    }
    a = next;
  }
  return {};
}

}  // namespace

Result<void> copy_page_range(Vma& dst, Vma& src, ForkReport* stats) {
  if (!vma_needs_copy(src)) return {};
  Mm& child = *dst.vm_mm;
  Mm& parent = *src.vm_mm;
  CopyCtx c{
      dst,  src, child.pt(), parent.pt(), child.phys(), parent.fmt(), is_cow_mapping(src.vm_flags),
      stats};
  return copy_range(c, Level::Pgd, src.vm_start, src.vm_end);
}

Result<void> arch_dup_mmap(Mm& oldmm, Mm& mm) {
  PageTable& spt = oldmm.pt();
  PhysMem& phys = oldmm.phys();
  for (const ArchMapping& m : spt.arch_mappings()) {
    std::vector<pfn_t> frames;
    for (vaddr_t va = m.start; va != m.end; va += PAGE_SIZE) {
      const auto ref = spt.lookup(va);
      if (!ref || !spt.fmt().present(spt.get(*ref))) continue;
      frames.push_back(spt.fmt().pfn(spt.get(*ref)));
    }
    if (frames.size() != (m.end - m.start) / PAGE_SIZE) return fail(EINVAL);
    for (pfn_t p : frames)
      phys.get_page(p);
    if (auto r = mm.pt().map_arch_pages(m.start, frames, m.prot, m.name); !r) {
      for (pfn_t p : frames)
        phys.put_page(p);
      return r;
    }
  }
  return {};
}

}  // namespace mmemu
