#include "vma/access_remote.hpp"

#include <algorithm>
#include <cstring>

#include "mmu/walker.hpp"
#include "vma/fault.hpp"

namespace mmemu {

namespace {

bool is_cow_mapping(vm_flags_t f) {
  return (f & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}

// check_vma_flags for FOLL_FORCE (| FOLL_WRITE), foreign mm: no key check.
bool forced_access_allowed(const Vma& vma, bool write) {
  const vm_flags_t f = vma.vm_flags;
  if (f & (VM_IO | VM_PFNMAP)) return false;
  if (write) return (f & VM_WRITE) || is_cow_mapping(f);
  return (f & VM_READ) || (f & VM_MAYREAD);
}

// follow_page_pte: the frame mapped at addr if GUP may use it as is, without a fault.
std::optional<pfn_t> follow_page(Mm& mm, const Vma& vma, vaddr_t addr, bool write) {
  auto ref = mm.pt().lookup(addr);
  if (!ref) return std::nullopt;
  const PteFormat& fmt = mm.fmt();
  const pte_t e = mm.pt().get(*ref);
  if (!fmt.present(e)) return std::nullopt;  // PROT_NONE entries are present and followed
  const pfn_t pfn = fmt.pfn(e);
  if (!write) return pfn;
  if (fmt.write(e)) return pfn;
  // can_follow_write_pte: FOLL_FORCE through a read-only entry of a private mapping that
  // cannot be written, once the page is an exclusive anonymous one (the COW was broken).
  if ((vma.vm_flags & (VM_MAYSHARE | VM_SHARED)) || !(vma.vm_flags & VM_MAYWRITE) ||
      (vma.vm_flags & VM_WRITE))
    return std::nullopt;
  const PhysMem& phys = mm.phys();
  if (pfn == phys.zero_pfn()) return std::nullopt;
  const PageDesc& d = phys.desc(pfn);
  if (!(d.flags & PG_anon) || d.mapcount != 1 || d.refcount != 1) return std::nullopt;
  return pfn;
}

// get_user_page_vma_remote: follow, else fault (faultin_page) and follow again.
std::optional<pfn_t> get_page_forced(Mm& mm, vaddr_t addr, bool write) {
  Vma* vma = mm.vma_lookup(addr);
  if (!vma || !forced_access_allowed(*vma, write)) return std::nullopt;
  for (int round = 0; round < 4; ++round) {
    if (auto pfn = follow_page(mm, *vma, addr, write)) return pfn;
    const FaultResult r = handle_mm_fault_vma(mm, *vma, addr, write ? Access::Write : Access::Read);
    if (r != FaultResult::Ok) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::size_t access_remote_vm(Mm& mm, vaddr_t addr, void* buf, std::size_t len, bool write) {
  auto* p = static_cast<std::uint8_t*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const vaddr_t a = addr + done;
    if (a < addr || a >= mm.task_size) break;  // wrapped, or past the user half
    auto pfn = get_page_forced(mm, page_align_down(a), write);
    if (!pfn) break;
    const std::size_t off = a & (PAGE_SIZE - 1);
    const std::size_t n = std::min<std::size_t>(len - done, PAGE_SIZE - off);
    PhysMem& phys = mm.phys();
    if (write) {
      // copy_to_user_page + folio_mark_dirty_lock; code translated from the frame is dropped.
      phys.flush_dcache_page(*pfn);
      std::memcpy(phys.frame(*pfn) + off, p + done, n);
      phys.desc(*pfn).flags |= PG_dirty;
    } else {
      std::memcpy(p + done, phys.frame(*pfn) + off, n);
    }
    done += n;
  }
  return done;
}

}  // namespace mmemu
