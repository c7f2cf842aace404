// mlock(2), mlock2(2), munlock(2), mlockall(2), munlockall(2): the RLIMIT_MEMLOCK checks of
// can_do_mlock / do_mlock, VM_LOCKED set or cleared with vma_modify_flags (merging and
// splitting), locked_vm kept in step, PG_mlocked on the frames, and population.
#include <sys/mman.h>

#include <algorithm>

#include "vma/gup.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/rmap.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

bool capable_ipc_lock(const Mm& mm) {
  return (mm.caps & CAP_IPC_LOCK_BIT) != 0;
}

// Pages of [start, start + len) already in VM_LOCKED VMAs (count_mm_mlocked_page_nr): they
// do not count again against the limit.
std::uint64_t count_mm_mlocked_page_nr(const Mm& mm, vaddr_t start, std::uint64_t len) {
  const vaddr_t end = ULONG_MAX_ADDR - len < start ? ULONG_MAX_ADDR : start + len;
  std::uint64_t count = 0;
  for (const Vma* v = mm.find_vma(start); v && v->vm_start < end; v = mm.vma_next(*v)) {
    if (!(v->vm_flags & VM_LOCKED)) continue;
    if (start > v->vm_start) count -= start - v->vm_start;
    if (end < v->vm_end) {
      count += end - v->vm_start;
      break;
    }
    count += v->vm_end - v->vm_start;
  }
  return count >> PAGE_SHIFT;
}

// Is pfn mapped by some VM_LOCKED VMA (of any mm)?
bool mapped_in_locked_vma(PhysMem& phys, pfn_t pfn) {
  bool locked = false;
  rmap_walk(phys, pfn, [&](const RmapHit& h) {
    if (h.vma->vm_flags & VM_LOCKED) locked = true;
  });
  return locked;
}

// mlock_fixup: gives [start, end) of vma the lock flags in newflags. Returns the VMA that now
// covers the range (vma itself when nothing changed).
Result<Vma*> mlock_fixup(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, vm_flags_t newflags) {
  const vm_flags_t oldflags = vma.vm_flags;
  // VM_SPECIAL and droppable mappings are never locked nor counted.
  if (newflags == oldflags || (oldflags & (VM_SPECIAL | VM_DROPPABLE))) return &vma;
  auto r = vma_modify_flags(mm, vma, start, end, newflags);
  if (!r) return r;
  Vma* v = *r;
  const auto nr = static_cast<std::int64_t>((end - start) >> PAGE_SHIFT);
  if (!(newflags & VM_LOCKED))
    mm.locked_vm -= static_cast<std::uint64_t>(nr);
  else if (!(oldflags & VM_LOCKED))
    mm.locked_vm += static_cast<std::uint64_t>(nr);
  // Locked before and after (only VM_LOCKONFAULT changed): the pages stay as they are.
  if (!((newflags & VM_LOCKED) && (oldflags & VM_LOCKED))) mlock_vma_pages_range(*v, start, end);
  return v;
}

// apply_vma_lock_flags: the lock bits of every VMA in [start, start + len) become `flags`;
// a hole is ENOMEM (what was done before it stays done).
Result<void> apply_vma_lock_flags(Mm& mm, vaddr_t start, std::uint64_t len, vm_flags_t flags) {
  const vaddr_t end = start + len;
  if (end < start) return fail(EINVAL);
  if (end == start) return {};
  Vma* vma = mm.vma_lookup(start);
  if (!vma) return fail(ENOMEM);
  vaddr_t nstart = start;
  vaddr_t tmp = vma->vm_start;
  for (Vma* v = vma; v && v->vm_start < end;) {
    if (v->vm_start != tmp) return fail(ENOMEM);
    const vm_flags_t newflags = (v->vm_flags & ~VM_LOCKED_MASK) | flags;
    tmp = std::min(v->vm_end, end);
    auto r = mlock_fixup(mm, *v, nstart, tmp, newflags);
    if (!r) return std::unexpected(r.error());
    tmp = (*r)->vm_end;
    nstart = tmp;
    v = mm.vma_next(**r);
  }
  if (tmp < end) return fail(ENOMEM);
  return {};
}

// The errno POSIX wants from a failed mlock population.
Errno mlock_posix_error(Errno e) {
  if (e.code == EFAULT) return Errno{ENOMEM};
  if (e.code == ENOMEM) return Errno{EAGAIN};
  return e;
}

void apply_mlockall_flags(Mm& mm, int flags) {
  mm.def_flags &= ~VM_LOCKED_MASK;
  if (flags & MCL_FUTURE) {
    mm.def_flags |= VM_LOCKED;
    if (flags & MCL_ONFAULT) mm.def_flags |= VM_LOCKONFAULT;
    if (!(flags & MCL_CURRENT)) return;
  }
  vm_flags_t to_add = 0;
  if (flags & MCL_CURRENT) {
    to_add |= VM_LOCKED;
    if (flags & MCL_ONFAULT) to_add |= VM_LOCKONFAULT;
  }
  for (Vma* v = mm.find_vma(0); v;) {
    const vm_flags_t newflags = (v->vm_flags & ~VM_LOCKED_MASK) | to_add;
    auto r = mlock_fixup(mm, *v, v->vm_start, v->vm_end, newflags);
    // Errors are ignored; the walk goes on after whatever now covers the VMA.
    v = mm.vma_next(r ? **r : *v);
  }
}

}  // namespace

bool can_do_mlock(const Mm& mm) {
  return mm.rlimit(Rlim::Memlock) != 0 || capable_ipc_lock(mm);
}

bool mlock_future_ok(const Mm& mm, vm_flags_t flags, std::uint64_t bytes) {
  if (!(flags & VM_LOCKED) || capable_ipc_lock(mm)) return true;
  const std::uint64_t locked = (bytes >> PAGE_SHIFT) + mm.locked_vm;
  return locked <= (mm.rlimit(Rlim::Memlock) >> PAGE_SHIFT);
}

void mlock_vma_pages_range(Vma& vma, vaddr_t start, vaddr_t end) {
  Mm& mm = *vma.vm_mm;
  PhysMem& phys = mm.phys();
  const PteFormat& fmt = mm.fmt();
  const bool lock = (vma.vm_flags & VM_LOCKED) != 0;
  mm.pt().for_each_pte(start, end, [&](vaddr_t, PteRef, pte_t e) {
    if (!fmt.present(e)) return;
    const pfn_t pfn = fmt.pfn(e);
    PageDesc& d = phys.desc(pfn);
    if (!(d.flags & (PG_anon | PG_pagecache))) return;  // the zero page, arch pages
    if (lock)
      d.flags |= PG_mlocked;
    else if ((d.flags & PG_mlocked) && !mapped_in_locked_vma(phys, pfn))
      d.flags &= ~static_cast<std::uint32_t>(PG_mlocked);
  });
}

Result<void> mlock_populate(Mm& mm, vaddr_t start, std::uint64_t len, bool ignore_errors) {
  auto r = __mm_populate(mm, start, len, ignore_errors);
  // Frames a fault mapped from the page cache do not come marked: mark what is mapped now.
  const vaddr_t end = start + len;
  for (Vma* v = mm.find_vma_intersection(start, end); v && v->vm_start < end; v = mm.vma_next(*v))
    if (v->vm_flags & VM_LOCKED)
      mlock_vma_pages_range(*v, std::max(start, v->vm_start), std::min(end, v->vm_end));
  return r;
}

Result<void> do_mlock(Mm& mm, vaddr_t start, std::uint64_t len, unsigned flags) {
  if (flags & ~static_cast<unsigned>(MLOCK_ONFAULT)) return fail(EINVAL);
  vm_flags_t vm_flags = VM_LOCKED;
  if (flags & MLOCK_ONFAULT) vm_flags |= VM_LOCKONFAULT;
  if (!can_do_mlock(mm)) return fail(EPERM);
  // The kernel's unsigned arithmetic: a length that wraps rounds to 0 and locks nothing.
  len = page_align_up(len + (start & ~PAGE_MASK));
  start &= PAGE_MASK;
  const std::uint64_t lock_limit = mm.rlimit(Rlim::Memlock) >> PAGE_SHIFT;
  std::uint64_t locked = (len >> PAGE_SHIFT) + mm.locked_vm;
  const bool capable = capable_ipc_lock(mm);
  if (locked > lock_limit && !capable) locked -= count_mm_mlocked_page_nr(mm, start, len);
  if (locked > lock_limit && !capable) return fail(ENOMEM);
  if (auto r = apply_vma_lock_flags(mm, start, len, vm_flags); !r) return r;
  if (auto r = mlock_populate(mm, start, len, /*ignore_errors=*/false); !r)
    return std::unexpected(mlock_posix_error(r.error()));
  return {};
}

Result<void> do_munlock(Mm& mm, vaddr_t start, std::uint64_t len) {
  len = page_align_up(len + (start & ~PAGE_MASK));
  start &= PAGE_MASK;
  return apply_vma_lock_flags(mm, start, len, 0);
}

Result<void> do_mlockall(Mm& mm, int flags) {
  if (!flags || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || flags == MCL_ONFAULT)
    return fail(EINVAL);
  if (!can_do_mlock(mm)) return fail(EPERM);
  const std::uint64_t lock_limit = mm.rlimit(Rlim::Memlock) >> PAGE_SHIFT;
  if ((flags & MCL_CURRENT) && mm.total_vm > lock_limit && !capable_ipc_lock(mm))
    return fail(ENOMEM);
  apply_mlockall_flags(mm, flags);
  if (flags & MCL_CURRENT) (void)mlock_populate(mm, 0, mm.task_size, /*ignore_errors=*/true);
  return {};
}

Result<void> do_munlockall(Mm& mm) {
  apply_mlockall_flags(mm, 0);
  return {};
}

}  // namespace mmemu
