// Merging next to VMAs inherited over fork (Linux 6.18's is_mergeable_anon_vma): a child's
// copy of a VMA the parent had written to is linked to the parent's anon_vma as well as its
// own (its anon_vma_chain is not singular), so nothing without an anon_vma may join it — a
// new mapping or an mprotected range right after it stays a VMA of its own — and it may not
// hand its anon_vma to a neighbour that has none. An inherited VMA never written has no
// anon_vma and merges as usual, and so does the parent's own VMA. mremap growing a VMA in
// place (vma_merge_extend) has no source VMA to check, so the grown VMA takes over a
// never-written neighbour even in the child. The guest tests/guests/fork_merge.c shows the
// same on the host kernel.
#include <gtest/gtest.h>

#include <tuple>

#include "lifecycle_util.hpp"

namespace mmemu::test {
namespace {

constexpr vaddr_t kBase = 0x20000000;
constexpr int kRw = PROT_READ | PROT_WRITE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

vaddr_t pg(int i) {
  return kBase + static_cast<vaddr_t>(i) * PAGE_SIZE;
}

// One VMA: first and end page relative to kBase, its VM_READ|VM_WRITE|VM_EXEC bits and the
// length of its anon_vma_chain (0: no anon_vma).
using VmaRow = std::tuple<int, int, vm_flags_t, std::size_t>;
using VmaList = std::vector<VmaRow>;

constexpr vm_flags_t kR = VM_READ;
constexpr vm_flags_t kRW = VM_READ | VM_WRITE;

VmaList vma_list(const Mm& mm) {
  VmaList out;
  for (const Vma* v : mm.vmas())
    out.emplace_back(static_cast<int>((v->vm_start - kBase) / PAGE_SIZE),
                     static_cast<int>((v->vm_end - kBase) / PAGE_SIZE),
                     v->vm_flags & (VM_READ | VM_WRITE | VM_EXEC), v->anon_vma_chain.size());
  return out;
}

class ForkMerge : public ::testing::TestWithParam<Arch> {
 protected:
  void SetUp() override {
    auto r = Mm::create(m, GetParam());
    ASSERT_TRUE(r.has_value());
    parent = std::move(*r);
  }
  void map(Mm& mm, int first, int pages, int prot = kRw) {
    auto r = sys_mmap(mm, pg(first), static_cast<std::uint64_t>(pages) * PAGE_SIZE, prot, kAnon,
                      nullptr, 0);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(*r, pg(first));
  }
  void fork() {
    auto c = dup_mm(*parent, ForkRecovery::TreeMax);
    ASSERT_TRUE(c.has_value());
    child = std::move(*c);
  }
  Machine m{kLifePhys};
  std::unique_ptr<Mm> parent, child;
};

TEST_P(ForkMerge, NewMappingAfterAWrittenInheritedVmaStaysApart) {
  map(*parent, 0, 2);
  write8(*parent, pg(0), 1);
  fork();
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 2, kRW, 2}}));  // the parent's anon_vma and its own
  map(*child, 2, 2);
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 2, kRW, 2}, {2, 4, kRW, 0}}));
  EXPECT_EQ(child->map_count, 2);
  write8(*child, pg(2), 2);  // the new VMA gets an anon_vma of its own, not the inherited one
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 2, kRW, 2}, {2, 4, kRW, 1}}));
  EXPECT_NE(child->vma_lookup(pg(2))->anon_vma, child->vma_lookup(pg(0))->anon_vma);
  // The parent's VMA has a singular chain: the same mapping merges there.
  map(*parent, 2, 2);
  EXPECT_EQ(vma_list(*parent), (VmaList{{0, 4, kRW, 1}}));
  EXPECT_EQ(read8(*child, pg(0)), 1);
  EXPECT_EQ(read8(*child, pg(2)), 2);
  EXPECT_EQ(problems({parent.get(), child.get()}), "");
}

TEST_P(ForkMerge, NewMappingAfterAnUnwrittenInheritedVmaMerges) {
  map(*parent, 0, 2);
  fork();
  map(*child, 2, 2);
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 4, kRW, 0}}));
  EXPECT_EQ(child->map_count, 1);
  EXPECT_EQ(problems({parent.get(), child.get()}), "");
}

// vma_modify_flags: a range without an anon_vma next to the written inherited VMA does not
// join it when mprotect gives it the same flags.
TEST_P(ForkMerge, MprotectedRangeDoesNotJoinAWrittenInheritedVma) {
  map(*parent, 0, 2);
  write8(*parent, pg(0), 1);
  fork();
  map(*child, 2, 2, PROT_READ);
  ASSERT_TRUE(do_mprotect(*child, pg(2), 2 * PAGE_SIZE, kRw));
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 2, kRW, 2}, {2, 4, kRW, 0}}));
  EXPECT_EQ(problems({parent.get(), child.get()}), "");
}

// The other direction: the written inherited VMA, mprotected to its neighbour's flags, does
// not hand its anon_vma to the neighbour (dup_anon_vma would link the neighbour to the
// parent's anon_vma).
TEST_P(ForkMerge, WrittenInheritedVmaDoesNotJoinANeighbourWithoutAnonVma) {
  map(*parent, 0, 2);
  write8(*parent, pg(0), 1);
  fork();
  map(*child, 2, 2);
  ASSERT_TRUE(do_mprotect(*child, pg(2), 2 * PAGE_SIZE, PROT_READ));
  ASSERT_TRUE(do_mprotect(*child, pg(0), 2 * PAGE_SIZE, PROT_READ));
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 2, kR, 2}, {2, 4, kR, 0}}));
  EXPECT_EQ(problems({parent.get(), child.get()}), "");
}

// vma_merge_extend: mremap grows the written inherited VMA in place up to a never-written
// neighbour, which it takes over (there is no source VMA whose parents could matter).
TEST_P(ForkMerge, MremapGrowthTakesOverANeighbourWithoutAnonVma) {
  map(*parent, 0, 2);
  map(*parent, 4, 2);
  write8(*parent, pg(0), 1);
  fork();
  auto r = do_mremap(*child, pg(0), 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, pg(0));
  EXPECT_EQ(vma_list(*child), (VmaList{{0, 6, kRW, 2}}));
  EXPECT_EQ(child->map_count, 1);
  EXPECT_EQ(read8(*child, pg(0)), 1);
  // The same in the parent.
  ASSERT_TRUE(do_mremap(*parent, pg(0), 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0).has_value());
  EXPECT_EQ(vma_list(*parent), (VmaList{{0, 6, kRW, 1}}));
  EXPECT_EQ(problems({parent.get(), child.get()}), "");
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, ForkMerge, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
