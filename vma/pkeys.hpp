// x86-64 memory protection keys as Linux uses them without pkey_alloc: a PROT_EXEC-only
// mapping gets the mm's execute-only key, whose PKRU bits deny every data access, so reads
// and writes fault with SEGV_PKUERR while instructions still run (arch/x86/mm/pkeys.c). The
// key lives in the VMA's flags and its PTEs; the walker checks PKRU. arm64 has none.
#pragma once

#include "mmu/walker.hpp"
#include "vma/mm.hpp"
#include "vma/vma.hpp"

namespace mmemu {

// execute_only_pkey: the key for PROT_EXEC-only mappings, allocated on first use (the
// lowest free key) with access disabled in PKRU; 0 (none) on arm64 or when all are taken.
unsigned execute_only_pkey(Mm& mm);

// arch_override_mprotect_pkey for mprotect(2) (no explicit key): PROT_EXEC alone takes the
// execute-only key; a VMA leaving execute-only goes back to key 0; otherwise it keeps its key.
unsigned mprotect_pkey(Mm& mm, const Vma& vma, int prot);

// arch_vma_access_permitted for a data access (execute is never refused by a key).
bool vma_pkey_permits(const Mm& mm, const Vma& vma, Access access);

}  // namespace mmemu
