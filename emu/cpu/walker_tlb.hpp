// The page-table walker behind a CPU's TLB. On every TLB miss the CPU asks it for the page
// (tlb_miss, inside the emulator); it walks the process's own page tables in their real
// format as the hardware walker does: it sets the accessed bit on every fill and the dirty
// bit on a write fill, and fills a clean writable page read-only so that its first store
// misses again. A miss the tables cannot serve goes to the fault handler the kernel gave
// it, still inside the emulator (demand paging and copy-on-write cost no stop); when that
// handler answers with a signal or an out-of-memory, the CPU stops at the faulting
// instruction and the kernel takes the outcome (take_outcome). Every PTE change reaches
// the CPU through TlbFlusher, batched by the mm's mmu_gather.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "emu/cpu/cpu.hpp"
#include "mmu/tlb_flush.hpp"
#include "vma/fault.hpp"
#include "vma/mm.hpp"

namespace mmemu {

// What happened, for the kernel's trace and stats.
struct TlbEvent {
  enum class Kind : std::uint8_t {
    Fill,   // start: the page; pfn: its frame; perms: what the entry allows
    Flush,  // a flush call: start/end its range (0, ~0 for flush_all)
    Dirty,  // a write fill set the dirty bit of a clean writable page (start = page)
  };
  Kind kind;
  vaddr_t start = 0, end = 0;
  pfn_t pfn = 0;
  unsigned perms = 0;
};

// What resolving a fault came to.
struct TlbFaultOutcome {
  enum class Kind : std::uint8_t {
    Retry,   // translation now valid; restart the instruction
    Signal,  // deliver info.signo (SIGSEGV/SIGBUS) with info.code and info.addr
    Oom,     // the fault handler could not allocate; the caller retries once, then kills
  };
  Kind kind = Kind::Retry;
  int signo = 0;
  int code = 0;
  vaddr_t addr = 0;
  FaultResult result = FaultResult::Ok;  // what handle_mm_fault said (Ok if none ran)
  unsigned pkey = 0;                     // SEGV_PKUERR: the key that refused the access
};

struct TlbStats {
  std::uint64_t fills = 0, dirty_fills = 0, refused = 0;  // misses answered / refused
  std::uint64_t flush_calls = 0;
  std::uint64_t mm_faults = 0;    // handle_mm_fault calls
  std::uint64_t hook_faults = 0;  // faults the handler resolved inside the emulator
};

class WalkerTlb final : public TlbFlusher, public TlbMissHandler {
 public:
  // The kernel's fault path (trace, stats, --check around resolve()).
  using FaultHandler = std::function<TlbFaultOutcome(const MemFault&)>;

  // Becomes cpu's miss handler. Without a fault handler, a miss the tables cannot serve
  // stops the CPU and the kernel resolves it outside.
  WalkerTlb(Cpu& cpu, Mm& mm);
  ~WalkerTlb() override;  // stops being cpu's miss handler
  WalkerTlb(const WalkerTlb&) = delete;
  WalkerTlb& operator=(const WalkerTlb&) = delete;

  void set_fault_handler(FaultHandler h) { fault_handler_ = std::move(h); }

  // TlbMissHandler (inside the emulator).
  std::optional<TlbFill> tlb_miss(vaddr_t va, Access access) override;
  pfn_t peek(vaddr_t va) override;

  // The outcome the fault handler gave for the fault that stopped the CPU, once.
  std::optional<TlbFaultOutcome> take_outcome();
  // handle_mm_fault until the access is valid or a signal is due. Never inside the
  // emulator's hooks unless called by the fault handler itself.
  TlbFaultOutcome resolve(const MemFault& f);

  // TlbFlusher: the CPU's TLB drops everything (a full flush costs ~0.35 us).
  void flush_page(vaddr_t va) override;
  void flush_range(vaddr_t start, vaddr_t end) override;
  void flush_all() override;

  const TlbStats& stats() const { return stats_; }
  Mm& mm() { return *mm_; }

  // --check: remember every fill until the next flush, and check those translations
  // against the page tables (each page maps the frame its PTE maps, with no permission
  // the PTE lacks, W only when dirty). Returns what is stale.
  void set_tracking(bool on);
  std::vector<std::string> verify() const;

  std::function<void(const TlbEvent&)> on_event;

 private:
  struct Filled {
    vaddr_t page;
    pfn_t pfn;
    unsigned perms;
  };
  void flushed(vaddr_t start, vaddr_t end);

  Cpu* cpu_;
  Mm* mm_;
  FaultHandler fault_handler_;
  std::optional<TlbFaultOutcome> outcome_;
  bool tracking_ = false;
  std::vector<Filled> filled_;
  TlbStats stats_;
};

// The TLBs of every CPU using one mm (a vfork child shares its parent's mm): the mm's
// flusher, fanning each flush out to all of them.
class TlbGroup final : public TlbFlusher {
 public:
  void attach(WalkerTlb* t);
  void detach(WalkerTlb* t);
  bool empty() const { return tlbs_.empty(); }
  void flush_page(vaddr_t va) override;
  void flush_range(vaddr_t start, vaddr_t end) override;
  void flush_all() override;

 private:
  std::vector<WalkerTlb*> tlbs_;
};

}  // namespace mmemu
