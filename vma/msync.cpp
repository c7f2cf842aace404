// msync(2): argument checks, ENOMEM for unmapped parts, EBUSY for MS_INVALIDATE over locked
// memory. Writing back is a no-op: mmemu's shared file mappings are shmem, which has no
// backing store to write to.
#include <sys/mman.h>

#include "vma/mm_syscalls.hpp"

namespace mmemu {

Result<void> do_msync(Mm& mm, vaddr_t start, std::uint64_t len, int flags) {
  if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return fail(EINVAL);
  if (!page_aligned(start)) return fail(EINVAL);
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return fail(EINVAL);
  len = page_align_up(len);  // wraps to 0 for a huge length: then nothing to do, as on Linux
  const vaddr_t end = start + len;
  if (end < start) return fail(ENOMEM);
  if (end == start) return {};
  // Unmapped parts are skipped but reported; with plain MS_ASYNC there is nothing to do after
  // the first one.
  Result<void> unmapped_error;
  const Vma* vma = mm.find_vma(start);
  for (;;) {
    if (!vma) return fail(ENOMEM);
    if (start < vma->vm_start) {
      if (flags == MS_ASYNC) return fail(ENOMEM);
      start = vma->vm_start;
      if (start >= end) return fail(ENOMEM);
      unmapped_error = fail(ENOMEM);
    }
    if ((flags & MS_INVALIDATE) && (vma->vm_flags & VM_LOCKED)) return fail(EBUSY);
    start = vma->vm_end;
    if (start >= end) return unmapped_error;
    vma = mm.find_vma(start);
  }
}

}  // namespace mmemu
