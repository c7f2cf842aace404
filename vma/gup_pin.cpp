#include "vma/gup_pin.hpp"

#include "mmu/walker.hpp"
#include "vma/fault.hpp"

namespace mmemu {

namespace {

// check_vma_flags: what get_user_pages refuses before faulting anything.
bool vma_allows(const Vma& vma, bool write) {
  if (vma.vm_flags & (VM_IO | VM_PFNMAP)) return false;
  if (write) return (vma.vm_flags & VM_WRITE) != 0;
  return (vma.vm_flags & VM_READ) != 0;
}

// follow_page + faultin_page: the walk does not touch the accessed/dirty bits (FOLL_TOUCH
// marks the frame instead); only a fault, when one is needed, installs a young entry.
Result<pfn_t> follow_or_fault(Mm& mm, vaddr_t addr, bool write) {
  const Access acc = write ? Access::Write : Access::Read;
  for (int round = 0; round < 3; ++round) {
    if (auto t = walk(mm.pt(), addr, acc, /*set_ad=*/false)) return t->pfn;
    const FaultResult r = handle_mm_fault(mm, addr, acc);
    if (r == FaultResult::Oom) return fail(ENOMEM);
    if (r != FaultResult::Ok) return fail(EFAULT);
  }
  return fail(EFAULT);
}

}  // namespace

Result<std::vector<pfn_t>> pin_user_pages(Mm& mm, vaddr_t start, std::size_t nr_pages,
                                          unsigned gup_flags) {
  const bool write = (gup_flags & FOLL_WRITE) != 0;
  PhysMem& phys = mm.phys();
  std::vector<pfn_t> pinned;
  vaddr_t addr = page_align_down(start);
  for (std::size_t i = 0; i < nr_pages; ++i, addr += PAGE_SIZE) {
    Result<pfn_t> pfn = fail(EFAULT);
    if (const Vma* vma = mm.vma_lookup(addr); vma && vma_allows(*vma, write))
      pfn = follow_or_fault(mm, addr, write);
    if (!pfn) {
      if (pinned.empty()) return std::unexpected(pfn.error());
      break;
    }
    PageDesc& d = phys.desc(*pfn);
    if (!(d.flags & PG_zero)) {  // the zero page is never pinned for real
      phys.get_page(*pfn);
      ++d.pincount;
      if (write) d.flags |= PG_dirty;
    }
    pinned.push_back(*pfn);
  }
  return pinned;
}

Result<std::vector<pfn_t>> pin_user_pages_fast(Mm& mm, vaddr_t start, std::size_t nr_pages,
                                               unsigned gup_flags) {
  const bool write = (gup_flags & FOLL_WRITE) != 0;
  PhysMem& phys = mm.phys();
  std::vector<pfn_t> pinned;
  vaddr_t addr = page_align_down(start);
  for (; pinned.size() < nr_pages; addr += PAGE_SIZE) {
    const Vma* vma = mm.vma_lookup(addr);
    if (!vma || !vma_allows(*vma, write)) break;
    const auto t = walk(mm.pt(), addr, write ? Access::Write : Access::Read, /*set_ad=*/false);
    if (!t || (phys.desc(t->pfn).flags & PG_zero)) break;
    phys.get_page(t->pfn);
    ++phys.desc(t->pfn).pincount;
    pinned.push_back(t->pfn);
  }
  if (pinned.size() == nr_pages) return pinned;
  auto rest = pin_user_pages(mm, addr, nr_pages - pinned.size(), gup_flags);
  if (!rest) {
    if (pinned.empty()) return rest;
    return pinned;
  }
  pinned.insert(pinned.end(), rest->begin(), rest->end());
  return pinned;
}

void unpin_user_pages(PhysMem& phys, std::span<const pfn_t> pages, bool make_dirty) {
  for (pfn_t p : pages) {
    PageDesc& d = phys.desc(p);
    if (d.flags & PG_zero) continue;
    if (make_dirty) d.flags |= PG_dirty;
    --d.pincount;
    phys.put_page(p);
  }
}

}  // namespace mmemu
