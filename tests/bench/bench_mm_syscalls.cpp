// mmap/munmap cycles and demand faults, in mmemu and on the host kernel in the same run; the
// ratio of each _mmemu / _host pair is the figure to quote.
//
//   BM_MmapMunmap_64KiB_<side>: mmap(NULL, 64 KiB, RW, private anonymous) + munmap, into a
//     small address space (mmemu: 3 VMAs; host: this process's own few dozen).
//   BM_MmapMunmap_64KiB_1000Vmas_<side>: the same with 1,000 more VMAs present (a 2,000-page
//     mapping with every other page unmapped), so the maple tree / VMA tree is deeper.
//   BM_MmapMunmap_64KiB_Touch_<side>: mmap at a hint alone in its 512 GiB slot, write one
//     byte, munmap: the fault allocates a PUD, PMD and PTE table and munmap's free_pgtables
//     frees all three (checked once in setup: mmemu's live pgtables, host's VmPTE).
//   BM_Fault_Write_64MiB_<side>: mmap 64 MiB, write one byte per page (16,384 demand-zero
//     faults), munmap. BM_Fault_Read_64MiB_<side>: read one byte per page instead (the zero
//     page is mapped). Counter "pages" is faulted pages per second.
// mmemu faults through copy_to_user / copy_from_user (walk, handle_mm_fault, walk again),
// like a CPU access retried after the fault. Both sides madvise(MADV_NOHUGEPAGE) the 64 MiB
// so the host takes 4 KiB faults (THP is "always" here) like mmemu does.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "mmu/machine.hpp"
#include "vma/fault.hpp"
#include "vma/mm_syscalls.hpp"

namespace {

using namespace mmemu;

constexpr std::uint64_t kSmallLen = 64ULL << 10;
constexpr std::uint64_t kFaultLen = 64ULL << 20;
constexpr std::uint64_t kFaultPages = kFaultLen / PAGE_SIZE;
constexpr int kManyVmas = 1000;
// PGD slot 96 of 256 (48 TiB): empty in both address spaces, so the touched page's tables
// share nothing with a neighbour.
constexpr vaddr_t kLoneHint = 0x300000000000ULL;
constexpr int kRw = PROT_READ | PROT_WRITE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;

// --- mmemu side ---

// A small process: code (r-x), data (rw-), stack (rw-) just under TASK_SIZE.
struct MmemuSpace {
  Machine m{256ULL << 20};
  std::unique_ptr<Mm> mm;
  explicit MmemuSpace(int extra_vmas) {
    mm = std::move(*Mm::create(m, Arch::X86_64));
    const int fixed = kAnon | MAP_FIXED;
    if (!sys_mmap(*mm, 0x400000, 16 * PAGE_SIZE, PROT_READ | PROT_EXEC, fixed, nullptr, 0) ||
        !sys_mmap(*mm, 0x600000, 4 * PAGE_SIZE, kRw, fixed, nullptr, 0) ||
        !sys_mmap(*mm, mm->task_size - 33 * PAGE_SIZE, 32 * PAGE_SIZE, kRw, fixed, nullptr, 0))
      std::abort();
    if (extra_vmas > 0) {
      const std::uint64_t pages = 2 * static_cast<std::uint64_t>(extra_vmas);
      auto at = sys_mmap(*mm, 0, pages * PAGE_SIZE, kRw, kAnon, nullptr, 0);
      if (!at) std::abort();
      for (std::uint64_t i = 1; i < pages; i += 2)
        if (!do_munmap(*mm, *at + i * PAGE_SIZE, PAGE_SIZE)) std::abort();
    }
    if (mm->map_count != 3 + extra_vmas) std::abort();
  }
};

void mmemu_mmap_munmap(benchmark::State& state, int extra_vmas) {
  MmemuSpace s(extra_vmas);
  for (auto _ : state) {
    auto a = sys_mmap(*s.mm, 0, kSmallLen, kRw, kAnon, nullptr, 0);
    if (!a || !do_munmap(*s.mm, *a, kSmallLen)) {
      state.SkipWithError("mmap/munmap failed");
      break;
    }
  }
  state.counters["vmas"] = s.mm->map_count;
}

void BM_MmapMunmap_64KiB_mmemu(benchmark::State& state) {
  mmemu_mmap_munmap(state, 0);
}

void BM_MmapMunmap_64KiB_1000Vmas_mmemu(benchmark::State& state) {
  mmemu_mmap_munmap(state, kManyVmas);
}

// One cycle at the lone hint; returns false on any failure.
bool mmemu_touch_cycle(Mm& mm) {
  auto a = sys_mmap(mm, kLoneHint, kSmallLen, kRw, kAnon, nullptr, 0);
  if (!a || *a != kLoneHint) return false;
  const std::uint8_t v = 1;
  return copy_to_user(mm, *a, &v, 1) && do_munmap(mm, *a, kSmallLen);
}

void BM_MmapMunmap_64KiB_Touch_mmemu(benchmark::State& state) {
  MmemuSpace s(0);
  // Setup check: the touch allocates three tables and munmap frees them again.
  const auto& live = s.m.live;
  const std::int64_t before = live.live(AllocSite::PgTable);
  auto a = sys_mmap(*s.mm, kLoneHint, kSmallLen, kRw, kAnon, nullptr, 0);
  const std::uint8_t v = 1;
  if (!a || *a != kLoneHint || !copy_to_user(*s.mm, *a, &v, 1)) std::abort();
  const std::int64_t tables = live.live(AllocSite::PgTable) - before;
  if (!do_munmap(*s.mm, *a, kSmallLen) || live.live(AllocSite::PgTable) != before) std::abort();
  for (auto _ : state) {
    if (!mmemu_touch_cycle(*s.mm)) {
      state.SkipWithError("mmap/touch/munmap failed");
      break;
    }
  }
  state.counters["tables"] = static_cast<double>(tables);
}

void mmemu_fault(benchmark::State& state, bool write) {
  MmemuSpace s(0);
  for (auto _ : state) {
    auto a = sys_mmap(*s.mm, 0, kFaultLen, kRw, kAnon, nullptr, 0);
    if (!a || !do_madvise(*s.mm, *a, kFaultLen, MADV_NOHUGEPAGE)) {
      state.SkipWithError("mmap failed");
      break;
    }
    std::uint8_t v = 1;
    for (vaddr_t p = *a; p < *a + kFaultLen; p += PAGE_SIZE) {
      const bool ok = write ? copy_to_user(*s.mm, p, &v, 1).has_value()
                            : copy_from_user(*s.mm, &v, p, 1).has_value();
      if (!ok) std::abort();
    }
    benchmark::DoNotOptimize(v);
    if (!do_munmap(*s.mm, *a, kFaultLen)) std::abort();
  }
  state.counters["pages"] = benchmark::Counter(static_cast<double>(kFaultPages),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Fault_Write_64MiB_mmemu(benchmark::State& state) {
  mmemu_fault(state, true);
}

void BM_Fault_Read_64MiB_mmemu(benchmark::State& state) {
  mmemu_fault(state, false);
}

// --- host side ---

int host_vma_count() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find("[vsyscall]") == std::string::npos) ++n;  // the gate VMA is not in the mm
  return n;
}

long host_vm_pte_kb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmPTE:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

// 1,000 extra VMAs in this process for the length of one benchmark run.
class HostManyVmas {
 public:
  explicit HostManyVmas(int n) : len_(2 * static_cast<std::uint64_t>(n) * PAGE_SIZE) {
    void* p = mmap(nullptr, len_, kRw, kAnon, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<std::uint8_t*>(p);
    for (std::uint64_t off = PAGE_SIZE; off < len_; off += 2 * PAGE_SIZE)
      if (munmap(base_ + off, PAGE_SIZE) != 0) std::abort();
  }
  ~HostManyVmas() { munmap(base_, len_); }
  HostManyVmas(const HostManyVmas&) = delete;
  HostManyVmas& operator=(const HostManyVmas&) = delete;

 private:
  std::uint64_t len_;
  std::uint8_t* base_ = nullptr;
};

void host_mmap_munmap(benchmark::State& state) {
  for (auto _ : state) {
    void* p = mmap(nullptr, kSmallLen, kRw, kAnon, -1, 0);
    if (p == MAP_FAILED || munmap(p, kSmallLen) != 0) {
      state.SkipWithError("mmap/munmap failed");
      break;
    }
  }
  state.counters["vmas"] = host_vma_count();
}

void BM_MmapMunmap_64KiB_host(benchmark::State& state) {
  host_mmap_munmap(state);
}

void BM_MmapMunmap_64KiB_1000Vmas_host(benchmark::State& state) {
  HostManyVmas many(kManyVmas);
  host_mmap_munmap(state);
}

void* host_map_lone() {
  void* p = mmap(reinterpret_cast<void*>(kLoneHint), kSmallLen, kRw, kAnon, -1, 0);
  return p == reinterpret_cast<void*>(kLoneHint) ? p : nullptr;
}

void BM_MmapMunmap_64KiB_Touch_host(benchmark::State& state) {
  // Setup check as on the mmemu side, through VmPTE (all table levels, in kB).
  const long before = host_vm_pte_kb();
  auto* q = static_cast<volatile std::uint8_t*>(host_map_lone());
  if (q == nullptr) std::abort();
  *q = 1;
  const long tables = (host_vm_pte_kb() - before) * 1024 / static_cast<long>(PAGE_SIZE);
  if (munmap(const_cast<std::uint8_t*>(q), kSmallLen) != 0 || host_vm_pte_kb() != before)
    std::abort();
  for (auto _ : state) {
    auto* p = static_cast<volatile std::uint8_t*>(host_map_lone());
    if (p == nullptr) {
      state.SkipWithError("mmap at the hint failed");
      break;
    }
    *p = 1;
    munmap(const_cast<std::uint8_t*>(p), kSmallLen);
  }
  state.counters["tables"] = static_cast<double>(tables);
}

void host_fault(benchmark::State& state, bool write) {
  for (auto _ : state) {
    void* m = mmap(nullptr, kFaultLen, kRw, kAnon, -1, 0);
    if (m == MAP_FAILED || madvise(m, kFaultLen, MADV_NOHUGEPAGE) != 0) {
      state.SkipWithError("mmap failed");
      break;
    }
    auto* p = static_cast<volatile std::uint8_t*>(m);
    std::uint8_t sum = 0;
    for (std::uint64_t off = 0; off < kFaultLen; off += PAGE_SIZE) {
      if (write)
        p[off] = 1;
      else
        sum = static_cast<std::uint8_t>(sum + p[off]);
    }
    benchmark::DoNotOptimize(sum);
    munmap(m, kFaultLen);
  }
  state.counters["pages"] = benchmark::Counter(static_cast<double>(kFaultPages),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Fault_Write_64MiB_host(benchmark::State& state) {
  host_fault(state, true);
}

void BM_Fault_Read_64MiB_host(benchmark::State& state) {
  host_fault(state, false);
}

// Registered in pairs so each _mmemu line sits above its _host line.
BENCHMARK(BM_MmapMunmap_64KiB_mmemu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MmapMunmap_64KiB_host)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MmapMunmap_64KiB_1000Vmas_mmemu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MmapMunmap_64KiB_1000Vmas_host)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MmapMunmap_64KiB_Touch_mmemu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MmapMunmap_64KiB_Touch_host)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Fault_Write_64MiB_mmemu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Fault_Write_64MiB_host)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Fault_Read_64MiB_mmemu)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Fault_Read_64MiB_host)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
