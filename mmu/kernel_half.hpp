// init_mm's part of the page tables of one architecture: the kernel half every address space
// shares. Linux builds it once (swapper_pg_dir) and pgd_alloc copies its upper-half top-level
// entries into every new pgd, so the tables below those entries belong to init_mm, are shared
// by every mm, and no exit_mmap or pgd_free ever frees them. mmemu keeps here the kernel-half
// ranges user space can reach (x86-64's vsyscall page): mapped ones, with their own tables
// and frames, and unmapped ones, which have no entry at all and fault on every access (the
// fault handler above mmu/ decides what such a fault means).
//
// Owns its tables (a PageTable of its own, init_mm's pgd and everything below) and the frames
// handed to map(). map() allocates from the pgtable site and may fail (nothing stays mapped).
// Address spaces copy the entries when they are created (PageTable::create): ranges added
// later are not seen by address spaces that already exist. release() frees everything and
// must only run when no address space that copied the entries is left.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mmu/page_table.hpp"

namespace mmemu {

struct KernelHalfRange {
  vaddr_t start;
  vaddr_t end;
  PteProt user;  // what user space is allowed, through the entries or by the fault handler
  std::string name;
  bool mapped;  // has entries in init_mm's tables
};

class KernelHalf {
 public:
  KernelHalf(PhysMem& phys, Arch arch) : phys_(&phys), arch_(arch) {}
  ~KernelHalf() { release(); }
  KernelHalf(const KernelHalf&) = delete;
  KernelHalf& operator=(const KernelHalf&) = delete;

  Arch arch() const { return arch_; }

  // A range user space may reach with no entries behind it. EINVAL for an unaligned, empty
  // or lower-half range; EEXIST if it overlaps a range already there.
  Result<void> add_unmapped(vaddr_t start, vaddr_t end, PteProt user, std::string name);
  // Maps `frames` (one reference each handed over on success) at [start, ...) with entry
  // protection `pte`, allocating init_mm's pgd and tables from the pgtable site. EINVAL and
  // EEXIST as add_unmapped; ENOMEM leaves nothing mapped and the frames the caller's.
  Result<void> map(vaddr_t start, const std::vector<pfn_t>& frames, PteProt pte, PteProt user,
                   std::string name);

  const std::vector<KernelHalfRange>& ranges() const { return ranges_; }
  const KernelHalfRange* range_at(vaddr_t va) const;
  // init_mm's tables (null while nothing is mapped): the pgd whose upper-half entries new
  // address spaces copy, and the tables below them.
  const PageTable* tables() const { return pt_.get(); }
  // Number of tables below init_mm's pgd (the shared ones).
  std::size_t nr_shared_tables() const;

  // Unmaps and frees every frame and table, and forgets every range.
  void release();

 private:
  Result<void> check_new(vaddr_t start, vaddr_t end) const;
  PhysMem* phys_;
  Arch arch_;
  std::unique_ptr<PageTable> pt_;
  std::vector<KernelHalfRange> ranges_;
};

// The first top-level index of the kernel half on x86-64 (pgd_alloc copies 256..511);
// arm64's kernel half lives in TTBR1, apart from user page tables, so nothing is copied.
inline constexpr unsigned kX86KernelPgdIndex = PTRS_PER_TABLE / 2;

}  // namespace mmemu
