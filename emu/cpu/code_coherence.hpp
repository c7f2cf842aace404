// Coherence of translated code with the frames it came from, across every CPU that shares
// one emulated physical memory. The emulator keys translated code by physical frame and
// notices only its own CPU's guest stores into such a frame; it does not notice what the
// host writes (the loader, read() into guest memory, a COW copy, a freed frame reused) nor
// another CPU's stores through a shared mapping. This records which CPUs translated code
// from which frames (marking them PG_exec_cached) and tells each CPU what it must drop
// before it runs again:
// - the host rewrites or frees such a frame (PhysMem::flush_dcache_page): every CPU that
//   holds its code drops its translated code and its TLB;
// - a CPU fills a write entry for such a frame: every *other* CPU holding its code does
//   the same (the writer's own emulator sees its own stores);
// - a CPU starts translating code from a frame that may be writable elsewhere: a CPU that
//   may hold a writable TLB entry to a shared frame drops its TLB, so its next store comes
//   back through its fill (and the rule above).
// Nothing here allocates on the emulated machine; the bookkeeping is host memory only.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "mmu/phys_mem.hpp"

namespace mmemu {

class CodeCoherence final : public CodeFrameObserver {
 public:
  // What one CPU must do before it next runs guest code.
  struct Owed {
    bool drop_code = false;  // flush all translated code (outside the emulator only)
    bool drop_tlb = false;   // flush the TLB
  };

  explicit CodeCoherence(PhysMem& phys);  // becomes phys's code observer
  ~CodeCoherence() override;              // and stops being it
  CodeCoherence(const CodeCoherence&) = delete;
  CodeCoherence& operator=(const CodeCoherence&) = delete;

  PhysMem& phys() { return phys_; }
  int attach();  // a new CPU's id
  void detach(int cpu);

  // Fill events of CPU `cpu`.
  void fetch_filled(int cpu, pfn_t pfn);
  void write_filled(int cpu, pfn_t pfn);
  // The CPU flushed its TLB / dropped all its translated code.
  void tlb_flushed(int cpu);
  void code_dropped(int cpu);

  const Owed& owed(int cpu) const { return clients_[static_cast<std::size_t>(cpu)].owed; }

  void code_frame_changed(pfn_t pfn) override;

 private:
  struct Client {
    bool live = false;
    std::uint64_t epoch = 0;     // bumped when the CPU drops all its code
    bool writes_shared = false;  // may hold a writable entry to a frame mapped elsewhere
    Owed owed;
  };
  struct User {
    int cpu;
    std::uint64_t epoch;
  };
  bool current(const User& u) const;
  void owe_code_drop(int cpu);

  PhysMem& phys_;
  std::vector<Client> clients_;
  std::unordered_map<pfn_t, std::vector<User>> users_;  // frames marked PG_exec_cached
  std::size_t shared_writers_ = 0;                      // clients with writes_shared
};

}  // namespace mmemu
