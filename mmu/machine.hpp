// The emulated machine's memory side: the failure injector, the live-object accounting,
// physical memory and init_mm's kernel half of each architecture. One per run; every address
// space of the run shares it.
#pragma once

#include <cstdint>

#include <functional>
#include <vector>

#include "mmu/fault_inject.hpp"
#include "mmu/freed_in_use.hpp"
#include "mmu/kernel_half.hpp"
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
  // init_mm's tables and kernel-half ranges per architecture (index: Arch), empty until the
  // kernel sets them up; Mm::create copies their top-level entries. Declared after phys,
  // so they are released before it goes.
  KernelHalf kernel_half[2]{{phys, Arch::X86_64}, {phys, Arch::Arm64}};
  KernelHalf& init_mm(Arch a) { return kernel_half[a == Arch::X86_64 ? 0 : 1]; }
  const KernelHalf& init_mm(Arch a) const { return kernel_half[a == Arch::X86_64 ? 0 : 1]; }
  // Linux's overcommit heuristic (vm.overcommit_memory = 0) refuses one request of more
  // pages than this (totalram_pages + total_swap_pages). kNoCommitLimit: never refused.
  static constexpr std::uint64_t kNoCommitLimit = ~0ULL;
  std::uint64_t commit_limit_pages = kNoCommitLimit;
  // Every page table of the run freed while it still held entries (the mm layer adds them);
  // any is an error that fails the run, as a KASAN report would.
  std::vector<FreedInUseTable> freed_in_use;
  // Told of each as it happens (the kernel prints the report, as KASAN prints at the fault).
  std::function<void(const FreedInUseTable&)> on_freed_in_use;
};

}  // namespace mmemu
