// The page-fault handler: what the kernel does between the MMU raising a fault and the
// instruction being retried.
#include "vma/fault.hpp"

#include <cstring>

#include "vma/anon_vma.hpp"
#include "vma/file.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/overcommit.hpp"
#include "vma/pkeys.hpp"
#include "vma/rmap.hpp"
#include "vma/vma_ops.hpp"

namespace mmemu {

std::string_view fault_result_name(FaultResult r) {
  switch (r) {
    case FaultResult::Ok:
      return "ok";
    case FaultResult::SegvMapErr:
      return "SEGV_MAPERR";
    case FaultResult::SegvPkuErr:
      return "SEGV_PKUERR";
    case FaultResult::SegvAccErr:
      return "SEGV_ACCERR";
    case FaultResult::SegvGuard:
      return "SEGV_MAPERR (guard)";
    case FaultResult::SigBus:
      return "SIGBUS";
    case FaultResult::Oom:
      return "OOM";
  }
  return "?";
}

namespace {

struct FaultCtx {
  Mm& mm;
  Vma& vma;
  vaddr_t addr;  // page aligned
  Access access;
  PteRef ref;
};

AllocHint hint_for(const FaultCtx& f) {
  return AllocHint{f.mm.id(), f.addr};
}

// Installs a new entry where another (or none) was, flushing the old translation.
void set_pte(FaultCtx& f, pte_t e) {
  const pte_t old = f.mm.pt().get(f.ref);
  f.mm.pt().set(f.ref, e);
  if (!f.mm.fmt().none(old)) f.mm.tlb().flush_page(f.addr);
}

// A writable, dirty, young entry for a page the VMA may write (maybe_mkwrite).
pte_t mk_written(const FaultCtx& f, pfn_t pfn) {
  const PteFormat& fmt = f.mm.fmt();
  pte_t e = fmt.mkyoung(fmt.mkdirty(fmt.mk_pte(pfn, f.vma.vm_page_prot)));
  if (f.vma.vm_flags & VM_WRITE) e = fmt.mkwrite(e);
  return e;
}

FaultResult do_anonymous_page(FaultCtx& f) {
  const PteFormat& fmt = f.mm.fmt();
  PhysMem& phys = f.mm.phys();
  if (f.access != Access::Write) {
    // Reads of private anonymous memory map the shared zero page.
    set_pte(f, fmt.mkyoung(fmt.mk_pte(phys.zero_pfn(), f.vma.vm_page_prot)));
    return FaultResult::Ok;
  }
  if (!anon_vma_prepare(f.vma)) return FaultResult::Oom;
  const AllocHint h = hint_for(f);
  const AllocCaller caller(phys.injector(), "do_anonymous_page", f.addr);
  auto pfn = phys.alloc_frame(AllocSite::Page, &h);
  if (!pfn) return FaultResult::Oom;
  page_add_new_anon_rmap(f.vma, *pfn, f.addr);
  set_pte(f, mk_written(f, *pfn));
  return FaultResult::Ok;
}

// Copy-on-write: a private copy of `src` (the zero page, a COW-shared anonymous page, or a
// page-cache page) replaces the read-only mapping.
FaultResult wp_page_copy(FaultCtx& f, pfn_t src, bool src_mapped) {
  PhysMem& phys = f.mm.phys();
  if (!anon_vma_prepare(f.vma)) return FaultResult::Oom;
  const AllocHint h = hint_for(f);
  const AllocCaller caller(phys.injector(), "wp_page_copy", f.addr);
  auto pfn = phys.alloc_frame(AllocSite::Page, &h);
  if (!pfn) return FaultResult::Oom;
  if (src != phys.zero_pfn()) phys.copy_frame(*pfn, src);
  page_add_new_anon_rmap(f.vma, *pfn, f.addr);
  set_pte(f, mk_written(f, *pfn));  // ptep_clear_flush + set
  if (src_mapped && src != phys.zero_pfn()) {
    page_remove_rmap(f.mm, src);
    phys.put_page(src);
  }
  return FaultResult::Ok;
}

FaultResult do_wp_page(FaultCtx& f, pte_t e) {
  const PteFormat& fmt = f.mm.fmt();
  PhysMem& phys = f.mm.phys();
  const pfn_t pfn = fmt.pfn(e);
  if (f.vma.vm_flags & VM_SHARED) {
    // Shared mapping: the page itself becomes writable (and dirty).
    phys.desc(pfn).flags |= PG_dirty;
    set_pte(f, fmt.mkwrite(fmt.mkdirty(fmt.mkyoung(e))));
    return FaultResult::Ok;
  }
  const PageDesc& d = phys.desc(pfn);
  if ((d.flags & PG_anon) && d.mapcount == 1 && d.refcount == 1 && d.pincount == 0) {
    // The only user of an anonymous page: reuse it in place (wp_page_reuse: maybe_mkwrite,
    // so a FOLL_FORCE write into a read-only private mapping leaves the entry read-only).
    pte_t n = fmt.mkdirty(fmt.mkyoung(e));
    if (f.vma.vm_flags & VM_WRITE) n = fmt.mkwrite(n);
    set_pte(f, n);
    return FaultResult::Ok;
  }
  return wp_page_copy(f, pfn, /*src_mapped=*/true);
}

// A file page index past the end of the file (rounded up to a page) raises SIGBUS.
bool beyond_eof(const FaultCtx& f, std::uint64_t index) {
  return index >= f.vma.vm_file->nr_pages();
}

// A page-cache page newly mapped by a read fault: a reference, rmap and RSS, and mlock in a
// locked VMA (folio_add_file_rmap -> mlock_vma_folio).
void map_file_page(FaultCtx& f, pfn_t pfn) {
  PhysMem& phys = f.mm.phys();
  phys.get_page(pfn);
  page_add_rmap(f.mm, pfn);
  if ((f.vma.vm_flags & (VM_LOCKED | VM_SPECIAL)) == VM_LOCKED) phys.desc(pfn).flags |= PG_mlocked;
}

// do_fault_around + filemap_map_pages: a read fault also maps the pages around it that are
// already in the page cache (fault_around_bytes = 64 KiB: the aligned 16-entry block of the
// PTE table holding the address, clamped to the VMA and the end of the file), where the PTE
// is still none. Nothing is read in or allocated: the PTE table is the faulting one. The
// prefaulted entries are old on arm64 (arch_wants_old_prefaulted_pte with hardware AF),
// young on x86-64.
void do_fault_around(FaultCtx& f, std::uint64_t index) {
  constexpr std::uint64_t kNrPages = 16, kPtrsPerPte = 512;
  File& file = *f.vma.vm_file;
  const PteFormat& fmt = f.mm.fmt();
  PageTable& pt = f.mm.pt();
  const std::uint64_t pte_off = (f.addr >> PAGE_SHIFT) & (kPtrsPerPte - 1);
  const std::uint64_t vma_off = index - f.vma.vm_pgoff;
  const std::uint64_t from =
      std::max(pte_off & ~(kNrPages - 1), pte_off - std::min(pte_off, vma_off));
  const std::uint64_t to =
      std::min({from + kNrPages, kPtrsPerPte, pte_off + f.vma.pages() - vma_off}) - 1;
  const std::uint64_t file_pages = file.nr_pages();
  const bool old = f.mm.arch() == Arch::Arm64;
  for (std::uint64_t o = from; o <= to; ++o) {
    if (o == pte_off) continue;  // the faulting page itself is mapped by do_read_fault
    const std::uint64_t pgoff = index + o - pte_off;
    if (pgoff >= file_pages) break;
    const pfn_t pfn = file.cached_page(pgoff);
    if (!pfn) continue;
    const vaddr_t va = (f.addr - (pte_off << PAGE_SHIFT)) + (o << PAGE_SHIFT);
    auto ref = pt.lookup(va);
    if (!ref || !fmt.none(pt.get(*ref))) continue;
    map_file_page(f, pfn);
    const pte_t e = fmt.mk_pte(pfn, f.vma.vm_page_prot);
    pt.set(*ref, old ? e : fmt.mkyoung(e));
  }
}

// filemap_fault's do_sync_mmap_readahead on a page-cache miss of a regular file: the
// read-around of ra_pages (32 pages, 128 KiB) centred on the missing page, or that page alone
// under MADV_RANDOM. Readahead is best effort: a page that cannot be allocated is skipped.
// shmem reads nothing ahead (its holes stay holes).
void filemap_read_around(const Vma& vma, File& file, std::uint64_t index) {
  if (file.shmem() || file.cached_page(index) || (vma.vm_flags & VM_RAND_READ)) return;
  constexpr std::uint64_t kRaPages = 32;
  const std::uint64_t file_pages = file.nr_pages();
  const std::uint64_t start = index > kRaPages / 2 ? index - kRaPages / 2 : 0;
  for (std::uint64_t i = start; i < std::min(start + kRaPages, file_pages); ++i)
    if (i != index) (void)file.find_or_read_page(i);
}

FaultResult do_fault(FaultCtx& f) {
  const PteFormat& fmt = f.mm.fmt();
  PhysMem& phys = f.mm.phys();
  File& file = *f.vma.vm_file;
  const std::uint64_t index = f.vma.linear_page_index(f.addr);
  if (beyond_eof(f, index)) return FaultResult::SigBus;
  const bool write = f.access == Access::Write;
  if (write && !(f.vma.vm_flags & VM_SHARED)) {
    // do_cow_fault: the private copy is made straight from the page cache.
    if (!anon_vma_prepare(f.vma)) return FaultResult::Oom;
    filemap_read_around(f.vma, file, index);
    auto src = file.find_or_read_page(index);
    if (!src) return FaultResult::Oom;
    return wp_page_copy(f, *src, /*src_mapped=*/false);
  }
  if (!write) do_fault_around(f, index);  // do_read_fault
  filemap_read_around(f.vma, file, index);
  auto pfn = file.find_or_read_page(index);
  if (!pfn) return FaultResult::Oom;
  map_file_page(f, *pfn);
  pte_t e = fmt.mkyoung(fmt.mk_pte(*pfn, f.vma.vm_page_prot));
  if (write) {  // do_shared_fault
    e = fmt.mkwrite(fmt.mkdirty(e));
    phys.desc(*pfn).flags |= PG_dirty;
  }
  set_pte(f, e);
  return FaultResult::Ok;
}

FaultResult handle_pte_fault(Mm& mm, Vma& vma, vaddr_t addr, Access access) {
  // The faulting address for what has none of its own (page-cache fills).
  const AllocCaller caller(mm.phys().injector(), {}, page_align_down(addr));
  auto ref = mm.pt().alloc(addr);
  if (!ref) return FaultResult::Oom;
  FaultCtx f{mm, vma, page_align_down(addr), access, *ref};
  const PteFormat& fmt = mm.fmt();
  const pte_t e = mm.pt().get(*ref);
  if (fmt.none(e)) return vma.vm_file ? do_fault(f) : do_anonymous_page(f);
  // do_swap_page -> handle_pte_marker: a guard marker answers VM_FAULT_SIGSEGV, which the
  // arch handler reports as SEGV_MAPERR.
  if (fmt.is_guard_marker(e)) return FaultResult::SegvGuard;
  if (fmt.protnone(e) && (vma.vm_flags & VM_ACCESS_FLAGS)) {
    // The VMA allows the access but the entry still says PROT_NONE: refresh it. (A
    // PROT_NONE VMA gets here only from a FOLL_FORCE access, which goes on as Linux does.)
    set_pte(f, fmt.modify(e, vma.vm_page_prot));
    return FaultResult::Ok;
  }
  if (access == Access::Write && !fmt.write(e)) return do_wp_page(f, e);
  // A spurious fault: only the accessed/dirty bits were missing.
  pte_t n = fmt.mkyoung(e);
  if (access == Access::Write) n = fmt.mkdirty(n);
  if (n != e) mm.pt().set(*ref, n);
  return FaultResult::Ok;
}

bool access_error(const Vma& vma, Access access) {
  switch (access) {
    case Access::Write:
      return !(vma.vm_flags & VM_WRITE);
    case Access::Exec:
      return !(vma.vm_flags & VM_EXEC);
    case Access::Read:
      return !(vma.vm_flags & VM_ACCESS_FLAGS);
  }
  return true;
}

}  // namespace

Vma* expand_stack(Mm& mm, vaddr_t addr) {
  Vma* vma = mm.find_vma(addr);
  if (!vma || !(vma->vm_flags & VM_GROWSDOWN)) return nullptr;
  if (vma->vm_start <= addr) return vma;
  addr = page_align_down(addr);
  if (addr < mm.params().mmap_min_addr) return nullptr;
  if (Vma* prev = mm.vma_prev(*vma)) {
    if (!(prev->vm_flags & VM_GROWSDOWN) && (prev->vm_flags & VM_ACCESS_FLAGS) &&
        addr - prev->vm_end < kStackGuardGap)
      return nullptr;
  }
  if (!anon_vma_prepare(*vma)) return nullptr;
  const std::uint64_t size = vma->vm_end - addr;
  const std::uint64_t grow = (vma->vm_start - addr) >> PAGE_SHIFT;
  // acct_stack_growth
  if (!may_expand_vm(mm, vma->vm_flags, grow)) return nullptr;
  if (size > mm.rlimit(Rlim::Stack)) return nullptr;
  if ((vma->vm_flags & VM_LOCKED) && !(mm.caps & CAP_IPC_LOCK_BIT) &&
      mm.locked_vm + grow > (mm.rlimit(Rlim::Memlock) >> PAGE_SHIFT))
    return nullptr;
  // Overcommit comes last, as in Linux: the kernel's check also updates statistics.
  if (!vm_enough_memory(mm, grow)) return nullptr;
  if (!vma_iter_store_prealloc(mm, addr, vma->vm_end - 1, vma)) return nullptr;
  if (vma->vm_flags & VM_LOCKED) mm.locked_vm += grow;
  vm_stat_account(mm, vma->vm_flags, static_cast<std::int64_t>(grow));
  vma->vm_start = addr;
  vma->vm_pgoff -= grow;
  return vma;
}

FaultResult handle_mm_fault(Mm& mm, vaddr_t addr, Access access) {
  Vma* vma = mm.find_vma(addr);
  if (!vma) return FaultResult::SegvMapErr;
  if (vma->vm_start > addr) {
    if (!(vma->vm_flags & VM_GROWSDOWN)) return FaultResult::SegvMapErr;
    vma = expand_stack(mm, addr);
    if (!vma) return FaultResult::SegvMapErr;
  }
  // x86's access_error also asks arch_vma_access_permitted; a refusal by the key is reported
  // as SEGV_PKUERR (bad_area_access_from_pkeys), whatever else is wrong.
  if (!vma_pkey_permits(mm, *vma, access)) return FaultResult::SegvPkuErr;
  if (access_error(*vma, access)) return FaultResult::SegvAccErr;
  return handle_pte_fault(mm, *vma, addr, access);
}

FaultResult handle_mm_fault_vma(Mm& mm, Vma& vma, vaddr_t addr, Access access) {
  return handle_pte_fault(mm, vma, addr, access);
}

std::expected<Translation, FaultResult> fault_in(Mm& mm, vaddr_t addr, Access access) {
  // The walk and the handler agree after one round; a few rounds bound any disagreement.
  for (int round = 0; round < 4; ++round) {
    auto t = walk(mm.pt(), addr, access, /*set_ad=*/true);
    if (t) return *t;
    const FaultResult r = handle_mm_fault(mm, addr, access);
    if (r != FaultResult::Ok) return std::unexpected(r);
  }
  return std::unexpected(FaultResult::SegvAccErr);
}

namespace {
template <class Fn>
Result<void> for_each_user_chunk(Mm& mm, vaddr_t va, std::size_t n, Access access, Fn fn) {
  std::size_t done = 0;
  while (done < n) {
    const vaddr_t a = va + done;
    if (a < va) return fail(EFAULT);  // wrapped
    // access_ok: nothing at or above TASK_SIZE_MAX, even what user space may read there
    // (x86-64's vsyscall page in vsyscall=emulate).
    if (a >= mm.params().task_size_max) return fail(EFAULT);
    auto t = fault_in(mm, a, access);
    if (!t) return fail(EFAULT);
    const std::size_t off = a & (PAGE_SIZE - 1);
    const std::size_t len = std::min<std::size_t>(n - done, PAGE_SIZE - off);
    if (access == Access::Write) mm.phys().flush_dcache_page(t->pfn);
    fn(mm.phys().frame(t->pfn) + off, done, len);
    done += len;
  }
  return {};
}
}  // namespace

Result<void> copy_from_user(Mm& mm, void* dst, vaddr_t src, std::size_t n) {
  auto* out = static_cast<std::uint8_t*>(dst);
  return for_each_user_chunk(mm, src, n, Access::Read,
                             [&](const std::uint8_t* p, std::size_t at, std::size_t len) {
                               std::memcpy(out + at, p, len);
                             });
}

Result<void> copy_to_user(Mm& mm, vaddr_t dst, const void* src, std::size_t n) {
  const auto* in = static_cast<const std::uint8_t*>(src);
  return for_each_user_chunk(
      mm, dst, n, Access::Write,
      [&](std::uint8_t* p, std::size_t at, std::size_t len) { std::memcpy(p, in + at, len); });
}

Result<std::string> strncpy_from_user(Mm& mm, vaddr_t src, std::size_t max) {
  std::string out;
  while (out.size() < max) {
    const vaddr_t a = src + out.size();
    if (a >= mm.params().task_size_max) return fail(EFAULT);  // access_ok
    auto t = fault_in(mm, a, Access::Read);
    if (!t) return fail(EFAULT);
    const std::size_t off = a & (PAGE_SIZE - 1);
    const auto* p = mm.phys().frame(t->pfn) + off;
    const std::size_t len = std::min<std::size_t>(max - out.size(), PAGE_SIZE - off);
    const void* nul = std::memchr(p, 0, len);
    if (nul) {
      out.append(reinterpret_cast<const char*>(p), static_cast<const std::uint8_t*>(nul) - p);
      return out;
    }
    out.append(reinterpret_cast<const char*>(p), len);
  }
  return fail(ENAMETOOLONG);
}

}  // namespace mmemu
