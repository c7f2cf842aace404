// fork + exit of an address space with 1,000 VMAs and 64 MiB resident, in mmemu and on the
// host kernel, in the same run:
//   BM_ForkExit_1000Vmas_64MiB_mmemu: dup_mm (tree-max recovery armed, never used) and the
//     child's exit_mmap + pgd free;
//   BM_ForkExit_1000Vmas_64MiB_host: fork(), the child _exit(0)s at once, waitpid();
// the ratio of the two is the figure to quote. Split of mmemu's side: BM_ForkOnly_..._mmemu
// and BM_ExitOnly_..._mmemu.
//
// Shape: 1,000 private anonymous read-write VMAs separated by one-page holes (so none merge),
// 384 of 17 pages and 616 of 16: 16,384 pages = 64 MiB, every page written before forking.
// The host process also has its own few dozen VMAs (libraries, stack); mmemu's has none.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "mmu/machine.hpp"
#include "vma/fault.hpp"
#include "vma/fork.hpp"
#include "vma/mm_syscalls.hpp"

namespace {

using namespace mmemu;

constexpr int kVmas = 1000;
constexpr std::uint64_t kResidentPages = 16384;

std::uint64_t vma_pages(int i) {
  return i < 384 ? 17 : 16;
}

// [offset, pages] of each VMA from the start of the region; the region's length.
std::uint64_t layout_bytes() {
  std::uint64_t at = 0;
  for (int i = 0; i < kVmas; ++i)
    at += (vma_pages(i) + 1) * PAGE_SIZE;
  return at;
}

struct MmemuParent {
  Machine m{256ULL << 20};
  std::unique_ptr<Mm> mm;
  MmemuParent() {
    mm = std::move(*Mm::create(m, Arch::X86_64));
    vaddr_t at = 0x10000000;
    std::uint64_t pages = 0;
    for (int i = 0; i < kVmas; ++i) {
      const std::uint64_t len = vma_pages(i) * PAGE_SIZE;
      if (!sys_mmap(*mm, at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                    nullptr, 0))
        std::abort();
      for (vaddr_t a = at; a < at + len; a += PAGE_SIZE) {
        const std::uint8_t v = 1;
        if (!copy_to_user(*mm, a, &v, 1)) std::abort();
        ++pages;
      }
      at += len + PAGE_SIZE;
    }
    if (mm->map_count != kVmas || pages != kResidentPages) std::abort();
  }
};

MmemuParent& mmemu_parent() {
  static MmemuParent p;
  return p;
}

void BM_ForkExit_1000Vmas_64MiB_mmemu(benchmark::State& state) {
  Mm& parent = *mmemu_parent().mm;
  for (auto _ : state) {
    auto child = dup_mm(parent, ForkRecovery::TreeMax);
    if (!child) state.SkipWithError("fork failed");
    child->reset();  // exit_mmap + pgd free
  }
  state.counters["vmas"] = kVmas;
  state.counters["resident_MiB"] = static_cast<double>(kResidentPages * PAGE_SIZE >> 20);
}
BENCHMARK(BM_ForkExit_1000Vmas_64MiB_mmemu)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_ForkOnly_1000Vmas_64MiB_mmemu(benchmark::State& state) {
  Mm& parent = *mmemu_parent().mm;
  for (auto _ : state) {
    auto child = dup_mm(parent, ForkRecovery::TreeMax);
    state.PauseTiming();
    child->reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_ForkOnly_1000Vmas_64MiB_mmemu)->Unit(benchmark::kMicrosecond);

void BM_ExitOnly_1000Vmas_64MiB_mmemu(benchmark::State& state) {
  Mm& parent = *mmemu_parent().mm;
  for (auto _ : state) {
    state.PauseTiming();
    auto child = dup_mm(parent, ForkRecovery::TreeMax);
    state.ResumeTiming();
    child->reset();
  }
}
BENCHMARK(BM_ExitOnly_1000Vmas_64MiB_mmemu)->Unit(benchmark::kMicrosecond);

// The same shape in this process: one region with a page unmapped after each VMA. Unmapped
// again when the benchmark ends, so the benchmarks after it see the process as it was.
struct HostShape {
  std::uint8_t* base;
  HostShape() {
    const std::uint64_t len = layout_bytes();
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base = static_cast<std::uint8_t*>(p);
    std::uint64_t at = 0;
    for (int i = 0; i < kVmas; ++i) {
      const std::uint64_t bytes = vma_pages(i) * PAGE_SIZE;
      for (std::uint64_t off = 0; off < bytes; off += PAGE_SIZE)
        base[at + off] = 1;
      at += bytes;
      if (munmap(base + at, PAGE_SIZE) != 0) std::abort();
      at += PAGE_SIZE;
    }
  }
  ~HostShape() { munmap(base, layout_bytes()); }
  HostShape(const HostShape&) = delete;
  HostShape& operator=(const HostShape&) = delete;
};

void BM_ForkExit_1000Vmas_64MiB_host(benchmark::State& state) {
  const HostShape shape;
  for (auto _ : state) {
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
      state.SkipWithError("fork failed");
      break;
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }
  state.counters["vmas"] = kVmas;
  state.counters["resident_MiB"] = static_cast<double>(kResidentPages * PAGE_SIZE >> 20);
}
BENCHMARK(BM_ForkExit_1000Vmas_64MiB_host)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
