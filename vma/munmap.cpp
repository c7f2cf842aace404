// munmap(2): split the VMAs at the edges, detach the ones inside, unmap their pages and free
// the page tables nothing else needs (unmap_region with the neighbours' floor/ceiling).
#include <algorithm>

#include "vma/mm_syscalls.hpp"
#include "vma/unmap.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

Result<void> do_vmi_align_munmap(Mm& mm, Vma* vma, vaddr_t start, vaddr_t end) {
  if (start > vma->vm_start) {
    // Splitting the middle out of a VMA needs one more entry.
    if (end < vma->vm_end && mm.map_count >= kMaxMapCount) return fail(ENOMEM);
    if (auto r = __split_vma(mm, *vma, start, /*new_below=*/true); !r)
      return std::unexpected(r.error());
  }
  std::vector<Vma*> doomed;
  for (Vma* v = vma; v && v->vm_start < end; v = mm.vma_next(*v)) {
    if (v->vm_end > end) {
      if (auto r = __split_vma(mm, *v, end, /*new_below=*/false); !r)
        return std::unexpected(r.error());
    }
    doomed.push_back(v);
  }
  Vma* prev = mm.vma_prev(*doomed.front());
  Vma* next = mm.vma_next(*doomed.back());
  // Detach: the NULL store over the range may need nodes; nothing is unmapped yet on failure.
  if (auto r = mm.mm_mt.store_range(start, end - 1, nullptr); !r) return r;
  mm.map_count -= static_cast<int>(doomed.size());
  for (Vma* v : doomed)
    if (v->vm_flags & VM_LOCKED) mm.locked_vm -= v->pages();

  const vaddr_t ceiling = next ? next->vm_start : mm.params().user_pgtables_ceiling;
  unmap_region(mm, doomed, start, end, ceiling, prev, next);
  for (Vma* v : doomed) {
    vm_stat_account(mm, v->vm_flags, -static_cast<std::int64_t>(v->pages()));
    remove_vma(v);
  }
  return {};
}

}  // namespace

Result<void> do_munmap(Mm& mm, vaddr_t start, std::uint64_t len) {
  if (!page_aligned(start) || start > mm.task_size || len > mm.task_size - start)
    return fail(EINVAL);
  const vaddr_t end = start + page_align_up(len);
  if (end == start) return fail(EINVAL);
  Vma* vma = mm.find_vma_intersection(start, end);
  if (!vma) return {};
  return do_vmi_align_munmap(mm, vma, start, end);
}

}  // namespace mmemu
