// struct mm_struct: one address space — its maple tree of VMAs, its page tables, counters
// and layout, and the resource limits it reads (its process's). The memory system calls and
// the fault handler operate on it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mmu/machine.hpp"
#include "mmu/page_table.hpp"
#include "mmu/tlb_flush.hpp"
#include "vma/maple_tree.hpp"
#include "vma/rlimits.hpp"
#include "vma/vma.hpp"

namespace mmemu {

enum RssType : int { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES, NR_MM_COUNTERS };

// mm->flags bits that model the kernel's MMF_* flags.
enum MmFlag : std::uint32_t {
  MMF_UNSTABLE = 1U << 0,  // not fully set up (failed fork); walkers must not trust it
  MMF_OOM_SKIP = 1U << 1,  // the OOM killer/reaper must skip it
  MMF_EXITED = 1U << 2,    // exit_mmap has run
};

// Capabilities that change mm semantics (the emulator grants them like the host user has).
enum MmCap : std::uint32_t {
  CAP_IPC_LOCK_BIT = 1U << 0,   // mlock beyond RLIMIT_MEMLOCK
  CAP_SYS_RAWIO_BIT = 1U << 1,  // mmap below mmap_min_addr
  CAP_SYS_RESOURCE_BIT = 1U << 2,
};

// What exit_mmap did, for its trace event.
struct ExitMmapReport {
  int vmas_removed = 0;            // tear_down_vmas' count
  int map_count = 0;               // mm->map_count it was compared with
  std::uint64_t nr_accounted = 0;  // pages of VM_ACCOUNT VMAs
  bool met_xa_zero = false;        // the walk stopped at an XA_ZERO marker
  bool empty = false;              // no VMA at all (straight to destroy)
  std::uint64_t pages_freed = 0;
  std::uint64_t tables_freed = 0;
};

class Mm {
 public:
  // mm_alloc + mm_init: allocates the pgd (pgtable site). Layout fields start as Linux's
  // defaults for a task with an 8 MiB stack limit and no randomisation; mm_users and
  // mm_count start at 1 (the creator's use).
  static Result<std::unique_ptr<Mm>> create(Machine& m, Arch arch);
  // __mmdrop: frees the pgd and the struct. The unique_ptr's owner destroys it once mmdrop
  // said the last mm_count went; an owner that never counted (tests, tools) destroys it
  // directly, and then exit_mmap runs here if no mmput ran it (the last user leaving).
  ~Mm();
  Mm(const Mm&) = delete;
  Mm& operator=(const Mm&) = delete;

  Machine& machine() const { return *m_; }
  PhysMem& phys() const { return m_->phys; }
  Arch arch() const { return arch_; }
  const ArchParams& params() const { return arch_params(arch_); }
  PageTable& pt() const { return *pt_; }
  const PteFormat& fmt() const { return pt_->fmt(); }
  TlbFlusher& tlb() const { return *flusher_; }
  void set_flusher(TlbFlusher* f) { flusher_ = f ? f : &null_flusher_; }
  std::uint64_t id() const { return id_; }

  // --- VMA lookup (the maple tree holds Vma*; an XA_ZERO marker is never returned here) ---
  Vma* find_vma(vaddr_t addr) const;                             // first VMA with vm_end > addr
  Vma* vma_lookup(vaddr_t addr) const;                           // the VMA containing addr
  Vma* find_vma_intersection(vaddr_t start, vaddr_t end) const;  // first VMA meeting [start,end)
  Vma* vma_prev(const Vma& v) const;
  Vma* vma_next(const Vma& v) const;
  Vma* prev_of(vaddr_t addr) const;  // last VMA with vm_end <= addr
  std::vector<Vma*> vmas() const;    // every VMA in address order
  bool has_xa_zero() const;          // a fork-failure marker is in the tree

  MapleTree mm_mt;
  int map_count = 0;

  // Page counts of VMAs by kind (vm_stat_account).
  std::uint64_t total_vm = 0;
  std::uint64_t locked_vm = 0;
  std::uint64_t pinned_vm = 0;
  std::uint64_t data_vm = 0;
  std::uint64_t exec_vm = 0;
  std::uint64_t stack_vm = 0;
  std::array<std::int64_t, NR_MM_COUNTERS> rss{};

  // The resource limits of the process using the mm (vma/rlimits.hpp): rlimit() is Linux's
  // rlimit(RLIMIT_x), the soft limit. The kernel points the mm at the set of the process
  // running on it; nullptr (and a new mm) reads kDefaultRlimits. A forked mm reads its
  // parent's set until then. The set must outlive the mm or be replaced first.
  void set_rlimits(const Rlimits* r) { rlimits_ = r ? r : &kDefaultRlimits; }
  const Rlimits& rlimits() const { return *rlimits_; }
  std::uint64_t rlimit(Rlim r) const { return (*rlimits_)[r].cur; }
  std::uint64_t rlimit_max(Rlim r) const { return (*rlimits_)[r].max; }

  vaddr_t mmap_base = 0;
  vaddr_t task_size = 0;
  vaddr_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  vaddr_t start_brk = 0, brk = 0;
  vaddr_t start_stack = 0;
  vaddr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;

  vm_flags_t def_flags = 0;  // VM_LOCKED|VM_LOCKONFAULT after mlockall(MCL_FUTURE)
  // x86-64 protection keys (mm->context): the keys handed out (key 0 always) and the one
  // PROT_EXEC-only mappings use, once a first one asked for it (-1 before).
  std::uint16_t pkey_allocation_map = 1;
  int execute_only_pkey = -1;
  std::uint32_t flags = 0;  // MmFlag
  std::uint32_t caps = 0;   // MmCap

  // The kernel's two references (include/linux/sched/mm.h). mm_users counts users of the
  // address space: each task running on it, and anyone working on it for a while
  // (mmget/mmget_not_zero: swapoff's try_to_unuse, GUP on another process, /proc); the last
  // mmput runs exit_mmap. mm_count pins the struct itself: the users together hold one,
  // each mmgrab another (the OOM killer's victim record, a lazy-TLB CPU); the last mmdrop
  // frees it. An rmap walk takes neither: it holds the anon_vma (or i_mmap) lock instead.
  int mm_users = 1;
  int mm_count = 1;

  // exit_mmap's trace event: called once, at the end of exit_mmap, on every path.
  std::function<void(Mm&, const ExitMmapReport&)> on_exit_mmap;
  // Called inside exit_mmap between mmap_read_unlock and mmap_write_lock (after unmap_vmas,
  // before free_pgtables), where concurrent walkers can still take the mmap lock. Set by
  // whoever wants to run walkers there (dup_mm for a failed child); never inherited.
  std::function<void(Mm&)> on_exit_unlock;

 private:
  Mm(Machine& m, Arch arch, std::unique_ptr<PageTable> pt);
  class NullFlusher final : public TlbFlusher {
    void flush_page(vaddr_t) override {}
    void flush_range(vaddr_t, vaddr_t) override {}
    void flush_all() override {}
  };
  Machine* m_;
  Arch arch_;
  std::unique_ptr<PageTable> pt_;
  NullFlusher null_flusher_;
  TlbFlusher* flusher_ = &null_flusher_;
  const Rlimits* rlimits_ = &kDefaultRlimits;
  std::uint64_t id_;
};

// The reference counts (see Mm::mm_users). mmget: one more user (the caller has one, or a
// task that has the mm). mmget_not_zero: the same unless the users are gone (exit_mmap has
// started): false then, and the caller must leave the mm alone. mmput: one user fewer; the
// last one runs exit_mmap (its report in *exit if given) and drops the users' mm_count;
// returns true then. mmgrab / mmdrop: mm_count; mmdrop returns true when the last one went
// (the caller owning the unique_ptr frees the struct).
void mmget(Mm& mm);
bool mmget_not_zero(Mm& mm);
bool mmput(Mm& mm, ExitMmapReport* exit = nullptr);
void mmgrab(Mm& mm);
bool mmdrop(Mm& mm);

// vm_stat_account: keeps total_vm and the per-kind counters in step with VMAs.
void vm_stat_account(Mm& mm, vm_flags_t flags, std::int64_t npages);
// add/sub the RSS counter matching a frame.
void mm_counter_add(Mm& mm, pfn_t pfn, std::int64_t n);

}  // namespace mmemu
