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
// (MAP_ANONYMOUS). Populates when MAP_POPULATE or VM_LOCKED ask for it.
Result<vaddr_t> sys_mmap(Mm& mm, vaddr_t addr, std::uint64_t len, int prot, int flags, File* file,
                         std::uint64_t off);
// do_mmap: the core, pgoff in pages; *populate is set to the length to populate.
Result<vaddr_t> do_mmap(Mm& mm, vaddr_t addr, std::uint64_t len, int prot, int flags, File* file,
                        std::uint64_t pgoff, std::uint64_t* populate = nullptr);
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

// --- mprotect.cpp ---
Result<void> do_mprotect(Mm& mm, vaddr_t start, std::uint64_t len, int prot);
// change_protection: rewrites the PTEs of [start, end) in vma for its current vm_page_prot
// (private writable pages keep write access only where they are exclusively owned and dirty).
void change_protection(Vma& vma, vaddr_t start, vaddr_t end);

// --- mremap.cpp ---
Result<vaddr_t> do_mremap(Mm& mm, vaddr_t old_addr, std::uint64_t old_len, std::uint64_t new_len,
                          int flags, vaddr_t new_addr);

// --- brk.cpp ---
// brk(2): returns the new break, or the old one when the request cannot be met.
vaddr_t sys_brk(Mm& mm, vaddr_t brk);

// --- madvise.cpp ---
Result<void> do_madvise(Mm& mm, vaddr_t start, std::uint64_t len, int advice);

// --- mlock.cpp ---
Result<void> do_mlock(Mm& mm, vaddr_t start, std::uint64_t len, unsigned flags /*MLOCK_ONFAULT*/);
Result<void> do_munlock(Mm& mm, vaddr_t start, std::uint64_t len);
Result<void> do_mlockall(Mm& mm, int flags);
Result<void> do_munlockall(Mm& mm);

// --- mincore.cpp ---
Result<std::vector<std::uint8_t>> do_mincore(Mm& mm, vaddr_t start, std::uint64_t len);

// --- msync.cpp ---
Result<void> do_msync(Mm& mm, vaddr_t start, std::uint64_t len, int flags);

}  // namespace mmemu
