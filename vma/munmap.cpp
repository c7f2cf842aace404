// munmap(2): split the VMAs at the edges, detach the ones inside, unmap their pages and free
// the page tables nothing else needs (unmap_region with the neighbours' floor/ceiling).
#include <algorithm>
#include <optional>

#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"
#include "vma/unmap.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

// unmap_region's limits when the caller chooses them (the what-if form), instead of the
// neighbours' floor and ceiling.
struct Limits {
  vaddr_t floor, ceiling, tree_max;
};

// Returns free_pgtables' sanity check (always true with the neighbours' limits).
Result<bool> do_vmi_align_munmap(Mm& mm, Vma* vma, vaddr_t start, vaddr_t end,
                                 const std::optional<Limits>& what_if) {
  if (start > vma->vm_start) {
    // Splitting the middle out of a VMA needs one more entry.
    if (end < vma->vm_end && mm.map_count >= kMaxMapCount) return fail(ENOMEM);
    // A sealed VMA is not split only to find it cannot be unmapped.
    if (!can_modify_vma(*vma)) return fail(EPERM);
    if (auto r = __split_vma(mm, *vma, start, /*new_below=*/true); !r)
      return std::unexpected(r.error());
  }
  std::vector<Vma*> doomed;
  for (Vma* v = vma; v && v->vm_start < end; v = mm.vma_next(*v)) {
    // mseal: nothing is detached yet, so the whole munmap fails with nothing unmapped.
    if (!can_modify_vma(*v)) return fail(EPERM);
    if (v->vm_end > end) {
      if (auto r = __split_vma(mm, *v, end, /*new_below=*/false); !r)
        return std::unexpected(r.error());
    }
    doomed.push_back(v);
  }
  Vma* prev = mm.vma_prev(*doomed.front());
  Vma* next = mm.vma_next(*doomed.back());
  // Detach: the NULL store over the range may need nodes; nothing is unmapped yet on failure.
  if (auto r = mm.mm_mt.store_range(start, end - 1, nullptr); !r) return std::unexpected(r.error());
  mm.map_count -= static_cast<int>(doomed.size());
  for (Vma* v : doomed)
    if (v->vm_flags & VM_LOCKED) mm.locked_vm -= v->pages();

  const vaddr_t ceiling = next ? next->vm_start : mm.params().user_pgtables_ceiling;
  // pg_max is the ceiling itself, so free_pgtables' sanity check holds by construction.
  const bool sane = what_if ? unmap_region_limits(mm, doomed, start, end, what_if->floor,
                                                  what_if->ceiling, what_if->tree_max)
                            : unmap_region(mm, doomed, start, end, ceiling, prev, next);
  for (Vma* v : doomed) {
    vm_stat_account(mm, v->vm_flags, -static_cast<std::int64_t>(v->pages()));
    remove_vma(v);
  }
  return sane;
}

// munmap's checks and the VMA lookup, shared by both forms.
Result<bool> munmap_range(Mm& mm, vaddr_t start, std::uint64_t len,
                          const std::optional<Limits>& what_if) {
  if (!page_aligned(start) || start > mm.task_size || len > mm.task_size - start)
    return fail(EINVAL);
  const vaddr_t end = start + page_align_up(len);
  if (end == start) return fail(EINVAL);
  Vma* vma = mm.find_vma_intersection(start, end);
  if (!vma) return true;
  CallFrame frame(mm.pt(), "munmap");
  return do_vmi_align_munmap(mm, vma, start, end, what_if);
}

}  // namespace

Result<void> do_munmap(Mm& mm, vaddr_t start, std::uint64_t len) {
  if (auto r = munmap_range(mm, start, len, std::nullopt); !r) return std::unexpected(r.error());
  return {};
}

Result<bool> do_munmap_with_limits(Mm& mm, vaddr_t start, std::uint64_t len, vaddr_t floor,
                                   vaddr_t ceiling, vaddr_t tree_max) {
  return munmap_range(mm, start, len, Limits{floor, ceiling, tree_max});
}

}  // namespace mmemu
