// unlink_anon_vmas on a VMA that lives on: MREMAP_DONTUNMAP moves every page table entry of
// the source to the new VMA and then unlinks the source from its anon_vmas. Linux 6.18
// (mm/rmap.c) clears vma->anon_vma there for every VMA, file-backed or not ("vma would still
// be needed after unlink, and anon_vma will be prepared when handle fault"), so the next
// write fault in the source prepares a fresh anon_vma instead of reusing one the source is
// no longer linked to.
#include <gtest/gtest.h>

#include "lifecycle_util.hpp"

namespace mmemu::test {
namespace {

constexpr vaddr_t kSrc = 0x20000000;
constexpr vaddr_t kDst = 0x30000000;

class UnlinkAnonVmas : public ::testing::TestWithParam<Arch> {
 protected:
  void SetUp() override {
    auto r = Mm::create(m, GetParam());
    ASSERT_TRUE(r.has_value());
    mm = std::move(*r);
  }
  // Writes one page of the source, moves it with MREMAP_DONTUNMAP, and checks both VMAs.
  void move_and_check() {
    write8(*mm, kSrc, 0x77);
    Vma* src = mm->vma_lookup(kSrc);
    ASSERT_NE(src, nullptr);
    AnonVma* av = src->anon_vma;
    ASSERT_NE(av, nullptr);
    ASSERT_EQ(src->anon_vma_chain.size(), 1U);
    auto r = do_mremap(*mm, kSrc, 2 * PAGE_SIZE, 2 * PAGE_SIZE,
                       MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, kDst);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(*r, kDst);
    src = mm->vma_lookup(kSrc);
    const Vma* dst = mm->vma_lookup(kDst);
    ASSERT_NE(src, nullptr);
    ASSERT_NE(dst, nullptr);
    EXPECT_EQ(src->anon_vma, nullptr);  // cleared, file-backed or not
    EXPECT_TRUE(src->anon_vma_chain.empty());
    EXPECT_EQ(dst->anon_vma, av);  // the moved page's anon_vma lives on with the copy
    EXPECT_EQ(av->num_active_vmas, 1U);
    EXPECT_EQ(read8(*mm, kDst), 0x77);
    // A new write fault in the source prepares a new anon_vma (the copy's is not adjacent).
    write8(*mm, kSrc, 0x11);
    EXPECT_NE(src->anon_vma, nullptr);
    EXPECT_NE(src->anon_vma, av);
    EXPECT_EQ(src->anon_vma_chain.size(), 1U);
    EXPECT_EQ(problems({mm.get()}), "");
  }
  Machine m{kLifePhys};
  std::unique_ptr<Mm> mm;
};

TEST_P(UnlinkAnonVmas, AnonymousSourceLosesItsAnonVma) {
  ASSERT_TRUE(sys_mmap(*mm, kSrc, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  move_and_check();
  EXPECT_EQ(read8(*mm, kSrc + PAGE_SIZE), 0);
}

TEST_P(UnlinkAnonVmas, FileBackedPrivateSourceLosesItsAnonVmaToo) {
  File* file = File::create(m, "/lib/data.bin", std::vector<std::uint8_t>(4 * PAGE_SIZE, 0x5a));
  ASSERT_TRUE(
      sys_mmap(*mm, kSrc, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, file, 0));
  file->put();  // the mapping holds its own reference
  ASSERT_NE(mm->vma_lookup(kSrc)->vm_file, nullptr);
  move_and_check();
  EXPECT_EQ(read8(*mm, kSrc + PAGE_SIZE), 0x5a);  // the file shows through again
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, UnlinkAnonVmas, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
