#include <gtest/gtest.h>

#include <cstring>

#include "mm_test_util.hpp"
#include "vma/file.hpp"

namespace mmemu::test {
namespace {

class FaultTest : public ::testing::TestWithParam<Arch> {
 protected:
  pte_t pte_at(vaddr_t a) {
    auto ref = f.mm->pt().lookup(a);
    return ref ? f.mm->pt().get(*ref) : 0;
  }
  MmFixture f{GetParam()};
};

TEST_P(FaultTest, ReadMapsTheZeroPageWriteGetsAFrame) {
  const vaddr_t a = f.map_anon(2 * PAGE_SIZE);
  ASSERT_EQ(f.touch(a, Access::Read), FaultResult::Ok);
  const PteFormat& fmt = f.mm->fmt();
  EXPECT_EQ(fmt.pfn(pte_at(a)), f.m.phys.zero_pfn());
  EXPECT_FALSE(fmt.write(pte_at(a)));
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 0);
  ASSERT_EQ(f.touch(a, Access::Write), FaultResult::Ok);  // COW from the zero page
  const pfn_t pfn = fmt.pfn(pte_at(a));
  EXPECT_NE(pfn, f.m.phys.zero_pfn());
  EXPECT_TRUE(fmt.write(pte_at(a)));
  EXPECT_TRUE(fmt.dirty(pte_at(a)));
  EXPECT_TRUE(fmt.young(pte_at(a)));
  EXPECT_EQ(f.m.phys.desc(pfn).mapcount, 1);
  EXPECT_EQ(f.m.phys.desc(pfn).refcount, 1U);
  EXPECT_TRUE(f.m.phys.desc(pfn).flags & PG_anon);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 1);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(FaultTest, NeighbouringPagesGetNeighbouringFrames) {
  const vaddr_t a = f.map_anon(8 * PAGE_SIZE);
  for (int i = 7; i >= 0; --i)
    ASSERT_EQ(f.touch(a + i * PAGE_SIZE), FaultResult::Ok);
  const pfn_t first = f.mm->fmt().pfn(pte_at(a));
  for (int i = 1; i < 8; ++i)
    EXPECT_EQ(f.mm->fmt().pfn(pte_at(a + i * PAGE_SIZE)), first + i);
}

TEST_P(FaultTest, SegvCodesLikeLinux) {
  const vaddr_t ro = f.map_anon(PAGE_SIZE, PROT_READ);
  const vaddr_t none = f.map_anon(PAGE_SIZE, PROT_NONE);
  EXPECT_EQ(f.touch(ro, Access::Write), FaultResult::SegvAccErr);
  EXPECT_EQ(f.touch(ro, Access::Exec), FaultResult::SegvAccErr);
  EXPECT_EQ(f.touch(ro, Access::Read), FaultResult::Ok);
  EXPECT_EQ(f.touch(none, Access::Read), FaultResult::SegvAccErr);
  EXPECT_EQ(f.touch(0x10000, Access::Read), FaultResult::SegvMapErr);
  EXPECT_EQ(f.touch(f.mm->task_size + PAGE_SIZE * 0, Access::Read), FaultResult::SegvMapErr);
  std::uint8_t b = 0;
  EXPECT_EQ(copy_from_user(*f.mm, &b, 0x10000, 1).error(), Errno{EFAULT});
  EXPECT_EQ(copy_to_user(*f.mm, ro, &b, 1).error(), Errno{EFAULT});
  EXPECT_EQ(f.problems(), "");
}

TEST_P(FaultTest, StackGrowsDownWithinItsLimits) {
  const vaddr_t top = 0x7f0000000000ULL;
  auto s = sys_mmap(*f.mm, top - 4 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, nullptr, 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(f.touch(top - 10 * PAGE_SIZE + 8), FaultResult::Ok);
  ASSERT_EQ(f.layout().size(), 1U);
  EXPECT_EQ(f.layout()[0].first, top - 10 * PAGE_SIZE);
  EXPECT_EQ(f.mm->stack_vm, 10U);
  // Beyond RLIMIT_STACK: no growth.
  f.rlimits[Rlim::Stack].cur = 16 * PAGE_SIZE;
  EXPECT_EQ(f.touch(top - 17 * PAGE_SIZE), FaultResult::SegvMapErr);
  // Within the guard gap of a mapping below: no growth either.
  const vaddr_t below = top - 10 * PAGE_SIZE - kStackGuardGap;
  f.rlimits[Rlim::Stack].cur = 8ULL << 20;
  ASSERT_TRUE(sys_mmap(*f.mm, below - PAGE_SIZE, PAGE_SIZE, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  EXPECT_EQ(f.touch(top - 11 * PAGE_SIZE), FaultResult::SegvMapErr);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(FaultTest, FileMappingReadsCopiesOnWriteAndSigbusPastEof) {
  std::vector<std::uint8_t> data(5000);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<std::uint8_t>(i * 7);
  File* file = File::create(f.m, "/tmp/data", data);
  auto a = sys_mmap(*f.mm, 0, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, file, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(f.read8(*a + 10), data[10]);
  EXPECT_EQ(f.read8(*a + PAGE_SIZE + 10), data[PAGE_SIZE + 10]);
  EXPECT_EQ(f.read8(*a + PAGE_SIZE + 1000), 0);  // past the end, inside the last page
  EXPECT_EQ(f.touch(*a + 2 * PAGE_SIZE, Access::Read), FaultResult::SigBus);
  EXPECT_EQ(f.mm->rss[MM_FILEPAGES], 2);
  const pfn_t cache0 = file->cached_page(0);
  EXPECT_EQ(f.m.phys.desc(cache0).mapcount, 1);
  f.write8(*a + 10, 0x55);  // private copy
  EXPECT_EQ(f.read8(*a + 10), 0x55);
  EXPECT_EQ(f.m.phys.frame(cache0)[10], data[10]);  // the page cache is untouched
  EXPECT_EQ(f.m.phys.desc(cache0).mapcount, 0);
  EXPECT_EQ(f.mm->rss[MM_FILEPAGES], 1);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 1);
  EXPECT_EQ(f.problems(), "");
  file->put();  // the VMA still holds its own reference
  ASSERT_TRUE(do_munmap(*f.mm, *a, 3 * PAGE_SIZE));
  EXPECT_EQ(f.m.live.live(AllocSite::Page), 0);  // page cache went with the last reference
}

TEST_P(FaultTest, SharedAnonymousIsShmem) {
  auto a = sys_mmap(*f.mm, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    nullptr, 0);
  ASSERT_TRUE(a);
  f.write8(*a, 9);
  EXPECT_EQ(f.mm->rss[MM_SHMEMPAGES], 1);
  const Vma* v = f.mm->vma_lookup(*a);
  ASSERT_TRUE(v && v->vm_file && v->vm_file->shmem());
  EXPECT_EQ(f.m.phys.frame(v->vm_file->cached_page(0))[0], 9);
  EXPECT_EQ(f.problems(), "");
}

TEST_P(FaultTest, UserCopiesCrossPages) {
  const vaddr_t a = f.map_anon(3 * PAGE_SIZE);
  std::vector<std::uint8_t> in(2 * PAGE_SIZE + 100), out(in.size());
  for (std::size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<std::uint8_t>(i);
  ASSERT_TRUE(copy_to_user(*f.mm, a + 50, in.data(), in.size()));
  ASSERT_TRUE(copy_from_user(*f.mm, out.data(), a + 50, out.size()));
  EXPECT_EQ(in, out);
  const char s[] = "hello";
  ASSERT_TRUE(copy_to_user(*f.mm, a + PAGE_SIZE - 3, s, sizeof s));
  EXPECT_EQ(*strncpy_from_user(*f.mm, a + PAGE_SIZE - 3, 100), "hello");
  EXPECT_EQ(strncpy_from_user(*f.mm, a + PAGE_SIZE - 3, 4).error(), Errno{ENAMETOOLONG});
}

INSTANTIATE_TEST_SUITE_P(Arches, FaultTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_test_name);

}  // namespace
}  // namespace mmemu::test
