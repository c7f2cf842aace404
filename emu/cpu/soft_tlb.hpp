// The software-refilled TLB: a process's Cpu regions are its TLB entries. A miss (the Cpu's
// fault handler) walks the page tables; a valid translation is refilled as the longest run
// of neighbouring pages whose frames are contiguous, whose entries are young and whose
// effective permissions are equal (a writable entry that is not dirty counts read-only, so
// its first write traps and sets the dirty bit). Anything needing the fault handler is done
// outside the emulator's hook (Stop), then the instruction restarts. Every PTE change
// reaches it through TlbFlusher and drops the entries it overlaps.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
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
    Refill,  // start/end: the region mapped; pfn: its first frame; perms
    Evict,   // an entry dropped to make room
    Flush,   // a flush call: start/end its range (0, ~0 for flush_all); dropped: entries removed
    Dirty,   // first write to a clean writable page: its entry upgraded (start = page)
  };
  Kind kind;
  vaddr_t start = 0, end = 0;
  pfn_t pfn = 0;
  unsigned perms = 0;
  std::size_t dropped = 0;
};

// What resolving a fault outside the hook came to.
struct TlbFaultOutcome {
  enum class Kind : std::uint8_t {
    Retry,   // translation now valid (refilled); restart the instruction
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
  std::uint64_t refills = 0, refill_pages = 0, evictions = 0, dirty_upgrades = 0;
  std::uint64_t flush_calls = 0, entries_flushed = 0;
  std::uint64_t hook_retries = 0, hook_stops = 0;  // misses answered in the hook / outside
  std::uint64_t mm_faults = 0;                     // handle_mm_fault calls
};

class SoftTlb final : public TlbFlusher {
 public:
  // Measured over six guests (user+sys): 8 entries 5.4 s, 16: 2.9 s, 32: 1.7 s, 64: 1.1 s,
  // 128: 0.8-1.0 s, flat beyond; 128 never evicted there.
  static constexpr std::size_t kDefaultEntries = 128;

  // Installs itself as cpu's fault handler. max_entries >= 2.
  SoftTlb(Cpu& cpu, Mm& mm, std::size_t max_entries = kDefaultEntries);
  ~SoftTlb() override;  // drops every region it mapped
  SoftTlb(const SoftTlb&) = delete;
  SoftTlb& operator=(const SoftTlb&) = delete;

  // The Cpu's fault handler: refill from a valid translation (Retry), else Stop.
  FaultAction on_fault(const MemFault& f);
  // After run() stopped with MemFault: handle_mm_fault if needed, then refill. Never
  // called inside a hook.
  TlbFaultOutcome resolve(const MemFault& f);

  // TlbFlusher: drops every entry overlapping the range (whole entries).
  void flush_page(vaddr_t va) override;
  void flush_range(vaddr_t start, vaddr_t end) override;
  void flush_all() override;

  struct Entry {
    vaddr_t start, end;
    pfn_t pfn;          // frame of start; the run's frames are pfn, pfn + 1, ...
    unsigned perms;     // PERM_*
    std::uint64_t seq;  // refill order (eviction: oldest first)
  };
  std::vector<Entry> entries() const;  // in address order
  std::size_t nr_entries() const { return entries_.size(); }
  std::size_t max_entries() const { return max_; }
  const TlbStats& stats() const { return stats_; }
  // Off: refill exactly one page (for measuring what coalescing buys).
  void set_coalescing(bool on) { coalesce_ = on; }

  // Checks every entry against the page tables (each page maps the frame its PTE maps,
  // with no permission the entry lacks, W only when dirty). Returns what is stale.
  std::vector<std::string> verify() const;

  std::function<void(const TlbEvent&)> on_event;

 private:
  struct Run {
    vaddr_t start, end;
    pfn_t pfn;
    unsigned perms;
  };
  std::optional<Run> translate_run(vaddr_t va, Access access, bool set_ad);
  bool refill(const Run& r, bool in_hook);
  bool make_room(bool in_hook);
  void drop_range(vaddr_t start, vaddr_t end, TlbEvent::Kind why);

  Cpu* cpu_;
  Mm* mm_;
  std::size_t max_;
  bool coalesce_ = true;
  std::uint64_t seq_ = 0;
  std::map<vaddr_t, Entry> entries_;  // keyed by start
  TlbStats stats_;
};

// The TLBs of every CPU using one mm (a vfork child shares its parent's mm): the mm's
// flusher, fanning each flush out to all of them.
class TlbGroup final : public TlbFlusher {
 public:
  void attach(SoftTlb* t);
  void detach(SoftTlb* t);
  bool empty() const { return tlbs_.empty(); }
  void flush_page(vaddr_t va) override;
  void flush_range(vaddr_t start, vaddr_t end) override;
  void flush_all() override;

 private:
  std::vector<SoftTlb*> tlbs_;
};

}  // namespace mmemu
