// struct vm_area_struct: one mapping of an address space.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmu/types.hpp"
#include "vma/vm_flags.hpp"

namespace mmemu {

class Mm;
class File;
struct AnonVma;
struct AnonVmaChain;

struct Vma {
  vaddr_t vm_start = 0;
  vaddr_t vm_end = 0;  // first address after the mapping
  Mm* vm_mm = nullptr;
  vm_flags_t vm_flags = 0;
  PteProt vm_page_prot;
  std::uint64_t vm_pgoff = 0;  // offset in the file (or linear page index for anon), in pages
  File* vm_file = nullptr;     // holds a reference
  AnonVma* anon_vma = nullptr;
  // same_vma list: every anon_vma this VMA's pages may belong to; the VMA's own anon_vma first.
  std::vector<AnonVmaChain*> anon_vma_chain;

  std::uint64_t pages() const { return (vm_end - vm_start) >> PAGE_SHIFT; }
  bool contains(vaddr_t a) const { return vm_start <= a && a < vm_end; }
  bool is_anonymous() const { return vm_file == nullptr; }
  bool is_shared() const { return (vm_flags & VM_SHARED) != 0; }
  // linear_page_index: the page index in vm_file (or the anon index space) of address a.
  std::uint64_t linear_page_index(vaddr_t a) const {
    return vm_pgoff + ((a - vm_start) >> PAGE_SHIFT);
  }
};

// vm_area_alloc / vm_area_dup / vm_area_free: from the `vma` allocation site. vm_area_dup
// copies every field but the anon_vma chain (empty) and takes a file reference.
Result<Vma*> vm_area_alloc(Mm& mm);
Result<Vma*> vm_area_dup(const Vma& src);
void vm_area_free(Vma* vma);  // drops the file reference too (remove_vma)

// vma_start_gap / vma_end_gap: a VM_GROWSDOWN VMA keeps stack_guard_gap free below it.
inline constexpr std::uint64_t kStackGuardGap = 256 * PAGE_SIZE;
vaddr_t vm_start_gap(const Vma& v);
vaddr_t vm_end_gap(const Vma& v);

}  // namespace mmemu
