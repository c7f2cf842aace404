// The page-fault handler (handle_mm_fault and its helpers) and the user-access paths built
// on it: what a CPU access, a get_user_pages, or a copy_from_user does when the walk fails.
#pragma once

#include <cstddef>
#include <string>

#include "mmu/walker.hpp"
#include "vma/mm.hpp"

namespace mmemu {

enum class FaultResult : std::uint8_t {
  Ok,          // the access can be retried and will succeed
  SegvMapErr,  // SIGSEGV, SEGV_MAPERR: no mapping at the address
  SegvAccErr,  // SIGSEGV, SEGV_ACCERR: the mapping forbids this access
  SegvPkuErr,  // SIGSEGV, SEGV_PKUERR: x86-64's protection key of the VMA forbids it
  SegvGuard,   // SIGSEGV, SEGV_MAPERR: the PTE is a guard marker (VM_FAULT_SIGSEGV)
  SigBus,      // SIGBUS, BUS_ADRERR: a file mapping past the end of its file
  Oom,         // an allocation failed (VM_FAULT_OOM); the kernel retries after reclaim/OOM kill
};
std::string_view fault_result_name(FaultResult r);

// handle_mm_fault after the arch's checks: finds the VMA (growing a stack VMA toward addr),
// checks the access against its flags, and resolves the fault: demand-zero (the zero page
// for a read of private anonymous memory), page-cache read, copy-on-write, dirty/young
// updates. Every PTE it replaces is flushed through the mm's TlbFlusher.
FaultResult handle_mm_fault(Mm& mm, vaddr_t addr, Access access);

// faultin_page's handle_mm_fault for get_user_pages: the VMA was found and checked by GUP
// (check_vma_flags), so the arch's access checks are skipped; with FOLL_FORCE this is how a
// read of a PROT_NONE page or a write into a read-only private one is resolved.
FaultResult handle_mm_fault_vma(Mm& mm, Vma& vma, vaddr_t addr, Access access);

// expand_stack: grows a VM_GROWSDOWN VMA down to addr (rlimit, guard gap and
// mmap_min_addr checks). Returns the VMA now containing addr, or nullptr.
Vma* expand_stack(Mm& mm, vaddr_t addr);

// Walk; on a fault, handle it and walk again, like the hardware retrying the instruction.
// Returns the translation or the fault that stopped it.
std::expected<Translation, FaultResult> fault_in(Mm& mm, vaddr_t addr, Access access);

// copy_from_user / copy_to_user / strncpy_from_user: EFAULT where the guest would fault, and
// at or above TASK_SIZE_MAX (access_ok).
Result<void> copy_from_user(Mm& mm, void* dst, vaddr_t src, std::size_t n);
Result<void> copy_to_user(Mm& mm, vaddr_t dst, const void* src, std::size_t n);
Result<std::string> strncpy_from_user(Mm& mm, vaddr_t src, std::size_t max);

}  // namespace mmemu
