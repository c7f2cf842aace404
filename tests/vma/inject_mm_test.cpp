// Every allocation of a representative mm workload fails in turn, at each site: every
// operation reports ENOMEM (or the fault OOM) cleanly, the checker stays green after each
// step, and once the mm is gone nothing of any kind is left.
#include <gtest/gtest.h>

#include <functional>

#include "inject_sweep.hpp"
#include "vma/file.hpp"

namespace mmemu::test {
namespace {

// Runs the workload; `step` is called after every operation so the test can validate.
void workload(MmFixture& f, const std::function<void()>& step) {
  Mm& mm = *f.mm;
  const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
  std::vector<vaddr_t> maps;
  for (int i = 0; i < 6; ++i) {
    auto r = sys_mmap(mm, 0, (i + 2) * PAGE_SIZE, PROT_READ | ((i % 2) ? PROT_WRITE : 0), anon,
                      nullptr, 0);
    if (r) maps.push_back(*r);
    step();
  }
  for (vaddr_t a : maps) {
    (void)fault_in(mm, a, Access::Write);
    (void)fault_in(mm, a + PAGE_SIZE, Access::Read);
    step();
  }
  const vaddr_t fixed = 0x40000000;
  (void)sys_mmap(mm, fixed, 64 * PAGE_SIZE, PROT_READ | PROT_WRITE, anon | MAP_FIXED | MAP_POPULATE,
                 nullptr, 0);
  step();
  (void)do_munmap(mm, fixed + 8 * PAGE_SIZE, 4 * PAGE_SIZE);  // split
  step();
  (void)sys_mmap(mm, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, nullptr,
                 0);
  step();
  File* file = File::create(f.m, "/tmp/w", std::vector<std::uint8_t>(3 * PAGE_SIZE, 1));
  auto fm = sys_mmap(mm, 0, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, file, 0);
  file->put();
  if (fm) {
    (void)fault_in(mm, *fm, Access::Read);
    (void)fault_in(mm, *fm + PAGE_SIZE, Access::Write);
  }
  step();
  auto st = sys_mmap(mm, 0x7f0000000000ULL - 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                     anon | MAP_FIXED | MAP_GROWSDOWN, nullptr, 0);
  if (st) (void)fault_in(mm, *st - 3 * PAGE_SIZE, Access::Write);
  step();
  (void)do_munmap(mm, fixed, 64 * PAGE_SIZE);
  step();
}

TEST(InjectMm, EveryAllocationOfTheWorkloadCanFail) {
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    const SiteAttempts attempts = inject_clean_run(arch, workload);
    EXPECT_GT(attempts[AllocSite::MapleNode], 0U);
    EXPECT_GT(attempts[AllocSite::PgTable], 0U);
    inject_sweep(arch, workload, attempts);
  }
}

}  // namespace
}  // namespace mmemu::test
