#include "vma/pkeys.hpp"

#include <sys/mman.h>

namespace mmemu {

unsigned execute_only_pkey(Mm& mm) {
  if (mm.arch() != Arch::X86_64) return 0;
  if (mm.execute_only_pkey >= 0) return static_cast<unsigned>(mm.execute_only_pkey);
  for (unsigned key = 1; key < 16; ++key) {
    if (mm.pkey_allocation_map & (1U << key)) continue;
    mm.pkey_allocation_map = static_cast<std::uint16_t>(mm.pkey_allocation_map | (1U << key));
    mm.pt().pkru |= 1U << (2 * key);  // PKEY_DISABLE_ACCESS
    mm.execute_only_pkey = static_cast<int>(key);
    return key;
  }
  return 0;
}

unsigned mprotect_pkey(Mm& mm, const Vma& vma, int prot) {
  if (mm.arch() != Arch::X86_64) return 0;
  const unsigned key = vma_pkey(vma.vm_flags);
  if (prot == PROT_EXEC) {
    const unsigned xo = execute_only_pkey(mm);
    if (xo > 0) return xo;
  } else if ((vma.vm_flags & VM_ACCESS_FLAGS) == VM_EXEC && mm.execute_only_pkey >= 0 &&
             key == static_cast<unsigned>(mm.execute_only_pkey)) {
    return 0;  // ARCH_DEFAULT_PKEY
  }
  return key;
}

bool vma_pkey_permits(const Mm& mm, const Vma& vma, Access access) {
  if (mm.arch() != Arch::X86_64 || access == Access::Exec) return true;
  return !pkey_denies(mm.pt().pkru, vma_pkey(vma.vm_flags), access);
}

}  // namespace mmemu
