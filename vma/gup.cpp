#include "vma/gup.hpp"

#include <algorithm>

#include "mmu/walker.hpp"
#include "vma/fault.hpp"
#include "vma/pkeys.hpp"

namespace mmemu {

namespace {

// check_vma_flags: may GUP touch this VMA at all with these flags?
bool vma_allows(const Vma& vma, unsigned foll) {
  if (vma.vm_flags & (VM_IO | VM_PFNMAP)) return false;
  // arch_vma_access_permitted: GUP accesses are data accesses, which a key may refuse.
  if (!vma_pkey_permits(*vma.vm_mm, vma, (foll & FOLL_WRITE) ? Access::Write : Access::Read))
    return false;
  if (foll & FOLL_WRITE) return (vma.vm_flags & VM_WRITE) != 0;
  if (vma.vm_flags & VM_READ) return true;
  // Without VM_READ only FOLL_FORCE gets through, to a VMA that is writable. Measured on
  // Linux 6.18 (x86-64): PROT_NONE fails with EFAULT, and so does exec-only, whose
  // execute-only key refuses data access; arm64 keeps that answer.
  return (foll & FOLL_FORCE) && (vma.vm_flags & VM_WRITE) && (vma.vm_flags & VM_MAYREAD);
}

Errno fault_errno(FaultResult r) {
  return Errno{r == FaultResult::Oom ? ENOMEM : EFAULT};
}

// follow_page, falling back to faultin_page and retrying, as __get_user_pages does per page.
Result<void> faultin_one(Mm& mm, vaddr_t addr, unsigned foll) {
  const Access acc = (foll & FOLL_WRITE) ? Access::Write : Access::Read;
  for (int round = 0; round < 4; ++round) {
    auto t = walk(mm.pt(), addr, acc, /*set_ad=*/false);
    if (t) {
      // FOLL_TOUCH: writing through a clean entry dirties the page (folio_mark_dirty); the
      // entry itself is left alone.
      if ((foll & (FOLL_WRITE | FOLL_TOUCH)) == (FOLL_WRITE | FOLL_TOUCH) && !t->dirty &&
          t->pfn != mm.phys().zero_pfn())
        mm.phys().desc(t->pfn).flags |= PG_dirty;
      return {};
    }
    const FaultResult r = handle_mm_fault(mm, addr, acc);
    if (r != FaultResult::Ok) return std::unexpected(fault_errno(r));
  }
  return fail(EFAULT);
}

}  // namespace

Result<std::uint64_t> get_user_pages_range(Mm& mm, vaddr_t start, std::uint64_t nr_pages,
                                           unsigned foll) {
  const bool madv = (foll & FOLL_MADV_POPULATE) != 0;
  std::uint64_t done = 0;
  Errno err{0};
  const Vma* vma = nullptr;
  for (; done < nr_pages; ++done) {
    const vaddr_t addr = start + (done << PAGE_SHIFT);
    if (!vma || addr >= vma->vm_end) {
      // No stack expansion from here (gup_vma_lookup).
      vma = mm.vma_lookup(addr);
      if (!vma) {
        err = Errno{madv ? ENOMEM : EFAULT};
        break;
      }
      if (!vma_allows(*vma, foll)) {
        err = Errno{madv ? EINVAL : EFAULT};
        break;
      }
    }
    if (auto r = faultin_one(mm, addr, foll); !r) {
      err = r.error();
      break;
    }
  }
  if (done == 0 && nr_pages != 0) return std::unexpected(err);
  return done;
}

Result<std::uint64_t> populate_vma_page_range(Vma& vma, vaddr_t start, vaddr_t end) {
  const std::uint64_t nr = (end - start) >> PAGE_SHIFT;
  if (vma.vm_flags & VM_LOCKONFAULT) return nr;
  unsigned foll = FOLL_TOUCH;
  if ((vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE)
    foll |= FOLL_WRITE;
  else
    foll |= FOLL_FORCE;
  return get_user_pages_range(*vma.vm_mm, start, nr, foll);
}

Result<void> __mm_populate(Mm& mm, vaddr_t start, std::uint64_t len, bool ignore_errors) {
  const vaddr_t end = start + len;
  Vma* vma = nullptr;
  vaddr_t nend = start;
  for (vaddr_t nstart = start; nstart < end; nstart = nend) {
    if (!vma || nstart >= vma->vm_end)
      vma = mm.find_vma_intersection(vma ? vma->vm_end : nstart, end);
    if (!vma) break;
    nend = std::min(end, vma->vm_end);
    if (vma->vm_flags & (VM_IO | VM_PFNMAP)) continue;
    nstart = std::max(nstart, vma->vm_start);
    auto r = populate_vma_page_range(*vma, nstart, nend);
    if (!r) {
      if (ignore_errors) continue;  // on with the next VMA
      return std::unexpected(r.error());
    }
    nend = nstart + (*r << PAGE_SHIFT);
  }
  return {};
}

}  // namespace mmemu
