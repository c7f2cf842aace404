// Pages mapped straight into a process's tables with no VMA: the x86_64 legacy vsyscall
// page at 0xffffffffff600000 (gettimeofday at +0x0, time at +0x400, getcpu at +0x800, each
// `mov $nr, %rax; syscall; ret`) and the arm64 signal-return trampoline at the last page
// below 2^48 (`mov x8, #139; svc #0`), used as the return address of handlers installed
// without SA_RESTORER. Both go through PageTable::map_arch_pages: they survive any
// munmap/mremap of their neighbours (the per-arch FIRST_USER_ADDRESS/USER_PGTABLES_CEILING
// keep their tables) and are freed only by exit_mmap.
#pragma once

#include "vma/mm.hpp"

namespace mmemu {

inline constexpr vaddr_t kX86VsyscallPage = 0xffffffffff600000ULL;
inline constexpr vaddr_t kArm64SigpagePage = 0xfffffffff000ULL;

// The arch page's address and the trampoline's (arm64: the sigreturn code).
vaddr_t arch_page_addr(Arch arch);
vaddr_t sigreturn_trampoline(Arch arch);  // 0 on x86_64 (glibc always sets SA_RESTORER)

// Allocates the page (page site), fills it, and maps it. ENOMEM leaves nothing mapped.
Result<void> map_arch_pages(Mm& mm);

}  // namespace mmemu
