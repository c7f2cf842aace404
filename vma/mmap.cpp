// mmap(2): argument checks, placement, VMA creation or merge, population.
#include <algorithm>

#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"
#include "vma/overcommit.hpp"
#include "vma/pkeys.hpp"
#include "vma/shmem.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

namespace {

bool capable(const Mm& mm, MmCap cap) {
  return (mm.caps & cap) != 0;
}

// vm_unmapped_area: the highest (top-down) or lowest free range of len bytes in
// [low, high), keeping stack_guard_gap free below a VM_GROWSDOWN VMA that follows it.
Result<vaddr_t> vm_unmapped_area(const Mm& mm, std::uint64_t len, vaddr_t low, vaddr_t high,
                                 bool topdown) {
  low = std::max(low, mm.params().mmap_min_addr);
  while (high > low && high - low >= len) {
    auto r = topdown ? mm.mm_mt.empty_area_rev(low, high - 1, len)
                     : mm.mm_mt.empty_area(low, high - 1, len);
    if (!r) return fail(ENOMEM);
    const vaddr_t start = *r;
    const Vma* next = mm.find_vma(start);
    if (next && vm_start_gap(*next) < start + len) {
      if (topdown)
        high = vm_start_gap(*next);
      else
        low = next->vm_end;
      continue;
    }
    return start;
  }
  return fail(ENOMEM);
}

}  // namespace

bool may_expand_vm(const Mm& mm, vm_flags_t flags, std::uint64_t npages) {
  if (mm.total_vm + npages > (mm.rlimit(Rlim::As) >> PAGE_SHIFT)) return false;
  const bool data = (flags & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE;
  if (data && mm.data_vm + npages > (mm.rlimit(Rlim::Data) >> PAGE_SHIFT)) {
    if (mm.rlimit(Rlim::Data) == 0 &&
        mm.data_vm + npages <= (mm.rlimit_max(Rlim::Data) >> PAGE_SHIFT))
      return true;
    return false;
  }
  return true;
}

Result<vaddr_t> get_unmapped_area(Mm& mm, File* /*file*/, vaddr_t addr, std::uint64_t len,
                                  std::uint64_t /*pgoff*/, int flags) {
  const vaddr_t task_size = mm.task_size;
  if (len > task_size) return fail(ENOMEM);
  const vaddr_t mmap_end = task_size;
  const vaddr_t min_addr = mm.params().mmap_min_addr;
  vaddr_t result = 0;
  if (len > mmap_end - min_addr) return fail(ENOMEM);
  if (flags & MAP_FIXED) {
    result = addr;
  } else {
    bool found = false;
    if (addr) {
      addr = page_align_up(addr);
      const Vma* vma = mm.find_vma(addr);
      const Vma* prev = mm.prev_of(addr);
      if (mmap_end - len >= addr && addr >= min_addr &&
          (!vma || addr + len <= vm_start_gap(*vma)) && (!prev || addr >= vm_end_gap(*prev))) {
        result = addr;
        found = true;
      }
    }
    if (!found) {
      auto r = vm_unmapped_area(mm, len, PAGE_SIZE, mm.mmap_base, /*topdown=*/true);
      // A failed top-down search falls back to bottom-up from TASK_UNMAPPED_BASE.
      if (!r) r = vm_unmapped_area(mm, len, page_align_up(task_size / 3), mmap_end, false);
      if (!r) return r;
      result = *r;
    }
  }
  if (result > task_size - len) return fail(ENOMEM);
  if (!page_aligned(result)) return fail(EINVAL);
  // security_mmap_addr: below mmap_min_addr needs CAP_SYS_RAWIO.
  if (result < min_addr && !capable(mm, CAP_SYS_RAWIO_BIT)) return fail(EPERM);
  return result;
}

Result<vaddr_t> mmap_region(Mm& mm, File* file, vaddr_t addr, std::uint64_t len,
                            vm_flags_t vm_flags, std::uint64_t pgoff) {
  const std::uint64_t pglen = len >> PAGE_SHIFT;
  const vaddr_t end = addr + len;
  CallFrame frame(mm.pt(), "mmap_region");
  // Linux gathers the VMAs MAP_FIXED replaces (vms_gather_munmap_vmas) before anything is
  // charged: a sealed one fails the call there with EPERM, after the split at the start.
  for (Vma* v = mm.find_vma_intersection(addr, end); v && v->vm_start < end; v = mm.vma_next(*v)) {
    if (can_modify_vma(*v)) continue;
    if (auto r = do_munmap(mm, addr, len); !r) return std::unexpected(r.error());
    break;
  }
  if (!may_expand_vm(mm, vm_flags, pglen)) {
    // MAP_FIXED may replace pages it would unmap: count them back.
    std::uint64_t nr = 0;
    for (Vma* v = mm.find_vma_intersection(addr, end); v && v->vm_start < end; v = mm.vma_next(*v))
      nr += (std::min(end, v->vm_end) - std::max(addr, v->vm_start)) >> PAGE_SHIFT;
    if (!may_expand_vm(mm, vm_flags, pglen - nr)) return fail(ENOMEM);
  }
  // accountable_mapping: private writable memory is charged, less what the accounted VMAs
  // it replaces had (vms->nr_accounted). As in Linux 6.12+, this and shmem's charge are
  // decided before the old mapping is touched, so a refusal leaves it in place.
  if ((vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE) {
    std::uint64_t accounted = 0;
    for (Vma* v = mm.find_vma_intersection(addr, end); v && v->vm_start < end; v = mm.vma_next(*v))
      if (v->vm_flags & VM_ACCOUNT)
        accounted += (std::min(end, v->vm_end) - std::max(addr, v->vm_start)) >> PAGE_SHIFT;
    if (pglen > accounted) {
      if (auto r = vm_enough_memory(mm, pglen - accounted); !r) return std::unexpected(r.error());
    }
    vm_flags |= VM_ACCOUNT;
  }
  // shmem_zero_setup -> shmem_acct_size: shared anonymous memory is charged in full unless
  // MAP_NORESERVE made it VM_NORESERVE.
  if (!file && (vm_flags & VM_SHARED) && !(vm_flags & VM_NORESERVE)) {
    if (auto r = vm_enough_memory(mm, pglen); !r) return std::unexpected(r.error());
  }
  // Replace whatever is mapped there (MAP_FIXED). If a later step fails, the old mapping
  // stays gone, as the mmap man page warns.
  if (mm.find_vma_intersection(addr, end)) {
    if (auto r = do_munmap(mm, addr, len); !r) return std::unexpected(r.error());
  }

  // A new shared anonymous mapping gets its own shmem file below, so only its neighbours'
  // files can match: it never merges. A file mapping (shmem ones included) may.
  auto merged = vma_merge_new_range(mm, addr, end, vm_flags, file, pgoff);
  if (!merged) return std::unexpected(merged.error());
  Vma* vma = *merged;
  // The new range's address for vm_area_alloc and the tree's preallocation below.
  const AllocCaller caller(mm.machine().inject, {}, addr);
  if (!vma) {
    auto nv = vm_area_alloc(mm);
    if (!nv) return std::unexpected(nv.error());
    vma = *nv;
    vma->vm_start = addr;
    vma->vm_end = end;
    vma->vm_pgoff = pgoff;
    vma->vm_flags = vm_flags;
    vma->vm_page_prot = vm_get_page_prot(vm_flags);
    if (file) {
      file->get();
      vma->vm_file = file;
    } else if (vm_flags & VM_SHARED) {
      vma->vm_file = File::create_shmem(mm.machine(), len);  // shmem_zero_setup
      vma->vm_pgoff = 0;
    }
    if (auto r = vma_link(mm, *vma); !r) {
      vm_area_free(vma);
      return std::unexpected(r.error());
    }
  }
  vm_stat_account(mm, vm_flags, static_cast<std::int64_t>(pglen));
  if (vm_flags & VM_LOCKED) mm.locked_vm += pglen;
  return addr;
}

Result<vaddr_t> do_mmap(Mm& mm, vaddr_t addr, std::uint64_t len, int prot, int flags, File* file,
                        std::uint64_t pgoff, std::uint64_t* populate, bool fmode_write) {
  if (populate) *populate = 0;
  if (!len) return fail(EINVAL);
  if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
  if (!(flags & MAP_FIXED)) {
    // round_hint_to_min
    const vaddr_t min_addr = page_align_up(mm.params().mmap_min_addr);
    if (addr && addr < min_addr) addr = min_addr;
  }
  len = page_align_up(len);
  if (!len) return fail(ENOMEM);
  if (pgoff + (len >> PAGE_SHIFT) < pgoff) return fail(EOVERFLOW);
  if (mm.map_count > kMaxMapCount) return fail(ENOMEM);

  auto got = get_unmapped_area(mm, file, addr, len, pgoff, flags);
  if (!got) return got;
  addr = *got;
  if ((flags & MAP_FIXED_NOREPLACE) && mm.find_vma_intersection(addr, addr + len))
    return fail(EEXIST);

  // x86-64: an execute-only mapping gets the execute-only protection key.
  const unsigned pkey = prot == PROT_EXEC ? execute_only_pkey(mm) : 0;
  vm_flags_t vm_flags = calc_vm_prot_bits(prot) | pkey_vm_flags(pkey) | calc_vm_flag_bits(flags) |
                        mm.def_flags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (flags & MAP_LOCKED) {
    // can_do_mlock
    if (mm.rlimit(Rlim::Memlock) == 0 && !capable(mm, CAP_IPC_LOCK_BIT)) return fail(EPERM);
  }
  // mlock_future_ok
  if ((vm_flags & VM_LOCKED) && !capable(mm, CAP_IPC_LOCK_BIT) &&
      (len >> PAGE_SHIFT) + mm.locked_vm > (mm.rlimit(Rlim::Memlock) >> PAGE_SHIFT))
    return fail(EAGAIN);

  if (file) {
    switch (flags & MAP_TYPE) {
      case MAP_SHARED:
      case MAP_SHARED_VALIDATE: {
        const bool may_write = file->writable() && fmode_write;
        if ((prot & PROT_WRITE) && !may_write) return fail(EACCES);
        vm_flags |= VM_SHARED | VM_MAYSHARE;
        if (!may_write) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
        // memfd_check_seals_mmap: a write-sealed file is never mapped shared and writable.
        if (file->seals() & (kSealWrite | kSealFutureWrite)) {
          if (vm_flags & VM_WRITE) return fail(EPERM);
          vm_flags &= ~VM_MAYWRITE;
        }
      }
        [[fallthrough]];
      case MAP_PRIVATE:
        if (!file->readable()) return fail(EACCES);
        if (vm_flags & VM_GROWSDOWN) return fail(EINVAL);
        break;
      default:
        return fail(EINVAL);
    }
  } else {
    switch (flags & MAP_TYPE) {
      case MAP_SHARED:
        if (vm_flags & VM_GROWSDOWN) return fail(EINVAL);
        pgoff = 0;
        vm_flags |= VM_SHARED | VM_MAYSHARE;
        break;
      case MAP_DROPPABLE:
        // Neither locked nor a stack: its pages may vanish at any time. Nor reserved
        // (VM_NORESERVE: no commit charge), copied to a child or dumped.
        if (flags & (MAP_LOCKED | MAP_HUGETLB)) return fail(EINVAL);
        if (vm_flags & VM_GROWSDOWN) return fail(EINVAL);
        vm_flags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP;
        [[fallthrough]];
      case MAP_PRIVATE:
        pgoff = addr >> PAGE_SHIFT;  // the anon_vma index space
        break;
      default:
        return fail(EINVAL);
    }
  }
  if (flags & MAP_NORESERVE) vm_flags |= VM_NORESERVE;

  auto r = mmap_region(mm, file, addr, len, vm_flags, pgoff);
  if (r && populate &&
      ((vm_flags & VM_LOCKED) || (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE))
    *populate = len;
  return r;
}

Result<vaddr_t> sys_mmap(Mm& mm, vaddr_t addr, std::uint64_t len, int prot, int flags, File* file,
                         std::uint64_t off, bool fmode_write) {
  if (off & ~PAGE_MASK) return fail(EINVAL);
  // There are no huge pages reserved, as on a default-configured kernel.
  // The hugetlbfs file set up for MAP_HUGETLB takes only the file mapping types.
  if ((flags & MAP_HUGETLB) && !file && (flags & MAP_TYPE) == MAP_DROPPABLE) return fail(EINVAL);
  if ((flags & MAP_HUGETLB) && !file) return fail(ENOMEM);
  std::uint64_t populate = 0;
  auto r = do_mmap(mm, addr, len, prot, flags, file, off >> PAGE_SHIFT, &populate, fmode_write);
  if (r && populate) (void)mm_populate(mm, *r, populate, /*ignore_errors=*/true);
  return r;
}

Result<void> mm_populate(Mm& mm, vaddr_t start, std::uint64_t len, bool ignore_errors) {
  // GUP's rules (gup.cpp): a VMA without VM_READ is not read-faulted (Linux 6.18 leaves an
  // exec-only MAP_POPULATE mapping empty), and frames of VM_LOCKED VMAs get PG_mlocked.
  return mlock_populate(mm, start, len, ignore_errors);
}

}  // namespace mmemu
