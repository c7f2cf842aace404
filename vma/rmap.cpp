#include "vma/rmap.hpp"

#include "vma/file.hpp"

namespace mmemu {

void page_add_new_anon_rmap(Vma& vma, pfn_t pfn, vaddr_t addr) {
  PageDesc& d = vma.vm_mm->phys().desc(pfn);
  d.flags |= PG_anon;
  d.mapping = vma.anon_vma;
  d.index = vma.linear_page_index(addr);
  d.mapcount = 1;
  if (vma.vm_flags & VM_LOCKED) d.flags |= PG_mlocked;
  // A droppable page is never swap-backed: reclaim treats it as lazy-free from birth.
  if (vma.vm_flags & VM_DROPPABLE) d.flags |= PG_lazyfree;
  mm_counter_add(*vma.vm_mm, pfn, 1);
}

void page_add_rmap(Mm& mm, pfn_t pfn) {
  PageDesc& d = mm.phys().desc(pfn);
  if (d.flags & PG_zero) return;
  d.mapcount++;
  mm_counter_add(mm, pfn, 1);
}

void page_remove_rmap(Mm& mm, pfn_t pfn) {
  PageDesc& d = mm.phys().desc(pfn);
  if (d.flags & PG_zero) return;
  d.mapcount--;
  if (d.mapcount == 0) d.flags &= ~static_cast<std::uint32_t>(PG_mlocked);
  mm_counter_add(mm, pfn, -1);
}

namespace {
void check_vma(Vma* vma, std::uint64_t index, pfn_t pfn,
               const std::function<void(const RmapHit&)>& fn) {
  if (index < vma->vm_pgoff || index - vma->vm_pgoff >= vma->pages()) return;
  const vaddr_t addr = vma->vm_start + ((index - vma->vm_pgoff) << PAGE_SHIFT);
  Mm& mm = *vma->vm_mm;
  auto ref = mm.pt().lookup(addr);
  if (!ref) return;
  const pte_t e = mm.pt().get(*ref);
  if (!mm.fmt().present(e) || mm.fmt().pfn(e) != pfn) return;
  fn(RmapHit{&mm, vma, addr});
}
}  // namespace

void rmap_walk(PhysMem& phys, pfn_t pfn, const std::function<void(const RmapHit&)>& fn) {
  const PageDesc& d = phys.desc(pfn);
  if (d.flags & PG_anon) {
    auto* av = static_cast<AnonVma*>(d.mapping);
    if (!av) return;
    for (AnonVmaChain* avc : av->chains)
      check_vma(avc->vma, d.index, pfn, fn);
  } else if (d.flags & PG_pagecache) {
    auto* file = static_cast<File*>(d.mapping);
    for (Vma* vma : file->i_mmap)
      check_vma(vma, d.index, pfn, fn);
  }
}

}  // namespace mmemu
