// brk(2): the heap between mm->start_brk and mm->brk. Growth extends the heap VMA (or makes
// one), shrinking unmaps; a request that cannot be met leaves the break where it was.
#include <sys/mman.h>

#include "vma/mm_syscalls.hpp"
#include "vma/overcommit.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

// check_data_rlimit: the heap plus the data segment must fit RLIMIT_DATA.
bool data_rlimit_ok(const Mm& mm, vaddr_t brk) {
  if (mm.rlimit(Rlim::Data) >= RLIM_INFINITY_) return true;
  return (brk - mm.start_brk) + (mm.end_data - mm.start_data) <= mm.rlimit(Rlim::Data);
}

// do_brk_flags: anonymous memory for [addr, addr + len), merged into brkvma when it ends at
// addr and is compatible, else a new VMA.
Result<void> do_brk_flags(Mm& mm, Vma* brkvma, vaddr_t addr, std::uint64_t len) {
  // VM_DATA_DEFAULT_FLAGS of both architectures, charged, plus mlockall(MCL_FUTURE)'s flags.
  const vm_flags_t flags =
      VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT | mm.def_flags;
  const std::uint64_t npages = len >> PAGE_SHIFT;
  if (!may_expand_vm(mm, flags, npages)) return fail(ENOMEM);
  if (mm.map_count > kMaxMapCount) return fail(ENOMEM);
  if (auto r = vm_enough_memory(mm, npages); !r) return r;
  Vma* vma = nullptr;
  // Only the heap VMA itself may grow: a mapping that merely ends at start_brk (the bss)
  // stays separate, as on Linux.
  if (brkvma && brkvma->vm_end == addr) {
    auto merged = vma_merge_new_range(mm, addr, addr + len, flags, nullptr, addr >> PAGE_SHIFT);
    if (!merged) return std::unexpected(merged.error());
    vma = *merged;
  }
  const AllocCaller caller(mm.machine().inject, {}, addr);
  if (!vma) {
    auto nv = vm_area_alloc(mm);
    if (!nv) return std::unexpected(nv.error());
    vma = *nv;
    vma->vm_start = addr;
    vma->vm_end = addr + len;
    vma->vm_pgoff = addr >> PAGE_SHIFT;
    vma->vm_flags = flags;
    vma->vm_page_prot = vm_get_page_prot(flags);
    if (auto r = vma_link(mm, *vma); !r) {
      vm_area_free(vma);
      return r;
    }
  }
  vm_stat_account(mm, flags, static_cast<std::int64_t>(npages));
  if (flags & VM_LOCKED) mm.locked_vm += npages;
  return {};
}

}  // namespace

vaddr_t sys_brk(Mm& mm, vaddr_t brk) {
  const vaddr_t origbrk = mm.brk;
  CallFrame frame(mm.pt(), "brk");
  if (brk < mm.start_brk) return origbrk;  // also brk(0): "where is the break?"
  if (!data_rlimit_ok(mm, brk)) return origbrk;
  const vaddr_t newbrk = page_align_up(brk);
  const vaddr_t oldbrk = page_align_up(mm.brk);
  if (oldbrk == newbrk) {
    mm.brk = brk;
    return brk;
  }
  // Shrinking is always allowed, if there is a heap VMA there to shrink.
  if (brk <= mm.brk) {
    if (!mm.find_vma_intersection(newbrk, oldbrk)) return origbrk;
    mm.brk = brk;
    if (!do_munmap(mm, newbrk, oldbrk - newbrk)) {
      mm.brk = origbrk;
      return origbrk;
    }
    return brk;
  }
  // One free page must stay between the heap and the next mapping (plus the stack guard gap
  // below a stack).
  if (const Vma* next = mm.find_vma(oldbrk); next && newbrk + PAGE_SIZE > vm_start_gap(*next))
    return origbrk;
  // check_brk_limits
  if (!get_unmapped_area(mm, nullptr, oldbrk, newbrk - oldbrk, 0, MAP_FIXED)) return origbrk;
  if (!mlock_future_ok(mm, mm.def_flags, newbrk - oldbrk)) return origbrk;
  // vma_prev_limit(start_brk): the VMA below oldbrk, if it reaches into the heap area.
  Vma* brkvma = mm.prev_of(oldbrk);
  if (brkvma && brkvma->vm_end <= mm.start_brk) brkvma = nullptr;
  if (!do_brk_flags(mm, brkvma, oldbrk, newbrk - oldbrk)) return origbrk;
  mm.brk = brk;
  if (mm.def_flags & VM_LOCKED)
    (void)mlock_populate(mm, oldbrk, newbrk - oldbrk, /*ignore_errors=*/true);
  return brk;
}

}  // namespace mmemu
