// The memory system calls of an address space, errno for errno with Linux. Each returns
// what the system call returns on success (an address, 0, a count) or the errno.
#pragma once

#include <cstdint>
#include <vector>

#include "vma/mm.hpp"

namespace mmemu {

class File;

// --- mmap.cpp ---
// mmap(2) after fd lookup: `off` in bytes (EINVAL unless page aligned); file may be null
// (MAP_ANONYMOUS). Populates when MAP_POPULATE or VM_LOCKED ask for it. fmode_write: the
// open file description was opened for writing (FMODE_WRITE; a shared mapping of a file
// that was not may never become writable).
Result<vaddr_t> sys_mmap(Mm& mm, vaddr_t addr, std::uint64_t len, int prot, int flags, File* file,
                         std::uint64_t off, bool fmode_write = true);
// do_mmap: the core, pgoff in pages; *populate is set to the length to populate.
Result<vaddr_t> do_mmap(Mm& mm, vaddr_t addr, std::uint64_t len, int prot, int flags, File* file,
                        std::uint64_t pgoff, std::uint64_t* populate = nullptr,
                        bool fmode_write = true);
// get_unmapped_area: top-down placement below mmap_base honouring the stack guard gap,
// falling back to bottom-up; a usable hint is taken as is.
Result<vaddr_t> get_unmapped_area(Mm& mm, File* file, vaddr_t addr, std::uint64_t len,
                                  std::uint64_t pgoff, int flags);
// mmap_region: creates (or merges into a neighbour) the VMA for [addr, addr + len).
Result<vaddr_t> mmap_region(Mm& mm, File* file, vaddr_t addr, std::uint64_t len,
                            vm_flags_t vm_flags, std::uint64_t pgoff);
// may_expand_vm: RLIMIT_AS / RLIMIT_DATA.
bool may_expand_vm(const Mm& mm, vm_flags_t flags, std::uint64_t npages);
// __mm_populate / populate_vma_page_range: faults [start, start + len) in like mlock and
// MAP_POPULATE do. ignore_errors as mmap uses it.
Result<void> mm_populate(Mm& mm, vaddr_t start, std::uint64_t len, bool ignore_errors = true);

// --- munmap.cpp ---
Result<void> do_munmap(Mm& mm, vaddr_t start, std::uint64_t len);
// munmap with unmap_region's limits chosen by the caller instead of the neighbours' (the
// what-if step of mmemu script): splits and detaches as munmap does, then unmap_vmas over
// the range and free_pgtables with floor, ceiling and tree_max as given. Wrong limits free
// what Linux would free (a page-table use-after-free is recorded, see unmap.hpp). Returns
// whether free_pgtables' sanity check tree_max - 1 <= ceiling - 1 held.
Result<bool> do_munmap_with_limits(Mm& mm, vaddr_t start, std::uint64_t len, vaddr_t floor,
                                   vaddr_t ceiling, vaddr_t tree_max);

// --- mprotect.cpp ---
Result<void> do_mprotect(Mm& mm, vaddr_t start, std::uint64_t len, int prot);
// change_protection: rewrites the PTEs of [start, end) in vma for its current vm_page_prot;
// in a private writable VMA an exclusively owned anonymous page is made writable at once
// (MM_CP_TRY_CHANGE_WRITABLE), everything else waits for its write fault. Every changed
// entry is flushed through the mm's TlbFlusher.
void change_protection(Vma& vma, vaddr_t start, vaddr_t end);

// --- mremap.cpp ---
// mremap(2) returns the new address; flags are MREMAP_MAYMOVE/FIXED/DONTUNMAP. As on Linux
// 6.17+, MREMAP_FIXED without resizing may move several VMAs (gaps kept) in one call.
Result<vaddr_t> do_mremap(Mm& mm, vaddr_t old_addr, std::uint64_t old_len, std::uint64_t new_len,
                          int flags, vaddr_t new_addr);

// --- brk.cpp ---
// brk(2): returns the new break, or the old one when the request cannot be met.
vaddr_t sys_brk(Mm& mm, vaddr_t brk);

// --- madvise.cpp ---
// madvise(2) for the advice Linux 6.18 accepts (see madvise.cpp for the few modelled as
// "not available here": MADV_COLLAPSE, MADV_HWPOISON, MADV_SOFT_OFFLINE; MADV_GUARD_* are
// vma/guard.hpp's).
Result<void> do_madvise(Mm& mm, vaddr_t start, std::uint64_t len, int advice);

// --- mlock.cpp ---
// mlock(2) is do_mlock(flags 0), mlock2(2) passes its flags (MLOCK_ONFAULT or EINVAL).
Result<void> do_mlock(Mm& mm, vaddr_t start, std::uint64_t len, unsigned flags /*MLOCK_ONFAULT*/);
Result<void> do_munlock(Mm& mm, vaddr_t start, std::uint64_t len);
Result<void> do_mlockall(Mm& mm, int flags);
Result<void> do_munlockall(Mm& mm);
// can_do_mlock: RLIMIT_MEMLOCK is not 0, or CAP_IPC_LOCK.
bool can_do_mlock(const Mm& mm);
// mlock_future_ok: may `bytes` more of a mapping with these flags be locked (RLIMIT_MEMLOCK
// against locked_vm, CAP_IPC_LOCK bypasses)? mmap, mremap and brk ask it.
bool mlock_future_ok(const Mm& mm, vm_flags_t flags, std::uint64_t bytes);
// mlock_vma_pages_range: after vma's VM_LOCKED changed, marks (or clears, when no other locked
// VMA maps them) PG_mlocked on the frames mapped in [start, end).
void mlock_vma_pages_range(Vma& vma, vaddr_t start, vaddr_t end);
// mm_populate for locked memory: __mm_populate, then PG_mlocked on what it mapped.
Result<void> mlock_populate(Mm& mm, vaddr_t start, std::uint64_t len, bool ignore_errors);

// --- mincore.cpp ---
// One byte per page of [start, start + len): 1 when resident. Any hole is ENOMEM.
Result<std::vector<std::uint8_t>> do_mincore(Mm& mm, vaddr_t start, std::uint64_t len);
// mincore(2) proper: writes the bytes to guest memory at vec, chunk by chunk, so a hole or a
// bad vec leaves the bytes before it written (ENOMEM / EFAULT), as Linux does.
Result<void> sys_mincore(Mm& mm, vaddr_t start, std::uint64_t len, vaddr_t vec);

// --- msync.cpp ---
Result<void> do_msync(Mm& mm, vaddr_t start, std::uint64_t len, int flags);

}  // namespace mmemu
