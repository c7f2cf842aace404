#include "mmu/phys_mem.hpp"

#include <sys/mman.h>

#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

namespace mmemu {

namespace {
constexpr std::uint64_t kBlockFrames = PMD_SIZE / PAGE_SIZE;  // 512 frames = 2 MiB
}  // namespace

// Frames are grouped in 2 MiB blocks. A block is either general (any allocation may use
// it) or reserved for one (owner, 2 MiB virtual window): then the frame at the same offset
// in the block as the page in the window is kept for that page, so a mapping that faults
// its pages in any order still ends up physically contiguous. Reservations are broken only
// when no other frame is left.
struct PhysMem::Impl {
  using Key = std::pair<std::uint64_t, std::uint64_t>;  // (owner, va >> PMD_SHIFT)
  struct Block {
    std::uint32_t nfree = 0;
    bool reserved = false;
    Key key{};
  };
  std::vector<Block> blocks;
  std::set<std::uint64_t> empty;          // wholly free, unreserved
  std::set<std::uint64_t> partial;        // general, some frames free
  std::set<std::uint64_t> reserved_free;  // reserved, some frames free
  std::map<Key, std::uint64_t> reservations;

  void classify(std::uint64_t b) {
    empty.erase(b);
    partial.erase(b);
    reserved_free.erase(b);
    Block& blk = blocks[b];
    if (blk.nfree == kBlockFrames && !blk.reserved) {
      empty.insert(b);
    } else if (blk.nfree > 0) {
      (blk.reserved ? reserved_free : partial).insert(b);
    }
  }
  void unreserve(std::uint64_t b) {
    Block& blk = blocks[b];
    if (!blk.reserved) return;
    reservations.erase(blk.key);
    blk.reserved = false;
    classify(b);
  }
};

PhysMem::PhysMem(FaultInjector& inject, LiveObjects& live, std::uint64_t bytes)
    : inject_(&inject), live_(&live), impl_(std::make_unique<Impl>()) {
  const std::uint64_t nblocks = bytes / PMD_SIZE;
  if (nblocks < 2) throw std::invalid_argument("physical memory must be at least 4 MiB");
  nr_frames_ = nblocks * kBlockFrames;
  void* p = mmap(nullptr, nr_frames_ << PAGE_SHIFT, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot reserve " + std::to_string(bytes) + " bytes of host memory");
  base_ = static_cast<std::uint8_t*>(p);
  descs_.resize(nr_frames_);
  impl_->blocks.resize(nblocks);
  for (std::uint64_t b = 0; b < nblocks; ++b) {
    impl_->blocks[b].nfree = kBlockFrames;
    impl_->empty.insert(b);
  }
  nr_free_ = nr_frames_;
  // Frame 0 is the shared zero page: permanently referenced, never freed or counted live.
  zero_pfn_ = 0;
  descs_[0].refcount = 1;
  descs_[0].flags = PG_zero | PG_reserved;
  impl_->blocks[0].nfree--;
  impl_->classify(0);
  --nr_free_;
}

PhysMem::~PhysMem() {
  if (base_) munmap(base_, nr_frames_ << PAGE_SHIFT);
}

Result<pfn_t> PhysMem::alloc_frame(AllocSite site, const AllocHint* hint) {
  // Callers name themselves with an AllocCaller scope (do_anonymous_page, __pte_alloc, ...).
  if (inject_->should_fail(site, "alloc_pages",
                           hint ? std::optional<std::uint64_t>(hint->va) : std::nullopt))
    return fail(ENOMEM);
  Impl& im = *impl_;
  pfn_t pfn = kNoPfn;
  auto take_any = [&](std::uint64_t b) -> pfn_t {
    for (std::uint64_t i = 0; i < kBlockFrames; ++i) {
      if (descs_[b * kBlockFrames + i].refcount == 0) return b * kBlockFrames + i;
    }
    return kNoPfn;
  };
  if (hint) {
    const Impl::Key key{hint->owner, hint->va >> PMD_SHIFT};
    const std::uint64_t off = (hint->va >> PAGE_SHIFT) & (kBlockFrames - 1);
    auto it = im.reservations.find(key);
    if (it == im.reservations.end() && !im.empty.empty()) {
      const std::uint64_t b = *im.empty.begin();
      im.blocks[b].reserved = true;
      im.blocks[b].key = key;
      it = im.reservations.emplace(key, b).first;
      im.classify(b);
    }
    if (it != im.reservations.end()) {
      const pfn_t want = it->second * kBlockFrames + off;
      if (descs_[want].refcount == 0) pfn = want;
    }
  }
  if (pfn == kNoPfn) {
    if (!im.partial.empty()) {
      pfn = take_any(*im.partial.begin());
    } else if (!im.empty.empty()) {
      pfn = take_any(*im.empty.begin());
    } else if (!im.reserved_free.empty()) {
      // Memory is short: break the lowest reservation that still has room.
      const std::uint64_t b = *im.reserved_free.begin();
      im.unreserve(b);
      pfn = take_any(b);
    }
  }
  if (pfn == kNoPfn) return fail(ENOMEM);

  const std::uint64_t b = pfn / kBlockFrames;
  im.blocks[b].nfree--;
  im.classify(b);
  --nr_free_;
  PageDesc& d = descs_[pfn];
  d = PageDesc{};
  d.refcount = 1;
  if (site == AllocSite::PgTable) d.flags = PG_pgtable;
  std::memset(frame(pfn), 0, PAGE_SIZE);
  live_->created(site, pfn);
  return pfn;
}

void PhysMem::get_page(pfn_t pfn) {
  ++descs_[pfn].refcount;
}

bool PhysMem::put_page(pfn_t pfn) {
  PageDesc& d = descs_[pfn];
  if (d.flags & PG_reserved) return false;
  if (d.refcount == 0) throw std::logic_error("put_page on free frame " + std::to_string(pfn));
  if (--d.refcount > 0) return false;
  live_->destroyed((d.flags & PG_pgtable) ? AllocSite::PgTable : AllocSite::Page, pfn);
  flush_dcache_page(pfn);  // the frame will be reused: no CPU may run its old code
  d = PageDesc{};
  ++nr_free_;
  const std::uint64_t b = pfn / kBlockFrames;
  Impl::Block& blk = impl_->blocks[b];
  blk.nfree++;
  if (blk.nfree == kBlockFrames) impl_->unreserve(b);
  impl_->classify(b);
  return true;
}

void PhysMem::copy_frame(pfn_t dst, pfn_t src) {
  std::memcpy(frame(dst), frame(src), PAGE_SIZE);
}

pte_t PhysMem::load_entry(pfn_t table, unsigned idx) const {
  pte_t v;
  std::memcpy(&v, frame(table) + idx * sizeof(pte_t), sizeof v);
  return v;
}

void PhysMem::store_entry(pfn_t table, unsigned idx, pte_t value) {
  std::memcpy(frame(table) + idx * sizeof(pte_t), &value, sizeof value);
}

}  // namespace mmemu
