#include "vma/vma_ops.hpp"

#include "vma/anon_vma.hpp"
#include "vma/file.hpp"
#include "vma/free_pgtables.hpp"

namespace mmemu {

namespace {

// Stores v over [first, last] from the reserve made by a successful preallocate().
void store_prealloced(Mm& mm, vaddr_t first, vaddr_t last, Vma* v) {
  auto r = mm.mm_mt.store_range(first, last, v);
  (void)r;  // cannot fail: the nodes were reserved
}

bool is_mergeable_vma(const Vma& v, vm_flags_t flags, const File* file) {
  return ((v.vm_flags ^ flags) & ~VM_SOFTDIRTY) == 0 && v.vm_file == file;
}

// May [.., pgoff + pglen) (from src, with anon_vma) be placed right before `next` as one VMA?
bool can_vma_merge_before(const Vma& next, vm_flags_t flags, const File* file,
                          const AnonVma* anon_vma, const Vma* src, std::uint64_t pgoff,
                          std::uint64_t pglen) {
  return is_mergeable_vma(next, flags, file) && is_mergeable_anon_vma(next, src, anon_vma) &&
         next.vm_pgoff == pgoff + pglen;
}

// May [pgoff, ..) (from src, with anon_vma) be placed right after `prev` as one VMA?
bool can_vma_merge_after(const Vma& prev, vm_flags_t flags, const File* file,
                         const AnonVma* anon_vma, const Vma* src, std::uint64_t pgoff) {
  return is_mergeable_vma(prev, flags, file) && is_mergeable_anon_vma(prev, src, anon_vma) &&
         prev.vm_pgoff + prev.pages() == pgoff;
}

// are_anon_vmas_compatible: prev and next may become one.
bool are_anon_vmas_compatible(const Vma& a, const Vma& b) {
  return !a.anon_vma || !b.anon_vma || a.anon_vma == b.anon_vma;
}

// dup_anon_vma: dst takes over pages of src, so it must reach src's anon_vma.
Result<void> dup_anon_vma(Vma& dst, const Vma& src) {
  if (!src.anon_vma || dst.anon_vma) return {};
  dst.anon_vma = src.anon_vma;
  return anon_vma_clone(dst, src);
}

// vma_is_fork_child: v has an anon_vma and is linked to more than its own (a parent's, from
// fork), so merging more into it, or it into more, would widen the parent's rmap lock.
bool vma_is_fork_child(const Vma* v) {
  return v && v->anon_vma && v->anon_vma_chain.size() != 1;
}

// The absorbed VMA leaves: its pages now belong to the VMA that grew over it.
void drop_merged(Mm& mm, Vma& survivor, Vma* gone) {
  if (gone->anon_vma)
    anon_vma_merge(survivor, *gone);
  else
    unlink_anon_vmas(*gone);
  unlink_file_vma(*gone);
  --mm.map_count;
  vm_area_free(gone);
}

}  // namespace

bool is_mergeable_anon_vma(const Vma& tgt, const Vma* src, const AnonVma* src_anon) {
  const AnonVma* tgt_anon = tgt.anon_vma;
  // dup_anon_vma from src into tgt: not if src's pages may still be shared with a parent.
  if (!tgt_anon && src_anon) return !vma_is_fork_child(src);
  // The range joins tgt and uses tgt's anon_vma: not if tgt's may be.
  if (tgt_anon && !src_anon) return !vma_is_fork_child(&tgt);
  return src_anon == tgt_anon;
}

Result<void> vma_iter_store_prealloc(Mm& mm, vaddr_t first, vaddr_t last, Vma* v) {
  if (auto r = mm.mm_mt.preallocate(); !r) return r;
  store_prealloced(mm, first, last, v);
  mm.mm_mt.release_prealloc();
  return {};
}

Result<void> vma_link(Mm& mm, Vma& vma) {
  if (auto r = vma_iter_store_prealloc(mm, vma.vm_start, vma.vm_end - 1, &vma); !r) return r;
  ++mm.map_count;
  if (vma.vm_file) vma.vm_file->i_mmap.push_back(&vma);
  return {};
}

Result<Vma*> __split_vma(Mm& mm, Vma& vma, vaddr_t addr, bool new_below) {
  auto nv = vm_area_dup(vma);
  if (!nv) return std::unexpected(nv.error());
  Vma* n = *nv;
  if (new_below) {
    n->vm_end = addr;
  } else {
    n->vm_start = addr;
    n->vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT;
  }
  if (auto r = mm.mm_mt.preallocate(); !r) {
    vm_area_free(n);
    return std::unexpected(r.error());
  }
  if (auto r = anon_vma_clone(*n, vma); !r) {
    mm.mm_mt.release_prealloc();
    vm_area_free(n);
    return std::unexpected(r.error());
  }
  if (new_below) {
    vma.vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT;
    vma.vm_start = addr;
  } else {
    vma.vm_end = addr;
  }
  store_prealloced(mm, n->vm_start, n->vm_end - 1, n);
  mm.mm_mt.release_prealloc();
  ++mm.map_count;
  if (n->vm_file) n->vm_file->i_mmap.push_back(n);
  return n;
}

Result<Vma*> split_vma(Mm& mm, Vma& vma, vaddr_t addr, bool new_below) {
  if (mm.map_count >= kMaxMapCount) return fail(ENOMEM);
  return __split_vma(mm, vma, addr, new_below);
}

Result<Vma*> vma_modify_flags(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, vm_flags_t new_flags) {
  if (vma.vm_flags == new_flags) return &vma;
  Vma* prev = mm.vma_prev(vma);
  Vma* next = mm.vma_next(vma);
  const std::uint64_t pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT);
  const std::uint64_t pglen = (end - start) >> PAGE_SHIFT;
  const bool special = (new_flags & VM_SPECIAL) != 0;
  const bool left = !special && start == vma.vm_start && prev && prev->vm_end == start &&
                    can_vma_merge_after(*prev, new_flags, vma.vm_file, vma.anon_vma, &vma, pgoff);
  bool right =
      !special && end == vma.vm_end && next && next->vm_start == end &&
      can_vma_merge_before(*next, new_flags, vma.vm_file, vma.anon_vma, &vma, pgoff, pglen);
  if (left && right && !are_anon_vmas_compatible(*prev, *next)) right = false;

  if (left || right) {
    if (auto r = mm.mm_mt.preallocate(); !r) return std::unexpected(r.error());
    Vma* keep = left ? prev : next;
    Result<void> dup = dup_anon_vma(*keep, vma);
    if (dup && left && right) dup = dup_anon_vma(*keep, *next);
    if (!dup) {
      mm.mm_mt.release_prealloc();
      return std::unexpected(dup.error());
    }
    if (left && right) {  // prev absorbs vma and next
      prev->vm_end = next->vm_end;
      store_prealloced(mm, prev->vm_start, prev->vm_end - 1, prev);
      drop_merged(mm, *prev, &vma);
      drop_merged(mm, *prev, next);
    } else if (left && end == vma.vm_end) {  // prev absorbs vma
      prev->vm_end = end;
      store_prealloced(mm, prev->vm_start, prev->vm_end - 1, prev);
      drop_merged(mm, *prev, &vma);
    } else if (left) {  // prev takes the head of vma
      prev->vm_end = end;
      vma.vm_pgoff += (end - vma.vm_start) >> PAGE_SHIFT;
      vma.vm_start = end;
      store_prealloced(mm, prev->vm_start, prev->vm_end - 1, prev);
    } else if (start == vma.vm_start) {  // next absorbs vma
      next->vm_start = vma.vm_start;
      next->vm_pgoff = vma.vm_pgoff;
      store_prealloced(mm, next->vm_start, next->vm_end - 1, next);
      drop_merged(mm, *next, &vma);
    } else {  // next takes the tail of vma
      vma.vm_end = start;
      next->vm_start = start;
      next->vm_pgoff = pgoff;
      store_prealloced(mm, next->vm_start, next->vm_end - 1, next);
    }
    mm.mm_mt.release_prealloc();
    return keep;
  }

  Vma* target = &vma;
  if (start > vma.vm_start) {
    auto r = split_vma(mm, vma, start, /*new_below=*/true);
    if (!r) return std::unexpected(r.error());
  }
  if (end < target->vm_end) {
    auto r = split_vma(mm, *target, end, /*new_below=*/false);
    if (!r) return std::unexpected(r.error());
  }
  target->vm_flags = new_flags;
  target->vm_page_prot = vm_get_page_prot(new_flags);
  return target;
}

Result<Vma*> vma_merge_new_range(Mm& mm, vaddr_t start, vaddr_t end, vm_flags_t flags, File* file,
                                 std::uint64_t pgoff, const AnonVma* anon_vma, const Vma* src) {
  if (flags & VM_SPECIAL) return nullptr;
  Vma* prev = mm.prev_of(start);
  Vma* next = mm.find_vma(start);
  const std::uint64_t pglen = (end - start) >> PAGE_SHIFT;
  const bool left = prev && prev->vm_end == start &&
                    can_vma_merge_after(*prev, flags, file, anon_vma, src, pgoff);
  bool right = next && next->vm_start == end &&
               can_vma_merge_before(*next, flags, file, anon_vma, src, pgoff, pglen);
  if (left && right && !are_anon_vmas_compatible(*prev, *next)) right = false;
  if (!left && !right) return nullptr;

  if (auto r = mm.mm_mt.preallocate(); !r) return std::unexpected(r.error());
  // vma_expand: the grown VMA must reach the anon_vmas of every page it now covers — next's
  // when it absorbs next, and the copied-from VMA's for mremap (at most one of the two does
  // anything: the first gives the target an anon_vma). Failing leaves the target as it was.
  Vma* target = left ? prev : next;
  Result<void> dup{};
  if (left && right) dup = dup_anon_vma(*prev, *next);
  if (dup && src) dup = dup_anon_vma(*target, *src);
  if (!dup) {
    mm.mm_mt.release_prealloc();
    return std::unexpected(dup.error());
  }
  if (left && right) {
    prev->vm_end = next->vm_end;
    store_prealloced(mm, prev->vm_start, prev->vm_end - 1, prev);
    drop_merged(mm, *prev, next);
  } else if (left) {
    prev->vm_end = end;
    store_prealloced(mm, prev->vm_start, prev->vm_end - 1, prev);
  } else {
    next->vm_start = start;
    next->vm_pgoff = pgoff;
    store_prealloced(mm, next->vm_start, next->vm_end - 1, next);
  }
  mm.mm_mt.release_prealloc();
  return target;
}

void remove_vma(Vma* vma) {
  unlink_anon_vmas(*vma);
  unlink_file_vma(*vma);
  vm_area_free(vma);
}

}  // namespace mmemu
