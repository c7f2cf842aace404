// Emulated physical memory: a fixed number of 4 KiB frames in one host reservation that is
// only touched when used, a descriptor per frame, the shared zero page, and an allocator
// that keeps 2 MiB reservations so neighbouring virtual pages of one mapping get
// neighbouring frames (the emulator's software TLB maps such runs as one region).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "mmu/fault_inject.hpp"
#include "mmu/live_objects.hpp"
#include "mmu/types.hpp"

namespace mmemu {

enum PageFlag : std::uint32_t {
  PG_anon = 1U << 0,       // anonymous memory; mapping is an AnonVma*
  PG_pgtable = 1U << 1,    // holds a page table
  PG_zero = 1U << 2,       // the shared zero page
  PG_dirty = 1U << 3,      // contents differ from backing (set when a dirty PTE is zapped)
  PG_lazyfree = 1U << 4,   // MADV_FREE'd: reclaim may drop it while clean and unpinned
  PG_mlocked = 1U << 5,    // mapped by an mlocked VMA
  PG_reserved = 1U << 6,   // never handed out (the zero page)
  PG_pagecache = 1U << 7,  // page cache of a file; mapping is the file object
  PG_arch = 1U << 8,       // backs an arch mapping outside VMAs (vsyscall, trampoline)
  // A CPU may hold code translated from this frame (set by the CPU backend when it fills
  // an instruction fetch). Host writes into such a frame go through flush_dcache_page, as
  // arm64 Linux tracks I-cache coherence with PG_dcache_clean.
  PG_exec_cached = 1U << 9,
};

// Told when the host rewrites or frees a frame some CPU translated code from (the CPU
// backend drops that code before it can run again). Called at most once per
// PG_exec_cached marking: the flag is cleared first.
class CodeFrameObserver {
 public:
  virtual ~CodeFrameObserver() = default;
  virtual void code_frame_changed(pfn_t pfn) = 0;
};

struct PageDesc {
  std::uint32_t refcount = 0;  // 0 means free
  std::int32_t mapcount = 0;   // PTEs mapping this frame (0-based, unlike the kernel's -1)
  std::uint32_t pincount = 0;  // FOLL_PIN-style pins (a direct-IO read holds one)
  std::uint32_t flags = 0;
  void* mapping = nullptr;  // rmap: AnonVma* (PG_anon) or the file object (PG_pagecache)
  std::uint64_t index = 0;  // page index in mapping (linear_page_index)
};

// Where a frame will be mapped; frames of the same owner and the same 2 MiB-aligned
// virtual window come from one 2 MiB-aligned physical block when possible.
struct AllocHint {
  std::uint64_t owner;  // any stable id of the mapping (e.g. an anon_vma's address)
  vaddr_t va;
};

class PhysMem {
 public:
  PhysMem(FaultInjector& inject, LiveObjects& live, std::uint64_t bytes = 1ULL << 30);
  ~PhysMem();
  PhysMem(const PhysMem&) = delete;
  PhysMem& operator=(const PhysMem&) = delete;

  // One zero-filled frame with refcount 1. `site` is AllocSite::Page for data frames or
  // AllocSite::PgTable for tables (which also get PG_pgtable). Asks the injector first.
  // ENOMEM when injected or when no frame is free.
  Result<pfn_t> alloc_frame(AllocSite site, const AllocHint* hint = nullptr);
  void get_page(pfn_t pfn);  // refcount + 1
  // refcount - 1; at zero the frame is freed (descriptor cleared, accounting updated).
  // Returns true if it was freed. Never frees the zero page.
  bool put_page(pfn_t pfn);

  PageDesc& desc(pfn_t pfn) { return descs_[pfn]; }
  const PageDesc& desc(pfn_t pfn) const { return descs_[pfn]; }
  bool valid_pfn(pfn_t pfn) const { return pfn < nr_frames_; }
  bool is_free(pfn_t pfn) const { return descs_[pfn].refcount == 0; }

  std::uint8_t* frame(pfn_t pfn) { return base_ + (pfn << PAGE_SHIFT); }
  const std::uint8_t* frame(pfn_t pfn) const { return base_ + (pfn << PAGE_SHIFT); }
  std::uint8_t* host_base() { return base_; }
  std::uint64_t size_bytes() const { return nr_frames_ << PAGE_SHIFT; }
  std::uint64_t nr_frames() const { return nr_frames_; }
  std::uint64_t nr_free() const { return nr_free_; }
  pfn_t zero_pfn() const { return zero_pfn_; }
  void copy_frame(pfn_t dst, pfn_t src);

  // The host (not a guest store) is about to write into pfn, or frees it: if a CPU holds
  // code translated from it, the observer is told so the stale code cannot run. Every
  // host write into a frame a guest may have mapped calls this (uaccess writes, shmem
  // writes and truncation); freeing calls it by itself.
  void flush_dcache_page(pfn_t pfn) {
    PageDesc& d = descs_[pfn];
    if (!(d.flags & PG_exec_cached)) return;
    d.flags &= ~PG_exec_cached;
    if (code_observer_) code_observer_->code_frame_changed(pfn);
  }
  void set_code_observer(CodeFrameObserver* o) { code_observer_ = o; }
  CodeFrameObserver* code_observer() const { return code_observer_; }

  // 64-bit little-endian entry access inside a table frame.
  pte_t load_entry(pfn_t table, unsigned idx) const;
  void store_entry(pfn_t table, unsigned idx, pte_t value);

  FaultInjector& injector() { return *inject_; }
  LiveObjects& live() { return *live_; }

 private:
  // Implementation state (free lists, reservations) is the allocator's business.
  struct Impl;
  FaultInjector* inject_;
  LiveObjects* live_;
  std::uint8_t* base_ = nullptr;
  std::uint64_t nr_frames_ = 0;
  std::uint64_t nr_free_ = 0;
  pfn_t zero_pfn_ = 0;
  std::vector<PageDesc> descs_;
  std::unique_ptr<Impl> impl_;
  CodeFrameObserver* code_observer_ = nullptr;
};

}  // namespace mmemu
