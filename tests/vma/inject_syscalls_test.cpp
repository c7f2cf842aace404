// Every allocation of a workload of mprotect, mremap, brk, madvise, mlock, mincore and msync
// fails in turn, at each site: each call reports its error cleanly, the checker stays green
// after every step, and once the mm is gone nothing of any kind is left.
#include <gtest/gtest.h>

#include <functional>

#include "inject_sweep.hpp"
#include "vma/file.hpp"

namespace mmemu::test {
namespace {

constexpr std::uint64_t P = PAGE_SIZE;
constexpr vaddr_t kA = 0x4000000000ULL;
constexpr int anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
constexpr int rw = PROT_READ | PROT_WRITE;

vaddr_t at(std::uint64_t page) {
  return kA + page * P;
}

// Runs the workload; `step` is called after every operation so the test can validate.
void workload(MmFixture& f, const std::function<void()>& step) {
  Mm& mm = *f.mm;
  auto map = [&](std::uint64_t page, std::uint64_t pages, int prot = rw, int flags = anon) {
    (void)sys_mmap(mm, at(page), pages * P, prot, flags, nullptr, 0);
  };
  auto touch = [&](std::uint64_t page, std::uint64_t pages, Access acc = Access::Write) {
    for (std::uint64_t i = 0; i < pages; ++i)
      (void)fault_in(mm, at(page + i), acc);
  };

  // mprotect: split, PTE rewrite, merge back.
  map(0, 8);
  touch(0, 8);
  step();
  (void)do_mprotect(mm, at(2), 3 * P, PROT_READ);
  step();
  (void)do_mprotect(mm, at(0), 8 * P, rw);
  step();

  // mremap: grow in place, move with growth, fixed move over a mapping, DONTUNMAP, shrink,
  // multi-VMA move.
  (void)do_mremap(mm, at(0), 8 * P, 10 * P, 0, 0);
  step();
  map(12, 1, PROT_READ);
  (void)do_mremap(mm, at(0), 10 * P, 12 * P, MREMAP_MAYMOVE, 0);
  step();
  map(40, 6);
  touch(40, 6);
  map(60, 4);
  (void)do_mremap(mm, at(40), 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(61));
  step();
  (void)do_mremap(mm, at(44), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
  step();
  (void)do_mremap(mm, at(61), 4 * P, 2 * P, 0, 0);
  step();
  map(80, 6);
  touch(80, 6);
  (void)do_mprotect(mm, at(82), 2 * P, PROT_READ);
  (void)do_mremap(mm, at(80), 6 * P, 6 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(100));
  step();

  // brk: grow, grow again into the same VMA, shrink.
  mm.start_brk = mm.brk = 0x10000000;
  (void)sys_brk(mm, mm.brk + 3 * P);
  (void)fault_in(mm, 0x10000000, Access::Write);
  (void)sys_brk(mm, mm.brk + 5 * P);
  step();
  (void)sys_brk(mm, 0x10000000 + P);
  step();

  // madvise: split by flag advice, FREE, DONTNEED, POPULATE, WILLNEED, REMOVE.
  map(120, 8);
  touch(120, 4);
  (void)do_madvise(mm, at(121), P, MADV_DONTFORK);
  step();
  (void)do_madvise(mm, at(120), 4 * P, MADV_FREE);
  step();
  (void)do_madvise(mm, at(122), 2 * P, MADV_DONTNEED);
  step();
  (void)do_madvise(mm, at(120), 8 * P, MADV_POPULATE_WRITE);
  step();
  map(130, 4, PROT_READ);
  (void)do_madvise(mm, at(130), 4 * P, MADV_POPULATE_READ);
  step();
  File* file = File::create(f.m, "/tmp/w", std::vector<std::uint8_t>(3 * P, 1));
  (void)sys_mmap(mm, at(140), 3 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 0);
  file->put();
  (void)do_madvise(mm, at(140), 3 * P, MADV_WILLNEED);
  step();
  (void)sys_mmap(mm, at(150), 4 * P, rw, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  touch(150, 4);
  (void)do_madvise(mm, at(151), 2 * P, MADV_REMOVE);
  step();

  // mlock family.
  (void)do_mlock(mm, at(121), 2 * P, 0);
  step();
  (void)do_mlock(mm, at(125), 2 * P, MLOCK_ONFAULT);
  step();
  (void)do_munlock(mm, at(120), 8 * P);
  step();
  (void)do_mlockall(mm, MCL_CURRENT | MCL_FUTURE);
  step();
  map(160, 2);
  step();
  (void)do_munlockall(mm);
  step();

  // mincore into guest memory, msync.
  (void)sys_mincore(mm, at(120), 8 * P, at(160));
  step();
  (void)do_msync(mm, at(120), 8 * P, MS_SYNC);
  step();
  // Everything goes, whole VMA by whole VMA (the heap and the DONTUNMAP copy included).
  while (const Vma* v = mm.find_vma(0))
    if (!do_munmap(mm, v->vm_start, v->vm_end - v->vm_start)) break;
  step();
}

TEST(InjectSyscalls, EveryAllocationOfTheWorkloadCanFail) {
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    // The clean run did what it says.
    const SiteAttempts attempts =
        inject_clean_run(arch, workload, [](MmFixture& f) { EXPECT_EQ(f.mm->map_count, 0); });
    for (AllocSite s : kAllAllocSites)
      EXPECT_GT(attempts[s], 0U) << site_name(s);
    inject_sweep(arch, workload, attempts);
  }
}

}  // namespace
}  // namespace mmemu::test
