#include "vma/exit_mmap.hpp"

#include "mmu/free_pgd_range.hpp"
#include "mmu/mmu_gather.hpp"
#include "vma/free_pgtables.hpp"
#include "vma/unmap.hpp"

namespace mmemu {

TearDown tear_down_vmas(Mm& mm, Vma* vma, vaddr_t max) {
  TearDown td;
  if (!vma) return td;
  std::vector<Vma*> doomed;
  for (const auto& e : mm.mm_mt.entries(vma->vm_start)) {
    if (MapleTree::is_zero_entry(e.value)) {
      td.met_xa_zero = true;
      break;
    }
    auto* v = static_cast<Vma*>(e.value);
    if (v->vm_end > max && !doomed.empty()) break;
    doomed.push_back(v);
  }
  for (Vma* v : doomed) {
    if (v->vm_flags & VM_ACCOUNT) td.nr_accounted += v->pages();
    vm_stat_account(mm, v->vm_flags, -static_cast<std::int64_t>(v->pages()));
    if (v->vm_flags & VM_LOCKED) mm.locked_vm -= v->pages();
    vm_area_free(v);
    ++td.count;
  }
  return td;
}

namespace {

// mmap_read_unlock ... mmap_write_lock: for a moment nobody holds the mmap lock, and a walker
// with its own way to the mm (the OOM reaper's mmgrab, an rmap walk) can take it for
// reading; on_exit_unlock runs them here. Then MMF_OOM_SKIP hides the mm from the reaper
// (its memory is gone) and the write lock is taken for free_pgtables; a reader that came
// after the bit sees it. The no-VMA path unlocks and relocks too, without the bit.
void exit_mmap_unlock_window(Mm& mm, bool unmapped) {
  if (mm.on_exit_unlock) mm.on_exit_unlock(mm);
  if (unmapped) mm.flags |= MMF_OOM_SKIP;
}

}  // namespace

ExitMmapReport exit_mmap(Mm& mm) {
  ExitMmapReport rep;
  CallFrame frame(mm.pt(), "exit_mmap");
  mm.flags |= MMF_EXITED;
  rep.map_count = mm.map_count;
  const auto first = mm.mm_mt.find(0);
  Vma* vma = nullptr;
  {
    MmuGather tlb(mm.pt(), &mm.tlb(), /*fullmm=*/true);
    if (!first || MapleTree::is_zero_entry(first->value)) {
      // Can happen when dup_mmap failed before copying anything.
      rep.empty = !first;
      rep.met_xa_zero = first.has_value();
      exit_mmap_unlock_window(mm, false);
    } else {
      vma = static_cast<Vma*>(first->value);
      const ArchParams& ap = mm.params();
      const std::vector<Vma*> all = vmas_below(mm, vma, 0);
      unmap_vmas(tlb, all, 0, ~0ULL);
      exit_mmap_unlock_window(mm, true);
      const std::vector<Vma*> pg = vmas_below(mm, vma, ap.user_pgtables_ceiling);
      // tree_max is the ceiling itself: the sanity check holds by construction.
      (void)free_pgtables(tlb, pg, ap.first_user_address, ap.user_pgtables_ceiling,
                          ap.user_pgtables_ceiling);
    }
    // Arch mappings outside VMAs are freed here and only here.
    mm.pt().unmap_arch_pages(tlb);
    // Tables above USER_PGTABLES_CEILING were kept by every free_pgtables; with the VMAs and
    // arch pages gone, the top-level slot holding the ceiling is released (pgd_free's part).
    if (const vaddr_t c = mm.params().user_pgtables_ceiling) {
      free_pgd_range(tlb, c & PGDIR_MASK, (c & PGDIR_MASK) + PGDIR_SIZE, 0, 0);
    }
    tlb.finish();
    rep.pages_freed = tlb.pages_freed();
    rep.tables_freed = tlb.tables_freed();
  }
  if (vma) {
    const TearDown td = tear_down_vmas(mm, vma, ~0ULL);
    rep.vmas_removed = td.count;
    rep.nr_accounted = td.nr_accounted;
    rep.met_xa_zero = rep.met_xa_zero || td.met_xa_zero;
  }
  mm.mm_mt.destroy();
  mm.map_count = 0;
  if (mm.on_exit_mmap) mm.on_exit_mmap(mm, rep);
  return rep;
}

}  // namespace mmemu
