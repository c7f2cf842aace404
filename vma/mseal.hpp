// mseal(2) (Linux 6.10+, as 6.18 answers it) and the checks the other memory calls make on
// sealed VMAs. Sealing sets VM_SEALED on every VMA of a fully mapped range (vma_modify_flags:
// splitting at the edges and merging with sealed neighbours); it is never cleared, and fork
// copies it with the other flags. A sealed VMA refuses munmap, mprotect, mremap, MAP_FIXED
// over it, and the discarding madvise advice on read-only anonymous memory, with EPERM.
//
// As in Linux 6.13+ the checks are per VMA, made where each operation meets the VMA: munmap
// (and MAP_FIXED) gathers the whole range before unmapping anything, so it fails with nothing
// unmapped (a split already made at the start stays); mprotect and madvise walk the range
// and stop at the first sealed VMA, keeping what they did to the VMAs before it.
//
// Failure: do_mseal can run out of memory splitting a VMA (ENOMEM, from the vma, anon_vma or
// maple_node sites); the VMAs sealed before the failing one stay sealed, the tree is valid
// and nothing leaks (vma_modify_flags' contract).
#pragma once

#include <cstdint>

#include "vma/mm.hpp"

namespace mmemu {

// can_modify_vma: false when vma is sealed.
inline bool can_modify_vma(const Vma& vma) {
  return !(vma.vm_flags & VM_SEALED);
}

// can_madvise_modify: may `behavior` be applied to vma? Only the discarding advice on a
// sealed, anonymous VMA the caller cannot write (no VM_WRITE, or a protection key denying
// writes) is refused.
bool can_madvise_modify(const Mm& mm, const Vma& vma, int behavior);

// mseal(2): flags must be 0; start page aligned; len rounded up; [start, start + len) fully
// mapped (ENOMEM otherwise, nothing sealed).
Result<void> do_mseal(Mm& mm, vaddr_t start, std::uint64_t len_in, std::uint64_t flags);

}  // namespace mmemu
