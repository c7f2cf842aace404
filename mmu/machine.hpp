// The emulated machine's memory side: the failure injector, the live-object accounting and
// physical memory. One per run; every address space of the run shares it.
#pragma once

#include "mmu/fault_inject.hpp"
#include "mmu/live_objects.hpp"
#include "mmu/phys_mem.hpp"

namespace mmemu {

struct Machine {
  explicit Machine(std::uint64_t phys_bytes = 1ULL << 30)
      : live(inject), phys(inject, live, phys_bytes) {}
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  FaultInjector inject;
  LiveObjects live;
  PhysMem phys;
};

}  // namespace mmemu
