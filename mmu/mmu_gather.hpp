// mmu_gather: batches the pages and page tables an unmap releases together with the
// virtual range that must be flushed, so nothing is freed while a TLB may still point at it.
#pragma once

#include <vector>

#include "mmu/page_table.hpp"
#include "mmu/tlb_flush.hpp"

namespace mmemu {

class MmuGather {
 public:
  // Pages (and, separately, tables) one batch holds before the gather flushes on its own;
  // the kernel's batch is a page of pointers (MAX_GATHER_BATCH, about 510).
  static constexpr std::size_t kMaxBatch = 512;

  // flusher may be null (no TLB to keep coherent, e.g. an mm no CPU ever ran).
  // tlb_gather_mmu (fullmm = false) / tlb_gather_mmu_fullmm (exit: one flush_all).
  MmuGather(PageTable& pt, TlbFlusher* flusher, bool fullmm = false);
  ~MmuGather();  // finish()
  MmuGather(const MmuGather&) = delete;
  MmuGather& operator=(const MmuGather&) = delete;

  PageTable& page_table() { return *pt_; }
  bool fullmm() const { return fullmm_; }

  // tlb_remove_page: the caller has cleared the PTE and dropped the mapcount; the gather
  // drops the reference after the flush.
  void remove_page(pfn_t pfn, vaddr_t va);
  // pte_free_tlb / pmd_free_tlb / pud_free_tlb: the table frame is freed after the flush.
  void free_table(pfn_t table, Level level, vaddr_t va);
  // tlb_flush_pte_range: [start, end) needs a flush before the batch is released.
  void track(vaddr_t start, vaddr_t end);

  // tlb_flush_mmu: flush what was tracked (flush_range, or flush_all when fullmm; nothing
  // when nothing is tracked or pending), then release the pages and tables.
  void flush();
  void finish();  // tlb_finish_mmu

  std::size_t pending_pages() const { return pages_.size(); }
  std::size_t pending_tables() const { return tables_.size(); }
  // The range tracked since the last flush; start > end when none.
  vaddr_t range_start() const { return start_; }
  vaddr_t range_end() const { return end_; }

  std::uint64_t pages_freed() const { return pages_released_; }
  std::uint64_t tables_freed() const { return tables_released_; }
  std::uint64_t flushes() const { return flushes_; }

 private:
  PageTable* pt_;
  TlbFlusher* flusher_;
  bool fullmm_;
  bool finished_ = false;
  vaddr_t start_ = ~0ULL;
  vaddr_t end_ = 0;
  std::vector<pfn_t> pages_;
  std::vector<pfn_t> tables_;
  std::uint64_t pages_released_ = 0;
  std::uint64_t tables_released_ = 0;
  std::uint64_t flushes_ = 0;
};

}  // namespace mmemu
