// mprotect(2): new VM_READ/WRITE/EXEC for each VMA of the range (split or merged with
// vma_modify_flags), checked against the VM_MAY* flags, and the PTEs rewritten to match.
#include <sys/mman.h>

#include <algorithm>

#include "mmu/mmu_gather.hpp"
#include "vma/gup.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"
#include "vma/overcommit.hpp"
#include "vma/pkeys.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

// can_change_pte_writable for a private mapping: only an anonymous page this PTE maps
// exclusively can be made writable without a write fault (the same test do_wp_page uses to
// reuse a page instead of copying it).
bool can_change_pte_writable(const PhysMem& phys, pfn_t pfn) {
  const PageDesc& d = phys.desc(pfn);
  return (d.flags & PG_anon) && !(d.flags & PG_zero) && d.mapcount == 1 && d.refcount == 1 &&
         d.pincount == 0;
}

// mprotect_fixup: [start, end) of vma gets newflags. Returns the VMA that now covers it.
Result<Vma*> mprotect_fixup(Mm& mm, Vma& vma, vaddr_t start, vaddr_t end, vm_flags_t newflags) {
  const vm_flags_t oldflags = vma.vm_flags;
  if (!can_modify_vma(vma)) return fail(EPERM);  // mseal, even when nothing would change
  if (newflags == oldflags) return &vma;
  const std::uint64_t nrpages = (end - start) >> PAGE_SHIFT;
  // A private mapping that becomes writable is charged (VM_ACCOUNT); one that stops being
  // writable and never had a page can drop the charge.
  if (newflags & VM_WRITE) {
    if (!may_expand_vm(mm, newflags, nrpages) && may_expand_vm(mm, oldflags, nrpages))
      return fail(ENOMEM);
    if (!(oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE))) {
      if (auto r = vm_enough_memory(mm, nrpages); !r) return std::unexpected(r.error());
      newflags |= VM_ACCOUNT;
    }
  } else if ((oldflags & VM_ACCOUNT) && vma.is_anonymous() && !vma.anon_vma) {
    newflags &= ~VM_ACCOUNT;
  }
  auto r = vma_modify_flags(mm, vma, start, end, newflags);
  if (!r) return r;
  Vma* v = *r;
  change_protection(*v, start, end);
  // A locked private mapping that became writable breaks COW now rather than on access.
  if ((oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED && (newflags & VM_WRITE))
    (void)populate_vma_page_range(*v, start, end);
  const auto n = static_cast<std::int64_t>(nrpages);
  vm_stat_account(mm, oldflags, -n);
  vm_stat_account(mm, newflags, n);
  return v;
}

}  // namespace

void change_protection(Vma& vma, vaddr_t start, vaddr_t end) {
  Mm& mm = *vma.vm_mm;
  PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  const PhysMem& phys = mm.phys();
  const PteProt newprot = vma.vm_page_prot;
  // vma_wants_manual_pte_write_upgrade: shared mappings are writable through vm_page_prot
  // already; private writable ones upgrade page by page.
  const bool try_writable = (vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE;
  MmuGather tlb(pt, &mm.tlb());
  pt.for_each_pte(start, end, [&](vaddr_t va, PteRef ref, pte_t e) {
    if (!fmt.present(e)) return;
    pte_t n = fmt.modify(e, newprot);
    if (try_writable && !fmt.write(n) && can_change_pte_writable(phys, fmt.pfn(e)))
      n = fmt.mkwrite(n);
    if (n == e) return;
    pt.set(ref, n);
    tlb.track(va, va + PAGE_SIZE);  // pte_needs_flush: every change of a present entry
  });
  tlb.finish();
}

Result<void> do_mprotect(Mm& mm, vaddr_t start, std::uint64_t len, int prot) {
  const int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows == (PROT_GROWSDOWN | PROT_GROWSUP)) return fail(EINVAL);
  if (!page_aligned(start)) return fail(EINVAL);
  if (!len) return {};
  len = page_align_up(len);
  vaddr_t end = start + len;
  if (end <= start) return fail(ENOMEM);
  // arch_validate_prot (generic; no BTI/MTE here).
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) return fail(EINVAL);

  Vma* vma = mm.find_vma_intersection(start, end);
  if (!vma) return fail(ENOMEM);
  if (grows & PROT_GROWSDOWN) {
    start = vma->vm_start;
    if (!(vma->vm_flags & VM_GROWSDOWN)) return fail(EINVAL);
  } else {
    if (vma->vm_start > start) return fail(ENOMEM);
    // Neither architecture has VM_GROWSUP.
    if (grows & PROT_GROWSUP) return fail(EINVAL);
  }

  Result<void> error;
  vaddr_t nstart = start;
  vaddr_t tmp = vma->vm_start;
  for (Vma* v = vma; v && v->vm_start < end;) {
    if (v->vm_start != tmp) {
      error = fail(ENOMEM);
      break;
    }
    // Each call states all of r/w/x: what is not asked for is cleared.
    const vm_flags_t newflags = calc_vm_prot_bits(prot) |
                                pkey_vm_flags(mprotect_pkey(mm, *v, prot)) |
                                (v->vm_flags & ~(VM_ACCESS_FLAGS | VM_PKEY_MASK));
    // newflags >> 4 puts VM_MAY* where VM_* are.
    if ((newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS) {
      error = fail(EACCES);
      break;
    }
    tmp = std::min(v->vm_end, end);
    auto r = mprotect_fixup(mm, *v, nstart, tmp, newflags);
    if (!r) {
      error = std::unexpected(r.error());
      break;
    }
    tmp = (*r)->vm_end;
    nstart = tmp;
    v = mm.vma_next(**r);
  }
  if (error && tmp < end) error = fail(ENOMEM);
  return error;
}

}  // namespace mmemu
