// Overcommit (vm.overcommit_memory = 0): one request of more pages than the machine's commit
// limit fails with ENOMEM at each site Linux 6.18 charges — mmap of private writable or shared
// anonymous memory, brk, mprotect to writable, mremap's expand and move, stack growth and
// fork — and a refused request leaves everything as it was. MAP_NORESERVE skips the charge
// where Linux skips it. The guest tests/guests/overcommit.c compares the same with the host.
#include <linux/mman.h>

#include "syscall_test_util.hpp"
#include "vma/fork.hpp"
#include "vma/overcommit.hpp"

namespace mmemu::test {
namespace {

constexpr std::uint64_t kLimit = 64;  // pages

// Everything a refused request must leave alone.
struct MmState {
  Layout layout;
  std::vector<vm_flags_t> flags;
  int map_count;
  std::uint64_t total_vm, data_vm, stack_vm, locked_vm;
  vaddr_t brk;
  std::array<std::int64_t, kAllocSites> live;
  bool operator==(const MmState&) const = default;
};

class OvercommitTest : public SyscallTest {
 protected:
  void SetUp() override {
    SyscallTest::SetUp();
    f.m.commit_limit_pages = kLimit;
  }
  MmState state() const {
    MmState s{f.layout(),         {},
              f.mm->map_count,    f.mm->total_vm,
              f.mm->data_vm,      f.mm->stack_vm,
              f.mm->locked_vm,    f.mm->brk,
              f.m.live.snapshot()};
    for (const Vma* v : f.mm->vmas())
      s.flags.push_back(v->vm_flags);
    return s;
  }
  // mmap(pg(page), pages, prot, flags | MAP_ANONYMOUS | MAP_FIXED)'s errno (0: mapped).
  int mmap_err(std::uint64_t page, std::uint64_t pages, int prot, int flags) {
    return err_of(sys_mmap(*f.mm, pg(page), pages * PAGE_SIZE, prot,
                           flags | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  }
  int mprotect_err(std::uint64_t page, std::uint64_t pages, int prot) {
    return err_of(do_mprotect(*f.mm, pg(page), pages * PAGE_SIZE, prot));
  }
  Result<vaddr_t> mremap(std::uint64_t page, std::uint64_t old_pages, std::uint64_t new_pages,
                         int flags, vaddr_t to = 0) {
    return do_mremap(*f.mm, pg(page), old_pages * PAGE_SIZE, new_pages * PAGE_SIZE, flags, to);
  }
};

TEST_P(OvercommitTest, OneRequestIsComparedWithTheLimit) {
  EXPECT_EQ(err_of(vm_enough_memory(*f.mm, kLimit)), 0);
  EXPECT_EQ(err_of(vm_enough_memory(*f.mm, kLimit + 1)), ENOMEM);
  // Mode 0 keeps no total: what is already committed does not count.
  map_at(0, kLimit);
  map_at(100, kLimit);
  EXPECT_EQ(err_of(vm_enough_memory(*f.mm, kLimit)), 0);
  // A machine starts with no limit.
  Machine m2(4ULL << 20);
  EXPECT_EQ(m2.commit_limit_pages, Machine::kNoCommitLimit);
  auto mm2 = Mm::create(m2, GetParam());
  ASSERT_TRUE(mm2);
  EXPECT_EQ(err_of(vm_enough_memory(**mm2, 1ULL << 40)), 0);
}

TEST_P(OvercommitTest, MmapPrivateWritable) {
  const int rw = PROT_READ | PROT_WRITE;
  const MmState before = state();
  EXPECT_EQ(mmap_err(0, kLimit + 1, rw, MAP_PRIVATE), ENOMEM);
  EXPECT_EQ(state(), before);
  EXPECT_EQ(mmap_err(0, kLimit, rw, MAP_PRIVATE), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, kLimit}}));
  EXPECT_TRUE(flags_at(pg(0)) & VM_ACCOUNT);
  // Not charged: MAP_NORESERVE, read-only.
  EXPECT_EQ(mmap_err(200, kLimit + 1, rw, MAP_PRIVATE | MAP_NORESERVE), 0);
  EXPECT_FALSE(flags_at(pg(200)) & VM_ACCOUNT);
  EXPECT_TRUE(flags_at(pg(200)) & VM_NORESERVE);
  EXPECT_EQ(mmap_err(400, kLimit + 1, PROT_READ, MAP_PRIVATE), 0);
  EXPECT_FALSE(flags_at(pg(400)) & VM_ACCOUNT);
  // A private writable file mapping is charged too.
  File* file = File::create(f.m, "/tmp/t", std::vector<std::uint8_t>(PAGE_SIZE), true, false);
  const MmState before_file = state();
  EXPECT_EQ(err_of(sys_mmap(*f.mm, pg(600), (kLimit + 1) * PAGE_SIZE, rw, MAP_PRIVATE | MAP_FIXED,
                            file, 0)),
            ENOMEM);
  EXPECT_EQ(state(), before_file);
  EXPECT_EQ(
      err_of(sys_mmap(*f.mm, pg(600), kLimit * PAGE_SIZE, rw, MAP_PRIVATE | MAP_FIXED, file, 0)),
      0);
  file->put();
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MapFixedIsChargedLessTheAccountedPagesItReplaces) {
  const int rw = PROT_READ | PROT_WRITE;
  // 60 accounted pages replaced by 100: only 40 are new.
  map_at(0, 60);
  EXPECT_EQ(mmap_err(0, 100, rw, MAP_PRIVATE), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 100}}));
  // Over 60 read-only (unaccounted) pages, all 100 count: refused before the old mapping is
  // touched.
  map_at(200, 60, PROT_READ);
  ASSERT_EQ(f.touch(pg(200), Access::Read), FaultResult::Ok);
  const MmState before = state();
  EXPECT_EQ(mmap_err(200, 100, rw, MAP_PRIVATE), ENOMEM);
  EXPECT_EQ(state(), before);
  EXPECT_EQ(area_layout(), (Layout{{0, 100}, {200, 260}}));
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MmapSharedAnonymousUnlessNoreserve) {
  const MmState before = state();
  EXPECT_EQ(mmap_err(0, kLimit + 1, PROT_READ | PROT_WRITE, MAP_SHARED), ENOMEM);
  EXPECT_EQ(mmap_err(0, kLimit + 1, PROT_READ, MAP_SHARED), ENOMEM);  // shmem charges all
  EXPECT_EQ(state(), before);
  EXPECT_EQ(mmap_err(0, kLimit, PROT_READ | PROT_WRITE, MAP_SHARED), 0);
  EXPECT_FALSE(flags_at(pg(0)) & VM_ACCOUNT);
  EXPECT_EQ(mmap_err(100, kLimit + 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, kLimit}, {100, 100 + kLimit + 1}}));
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, BrkGrowth) {
  const vaddr_t heap = 0x10000000;
  f.mm->start_brk = f.mm->brk = heap;
  const MmState before = state();
  EXPECT_EQ(sys_brk(*f.mm, heap + (kLimit + 1) * PAGE_SIZE), heap);  // the old break
  EXPECT_EQ(state(), before);
  EXPECT_EQ(sys_brk(*f.mm, heap + kLimit * PAGE_SIZE), heap + kLimit * PAGE_SIZE);
  // Each growth is its own request.
  const vaddr_t two = heap + 2 * kLimit * PAGE_SIZE;
  EXPECT_EQ(sys_brk(*f.mm, two), two);
  const MmState grown = state();
  EXPECT_EQ(sys_brk(*f.mm, two + (kLimit + 1) * PAGE_SIZE), two);
  EXPECT_EQ(state(), grown);
  EXPECT_EQ(f.layout().back(), std::make_pair(heap, two));
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MprotectPrivateToWritable) {
  const int rw = PROT_READ | PROT_WRITE;
  map_at(0, kLimit + 1, PROT_READ);
  const MmState before = state();
  EXPECT_EQ(mprotect_err(0, kLimit + 1, rw), ENOMEM);
  EXPECT_EQ(state(), before);
  // A part of it that fits becomes writable and accounted (split off).
  EXPECT_EQ(mprotect_err(1, kLimit, rw), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 1}, {1, kLimit + 1}}));
  EXPECT_EQ(flags_at(pg(1)) & (VM_WRITE | VM_ACCOUNT), VM_WRITE | VM_ACCOUNT);
  // NORESERVE and shared mappings are not charged.
  map_at(200, kLimit + 1, PROT_READ, MAP_NORESERVE);
  EXPECT_EQ(mprotect_err(200, kLimit + 1, rw), 0);
  EXPECT_FALSE(flags_at(pg(200)) & VM_ACCOUNT);
  EXPECT_EQ(err_of(sys_mmap(*f.mm, pg(400), (kLimit + 1) * PAGE_SIZE, PROT_READ,
                            MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, nullptr, 0)),
            0);
  EXPECT_EQ(mprotect_err(400, kLimit + 1, rw), 0);
  // An accounted VMA (two requests merged) that kept VM_ACCOUNT while read-only (it has an
  // anon_vma) is not charged again.
  map_at(600, 40);
  map_at(640, 40);
  ASSERT_EQ(vma_at(pg(600))->vm_end, pg(680));
  ASSERT_EQ(f.touch(pg(600)), FaultResult::Ok);
  EXPECT_EQ(mprotect_err(600, 80, PROT_READ), 0);
  EXPECT_TRUE(flags_at(pg(600)) & VM_ACCOUNT);
  EXPECT_EQ(mprotect_err(600, 80, rw), 0);
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MprotectStopsAtTheRefusedVma) {
  // VMA by VMA, as Linux: the first one changed stays changed.
  map_at(0, 10, PROT_READ);
  map_at(10, kLimit + 1, PROT_READ | PROT_EXEC);
  EXPECT_EQ(mprotect_err(0, 10 + kLimit + 1, PROT_READ | PROT_WRITE), ENOMEM);
  EXPECT_EQ(area_layout(), (Layout{{0, 10}, {10, 10 + kLimit + 1}}));
  EXPECT_TRUE(flags_at(pg(0)) & VM_WRITE);
  EXPECT_EQ(flags_at(pg(10)) & (VM_WRITE | VM_EXEC | VM_ACCOUNT), VM_EXEC);
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MremapExpandInPlace) {
  map_at(0, 40);
  ASSERT_EQ(f.touch(pg(0)), FaultResult::Ok);
  const MmState before = state();
  EXPECT_EQ(err_of(mremap(0, 40, 40 + kLimit + 1, 0)), ENOMEM);
  EXPECT_EQ(state(), before);
  EXPECT_EQ(mremap(0, 40, 40 + kLimit, 0), pg(0));
  EXPECT_EQ(area_layout(), (Layout{{0, 40 + kLimit}}));
  // Unaccounted mappings grow freely.
  map_at(300, 40, PROT_READ | PROT_WRITE, MAP_NORESERVE);
  EXPECT_EQ(mremap(300, 40, 40 + kLimit + 1, 0), pg(300));
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MremapMove) {
  map_at(0, 40);
  map_at(40, 1, PROT_READ);  // blocks growth in place
  ASSERT_EQ(f.touch(pg(0)), FaultResult::Ok);
  const pfn_t pfn = pfn_at(pg(0));
  const MmState before = state();
  EXPECT_EQ(err_of(mremap(0, 40, 40 + kLimit + 1, MREMAP_MAYMOVE)), ENOMEM);
  EXPECT_EQ(state(), before);
  EXPECT_EQ(pfn_at(pg(0)), pfn);
  // MREMAP_FIXED: the destination's old mapping is unmapped first (Linux's order), then the
  // move is refused.
  map_at(500, 4, PROT_READ);
  EXPECT_EQ(err_of(mremap(0, 40, 40 + kLimit + 1, MREMAP_MAYMOVE | MREMAP_FIXED, pg(400))), ENOMEM);
  EXPECT_EQ(area_layout(), (Layout{{0, 40}, {40, 41}}));
  EXPECT_EQ(pfn_at(pg(0)), pfn);
  auto moved = mremap(0, 40, 40 + kLimit, MREMAP_MAYMOVE);
  ASSERT_TRUE(moved);
  EXPECT_EQ(pfn_at(*moved), pfn);
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, MremapDontunmapChargesTheWholeLength) {
  map_at(0, 40);
  map_at(40, 40);  // merged: one accounted VMA of 80 pages
  ASSERT_EQ(area_layout(), (Layout{{0, 80}}));
  const MmState before = state();
  EXPECT_EQ(err_of(mremap(0, 80, 80, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, pg(200))), ENOMEM);
  EXPECT_EQ(state(), before);
  EXPECT_EQ(mremap(0, kLimit, kLimit, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, pg(200)), pg(200));
  // The source stays whole (its flags do not change), emptied where it was moved from.
  EXPECT_EQ(area_layout(), (Layout{{0, 80}, {200, 200 + kLimit}}));
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, StackGrowth) {
  const vaddr_t top = 0x7f0000000000ULL;
  for (int extra : {0, MAP_NORESERVE}) {  // acct_stack_growth charges either way
    const vaddr_t end = top - (extra ? 0x100000000ULL : 0);
    ASSERT_TRUE(sys_mmap(*f.mm, end - 4 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN | extra, nullptr,
                         0));
    // The anon_vma comes first (anon_vma_prepare, kept on failure as in Linux).
    ASSERT_EQ(f.touch(end - PAGE_SIZE), FaultResult::Ok);
    const MmState before = state();
    EXPECT_EQ(f.touch(end - (4 + kLimit + 1) * PAGE_SIZE), FaultResult::SegvMapErr);
    EXPECT_EQ(state(), before);
    EXPECT_EQ(f.touch(end - (4 + kLimit) * PAGE_SIZE), FaultResult::Ok);
    EXPECT_EQ(vma_at(end - PAGE_SIZE)->vm_start, end - (4 + kLimit) * PAGE_SIZE);
  }
  EXPECT_EQ(ok(), "");
}

TEST_P(OvercommitTest, ForkChargesEachAccountedVma) {
  map_at(0, 40);
  map_at(40, 40);  // one accounted VMA of 80 pages
  map_at(200, 80, PROT_READ | PROT_WRITE, MAP_NORESERVE);
  map_at(400, 80, PROT_READ);
  ASSERT_EQ(f.touch(pg(0)), FaultResult::Ok);
  const MmState before = state();
  ForkReport rep;
  auto child = dup_mm(*f.mm, ForkRecovery::TreeMax, &rep);
  EXPECT_EQ(err_of(child), ENOMEM);
  EXPECT_EQ(rep.failed_step, "vm_enough_memory");
  EXPECT_EQ(rep.failed_vma, pg(0));
  EXPECT_EQ(state(), before);  // the dead child left nothing behind
  EXPECT_EQ(ok(), "");
  // Not copied, not charged.
  ASSERT_EQ(err_of(do_madvise(*f.mm, pg(0), 80 * PAGE_SIZE, MADV_DONTFORK)), 0);
  auto c2 = dup_mm(*f.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(c2);
  EXPECT_EQ((*c2)->map_count, f.mm->map_count - 1);
  c2->reset();
  ASSERT_EQ(err_of(do_madvise(*f.mm, pg(0), 80 * PAGE_SIZE, MADV_DOFORK)), 0);
  // Each VMA alone: 80 pages fit a limit of 80.
  f.m.commit_limit_pages = 80;
  auto c3 = dup_mm(*f.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(c3);
  EXPECT_EQ((*c3)->map_count, f.mm->map_count);
}

INSTANTIATE_ARCHES(OvercommitTest);

}  // namespace
}  // namespace mmemu::test
