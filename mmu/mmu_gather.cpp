#include "mmu/mmu_gather.hpp"

#include <algorithm>

namespace mmemu {

namespace {
// The last page of the address space ends at 2^64, which does not fit: saturate.
vaddr_t page_end(vaddr_t va) {
  const vaddr_t e = page_align_down(va) + PAGE_SIZE;
  return e == 0 ? ULONG_MAX_ADDR : e;
}
}  // namespace

MmuGather::MmuGather(PageTable& pt, TlbFlusher* flusher, bool fullmm)
    : pt_(&pt), flusher_(flusher), fullmm_(fullmm) {
  pages_.reserve(kMaxBatch);
}

MmuGather::~MmuGather() {
  if (!finished_) finish();
}

void MmuGather::track(vaddr_t start, vaddr_t end) {
  start_ = std::min(start_, start);
  end_ = std::max(end_, end);
}

void MmuGather::remove_page(pfn_t pfn, vaddr_t va) {
  finished_ = false;
  track(va, page_end(va));
  pages_.push_back(pfn);
  if (pages_.size() >= kMaxBatch) flush();
}

void MmuGather::free_table(pfn_t table, Level /*level*/, vaddr_t va) {
  // pte_free_tlb & co. track one page at the table's address (tlb_flush_pmd_range(addr,
  // PAGE_SIZE)); the leaves it held were cleared and tracked by the unmap before.
  finished_ = false;
  track(va, page_end(va));
  tables_.push_back(table);
  if (tables_.size() >= kMaxBatch) flush();
}

void MmuGather::flush() {
  const bool tracked = start_ < end_;
  if (tracked || !pages_.empty() || !tables_.empty()) {
    if (flusher_) {
      if (fullmm_) {
        flusher_->flush_all();
      } else if (tracked) {
        flusher_->flush_range(start_, end_);
      }
    }
    ++flushes_;
  }
  start_ = ~0ULL;
  end_ = 0;
  // Only now may the frames be reused: no TLB can still reach them.
  PhysMem& phys = pt_->phys();
  for (pfn_t t : tables_)
    phys.put_page(t);
  tables_released_ += tables_.size();
  tables_.clear();
  for (pfn_t p : pages_)
    phys.put_page(p);
  pages_released_ += pages_.size();
  pages_.clear();
}

void MmuGather::finish() {
  flush();
  finished_ = true;
}

}  // namespace mmemu
