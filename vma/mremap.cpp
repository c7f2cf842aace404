// mremap(2) as Linux 6.18 does it: shrink in place, grow in place (merging with the VMA after
// it when it can), or move — the page-table entries go to the new place (move_page_tables),
// the frames stay the same, and the moved VMA keeps its anon_vma and page offset so rmap
// still finds every page. MREMAP_FIXED, MREMAP_DONTUNMAP, and the multi-VMA move of 6.17+.
#include <linux/mman.h>
#include <sys/mman.h>

#include <algorithm>

#include "vma/anon_vma.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"
#include "vma/overcommit.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

enum class RemapType : std::uint8_t { NoResize, Shrink, Expand };

// vma_remap_struct: the request, adjusted as the operation goes.
struct Remap {
  vaddr_t addr;
  std::uint64_t old_len;
  std::uint64_t new_len;
  int flags;
  vaddr_t new_addr;
  Vma* vma = nullptr;
  std::uint64_t delta = 0;
  RemapType type = RemapType::NoResize;
  bool populate_expand = false;  // a locked VMA grew: fault the new part in afterwards
};

bool implies_new_addr(const Remap& r) {
  return (r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0;
}

std::uint64_t pages_of(std::uint64_t bytes) {
  return bytes >> PAGE_SHIFT;
}

// check_mremap_params: everything that can be said without looking at a VMA.
Result<void> check_mremap_params(const Mm& mm, Remap& r) {
  if (r.flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) return fail(EINVAL);
  if (!page_aligned(r.addr)) return fail(EINVAL);
  // PAGE_ALIGN as the kernel does it: a huge length wraps (and is caught below or later).
  r.old_len = page_align_up(r.old_len);
  r.new_len = page_align_up(r.new_len);
  if (!r.new_len) return fail(EINVAL);
  if (r.new_len > mm.task_size) return fail(EINVAL);
  if (!implies_new_addr(r)) return {};
  if (r.new_addr > mm.task_size - r.new_len) return fail(EINVAL);
  if (!page_aligned(r.new_addr)) return fail(EINVAL);
  if (!(r.flags & MREMAP_MAYMOVE)) return fail(EINVAL);
  if ((r.flags & MREMAP_DONTUNMAP) && r.old_len != r.new_len) return fail(EINVAL);
  if (r.addr + r.old_len > r.new_addr && r.new_addr + r.new_len > r.addr) return fail(EINVAL);
  // Moving may split both the source and the destination's occupant in three.
  if (mm.map_count + 2 >= kMaxMapCount - 3) return fail(ENOMEM);
  return {};
}

// check_prep_vma: the checks that need the VMA at addr.
Result<void> check_prep_vma(const Mm& mm, Remap& r) {
  if (!r.vma) return fail(EFAULT);
  if (!can_modify_vma(*r.vma)) return fail(EPERM);  // a sealed VMA is never remapped
  r.delta = r.old_len > r.new_len ? r.old_len - r.new_len : r.new_len - r.old_len;
  r.type = r.delta == 0            ? RemapType::NoResize
           : r.old_len > r.new_len ? RemapType::Shrink
                                   : RemapType::Expand;
  if (!implies_new_addr(r)) r.new_addr = r.addr;
  // Below only matters when something is mapped anew.
  if (r.type != RemapType::Expand && !implies_new_addr(r)) return {};
  const Vma& vma = *r.vma;
  // old_len 0 duplicates a shared mapping; a private one cannot be duplicated.
  if (!r.old_len && !(vma.vm_flags & (VM_SHARED | VM_MAYSHARE))) return fail(EINVAL);
  if ((r.flags & MREMAP_DONTUNMAP) && (vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP)))
    return fail(EINVAL);
  // Across a VMA boundary; a shrink may cross one in the part it unmaps.
  const std::uint64_t kept = r.type == RemapType::Shrink ? r.new_len : r.old_len;
  if (kept > vma.vm_end - r.addr) return fail(EFAULT);
  if (r.new_len <= r.old_len) return {};
  if (vma.vm_flags & VM_LOCKED) r.populate_expand = true;
  const std::uint64_t pgoff = vma.vm_pgoff + pages_of(r.addr - vma.vm_start);
  if (pgoff + pages_of(r.new_len) < pgoff) return fail(EINVAL);
  if (vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP)) return fail(EFAULT);
  if (!mlock_future_ok(mm, vma.vm_flags, r.delta)) return fail(EAGAIN);
  if (!may_expand_vm(mm, vma.vm_flags, pages_of(r.delta))) return fail(ENOMEM);
  return {};
}

// The part of [old_addr, old_end) up to the next `size` boundary of both the source and the
// destination (get_extent).
std::uint64_t get_extent(vaddr_t old_addr, vaddr_t old_end, vaddr_t new_addr, std::uint64_t size) {
  const vaddr_t mask = ~(size - 1);
  std::uint64_t extent = ((old_addr + size) & mask) - old_addr;  // wraps harmlessly at the top
  extent = std::min(extent, old_end - old_addr);
  return std::min(extent, ((new_addr + size) & mask) - new_addr);
}

// move_normal_pud / move_normal_pmd: the entry of the table at `level` covering old_addr
// (pointing at a whole PMD or PTE table) moves to the same slot for new_addr, if that slot is
// empty. ENOMEM if the destination's tables cannot be allocated; false if the slot is taken.
Result<bool> move_table_entry(Mm& mm, vaddr_t old_addr, vaddr_t new_addr, Level level) {
  PageTable& pt = mm.pt();
  const PteRef from{*pt.table_for(old_addr, level), table_index(old_addr, level)};
  auto to_table = pt.alloc_table(new_addr, level);
  if (!to_table) return std::unexpected(to_table.error());
  const PteRef to{*to_table, table_index(new_addr, level)};
  if (!mm.fmt().none(pt.get(to))) return false;
  pt.set(to, pt.get(from));
  pt.set(from, 0);
  return true;
}

// can_align_down: moving from addr & mask instead of addr is safe when addr starts its VMA
// and nothing is mapped between the aligned address and it.
bool can_align_down(const Mm& mm, const Vma& vma, vaddr_t addr) {
  if (vma.vm_start != addr) return false;
  return !mm.find_vma_intersection(addr & PMD_MASK, vma.vm_start);
}

// move_page_tables: moves what maps [old_addr, old_addr + len) to new_addr — whole PMD tables
// (1 GiB) or PTE tables (2 MiB) where source and destination line up on those boundaries
// (CONFIG_HAVE_MOVE_PUD/PMD, both set on x86-64 and arm64), single entries elsewhere. The
// frames do not change, nor their map counts; source tables left empty are freed by munmap.
// Returns the bytes of the range dealt with: len, or less when a destination table could not
// be allocated.
std::uint64_t move_page_tables(Mm& mm, const Vma& old_vma, const Vma& new_vma, vaddr_t old_addr,
                               vaddr_t new_addr, std::uint64_t len) {
  if (!len) return 0;
  const vaddr_t orig = old_addr;
  const vaddr_t old_end = old_addr + len;
  PageTable& pt = mm.pt();
  const PteFormat& fmt = mm.fmt();
  // try_realign_addr: a range that starts inside a PMD but reaches its end, at the same offset
  // on both sides with nothing mapped below it, moves from the PMD boundary.
  const vaddr_t old_align = old_addr & ~PMD_MASK;
  if (old_align && old_align == (new_addr & ~PMD_MASK) && len >= PMD_SIZE - old_align &&
      can_align_down(mm, old_vma, old_addr) && can_align_down(mm, new_vma, new_addr)) {
    old_addr &= PMD_MASK;
    new_addr &= PMD_MASK;
  }
  std::uint64_t extent = 0;
  for (; old_addr < old_end; old_addr += extent, new_addr += extent) {
    extent = get_extent(old_addr, old_end, new_addr, PUD_SIZE);
    const auto pud_table = pt.table_for(old_addr, Level::Pud);
    if (!pud_table || fmt.none(pt.get({*pud_table, table_index(old_addr, Level::Pud)}))) continue;
    if (extent == PUD_SIZE) {
      auto moved = move_table_entry(mm, old_addr, new_addr, Level::Pud);
      if (!moved) break;
      if (*moved) {
        mm.tlb().flush_range(old_addr, old_addr + PUD_SIZE);
        continue;
      }
    }
    extent = get_extent(old_addr, old_end, new_addr, PMD_SIZE);
    const auto pmd_table = pt.table_for(old_addr, Level::Pmd);
    if (!pmd_table || fmt.none(pt.get({*pmd_table, table_index(old_addr, Level::Pmd)}))) continue;
    if (extent == PMD_SIZE) {
      auto moved = move_table_entry(mm, old_addr, new_addr, Level::Pmd);
      if (!moved) break;
      if (*moved) {
        mm.tlb().flush_range(old_addr, old_addr + PMD_SIZE);
        continue;
      }
    }
    // move_ptes: entry by entry within one source and one destination PTE table.
    auto new_pte = pt.alloc_table(new_addr, Level::Pte);
    if (!new_pte) break;
    const pfn_t old_pte = *pt.table_for(old_addr, Level::Pte);
    bool present = false;
    for (std::uint64_t off = 0; off < extent; off += PAGE_SIZE) {
      const PteRef from{old_pte, table_index(old_addr + off, Level::Pte)};
      const pte_t e = pt.get(from);
      if (fmt.none(e)) continue;
      pt.set(from, 0);
      pt.set({*new_pte, table_index(new_addr + off, Level::Pte)}, e);
      present = present || fmt.present(e);
    }
    // The old translations must not outlive the move.
    if (present) mm.tlb().flush_range(old_addr, old_addr + extent);
  }
  return old_addr < orig ? 0 : std::min(old_addr, old_end) - orig;
}

// copy_vma: the VMA that will map [addr, addr + len) with vma's properties and page offset
// pgoff — a neighbour grown over it when they can merge, else a copy linked to the same
// anon_vmas. vma is updated when the source itself took part in the merge.
Result<Vma*> copy_vma(Mm& mm, Vma*& vma, vaddr_t addr, std::uint64_t len, std::uint64_t pgoff) {
  const vaddr_t vma_start = vma->vm_start;
  // An anonymous VMA with no page yet may take the offset of its new place, so it can merge.
  if (vma->is_anonymous() && !vma->anon_vma) pgoff = addr >> PAGE_SHIFT;
  auto merged = vma_merge_new_range(mm, addr, addr + len, vma->vm_flags, vma->vm_file, pgoff,
                                    vma->anon_vma, vma);
  if (!merged) return merged;
  if (Vma* nv = *merged) {
    if (vma_start >= nv->vm_start && vma_start < nv->vm_end) vma = nv;
    return nv;
  }
  auto dup = vm_area_dup(*vma);
  if (!dup) return dup;
  Vma* nv = *dup;
  nv->vm_start = addr;
  nv->vm_end = addr + len;
  nv->vm_pgoff = pgoff;
  if (auto r = anon_vma_clone(*nv, *vma); !r) {
    vm_area_free(nv);
    return std::unexpected(r.error());
  }
  if (auto r = vma_link(mm, *nv); !r) {
    unlink_anon_vmas(*nv);
    vm_area_free(nv);
    return std::unexpected(r.error());
  }
  return nv;
}

// dontunmap_complete: the source stays mapped (now empty where it was moved from) but is no
// longer locked; if all of it moved, it no longer needs its anon_vmas.
void dontunmap_complete(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, const Vma* new_vma) {
  const bool was_locked = (vma.vm_flags & VM_LOCKED) != 0;
  vma.vm_flags &= ~VM_LOCKED_MASK;
  if (was_locked) {
    // Linux 6.18 clears the flags without touching locked_vm, so VmLck keeps the old VMA's
    // size for good (measured). mmemu keeps locked_vm equal to the locked VMAs' size.
    mm.locked_vm -= vma.pages();
    mlock_vma_pages_range(vma, vma.vm_start, vma.vm_end);
  }
  if (new_vma != &vma && start == vma.vm_start && end == vma.vm_end) unlink_anon_vmas(vma);
}

// move_vma: copy the VMA to r.new_addr, move the entries, then unmap the source (or, with
// MREMAP_DONTUNMAP, leave it). If the entries cannot all be moved, they are moved back and
// the new copy is unmapped instead: ENOMEM with the source intact.
// vrm_calc_charge: an accounted VMA is charged for what the operation adds — the whole new
// length when the source stays (MREMAP_DONTUNMAP), else the size difference.
Result<void> vrm_calc_charge(const Mm& mm, const Remap& r) {
  if (!(r.vma->vm_flags & VM_ACCOUNT)) return {};
  const std::uint64_t bytes = (r.flags & MREMAP_DONTUNMAP) ? r.new_len : r.delta;
  return vm_enough_memory(mm, pages_of(bytes));
}

Result<vaddr_t> move_vma(Mm& mm, Remap& r) {
  if (mm.map_count >= kMaxMapCount - 3) return fail(ENOMEM);
  if (auto e = vrm_calc_charge(mm, r); !e) return std::unexpected(e.error());
  Vma* vma = r.vma;
  const std::uint64_t new_pgoff = vma->vm_pgoff + pages_of(r.addr - vma->vm_start);
  auto copied = copy_vma(mm, vma, r.new_addr, r.new_len, new_pgoff);
  if (!copied) return fail(ENOMEM);
  Vma* new_vma = *copied;
  r.vma = vma;
  const std::uint64_t moved = move_page_tables(mm, *vma, *new_vma, r.addr, r.new_addr, r.old_len);
  const bool failed = moved < r.old_len;
  if (failed) {
    // The source tables still exist, so moving back cannot fail.
    (void)move_page_tables(mm, *new_vma, *vma, r.new_addr, r.addr, moved);
    r.vma = new_vma;
    r.old_len = r.new_len;
    r.addr = r.new_addr;
  }
  // The new pages are counted now; unmapping the old ones (or the new ones) uncounts them.
  const vm_flags_t flags = r.vma->vm_flags;
  vm_stat_account(mm, flags, static_cast<std::int64_t>(pages_of(r.new_len)));
  if (flags & VM_LOCKED) mm.locked_vm += pages_of(r.new_len);
  if (!failed && (r.flags & MREMAP_DONTUNMAP)) {
    dontunmap_complete(mm, *vma, r.addr, r.addr + r.old_len, new_vma);
  } else {
    // Best effort, as in the kernel: if the split fails both stay mapped, counted as such.
    (void)do_munmap(mm, r.addr, r.old_len);
  }
  if (failed) return fail(ENOMEM);
  return r.new_addr;
}

// vrm_set_new_addr: where the move goes (MREMAP_FIXED exactly, MREMAP_DONTUNMAP as a hint).
Result<void> set_new_addr(Mm& mm, Remap& r) {
  const Vma& vma = *r.vma;
  const std::uint64_t pgoff = vma.vm_pgoff + pages_of(r.addr - vma.vm_start);
  int map_flags = 0;
  if (r.flags & MREMAP_FIXED) map_flags |= MAP_FIXED;
  if (vma.vm_flags & VM_MAYSHARE) map_flags |= MAP_SHARED;
  auto a = get_unmapped_area(mm, vma.vm_file, implies_new_addr(r) ? r.new_addr : 0, r.new_len,
                             pgoff, map_flags);
  if (!a) return std::unexpected(a.error());
  r.new_addr = *a;
  return {};
}

Result<void> shrink_vma(Mm& mm, Remap& r) {
  return do_munmap(mm, r.addr + r.new_len, r.delta);
}

// mremap_to: MREMAP_FIXED / MREMAP_DONTUNMAP — always a move.
Result<vaddr_t> mremap_to(Mm& mm, Remap& r) {
  if (r.flags & MREMAP_FIXED) {
    if (auto e = do_munmap(mm, r.new_addr, r.new_len); !e) return std::unexpected(e.error());
    // Moving part of a VMA elsewhere inside itself replaced it: look it up again.
    r.vma = mm.vma_lookup(r.addr);
    if (!r.vma) return fail(EFAULT);
  }
  if (r.type == RemapType::Shrink) {
    if (auto e = shrink_vma(mm, r); !e) return std::unexpected(e.error());
    r.vma = mm.vma_lookup(r.addr);
    if (!r.vma) return fail(EFAULT);
    r.old_len = r.new_len;
  }
  // The source stays mapped: the whole new length is added.
  if ((r.flags & MREMAP_DONTUNMAP) && !may_expand_vm(mm, r.vma->vm_flags, pages_of(r.old_len)))
    return fail(ENOMEM);
  if (auto e = set_new_addr(mm, r); !e) return std::unexpected(e.error());
  return move_vma(mm, r);
}

// vma_expandable: nothing mapped in the next delta bytes and still inside the task.
bool vma_expandable(Mm& mm, const Vma& vma, std::uint64_t delta) {
  const vaddr_t end = vma.vm_end + delta;
  if (end < vma.vm_end) return false;
  if (mm.find_vma_intersection(vma.vm_end, end)) return false;
  return get_unmapped_area(mm, nullptr, vma.vm_start, end - vma.vm_start, 0, MAP_FIXED).has_value();
}

Result<vaddr_t> expand_vma(Mm& mm, Remap& r) {
  Vma& vma = *r.vma;
  if (vma.vm_end - r.addr == r.old_len && vma_expandable(mm, vma, r.delta)) {
    if (auto e = vrm_calc_charge(mm, r); !e) return std::unexpected(e.error());
    // vma_merge_extend: the new tail merges with vma (and with the next VMA if it then
    // touches it and is compatible).
    auto merged = vma_merge_new_range(mm, vma.vm_end, vma.vm_end + r.delta, vma.vm_flags,
                                      vma.vm_file, vma.vm_pgoff + vma.pages(), vma.anon_vma);
    if (!merged || !*merged) return fail(ENOMEM);
    r.vma = *merged;
    vm_stat_account(mm, r.vma->vm_flags, static_cast<std::int64_t>(pages_of(r.delta)));
    if (r.vma->vm_flags & VM_LOCKED) mm.locked_vm += pages_of(r.delta);
    return r.addr;
  }
  if (!(r.flags & MREMAP_MAYMOVE)) return fail(ENOMEM);
  if (auto e = set_new_addr(mm, r); !e) return std::unexpected(e.error());
  return move_vma(mm, r);
}

// mremap_at: no new address was asked for — resize in place, or move if allowed to.
Result<vaddr_t> mremap_at(Mm& mm, Remap& r) {
  switch (r.type) {
    case RemapType::NoResize:
      return r.addr;
    case RemapType::Shrink:
      if (auto e = shrink_vma(mm, r); !e) return std::unexpected(e.error());
      return r.addr;
    case RemapType::Expand:
      return expand_vma(mm, r);
  }
  return fail(EINVAL);
}

// remap_move: MREMAP_FIXED with old_len == new_len moves every VMA of the range, keeping the
// gaps between them. The range may not start in a gap.
Result<vaddr_t> remap_move(Mm& mm, const Remap& req) {
  const vaddr_t start = req.addr;
  const vaddr_t end = req.addr + req.old_len;
  vaddr_t target = req.new_addr;
  Result<vaddr_t> res = fail(EFAULT);
  bool seen = false;
  vaddr_t last_end = 0;
  for (Vma* v = mm.find_vma_intersection(start, end); v;) {
    const vaddr_t piece = std::max(v->vm_start, start);
    const std::uint64_t len = std::min(end, v->vm_end) - piece;
    if (!seen && start < v->vm_start) return fail(EFAULT);
    const std::uint64_t offset = seen ? v->vm_start - last_end : 0;
    last_end = v->vm_end;
    Remap r{piece, len, len, req.flags, target + offset};
    r.vma = v;
    if (auto e = check_prep_vma(mm, r); !e) return std::unexpected(e.error());
    auto moved = mremap_to(mm, r);
    if (!moved) return moved;
    if (!seen) res = *moved;
    seen = true;
    target = *moved + len;
    // On after the source VMA as it was (with DONTUNMAP it is still there).
    v = mm.find_vma_intersection(last_end, end);
  }
  return res;
}

}  // namespace

Result<vaddr_t> do_mremap(Mm& mm, vaddr_t old_addr, std::uint64_t old_len, std::uint64_t new_len,
                          int flags, vaddr_t new_addr) {
  Remap r{old_addr, old_len, new_len, flags, new_addr};
  CallFrame frame(mm.pt(), "mremap");
  if (auto e = check_mremap_params(mm, r); !e) return std::unexpected(e.error());
  if ((r.flags & MREMAP_FIXED) && r.old_len == r.new_len) return remap_move(mm, r);
  r.vma = mm.vma_lookup(r.addr);
  if (auto e = check_prep_vma(mm, r); !e) return std::unexpected(e.error());
  auto res = implies_new_addr(r) ? mremap_to(mm, r) : mremap_at(mm, r);
  // A locked mapping that grew gets its new part faulted in, as mlock promises.
  if (res && r.populate_expand)
    (void)mlock_populate(mm, r.new_addr + r.old_len, r.delta, /*ignore_errors=*/true);
  return res;
}

}  // namespace mmemu
