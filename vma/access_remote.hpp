// access_remote_vm: reading and writing another (or the same) address space's memory the way
// /proc/PID/mem and ptrace do, through get_user_pages with FOLL_FORCE (mm/memory.c,
// mm/gup.c of Linux 6.18). FOLL_FORCE reaches what the CPU may not: PROT_NONE and write-only
// pages read, and a write into a read-only private mapping breaks COW into an anonymous
// copy whose entry stays read-only (maybe_mkwrite), leaving the file or the page the copy
// came from untouched. Refused, as check_vma_flags refuses: no VMA, VM_IO/VM_PFNMAP, a
// forced write to a shared mapping without VM_WRITE. Protection keys are not checked (GUP
// of a foreign mm, FOLL_REMOTE). The stack is not grown from here.
#pragma once

#include <cstddef>

#include "vma/mm.hpp"

namespace mmemu {

// Copies up to len bytes between buf and [addr, addr + len) of mm, page by page, stopping
// at the first page that cannot be reached or faulted in (an allocation failure included).
// Returns the bytes done: 0 when the first page failed. Never faults in a page it does not
// copy; what it faulted in stays mapped, as in the kernel.
std::size_t access_remote_vm(Mm& mm, vaddr_t addr, void* buf, std::size_t len, bool write);

}  // namespace mmemu
