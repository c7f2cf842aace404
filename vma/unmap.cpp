#include "vma/unmap.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "vma/free_pgtables.hpp"
#include "vma/proc_maps.hpp"
#include "vma/rmap.hpp"
#include "vma/vm_flags.hpp"

namespace mmemu {

void unmap_page_range(MmuGather& tlb, Vma& vma, vaddr_t start, vaddr_t end, bool drop_markers) {
  Mm& mm = *vma.vm_mm;
  PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  PhysMem& phys = mm.phys();
  pt.for_each_pte(start, end, [&](vaddr_t va, PteRef ref, pte_t e) {
    if (!drop_markers && fmt.is_guard_marker(e)) return;  // zap_nonpresent_ptes
    pt.set(ref, 0);
    tlb.track(va, va + PAGE_SIZE);
    if (!fmt.present(e)) return;
    const pfn_t pfn = fmt.pfn(e);
    if (pfn == phys.zero_pfn()) return;
    // Only a file page's dirtiness needs keeping (zap_present_folio_ptes): an anonymous
    // page is swap-backed anyway, and a lazy-free one must not be redirtied by a zap.
    if (fmt.dirty(e) && !(phys.desc(pfn).flags & PG_anon)) phys.desc(pfn).flags |= PG_dirty;
    page_remove_rmap(mm, pfn);
    tlb.remove_page(pfn, va);
  });
}

void unmap_vmas(MmuGather& tlb, std::span<Vma* const> vmas, vaddr_t start, vaddr_t end) {
  for (Vma* vma : vmas) {
    const vaddr_t s = std::max(start, vma->vm_start);
    const vaddr_t e = std::min(end, vma->vm_end);
    if (s < e) unmap_page_range(tlb, *vma, s, e);
  }
}

std::vector<Vma*> vmas_below(const Mm& mm, const Vma* first, vaddr_t tree_max) {
  std::vector<Vma*> out;
  if (!first) return out;
  // tree_max 0 means the top of the address space: the index wraps on purpose.
  for (const auto& e : mm.mm_mt.entries(first->vm_start, tree_max - 1)) {
    if (MapleTree::is_zero_entry(e.value)) break;
    out.push_back(static_cast<Vma*>(e.value));
  }
  return out;
}

bool unmap_region_limits(Mm& mm, std::span<Vma* const> vmas, vaddr_t vma_min, vaddr_t vma_max,
                         vaddr_t floor, vaddr_t ceiling, vaddr_t tree_max) {
  if (vmas.empty()) return true;
  CallFrame frame(mm.pt(), "unmap_region");
  MmuGather tlb(mm.pt(), &mm.tlb());
  unmap_vmas(tlb, vmas, vma_min, vma_max);
  // free_pgtables walks only the VMAs below tree_max (0: the top, wrapping on purpose).
  std::vector<Vma*> pg;
  for (Vma* v : vmas)
    if (v->vm_start <= tree_max - 1) pg.push_back(v);
  const bool sane = free_pgtables(tlb, pg, floor, ceiling, tree_max);
  tlb.finish();
  return sane;
}

bool unmap_region(Mm& mm, std::span<Vma* const> vmas, vaddr_t vma_min, vaddr_t vma_max,
                  vaddr_t pg_max, const Vma* prev, const Vma* next) {
  const ArchParams& ap = mm.params();
  return unmap_region_limits(mm, vmas, vma_min, vma_max,
                             prev ? prev->vm_end : ap.first_user_address,
                             next ? next->vm_start : ap.user_pgtables_ceiling, pg_max);
}

void mm_free_in_use(Mm& mm, FreedInUseTable& rec, MmuGather& tlb) {
  for (LiveEntry& e : rec.entries) {
    if (e.level != Level::Pte) continue;
    if (const Vma* v = mm.vma_lookup(e.va)) {
      const std::string name = maps_name(mm, *v);
      e.owner = fmt::format("vma {:#x}-{:#x} {}{}{}", v->vm_start, v->vm_end,
                            vm_flags_perm_string(v->vm_flags), name.empty() ? "" : " ", name);
    } else if (const ArchMapping* a = mm.pt().arch_mapping_at(e.va)) {
      e.owner = fmt::format("arch mapping {} (no VMA)", a->name);
    } else {
      e.owner = "no VMA";
    }
  }
  // The table is still reachable: each VMA it maps lets its pages go the normal way.
  const vaddr_t last = rec.end - 1;
  for (Vma* v = mm.find_vma(rec.start); v && v->vm_start <= last; v = mm.vma_next(*v))
    unmap_page_range(tlb, *v, std::max(rec.start, v->vm_start),
                     v->vm_end - 1 > last ? last + 1 : v->vm_end);
  Machine& m = mm.machine();
  m.freed_in_use.push_back(rec);
  if (m.on_freed_in_use) m.on_freed_in_use(rec);
}

void zap_page_range_single(Vma& vma, vaddr_t start, vaddr_t end) {
  Mm& mm = *vma.vm_mm;
  MmuGather tlb(mm.pt(), &mm.tlb());
  unmap_page_range(tlb, vma, std::max(start, vma.vm_start), std::min(end, vma.vm_end),
                   /*drop_markers=*/false);
  tlb.finish();
}

}  // namespace mmemu
