// madvise(2) as Linux 6.18 answers it: flag advice changes vm_flags through vma_modify_flags
// (splitting and merging), DONTNEED zaps, FREE makes anonymous pages lazily freeable,
// POPULATE_READ/WRITE fault the range in, REMOVE punches a hole in shmem. Unmapped parts of
// the range are skipped and reported as ENOMEM at the end.
//
// Accepted by Linux 6.18 but answered EINVAL here, because what they act on is not modelled:
// MADV_COLLAPSE (no transparent huge pages: no VMA qualifies), MADV_HWPOISON/SOFT_OFFLINE
// (no memory-failure handling; the host kernel here is built without it and says EINVAL
// too). MADV_GUARD_INSTALL/REMOVE are in vma/guard.cpp.
#include <linux/mman.h>
#include <sys/mman.h>

#include <algorithm>

#include "mmu/mmu_gather.hpp"
#include "vma/file.hpp"
#include "vma/guard.hpp"
#include "vma/gup.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"
#include "vma/reclaim.hpp"
#include "vma/rmap.hpp"
#include "vma/unmap.hpp"
#include "vma/vma_ops.hpp"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

namespace mmemu {

namespace {

bool madvise_behavior_valid(int behavior) {
  switch (behavior) {
    case MADV_DOFORK:
    case MADV_DONTFORK:
    case MADV_NORMAL:
    case MADV_SEQUENTIAL:
    case MADV_RANDOM:
    case MADV_REMOVE:
    case MADV_WILLNEED:
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED:
    case MADV_FREE:
    case MADV_COLD:
    case MADV_PAGEOUT:
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE:
    case MADV_MERGEABLE:
    case MADV_UNMERGEABLE:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP:
    case MADV_DODUMP:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
    case MADV_GUARD_INSTALL:
    case MADV_GUARD_REMOVE:
      return true;
    default:
      return false;
  }
}

// The result of one VMA's advice, and the VMA the walk continues after (null: look up again).
struct Visit {
  Result<void> result;
  Vma* prev = nullptr;
};

// madvise_update_vma: [start, end) of vma gets new_flags; ENOMEM becomes EAGAIN.
Visit update_vma(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, vm_flags_t new_flags) {
  if (new_flags == vma.vm_flags) return {{}, &vma};
  auto r = vma_modify_flags(mm, vma, start, end, new_flags);
  if (!r) return {fail(r.error().code == ENOMEM ? EAGAIN : r.error().code), &vma};
  return {{}, *r};
}

// madvise_free_single_vma: clean, old, lazily freeable anonymous pages.
Result<void> madvise_free(Vma& vma, vaddr_t start, vaddr_t end) {
  if (!vma.is_anonymous()) return fail(EINVAL);  // private anonymous memory only
  start = std::max(start, vma.vm_start);
  end = std::min(end, vma.vm_end);
  if (start >= end) return fail(EINVAL);
  Mm& mm = *vma.vm_mm;
  PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  PhysMem& phys = mm.phys();
  MmuGather tlb(pt, &mm.tlb());
  pt.for_each_pte(start, end, [&](vaddr_t va, PteRef ref, pte_t e) {
    if (!fmt.present(e)) return;
    const pfn_t pfn = fmt.pfn(e);
    PageDesc& d = phys.desc(pfn);
    if (!(d.flags & PG_anon)) return;  // the zero page
    if (d.flags & PG_dirty) {
      // A dirty page someone else maps too keeps its data.
      if (d.mapcount != 1) return;
      d.flags &= ~static_cast<std::uint32_t>(PG_dirty);
    }
    if (fmt.young(e) || fmt.dirty(e)) {
      pt.set(ref, fmt.mkold(fmt.mkclean(e)));
      tlb.track(va, va + PAGE_SIZE);
    }
    // folio_mark_lazyfree: not for an unevictable (mlocked) page.
    if (!(d.flags & PG_mlocked)) d.flags |= PG_lazyfree;
  });
  tlb.finish();
  return {};
}

// MADV_COLD / MADV_PAGEOUT (madvise_cold_or_pageout_pte_range): only pages no other mapping
// shares. COLD makes them old so reclaim takes them first (nothing else is visible).
// PAGEOUT reclaims them at once, used recently or not (reclaim_pages); with no swap that
// drops only the anonymous pages that are not swap-backed — lazy-free ones still clean, and
// droppable ones even dirty — while the others stay. Page-cache pages stay too: mmemu's
// reclaim does not evict the page cache.
Result<void> madvise_cold(Vma& vma, vaddr_t start, vaddr_t end, bool pageout) {
  if (vma.vm_flags & (VM_LOCKED | VM_PFNMAP)) return fail(EINVAL);  // can_madv_lru_vma
  Mm& mm = *vma.vm_mm;
  PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  PhysMem& phys = mm.phys();
  std::vector<pfn_t> isolated;
  MmuGather tlb(pt, &mm.tlb());
  pt.for_each_pte(start, end, [&](vaddr_t va, PteRef ref, pte_t e) {
    if (!fmt.present(e)) return;
    const PageDesc& d = phys.desc(fmt.pfn(e));
    if (!(d.flags & (PG_anon | PG_pagecache)) || d.mapcount != 1) return;
    if (pageout) {
      if (d.flags & PG_anon) isolated.push_back(fmt.pfn(e));
      return;
    }
    if (!fmt.young(e)) return;
    pt.set(ref, fmt.mkold(e));
    tlb.track(va, va + PAGE_SIZE);
  });
  tlb.finish();
  ReclaimReport rep;
  for (pfn_t pfn : isolated)
    (void)reclaim_lazyfree_page(phys, pfn, rep, /*ignore_references=*/true);
  return {};
}

// unmap_mapping_range for shmem hole punching: every PTE of every mapping of `file` that maps
// one of its page-cache pages with index in [first, last) is cleared (private COW copies are
// not file pages and stay).
void unmap_mapping_pages(File& file, std::uint64_t first, std::uint64_t last) {
  const std::vector<Vma*> vmas = file.i_mmap;  // copy: nothing here changes i_mmap
  for (Vma* v : vmas) {
    const std::uint64_t lo = std::max(first, v->vm_pgoff);
    const std::uint64_t hi = std::min(last, v->vm_pgoff + v->pages());
    if (lo >= hi) continue;
    Mm& mm = *v->vm_mm;
    PageTable& pt = mm.pt();
    const PteFormat& fmt = pt.fmt();
    PhysMem& phys = mm.phys();
    MmuGather tlb(pt, &mm.tlb());
    const vaddr_t s = v->vm_start + ((lo - v->vm_pgoff) << PAGE_SHIFT);
    const vaddr_t e = v->vm_start + ((hi - v->vm_pgoff) << PAGE_SHIFT);
    pt.for_each_pte(s, e, [&](vaddr_t va, PteRef ref, pte_t pte) {
      if (!fmt.present(pte)) return;
      const pfn_t pfn = fmt.pfn(pte);
      const PageDesc& d = phys.desc(pfn);
      if (!(d.flags & PG_pagecache) || d.mapping != &file) return;
      pt.set(ref, 0);
      tlb.track(va, va + PAGE_SIZE);
      page_remove_rmap(mm, pfn);
      tlb.remove_page(pfn, va);
    });
    tlb.finish();
  }
}

// madvise_remove: punch a hole in the file behind a shared writable mapping.
Result<void> madvise_remove(Vma& vma, vaddr_t start, vaddr_t end) {
  if (vma.vm_flags & VM_LOCKED) return fail(EINVAL);
  if (!vma.vm_file) return fail(EINVAL);
  if ((vma.vm_flags & (VM_SHARED | VM_MAYWRITE)) != (VM_SHARED | VM_MAYWRITE)) return fail(EACCES);
  File& file = *vma.vm_file;
  // Only shmem can punch holes here: mmemu's regular files are read-only images.
  if (!file.shmem()) return fail(EOPNOTSUPP);
  const std::uint64_t first = vma.linear_page_index(start);
  const std::uint64_t last = vma.linear_page_index(end);
  unmap_mapping_pages(file, first, last);
  for (std::uint64_t i = first; i < last; ++i)
    (void)file.evict(i);  // a page still pinned stays, as truncation leaves it to its user
  return {};
}

// madvise_willneed: read a file range into the page cache. Anonymous memory has nothing to
// read (no swap here), nor has shmem.
Visit madvise_willneed(Vma& vma, vaddr_t start, vaddr_t end) {
  if (!vma.vm_file || vma.vm_file->shmem()) return {{}, &vma};
  File& file = *vma.vm_file;
  const std::uint64_t eof = file.nr_pages();
  const std::uint64_t last = std::min(vma.linear_page_index(end), eof);
  for (std::uint64_t i = vma.linear_page_index(start); i < last; ++i)
    (void)file.find_or_read_page(i);  // readahead: failures are not reported
  return {{}, nullptr};
}

Visit madvise_vma_behavior(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, int behavior) {
  if (!can_madvise_modify(mm, vma, behavior)) return {fail(EPERM), &vma};  // mseal
  vm_flags_t new_flags = vma.vm_flags;
  switch (behavior) {
    case MADV_REMOVE:
      return {madvise_remove(vma, start, end), nullptr};
    case MADV_WILLNEED:
      return madvise_willneed(vma, start, end);
    case MADV_COLD:
    case MADV_PAGEOUT:
      return {madvise_cold(vma, start, end, behavior == MADV_PAGEOUT), &vma};
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED:
    case MADV_FREE: {
      vm_flags_t forbidden = VM_PFNMAP;
      if (behavior != MADV_DONTNEED_LOCKED) forbidden |= VM_LOCKED;
      if (vma.vm_flags & forbidden) return {fail(EINVAL), &vma};
      if (behavior == MADV_FREE) return {madvise_free(vma, start, end), &vma};
      zap_page_range_single(vma, start, end);
      return {{}, &vma};
    }
    case MADV_GUARD_INSTALL:
      return {madvise_guard_install(vma, start, end), &vma};
    case MADV_GUARD_REMOVE:
      return {madvise_guard_remove(vma, start, end), &vma};
    case MADV_NORMAL:
      new_flags &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case MADV_SEQUENTIAL:
      new_flags = (new_flags & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case MADV_RANDOM:
      new_flags = (new_flags & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
    case MADV_DONTFORK:
      new_flags |= VM_DONTCOPY;
      break;
    case MADV_DOFORK:
      if (vma.vm_flags & VM_IO) return {fail(EINVAL), &vma};
      new_flags &= ~VM_DONTCOPY;
      break;
    case MADV_WIPEONFORK:
      // Private anonymous memory only.
      if (vma.vm_file || (vma.vm_flags & VM_SHARED)) return {fail(EINVAL), &vma};
      new_flags |= VM_WIPEONFORK;
      break;
    case MADV_KEEPONFORK:
      if (vma.vm_flags & VM_DROPPABLE) return {fail(EINVAL), &vma};  // always wiped
      new_flags &= ~VM_WIPEONFORK;
      break;
    case MADV_DONTDUMP:
      new_flags |= VM_DONTDUMP;
      break;
    case MADV_DODUMP:
      if ((new_flags & VM_SPECIAL) || (vma.vm_flags & VM_DROPPABLE)) return {fail(EINVAL), &vma};
      new_flags &= ~VM_DONTDUMP;
      break;
    case MADV_MERGEABLE:
      // ksm_madvise: KSM leaves shared and special mappings alone (and says nothing).
      if (!(vma.vm_flags & (VM_SHARED | VM_MAYSHARE | VM_SPECIAL))) new_flags |= VM_MERGEABLE;
      break;
    case MADV_UNMERGEABLE:
      new_flags &= ~VM_MERGEABLE;
      break;
    case MADV_HUGEPAGE:
      new_flags = (new_flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      break;
    case MADV_NOHUGEPAGE:
      new_flags = (new_flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
      break;
    default:
      return {fail(EINVAL), &vma};
  }
  return update_vma(mm, vma, start, end, new_flags);
}

// madvise_populate: fault the range in (GUP with FOLL_MADV_POPULATE). The pages done before
// a failure stay populated.
Result<void> madvise_populate(Mm& mm, vaddr_t start, vaddr_t end, int behavior) {
  unsigned foll = FOLL_TOUCH | FOLL_MADV_POPULATE;
  if (behavior == MADV_POPULATE_WRITE) foll |= FOLL_WRITE;
  while (start < end) {
    auto done = get_user_pages_range(mm, start, (end - start) >> PAGE_SHIFT, foll);
    if (!done) return std::unexpected(done.error());  // EINVAL, EFAULT or ENOMEM
    start += *done << PAGE_SHIFT;
  }
  return {};
}

}  // namespace

Result<void> do_madvise(Mm& mm, vaddr_t start, std::uint64_t len_in, int behavior) {
  if (!madvise_behavior_valid(behavior)) return fail(EINVAL);
  if (!page_aligned(start)) return fail(EINVAL);
  const std::uint64_t len = page_align_up(len_in);
  if (len_in && !len) return fail(EINVAL);
  const vaddr_t end = start + len;
  if (end < start) return fail(EINVAL);
  if (end == start) return {};
  if (behavior == MADV_POPULATE_READ || behavior == MADV_POPULATE_WRITE)
    return madvise_populate(mm, start, end, behavior);

  // madvise_walk_vmas
  Result<void> unmapped_error;
  Vma* vma = mm.find_vma(start);
  for (;;) {
    if (!vma) return fail(ENOMEM);
    if (start < vma->vm_start) {
      unmapped_error = fail(ENOMEM);
      start = vma->vm_start;
      if (start >= end) break;
    }
    const vaddr_t tmp = std::min(vma->vm_end, end);
    Visit v = madvise_vma_behavior(mm, *vma, start, tmp, behavior);
    if (!v.result) return v.result;
    start = tmp;
    if (v.prev && start < v.prev->vm_end) start = v.prev->vm_end;
    if (start >= end) break;
    vma = mm.find_vma(v.prev ? v.prev->vm_end : start);
  }
  return unmapped_error;
}

}  // namespace mmemu
