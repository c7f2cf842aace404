// mseal (Linux 6.18, measured natively with tests/guests/mseal.c): argument errors, the
// VM_SEALED VMAs sealing makes (split at the edges, merged with sealed neighbours), the
// EPERM of munmap / mprotect / mremap / MAP_FIXED / discarding madvise with the state left as
// Linux leaves it, the seal in a fork child, and every allocation of sealing failing cleanly.
// MAP_DROPPABLE (tests/guests/droppable.c): its VMA flags, no charge, no lock, and reclaim
// dropping its dirty pages. MADV_COLD / MADV_PAGEOUT without swap (tests/guests/madv_cold.c).
#include <linux/mman.h>

#include "inject_sweep.hpp"
#include "syscall_test_util.hpp"
#include "vma/fork.hpp"
#include "vma/mseal.hpp"
#include "vma/reclaim.hpp"

namespace mmemu::test {
namespace {

constexpr std::uint64_t P = PAGE_SIZE;
constexpr vm_flags_t kAnonRw =
    VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT;

class MsealTest : public SyscallTest {
 protected:
  int seal(vaddr_t a, std::uint64_t len, std::uint64_t flags = 0) {
    return err_of(do_mseal(*f.mm, a, len, flags));
  }
  std::vector<vm_flags_t> area_flags() const {
    std::vector<vm_flags_t> out;
    for (const Vma* v : f.mm->vmas())
      if (v->vm_start >= kArea) out.push_back(v->vm_flags);
    return out;
  }
};

TEST_P(MsealTest, ArgumentErrorsLikeLinux) {
  const vaddr_t a = map_at(0, 16);
  EXPECT_EQ(seal(a, P, 1), EINVAL);
  EXPECT_EQ(seal(a + 1, P), EINVAL);
  EXPECT_EQ(seal(a, 0), 0);
  EXPECT_EQ(seal(a, static_cast<std::uint64_t>(-100)), EINVAL);  // rounds to 0
  EXPECT_EQ(seal(a, 0 - a), EINVAL);                             // wraps
  ASSERT_EQ(err_of(do_munmap(*f.mm, pg(12), P)), 0);
  EXPECT_EQ(seal(pg(10), 4 * P), ENOMEM);  // a hole inside
  EXPECT_EQ(seal(pg(13), 4 * P), ENOMEM);  // past the end
  EXPECT_EQ(seal(pg(20), P), ENOMEM);      // nothing there
  // Nothing was sealed by the failures.
  EXPECT_EQ(area_layout(), (Layout{{0, 12}, {13, 16}}));
  EXPECT_EQ(area_flags(), (std::vector<vm_flags_t>{kAnonRw, kAnonRw}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MsealTest, SealingSplitsAndMerges) {
  const vaddr_t a = map_at(0, 8);
  touch_all(a, 8);
  const int before = f.mm->map_count;
  EXPECT_EQ(seal(a + 2 * P, 2 * P - 100), 0);  // length rounded up
  EXPECT_EQ(area_layout(), (Layout{{0, 2}, {2, 4}, {4, 8}}));
  EXPECT_EQ(area_flags(), (std::vector<vm_flags_t>{kAnonRw, kAnonRw | VM_SEALED, kAnonRw}));
  EXPECT_EQ(f.mm->map_count, before + 2);
  EXPECT_EQ(seal(a + 2 * P, P), 0);  // already sealed: nothing changes
  EXPECT_EQ(f.mm->map_count, before + 2);
  // Over an unsealed and a sealed VMA: the unsealed part joins its sealed neighbour.
  EXPECT_EQ(seal(a + P, 2 * P), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 1}, {1, 4}, {4, 8}}));
  EXPECT_EQ(seal(a, 8 * P), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 8}}));
  EXPECT_EQ(area_flags(), (std::vector<vm_flags_t>{kAnonRw | VM_SEALED}));
  EXPECT_EQ(vm_flags_names(kAnonRw | VM_SEALED), "rd wr mr mw me ac sl");
  // The pages were not touched.
  for (std::uint64_t i = 0; i < 8; ++i)
    EXPECT_TRUE(pte(a + i * P)) << i;
  EXPECT_EQ(ok(), "");
}

TEST_P(MsealTest, SealedVmasRefuseChangesWithEperm) {
  const vaddr_t a = map_at(0, 12);
  touch_all(a, 12);
  ASSERT_EQ(seal(a + 2 * P, 2 * P), 0);
  const Layout layout{{0, 2}, {2, 4}, {4, 12}};
  const pte_t sealed_pte = *pte(a + 2 * P);
  EXPECT_EQ(err_of(do_munmap(*f.mm, a + 2 * P, P)), EPERM);
  EXPECT_EQ(err_of(do_munmap(*f.mm, a, 3 * P)), EPERM);  // unsealed + sealed: nothing unmapped
  EXPECT_EQ(err_of(do_munmap(*f.mm, a + 3 * P, 3 * P)), EPERM);
  EXPECT_EQ(area_layout(), layout);
  for (std::uint64_t i = 0; i < 12; ++i)
    EXPECT_TRUE(pte(a + i * P)) << i;
  EXPECT_EQ(err_of(do_mprotect(*f.mm, a + 2 * P, P, PROT_READ | PROT_WRITE)), EPERM);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, a + 3 * P, 2 * P, PROT_READ)), EPERM);
  EXPECT_EQ(flags_at(a + 4 * P), kAnonRw);
  EXPECT_EQ(err_of(do_mremap(*f.mm, a + 2 * P, 2 * P, 2 * P, 0, 0)), EPERM);
  EXPECT_EQ(err_of(do_mremap(*f.mm, a + 2 * P, 2 * P, P, 0, 0)), EPERM);
  EXPECT_EQ(err_of(do_mremap(*f.mm, a + 2 * P, 2 * P, 3 * P, MREMAP_MAYMOVE, 0)), EPERM);
  EXPECT_EQ(
      err_of(do_mremap(*f.mm, a + 2 * P, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, pg(40))),
      EPERM);
  EXPECT_EQ(err_of(do_mremap(*f.mm, a + 6 * P, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, a + 2 * P)),
            EPERM);
  EXPECT_EQ(err_of(do_mremap(*f.mm, a + 2 * P, P, P, 0x100, 0)), EINVAL);  // checked first
  EXPECT_EQ(err_of(sys_mmap(*f.mm, a + 2 * P, P, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
                            nullptr, 0)),
            EPERM);
  EXPECT_EQ(area_layout(), layout);
  EXPECT_EQ(*pte(a + 2 * P), sealed_pte);
  // MAP_FIXED over unsealed + sealed: the split at the start stays, as in Linux.
  EXPECT_EQ(err_of(sys_mmap(*f.mm, a + P, 2 * P, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
                            nullptr, 0)),
            EPERM);
  EXPECT_EQ(area_layout(), (Layout{{0, 1}, {1, 2}, {2, 4}, {4, 12}}));
  // mprotect over unsealed + sealed changes the first VMA, then stops (6.13+).
  EXPECT_EQ(err_of(do_mprotect(*f.mm, a + P, 2 * P, PROT_READ)), EPERM);
  EXPECT_EQ(flags_at(a + P), kAnonRw & ~VM_WRITE);
  EXPECT_EQ(flags_at(a + 2 * P), kAnonRw | VM_SEALED);
  // Still allowed: mlock, and unmapping the unsealed parts.
  EXPECT_EQ(err_of(do_mlock(*f.mm, a + 2 * P, P, 0)), 0);
  EXPECT_EQ(err_of(do_munlock(*f.mm, a + 2 * P, P)), 0);
  EXPECT_EQ(err_of(do_munmap(*f.mm, a + 6 * P, P)), 0);
  EXPECT_EQ(ok(), "");
}

TEST_P(MsealTest, DiscardingAdviceOnlyRefusedOnReadOnlyAnonymous) {
  const vaddr_t rw = map_at(0, 4);
  const vaddr_t ro = map_at(8, 4, PROT_READ);
  touch_all(rw, 4);
  touch_all(ro, 4, Access::Read);
  ASSERT_EQ(seal(rw, 4 * P), 0);
  ASSERT_EQ(seal(ro, 4 * P), 0);
  for (int advice : {MADV_DONTNEED, MADV_FREE, 24 /*MADV_DONTNEED_LOCKED*/, MADV_REMOVE,
                     MADV_DONTFORK, MADV_WIPEONFORK})
    EXPECT_EQ(err_of(do_madvise(*f.mm, ro, P, advice)), EPERM) << advice;
  for (int advice : {MADV_DOFORK, MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED,
                     MADV_NORMAL, MADV_RANDOM, MADV_DONTDUMP})
    EXPECT_EQ(err_of(do_madvise(*f.mm, ro, P, advice)), 0) << advice;
  EXPECT_TRUE(pte(ro));
  EXPECT_EQ(err_of(do_madvise(*f.mm, rw, P, MADV_DONTNEED)), 0);
  EXPECT_FALSE(pte(rw));
  EXPECT_EQ(err_of(do_madvise(*f.mm, rw + P, P, MADV_WIPEONFORK)), 0);
  EXPECT_EQ(flags_at(rw + P), kAnonRw | VM_SEALED | VM_WIPEONFORK);
  EXPECT_EQ(ok(), "");
}

TEST_P(MsealTest, ForkChildKeepsTheSeal) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 4);
  ASSERT_EQ(seal(a + P, 2 * P), 0);
  auto child = dup_mm(*f.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(child);
  const Vma* v = (*child)->vma_lookup(a + P);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->vm_flags, kAnonRw | VM_SEALED);
  EXPECT_EQ(err_of(do_munmap(**child, a + P, P)), EPERM);
  EXPECT_EQ(err_of(do_munmap(**child, a, P)), 0);
  child->reset();
  EXPECT_EQ(ok(), "");
}

// Every allocation sealing makes (the split VMAs, their anon_vma chains, the tree's nodes)
// can fail: mseal then answers ENOMEM, the tree stays valid and nothing leaks.
TEST(MsealInject, EveryAllocationOfSealingCanFail) {
  const InjectWorkload workload = [](MmFixture& f, const std::function<void()>& step) {
    Mm& mm = *f.mm;
    const vaddr_t base = 0x4000000000ULL;
    auto a = sys_mmap(mm, base, 16 * P, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
    if (!a) return;
    step();
    for (std::uint64_t i = 0; i < 16; ++i)
      (void)fault_in(mm, base + i * P, Access::Write);
    step();
    for (auto [s, l] : {std::pair{2, 2}, std::pair{6, 1}, std::pair{1, 8}, std::pair{10, 4}}) {
      auto r = do_mseal(mm, base + s * P, l * P, 0);
      if (!r) {
        EXPECT_EQ(r.error().code, ENOMEM);
      }
      step();
    }
    // The child (sealed VMAs copied) goes before the check, which sees only the parent.
    auto child = dup_mm(mm, ForkRecovery::TreeMax);
    child = {};
    step();
    (void)do_munmap(mm, base + 14 * P, 2 * P);
    step();
  };
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    const SiteAttempts attempts = inject_clean_run(arch, workload, [](MmFixture& f) {
      // [0, 1) open, [1, 9) sealed (the three seals merged), [9, 10) open, [10, 14) sealed.
      std::vector<std::pair<std::uint64_t, bool>> got;
      for (const Vma* v : f.mm->vmas())
        if (v->vm_start >= 0x4000000000ULL)
          got.emplace_back((v->vm_end - 0x4000000000ULL) / P, (v->vm_flags & VM_SEALED) != 0);
      EXPECT_EQ(got, (std::vector<std::pair<std::uint64_t, bool>>{
                         {1, false}, {9, true}, {10, false}, {14, true}}));
    });
    inject_sweep(arch, workload, attempts);
  }
}

// --- MAP_DROPPABLE ---

TEST_P(MsealTest, DroppableFlagsNoChargeNoLock) {
  f.m.commit_limit_pages = 64;
  auto d = sys_mmap(*f.mm, pg(0), 128 * P, PROT_READ | PROT_WRITE,
                    MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  ASSERT_TRUE(d);  // more than the commit limit: not charged (VM_NORESERVE)
  EXPECT_EQ(flags_at(*d), VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC |
                              VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP | VM_DROPPABLE);
  EXPECT_EQ(vm_flags_names(flags_at(*d)), "rd wr mr mw me nr wf dd dp");
  EXPECT_EQ(err_of(sys_mmap(*f.mm, pg(200), 128 * P, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0)),
            ENOMEM);
  for (int bad : {MAP_PRIVATE, MAP_SHARED, MAP_LOCKED, MAP_GROWSDOWN, MAP_HUGETLB})
    EXPECT_EQ(
        err_of(sys_mmap(*f.mm, 0, P, PROT_READ, MAP_DROPPABLE | MAP_ANONYMOUS | bad, nullptr, 0)),
        EINVAL)
        << bad;
  EXPECT_EQ(err_of(do_mlock(*f.mm, *d, 4 * P, 0)), 0);
  EXPECT_EQ(err_of(do_mlockall(*f.mm, MCL_CURRENT)), 0);
  EXPECT_EQ(flags_at(*d) & VM_LOCKED_MASK, 0U);
  EXPECT_EQ(f.mm->locked_vm, 0U);
  EXPECT_EQ(err_of(do_munlockall(*f.mm)), 0);
  EXPECT_EQ(err_of(do_madvise(*f.mm, *d, P, MADV_KEEPONFORK)), EINVAL);
  EXPECT_EQ(err_of(do_madvise(*f.mm, *d, P, MADV_DODUMP)), EINVAL);
  EXPECT_EQ(ok(), "");
}

TEST_P(MsealTest, ReclaimDropsDirtyDroppablePages) {
  auto d = sys_mmap(*f.mm, pg(0), 2 * P, PROT_READ | PROT_WRITE,
                    MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  ASSERT_TRUE(d);
  const vaddr_t a = map_at(8, 1);
  f.write8(*d, 0x5a);
  f.write8(*d + P, 0x5b);
  f.write8(a, 0x33);
  const pfn_t p0 = pfn_at(*d);
  EXPECT_EQ(desc(p0).flags & (PG_anon | PG_lazyfree), PG_anon | PG_lazyfree);
  EXPECT_EQ(desc(pfn_at(a)).flags & PG_lazyfree, 0U);
  EXPECT_TRUE(f.mm->fmt().dirty(*pte(*d)));
  // First pass: the pages were used (young): kept, made old. Second: dropped though dirty.
  ReclaimReport r1 = reclaim_lazyfree(f.m.phys);
  EXPECT_EQ(r1.scanned, 2U);
  EXPECT_EQ(r1.referenced, 2U);
  EXPECT_EQ(r1.dropped, 0U);
  ReclaimReport r2 = reclaim_lazyfree(f.m.phys);
  EXPECT_EQ(r2.dropped, 2U);
  EXPECT_EQ(r2.redirtied, 0U);
  EXPECT_FALSE(pte(*d));
  EXPECT_FALSE(pte(*d + P));
  EXPECT_EQ(f.read8(*d), 0);
  EXPECT_EQ(f.read8(a), 0x33);  // ordinary anonymous memory is never lazy-free
  EXPECT_EQ(ok(), "");
}

// --- MADV_COLD / MADV_PAGEOUT ---

TEST_P(MsealTest, PageoutWithoutSwap) {
  const vaddr_t a = map_at(0, 4);
  touch_all(a, 4);
  const pte_t e0 = *pte(a);
  EXPECT_EQ(err_of(do_madvise(*f.mm, a, 4 * P, MADV_COLD)), 0);
  EXPECT_FALSE(f.mm->fmt().young(*pte(a)));  // deactivated: made old, still mapped
  EXPECT_EQ(f.mm->fmt().pfn(*pte(a)), f.mm->fmt().pfn(e0));
  f.write8(a, 1);
  EXPECT_EQ(err_of(do_madvise(*f.mm, a, 4 * P, MADV_PAGEOUT)), 0);
  for (std::uint64_t i = 0; i < 4; ++i)
    EXPECT_TRUE(pte(a + i * P)) << i;       // no swap: kept
  EXPECT_TRUE(f.mm->fmt().young(*pte(a)));  // PAGEOUT does not age what it keeps
  ASSERT_EQ(err_of(do_madvise(*f.mm, a + 2 * P, 2 * P, MADV_FREE)), 0);
  f.write8(a + 3 * P, 9);  // written again: stays
  const pfn_t freed = pfn_at(a + 2 * P);
  EXPECT_EQ(err_of(do_madvise(*f.mm, a, 4 * P, MADV_PAGEOUT)), 0);
  EXPECT_TRUE(pte(a + P));
  EXPECT_FALSE(pte(a + 2 * P));  // clean lazy-free: dropped even though young
  EXPECT_EQ(desc(freed).refcount, 0U);
  EXPECT_TRUE(pte(a + 3 * P));
  EXPECT_EQ(desc(pfn_at(a + 3 * P)).flags & PG_lazyfree, 0U);
  EXPECT_EQ(f.read8(a + 3 * P), 9);
  // Locked: EINVAL; a hole: ENOMEM.
  const vaddr_t l = map_at(16, 2);
  ASSERT_EQ(err_of(do_mlock(*f.mm, l, 2 * P, 0)), 0);
  EXPECT_EQ(err_of(do_madvise(*f.mm, l, 2 * P, MADV_COLD)), EINVAL);
  EXPECT_EQ(err_of(do_madvise(*f.mm, l, 2 * P, MADV_PAGEOUT)), EINVAL);
  EXPECT_EQ(err_of(do_madvise(*f.mm, a, 8 * P, MADV_PAGEOUT)), ENOMEM);
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(MsealTest);

}  // namespace
}  // namespace mmemu::test
