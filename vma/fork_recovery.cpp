// The three ways dup_mmap can leave a half-copied tree for exit_mmap. The child's tree holds
// child VMAs (and NULL ranges where VM_DONTCOPY VMAs were erased) below the failure point
// `mpnt`, and the parent's own VMAs from mpnt on, which the child must never free.
#include <fmt/format.h>

#include "vma/exit_mmap.hpp"
#include "vma/fork_internal.hpp"
#include "vma/free_pgtables.hpp"
#include "vma/unmap.hpp"

namespace mmemu::fork_detail {

namespace {

void store_marker(LoopOut& lo) {
  Vma* m = lo.mpnt;
  // Exactly the range of an entry the tree already has: an in-place slot store.
  lo.mm.mm_mt.replace(m->vm_start, m->vm_end - 1, MapleTree::zero_entry());
  lo.rep.xa_zero_stored = true;
  lo.rep.xa_zero_first = m->vm_start;
  lo.rep.xa_zero_last = m->vm_end - 1;
}

}  // namespace

void recover_xa_zero(LoopOut& lo) {
  if (lo.mpnt) {
    store_marker(lo);
    lo.mm.flags |= MMF_OOM_SKIP;  // "avoid OOM iterating a broken tree"
    lo.rep.recovery_note =
        fmt::format("XA_ZERO_ENTRY stored over [{:#x}, {:#x}]; exit_mmap stops there",
                    lo.rep.xa_zero_first, lo.rep.xa_zero_last);
  } else {
    lo.rep.recovery_note = "every VMA was in the new tree: no marker, exit_mmap frees all";
  }
  lo.mm.flags |= MMF_UNSTABLE;
}

void recover_tree_max(LoopOut& lo) {
  Mm& mm = lo.mm;
  vaddr_t max = 0;
  if (mm.map_count == 0)
    max = 0;  // no VMA was written to the new tree
  else if (lo.mpnt)
    max = lo.mpnt->vm_start;  // partial copy
  else
    max = ULONG_MAX_ADDR;  // every VMA was written
  lo.rep.tree_max = max;
  mm.flags |= MMF_OOM_SKIP;  // the memory is being freed: hide the mm from the OOM killer
  if (max) {
    Vma* first = mm.find_vma(0);
    const std::vector<Vma*> vmas = vmas_below(mm, first, max);
    // As the RFC passes them: pg_max = max (ULONG_MAX when every VMA was copied) with the
    // ceiling USER_PGTABLES_CEILING. Where that ceiling is not 0 (mmemu's arm64), the sanity
    // check the review asked for fires; the tables freed are the same either way.
    CallFrame frame(mm.pt(), "dup_mmap (tree-max recovery)");
    const vaddr_t ceiling = mm.params().user_pgtables_ceiling;
    if (!unmap_region(mm, vmas, 0, max, max, nullptr, nullptr))
      lo.rep.errors.push_back(free_pgtables_warning(max, ceiling) + " (USER_PGTABLES_CEILING)");
    const TearDown td = tear_down_vmas(mm, first, max);
    lo.rep.torn_down = td.count;
    if (td.count != mm.map_count)
      lo.rep.errors.push_back(fmt::format("tear_down_vmas removed {} VMAs but map_count is {}",
                                          td.count, mm.map_count));
    lo.rep.recovery_note = fmt::format(
        "max {:#x}: unmap_region(0, max, max) and tear_down_vmas removed {} VMAs; tree "
        "destroyed before unlock",
        max, td.count);
  } else {
    lo.rep.recovery_note = "max 0: nothing was copied; tree destroyed before unlock";
  }
  mm.mm_mt.destroy();
  mm.flags |= MMF_UNSTABLE;
}

void recover_partial(LoopOut& lo) {
  Mm& mm = lo.mm;
  if (!lo.mpnt) {
    lo.rep.recovery_note = "every VMA was in the new tree: nothing to erase";
  } else {
    const vaddr_t from = lo.mpnt->vm_start;
    const std::size_t before = mm.mm_mt.count();
    // mas_store_gfp: the kernel reserves nodes for a store spanning several nodes (its
    // spanning store rewrites the path) before it writes anything. mmemu's tree would reuse
    // its old nodes, so the reservation is what makes this erase fallible, as it is there.
    Result<void> r;
    if (mm.mm_mt.height() > 1) r = mm.mm_mt.preallocate();
    if (r) r = mm.mm_mt.store_range(from, MapleTree::kMax, nullptr);
    mm.mm_mt.release_prealloc();
    if (r) {
      lo.rep.recovery_note =
          fmt::format("erased {} entries not yet copied from {:#x}; {} copied VMAs kept",
                      before - mm.mm_mt.count(), from, mm.map_count);
    } else {
      // Its own allocation failed: the tree still holds the parent's VMAs. The only store
      // that cannot fail is the marker, so partial degrades to xa-zero here.
      store_marker(lo);
      mm.flags |= MMF_OOM_SKIP;
      lo.rep.recovery_note = fmt::format(
          "erasing [{:#x}, ULONG_MAX] failed ({}): fell back to XA_ZERO_ENTRY over [{:#x}, "
          "{:#x}]",
          from, errno_name(r.error().code), lo.rep.xa_zero_first, lo.rep.xa_zero_last);
    }
  }
  // Not fully set up either way; the tree itself holds only the child's VMAs.
  mm.flags |= MMF_UNSTABLE;
}

}  // namespace mmemu::fork_detail
