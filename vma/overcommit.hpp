// The overcommit check of Linux's default policy (vm.overcommit_memory = 0, OVERCOMMIT_GUESS):
// a request to commit more pages than the machine has (RAM + swap) fails with ENOMEM. Each
// request is judged alone; what is already committed does not count, as in mode 0.
#pragma once

#include <cstdint>

#include "vma/mm.hpp"

namespace mmemu {

// __vm_enough_memory (security_vm_enough_memory_mm) for mode 0: ENOMEM when pages exceeds
// the machine's commit_limit_pages. Called before any state changes, at the sites Linux
// charges: mmap_region (accountable private mapping), shmem_zero_setup (shared anonymous
// without MAP_NORESERVE), do_brk_flags, mprotect_fixup (private mapping becoming writable),
// mremap's expand and move, acct_stack_growth, and dup_mmap (each VM_ACCOUNT VMA).
Result<void> vm_enough_memory(const Mm& mm, std::uint64_t pages);

}  // namespace mmemu
