// One address space's 4-level page tables, each table a frame of emulated physical memory
// holding 512 entries in the architecture's format. Also the registry of arch mappings:
// pages mapped straight into the tables with no VMA (arm64's trampoline). The top-level
// entries copied from init_mm at creation (mmu/kernel_half.hpp) point at tables this
// address space shares and does not own: they are walked like any other entry but left out
// of its table counts and of for_each_table/for_each_pte.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmu/freed_in_use.hpp"
#include "mmu/phys_mem.hpp"
#include "mmu/pte_format.hpp"
#include "mmu/types.hpp"

namespace mmemu {

class MmuGather;

// Where one entry lives: the table frame and the index in it.
struct PteRef {
  pfn_t table;
  unsigned index;
  friend bool operator==(PteRef, PteRef) = default;
};

struct ArchMapping {
  vaddr_t start;
  vaddr_t end;
  PteProt prot;
  std::string name;  // "[vsyscall]", "[sigpage]"
};

class PageTable {
 public:
  // Allocates the top-level table from the pgtable site (pgd_alloc). With `kernel` (init_mm's
  // tables, x86-64), its upper-half top-level entries are copied into the new table, so the
  // kernel-half tables below them are shared, as pgd_alloc's clone of swapper_pg_dir does.
  static Result<std::unique_ptr<PageTable>> create(PhysMem& phys, Arch arch,
                                                   const PageTable* kernel = nullptr);
  // Frees the top-level table only (pgd_free). Lower tables must have been freed by
  // free_pgd_range before; any left over stay allocated and show up as leaks.
  ~PageTable();
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  Arch arch() const { return arch_; }
  const PteFormat& fmt() const { return *fmt_; }
  // x86-64: the PKRU register the walker checks data accesses against (two bits per key:
  // access-disable, write-disable). Per thread in Linux; mmemu processes have one thread.
  std::uint32_t pkru = 0;
  PhysMem& phys() const { return *phys_; }
  pfn_t pgd() const { return pgd_; }

  pte_t get(PteRef r) const { return phys_->load_entry(r.table, r.index); }
  void set(PteRef r, pte_t e) { phys_->store_entry(r.table, r.index, e); }

  // The table at `level` covering va, if it exists (Level::Pgd always does).
  std::optional<pfn_t> table_for(vaddr_t va, Level level) const;
  // The leaf slot for va if every table down to the PTE level exists.
  std::optional<PteRef> lookup(vaddr_t va) const;
  // The leaf slot for va, allocating missing pud/pmd/pte tables from the pgtable site
  // (pte_alloc). On failure, tables allocated before the failing one stay in place, as in
  // the kernel; free_pgtables reclaims them.
  Result<PteRef> alloc(vaddr_t va);
  // pud_alloc / pmd_alloc / pte_alloc: the table at `level` (Pud, Pmd or Pte) covering va,
  // allocating it and any missing table above it from the pgtable site (fork's
  // copy_page_range allocates level by level, only where the source has a table).
  Result<pfn_t> alloc_table(vaddr_t va, Level level);

  // Called by free_pgd_range: clears the entry in `parent` that points at `child` (a table of
  // level `child_level`) and hands the child frame to the gather for freeing after the flush.
  void detach_table(pfn_t parent, unsigned idx, Level child_level, vaddr_t va, MmuGather& tlb);
  // Non-none entries in the table frame `table`.
  unsigned nr_used_entries(pfn_t table) const;

  // --- tables freed while in use (mmu/freed_in_use.hpp) ---
  // Called by free_pgd_range when its limits let `table` (of `level`, covering [base, ...))
  // go although it still holds entries. Records every live entry, lets on_free_in_use name
  // their owners and release what it owns, then releases the rest so the emulated machine
  // stays sound: each page loses its mapping and its reference through the gather, lower
  // tables are freed, the entries are cleared. The caller then frees `table` itself.
  void release_in_use(pfn_t table, Level level, vaddr_t base, const FreePgdRangeArgs& args,
                      MmuGather& tlb);
  // Set by the mm: fills in LiveEntry::owner and releases the entries it accounts for (its
  // VMAs' pages, with their rmap and RSS), while the table is still reachable.
  std::function<void(FreedInUseTable&, MmuGather&)> on_free_in_use;
  // Every table this PageTable freed while in use, oldest first.
  const std::vector<FreedInUseTable>& freed_in_use() const { return freed_in_use_; }
  // The callers above free_pgd_range, outermost first ("munmap", "unmap_region", ...); the
  // mm layer pushes and pops them (CallFrame) so a report names the path that freed.
  std::vector<std::string_view> call_chain;
  // The id of the mm owning these tables, for reports.
  std::uint64_t mm_id = 0;

  // The top-level entry `idx` still points at the kernel-half table copied from init_mm.
  bool kernel_entry(unsigned idx) const;
  // Top-level entries copied from init_mm (index and the shared table).
  const std::vector<std::pair<unsigned, pfn_t>>& kernel_entries() const { return kernel_; }
  // Visits the shared kernel-half tables reachable from this pgd (depth first), which
  // for_each_table leaves out.
  void for_each_kernel_table(
      const std::function<void(pfn_t table, Level level, vaddr_t base)>& fn) const;

  // Number of live tables per level this address space owns (pgd is always 1; the shared
  // kernel-half tables are init_mm's).
  std::size_t nr_tables(Level level) const { return nr_tables_[static_cast<int>(level)]; }
  std::size_t nr_tables_total() const;

  // The first va an entry covers: base of its table plus index * span, sign-extended into
  // the upper half on x86-64 (pgd index >= 256), as the hardware forms canonical addresses.
  vaddr_t entry_va(vaddr_t table_base, Level level, unsigned idx) const;

  // Visits every non-none leaf entry with va in [start, end) in tables of this address space
  // (not the shared kernel half), in address order.
  void for_each_pte(vaddr_t start, vaddr_t end,
                    const std::function<void(vaddr_t va, PteRef ref, pte_t e)>& fn) const;
  // Visits every table frame this address space owns (pgd first, depth first) with its level
  // and the first va it covers.
  void for_each_table(const std::function<void(pfn_t table, Level level, vaddr_t base)>& fn) const;

  // --- arch mappings outside VMAs ---
  // Maps `frames` (already allocated, one reference each handed over) at [start, ...),
  // allocating tables as needed; registered so the walker, the checker and dumps know it.
  // Entries are young (installed as the kernel installs fixmap-style pages); each frame gets
  // mapcount + 1 and PG_arch. EINVAL for an unaligned start, no frames or a range that wraps;
  // EEXIST if an entry or arch mapping is already there; ENOMEM if a table allocation fails,
  // in which case nothing stays mapped, the tables this call allocated are freed again, and
  // the frame references are still the caller's.
  Result<void> map_arch_pages(vaddr_t start, const std::vector<pfn_t>& frames, PteProt prot,
                              std::string name);
  const std::vector<ArchMapping>& arch_mappings() const { return arch_maps_; }
  const ArchMapping* arch_mapping_at(vaddr_t va) const;
  // Exit only: clears the arch mappings' PTEs, puts their frames through the gather, and
  // frees the tables that held them (free_pgd_range over each with floor 0, ceiling 0).
  void unmap_arch_pages(MmuGather& tlb);

 private:
  // A table alloc_impl installed: the entry (parent, idx) now points at `table` of `level`.
  struct NewTable {
    pfn_t parent;
    unsigned idx;
    Level level;
    pfn_t table;
  };
  PageTable(PhysMem& phys, Arch arch, pfn_t pgd);
  Result<PteRef> alloc_impl(vaddr_t va, std::vector<NewTable>* created);
  Result<pfn_t> alloc_down_to(vaddr_t va, Level level, std::vector<NewTable>* created);
  void collect_live(pfn_t table, Level level, vaddr_t base, std::vector<LiveEntry>& out) const;
  void release_subtree(pfn_t table, Level level, vaddr_t base, MmuGather& tlb);
  void visit_tables(pfn_t table, Level level, vaddr_t base,
                    const std::function<void(pfn_t, Level, vaddr_t)>& fn) const;
  void visit_ptes(pfn_t table, Level level, vaddr_t base, vaddr_t start, vaddr_t last,
                  const std::function<void(vaddr_t, PteRef, pte_t)>& fn) const;
  PhysMem* phys_;
  Arch arch_;
  const PteFormat* fmt_;
  pfn_t pgd_;
  std::array<std::size_t, 4> nr_tables_{1, 0, 0, 0};
  std::vector<ArchMapping> arch_maps_;
  std::vector<FreedInUseTable> freed_in_use_;
  std::vector<std::pair<unsigned, pfn_t>> kernel_;  // top-level entries copied from init_mm
};

// Names a kernel function on the path to free_pgd_range for as long as it runs, so that a
// page-table use-after-free report shows the chain that freed (PageTable::call_chain).
class CallFrame {
 public:
  CallFrame(PageTable& pt, std::string_view fn) : pt_(pt) { pt_.call_chain.push_back(fn); }
  ~CallFrame() { pt_.call_chain.pop_back(); }
  CallFrame(const CallFrame&) = delete;
  CallFrame& operator=(const CallFrame&) = delete;

 private:
  PageTable& pt_;
};

}  // namespace mmemu
