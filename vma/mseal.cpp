#include "vma/mseal.hpp"

#include <linux/mman.h>
#include <sys/mman.h>

#include <algorithm>

#include "vma/mm_syscalls.hpp"
#include "vma/pkeys.hpp"
#include "vma/vma_ops.hpp"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace mmemu {

namespace {

// is_discard (mm/madvise.c): the advice that throws data away or keeps a child from seeing it.
bool is_discard(int behavior) {
  switch (behavior) {
    case MADV_FREE:
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED:
    case MADV_REMOVE:
    case MADV_DONTFORK:
    case MADV_WIPEONFORK:
    case MADV_GUARD_INSTALL:
      return true;
    default:
      return false;
  }
}

// range_contains_unmapped: a gap anywhere in [start, end).
bool range_contains_unmapped(Mm& mm, vaddr_t start, vaddr_t end) {
  vaddr_t prev_end = start;
  for (Vma* v = mm.find_vma_intersection(start, end); v && v->vm_start < end; v = mm.vma_next(*v)) {
    if (v->vm_start > prev_end) return true;
    prev_end = v->vm_end;
  }
  return prev_end < end;
}

// mseal_apply: each VMA of the range not sealed yet gets VM_SEALED on its part of the range.
Result<void> mseal_apply(Mm& mm, vaddr_t start, vaddr_t end) {
  vaddr_t cur = start;
  for (Vma* v = mm.find_vma_intersection(start, end); v && v->vm_start < end;) {
    const vaddr_t cur_end = std::min(v->vm_end, end);
    if (!(v->vm_flags & VM_SEALED)) {
      auto r = vma_modify_flags(mm, *v, cur, cur_end, v->vm_flags | VM_SEALED);
      if (!r) return std::unexpected(r.error());
      v = *r;
    }
    cur = cur_end;
    if (cur >= end) break;
    v = mm.find_vma_intersection(cur, end);
  }
  return {};
}

}  // namespace

bool can_madvise_modify(const Mm& mm, const Vma& vma, int behavior) {
  if (can_modify_vma(vma)) return true;
  if (!is_discard(behavior)) return true;
  // File mappings, private ones included, may always be discarded.
  if (vma.vm_file) return true;
  // The caller could write the memory anyway.
  if ((vma.vm_flags & VM_WRITE) && vma_pkey_permits(mm, vma, Access::Write)) return true;
  return false;
}

Result<void> do_mseal(Mm& mm, vaddr_t start, std::uint64_t len_in, std::uint64_t flags) {
  if (flags) return fail(EINVAL);
  if (!page_aligned(start)) return fail(EINVAL);
  const std::uint64_t len = page_align_up(len_in);
  if (len_in && !len) return fail(EINVAL);  // a small negative length rounded to 0
  const vaddr_t end = start + len;
  if (end < start) return fail(EINVAL);
  if (end == start) return {};
  CallFrame frame(mm.pt(), "mseal");
  if (range_contains_unmapped(mm, start, end)) return fail(ENOMEM);
  return mseal_apply(mm, start, end);
}

}  // namespace mmemu
