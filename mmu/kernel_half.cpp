#include "mmu/kernel_half.hpp"

#include <algorithm>

#include "mmu/mmu_gather.hpp"

namespace mmemu {

const KernelHalfRange* KernelHalf::range_at(vaddr_t va) const {
  for (const auto& r : ranges_)
    if (r.start <= va && va < r.end) return &r;
  return nullptr;
}

Result<void> KernelHalf::check_new(vaddr_t start, vaddr_t end) const {
  if (!page_aligned(start) || !page_aligned(end) || (end != 0 && end <= start)) return fail(EINVAL);
  // Only the upper half is the kernel's (x86-64: pgd index 256 and up).
  if (arch_ == Arch::X86_64 && table_index(start, Level::Pgd) < kX86KernelPgdIndex)
    return fail(EINVAL);
  const vaddr_t last = end - 1;
  for (const auto& r : ranges_)
    if (r.start <= last && start <= r.end - 1) return fail(EEXIST);
  return {};
}

Result<void> KernelHalf::add_unmapped(vaddr_t start, vaddr_t end, PteProt user, std::string name) {
  if (auto r = check_new(start, end); !r) return r;
  ranges_.push_back(KernelHalfRange{start, end, user, std::move(name), false});
  std::sort(ranges_.begin(), ranges_.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  return {};
}

Result<void> KernelHalf::map(vaddr_t start, const std::vector<pfn_t>& frames, PteProt pte,
                             PteProt user, std::string name) {
  if (frames.empty()) return fail(EINVAL);
  const vaddr_t end = start + frames.size() * PAGE_SIZE;
  if (auto r = check_new(start, end); !r) return r;
  const bool fresh = !pt_;
  if (fresh) {
    auto pt = PageTable::create(*phys_, arch_);
    if (!pt) return std::unexpected(pt.error());
    pt_ = std::move(*pt);
  }
  // The registry of init_mm's PageTable keeps the frames' PG_arch and mapcount, and undoes a
  // failed table allocation itself.
  if (auto r = pt_->map_arch_pages(start, frames, pte, name); !r) {
    if (fresh) pt_.reset();
    return r;
  }
  ranges_.push_back(KernelHalfRange{start, end, user, std::move(name), true});
  std::sort(ranges_.begin(), ranges_.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  return {};
}

std::size_t KernelHalf::nr_shared_tables() const {
  return pt_ ? pt_->nr_tables_total() - 1 : 0;
}

void KernelHalf::release() {
  if (pt_) {
    {
      MmuGather tlb(*pt_, nullptr, /*fullmm=*/true);
      pt_->unmap_arch_pages(tlb);
      tlb.finish();
    }
    pt_.reset();
  }
  ranges_.clear();
}

}  // namespace mmemu
