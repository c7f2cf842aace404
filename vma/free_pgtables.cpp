#include "vma/free_pgtables.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "mmu/free_pgd_range.hpp"
#include "vma/anon_vma.hpp"
#include "vma/file.hpp"

namespace mmemu {

std::string free_pgtables_warning(vaddr_t tree_max, vaddr_t ceiling) {
  return fmt::format(
      "free_pgtables: WARN_ON_ONCE(tree_max - 1 > ceiling - 1): tree_max {:#x}, ceiling {:#x}",
      tree_max, ceiling);
}

void unlink_file_vma(Vma& vma) {
  if (!vma.vm_file) return;
  auto& v = vma.vm_file->i_mmap;
  v.erase(std::remove(v.begin(), v.end(), &vma), v.end());
}

bool free_pgtables(MmuGather& tlb, std::span<Vma* const> vmas, vaddr_t floor, vaddr_t ceiling,
                   vaddr_t tree_max) {
  CallFrame frame(tlb.page_table(), "free_pgtables");
  // The kernel's sanity check: the walk may not run past the ceiling (0 = top, so the
  // subtractions wrap on purpose).
  const bool sane = tree_max - 1 <= ceiling - 1;
  std::size_t i = 0;
  while (i < vmas.size()) {
    Vma* vma = vmas[i];
    const vaddr_t addr = vma->vm_start;
    unlink_anon_vmas(*vma);
    unlink_file_vma(*vma);
    // Gather neighbours that share (or nearly share) page tables into one call.
    while (i + 1 < vmas.size() && vmas[i + 1]->vm_start <= vma->vm_end + PMD_SIZE) {
      vma = vmas[++i];
      unlink_anon_vmas(*vma);
      unlink_file_vma(*vma);
    }
    const Vma* next = i + 1 < vmas.size() ? vmas[i + 1] : nullptr;
    free_pgd_range(tlb, addr, vma->vm_end, floor, next ? next->vm_start : ceiling);
    ++i;
  }
  return sane;
}

}  // namespace mmemu
