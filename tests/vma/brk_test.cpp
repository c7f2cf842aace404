// brk: the heap VMA grows (merging with itself only), shrinks by unmapping, keeps a page free
// below the next mapping and the stack guard gap below a stack, and answers the old break
// when it cannot move — as Linux 6.18 does (each case measured natively).
#include "syscall_test_util.hpp"

namespace mmemu::test {
namespace {

class BrkTest : public SyscallTest {
 protected:
  static constexpr vaddr_t kHeap = 0x10000000;  // start_brk; off from kArea's tests
  void SetUp() override {
    SyscallTest::SetUp();
    f.mm->start_brk = f.mm->brk = kHeap;
  }
  vaddr_t brk(vaddr_t b) { return sys_brk(*f.mm, b); }
  vaddr_t h(std::uint64_t pages) const { return kHeap + pages * PAGE_SIZE; }
  // Heap-area layout in pages from kHeap.
  Layout heap_layout() const {
    Layout out;
    for (const auto& [s, e] : f.layout())
      if (e > kHeap - 16 * PAGE_SIZE && s < kHeap + 4096 * PAGE_SIZE)
        out.emplace_back((s - (kHeap - 16 * PAGE_SIZE)) >> PAGE_SHIFT,
                         (e - (kHeap - 16 * PAGE_SIZE)) >> PAGE_SHIFT);
    return out;
  }
  static std::pair<vaddr_t, vaddr_t> H(std::int64_t s, std::int64_t e) {
    return {static_cast<vaddr_t>(s + 16), static_cast<vaddr_t>(e + 16)};
  }
  vaddr_t map_fixed(vaddr_t a, std::uint64_t pages, int prot = PROT_READ, int extra = 0) {
    auto r = sys_mmap(*f.mm, a, pages * PAGE_SIZE, prot,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra, nullptr, 0);
    EXPECT_TRUE(r);
    return r ? *r : 0;
  }
};

TEST_P(BrkTest, GrowAndShrink) {
  EXPECT_EQ(brk(0), kHeap);
  EXPECT_EQ(brk(1), kHeap);  // below start_brk: the break stays
  EXPECT_EQ(brk(kHeap + 100), kHeap + 100);
  EXPECT_EQ(f.mm->brk, kHeap + 100);
  EXPECT_EQ(heap_layout(), (Layout{H(0, 1)}));
  const Vma* heap = vma_at(kHeap);
  EXPECT_EQ(heap->vm_flags,
            VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT);
  EXPECT_EQ(heap->vm_pgoff, kHeap >> PAGE_SHIFT);
  f.write8(kHeap, 1);
  EXPECT_EQ(brk(h(3) + 5), h(3) + 5);
  EXPECT_EQ(heap_layout(), (Layout{H(0, 4)}));
  EXPECT_EQ(vma_at(kHeap), heap);  // the same VMA grew
  EXPECT_EQ(f.mm->total_vm, 4U);
  EXPECT_EQ(f.mm->data_vm, 4U);
  f.write8(h(3), 4);
  EXPECT_EQ(brk(h(1)), h(1));
  EXPECT_EQ(heap_layout(), (Layout{H(0, 1)}));
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 1);
  EXPECT_EQ(f.read8(kHeap), 1);
  EXPECT_EQ(ok(), "");
}

TEST_P(BrkTest, OnePageStaysFreeBelowTheNextMapping) {
  brk(h(1));
  map_fixed(h(10), 1);
  EXPECT_EQ(brk(h(10)), h(1));  // touching it: refused
  EXPECT_EQ(brk(h(9)), h(9));
  EXPECT_EQ(brk(h(9) - 1), h(9) - 1);
  EXPECT_EQ(brk(h(8)), h(8));
  EXPECT_EQ(heap_layout(), (Layout{H(0, 8), H(10, 11)}));
  // Below a stack, the guard gap (256 pages) stays free too.
  ASSERT_TRUE(do_munmap(*f.mm, h(10), PAGE_SIZE));
  map_fixed(h(300), 1, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
  EXPECT_EQ(brk(h(40)), h(40));
  EXPECT_EQ(brk(h(44)), h(40));
  EXPECT_EQ(brk(h(43)), h(43));
  EXPECT_EQ(ok(), "");
}

TEST_P(BrkTest, ShrinkNeedsAHeapVma) {
  brk(h(8));
  ASSERT_TRUE(do_munmap(*f.mm, h(2), 2 * PAGE_SIZE));
  EXPECT_EQ(brk(h(1)), h(1));  // across the hole
  EXPECT_EQ(heap_layout(), (Layout{H(0, 1)}));
  brk(h(8));
  ASSERT_TRUE(do_munmap(*f.mm, kHeap, 8 * PAGE_SIZE));
  EXPECT_EQ(brk(h(2)), h(8));  // nothing there to shrink
  EXPECT_EQ(brk(h(4)), h(8));
  EXPECT_EQ(brk(h(12)), h(12));  // growing makes a new heap VMA from the old break
  EXPECT_EQ(heap_layout(), (Layout{H(8, 12)}));
  EXPECT_EQ(ok(), "");
}

TEST_P(BrkTest, OnlyTheHeapVmaMerges) {
  // A compatible mapping that ends at start_brk (the bss) is not the heap: no merge.
  map_fixed(kHeap - 2 * PAGE_SIZE, 2, PROT_READ | PROT_WRITE);
  EXPECT_EQ(brk(h(2)), h(2));
  EXPECT_EQ(heap_layout(), (Layout{H(-2, 0), H(0, 2)}));
  // A read-only tail splits the heap; growing then makes a new VMA, and making the tail
  // writable again merges all three.
  brk(h(4));
  ASSERT_TRUE(do_mprotect(*f.mm, h(2), 2 * PAGE_SIZE, PROT_READ));
  EXPECT_EQ(brk(h(6)), h(6));
  EXPECT_EQ(heap_layout(), (Layout{H(-2, 0), H(0, 2), H(2, 4), H(4, 6)}));
  ASSERT_TRUE(do_mprotect(*f.mm, h(2), 2 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_EQ(heap_layout(), (Layout{H(-2, 0), H(0, 6)}));
  f.write8(kHeap, 1);  // with an anon_vma the heap still grows in place
  EXPECT_EQ(brk(h(8)), h(8));
  EXPECT_EQ(heap_layout(), (Layout{H(-2, 0), H(0, 8)}));
  EXPECT_EQ(ok(), "");
}

TEST_P(BrkTest, Limits) {
  f.mm->start_data = kHeap - 4 * PAGE_SIZE;
  f.mm->end_data = kHeap - 2 * PAGE_SIZE;  // two pages of data segment
  f.rlimits[Rlim::Data].cur = 6 * PAGE_SIZE;
  EXPECT_EQ(brk(h(4)), h(4));
  EXPECT_EQ(brk(h(5)), h(4));  // 5 + 2 > 6
  // Other private writable mappings count against RLIMIT_DATA too (may_expand_vm).
  f.rlimits[Rlim::Data].cur = 64 * PAGE_SIZE;
  map_fixed(kArea, 58, PROT_READ | PROT_WRITE);
  EXPECT_EQ(f.mm->data_vm, 62U);
  EXPECT_EQ(brk(h(7)), h(4));
  EXPECT_EQ(brk(h(6)), h(6));
  f.rlimits[Rlim::Data].cur = RLIM_INFINITY_;
  // mlockall(MCL_FUTURE): the heap is locked and populated, within RLIMIT_MEMLOCK.
  f.mm->caps = 0;
  f.rlimits[Rlim::Memlock] = {2 * PAGE_SIZE, 2 * PAGE_SIZE};
  ASSERT_TRUE(do_mlockall(*f.mm, MCL_FUTURE));
  EXPECT_EQ(brk(h(9)), h(6));
  EXPECT_EQ(brk(h(8)), h(8));
  EXPECT_EQ(f.mm->locked_vm, 2U);
  EXPECT_TRUE(flags_at(h(7)) & VM_LOCKED);
  EXPECT_TRUE(desc(pfn_at(h(7))).flags & PG_mlocked);
  EXPECT_EQ(heap_layout(), (Layout{H(0, 6), H(6, 8)}));
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(BrkTest);

}  // namespace
}  // namespace mmemu::test
