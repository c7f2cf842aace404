#include <gtest/gtest.h>

#include "mm_test_util.hpp"

namespace mmemu::test {
namespace {

class MmapTest : public ::testing::TestWithParam<Arch> {
 protected:
  MmFixture f{GetParam()};
};

TEST_P(MmapTest, TopDownPlacementBelowMmapBase) {
  const vaddr_t a = f.map_anon(3 * PAGE_SIZE);
  EXPECT_EQ(a, f.mm->mmap_base - 3 * PAGE_SIZE);
  const vaddr_t b = f.map_anon(PAGE_SIZE, PROT_READ);  // different flags: not merged
  EXPECT_EQ(b, a - PAGE_SIZE);
  EXPECT_EQ(f.mm->map_count, 2);
  EXPECT_EQ(f.mm->total_vm, 4U);
  EXPECT_EQ(f.mm->data_vm, 3U);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(MmapTest, AdjacentCompatibleMappingsMerge) {
  const vaddr_t a = f.map_anon(2 * PAGE_SIZE);
  const vaddr_t b = f.map_anon(2 * PAGE_SIZE);
  EXPECT_EQ(b, a - 2 * PAGE_SIZE);
  ASSERT_EQ(f.layout().size(), 1U);
  EXPECT_EQ(f.layout()[0], (std::pair<vaddr_t, vaddr_t>{b, a + 2 * PAGE_SIZE}));
  EXPECT_EQ(f.problems(), "");
}

TEST_P(MmapTest, HintIsUsedWhenFree) {
  const vaddr_t hint = 0x10000000;
  EXPECT_EQ(f.map_anon(PAGE_SIZE, PROT_READ, 0, hint), hint);
  // An occupied hint falls back to the top-down search.
  EXPECT_EQ(f.map_anon(PAGE_SIZE, PROT_READ | PROT_EXEC, 0, hint), f.mm->mmap_base - PAGE_SIZE);
  // A hint below mmap_min_addr is rounded up to it.
  EXPECT_EQ(f.map_anon(PAGE_SIZE, PROT_WRITE, 0, 0x1000), 0x10000U);
}

TEST_P(MmapTest, FixedReplacesAndNoReplaceRefuses) {
  const vaddr_t a = f.map_anon(4 * PAGE_SIZE);
  f.write8(a + PAGE_SIZE, 7);
  auto r = sys_mmap(*f.mm, a + PAGE_SIZE, PAGE_SIZE, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, a + PAGE_SIZE);
  EXPECT_EQ(f.layout().size(), 3U);
  EXPECT_EQ(f.read8(a + PAGE_SIZE), 0);  // fresh memory
  auto n = sys_mmap(*f.mm, a, PAGE_SIZE, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, nullptr, 0);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), Errno{EEXIST});
  EXPECT_EQ(f.problems(), "");
}

// The errno of each bad call, as this machine's kernel returned them natively.
TEST_P(MmapTest, ErrnoLikeLinux) {
  auto err = [&](vaddr_t addr, std::uint64_t len, int prot, int flags, std::uint64_t off) {
    auto r = sys_mmap(*f.mm, addr, len, prot, flags, nullptr, off);
    return r ? 0 : r.error().code;
  };
  const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
  EXPECT_EQ(err(0, 4096, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, 0), EINVAL);
  EXPECT_EQ(err(0, 4096, PROT_READ, MAP_ANONYMOUS, 0), EINVAL);  // no type
  EXPECT_EQ(err(0, 4096, PROT_READ | 0x100, anon, 0), 0);        // unknown prot bits ignored
  EXPECT_EQ(err(0, 4096, PROT_READ, anon | 0x40000000, 0), 0);   // unknown flags ignored
  EXPECT_EQ(err(0, 0, PROT_READ, anon, 0), EINVAL);
  EXPECT_EQ(err(0x1001, 4096, PROT_READ, anon | MAP_FIXED, 0), EINVAL);
  EXPECT_EQ(err(0x1000, 4096, PROT_READ, anon | MAP_FIXED, 0), EPERM);  // no CAP_SYS_RAWIO
  EXPECT_EQ(err(0, 1ULL << 48, PROT_READ, anon, 0), ENOMEM);
  EXPECT_EQ(err(0, ~0ULL - 4095, PROT_READ, anon, 0), ENOMEM);
  EXPECT_EQ(err(0, 4096, PROT_READ, anon, 4095), EINVAL);
  EXPECT_EQ(err(0, 4096, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, 0), EINVAL);
  EXPECT_EQ(err(0, 4096, PROT_READ, anon | MAP_HUGETLB, 0), ENOMEM);
  EXPECT_EQ(err(f.mm->task_size - PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ, anon | MAP_FIXED, 0),
            ENOMEM);
  f.mm->caps |= CAP_SYS_RAWIO_BIT;
  EXPECT_EQ(err(0x1000, 4096, PROT_READ, anon | MAP_FIXED, 0), 0);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(MmapTest, RlimitAsAndMemlock) {
  f.rlimits[Rlim::As].cur = 16 * PAGE_SIZE;
  f.map_anon(8 * PAGE_SIZE);
  auto r = sys_mmap(*f.mm, 0, 9 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errno{ENOMEM});
  f.rlimits[Rlim::Memlock].cur = 2 * PAGE_SIZE;
  r = sys_mmap(*f.mm, 0, 3 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
               nullptr, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errno{EAGAIN});
  f.rlimits[Rlim::Memlock].cur = 0;
  r = sys_mmap(*f.mm, 0, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, nullptr,
               0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errno{EPERM});
}

TEST_P(MmapTest, PopulateAndLockedFaultEverythingIn) {
  const vaddr_t a = f.map_anon(4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_POPULATE);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 4);
  const vaddr_t b = f.map_anon(2 * PAGE_SIZE, PROT_READ, MAP_POPULATE);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 4);  // read-only: the zero page, not counted
  auto ref = f.mm->pt().lookup(b);
  ASSERT_TRUE(ref);
  EXPECT_EQ(f.mm->fmt().pfn(f.mm->pt().get(*ref)), f.m.phys.zero_pfn());
  const vaddr_t c = f.map_anon(3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_LOCKED);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 7);
  EXPECT_EQ(f.mm->locked_vm, 3U);
  (void)a;
  (void)c;
  EXPECT_EQ(f.problems(), "");
}

TEST_P(MmapTest, StackGuardGapIsKept) {
  // A growsdown VMA: top-down placement below it keeps stack_guard_gap free.
  const vaddr_t top = f.mm->mmap_base;
  auto s = sys_mmap(*f.mm, top - 16 * PAGE_SIZE, 16 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, nullptr, 0);
  ASSERT_TRUE(s);
  const vaddr_t a = f.map_anon(PAGE_SIZE);
  EXPECT_EQ(a, *s - kStackGuardGap - PAGE_SIZE);
}

INSTANTIATE_TEST_SUITE_P(Arches, MmapTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_test_name);

}  // namespace
}  // namespace mmemu::test
