// mlock, mlock2, munlock, mlockall, munlockall: errno for errno with Linux 6.18 (measured
// natively, privileged and with CAP_IPC_LOCK dropped), the RLIMIT_MEMLOCK arithmetic of
// do_mlock, VMA splits and merges, locked_vm, population and PG_mlocked on the frames.
#include "syscall_test_util.hpp"

namespace mmemu::test {
namespace {

class MlockTest : public SyscallTest {
 protected:
  int mlock(vaddr_t a, std::uint64_t len, unsigned flags = 0) {
    return err_of(do_mlock(*f.mm, a, len, flags));
  }
  int munlock(vaddr_t a, std::uint64_t len) { return err_of(do_munlock(*f.mm, a, len)); }
  int mlockall(int flags) { return err_of(do_mlockall(*f.mm, flags)); }
  void unprivileged(std::uint64_t limit_pages) {
    f.mm->caps = 0;
    f.rlimits[Rlim::Memlock] = {limit_pages * PAGE_SIZE, limit_pages * PAGE_SIZE};
  }
  bool mlocked(vaddr_t va) {
    const pfn_t p = pfn_at(va);
    return p && (desc(p).flags & PG_mlocked);
  }
};

constexpr std::uint64_t P = PAGE_SIZE;

TEST_P(MlockTest, ErrnoLikeLinuxPrivileged) {
  f.mm->caps = CAP_IPC_LOCK_BIT;
  const vaddr_t a = map_at(8, 8);
  EXPECT_EQ(mlock(pg(0), P), ENOMEM);
  EXPECT_EQ(mlock(pg(0), 0), 0);
  EXPECT_EQ(mlock(a + 6 * P, 4 * P), ENOMEM);  // locks what is mapped, then ENOMEM
  EXPECT_EQ(f.mm->locked_vm, 2U);
  EXPECT_EQ(munlock(a + 6 * P, 4 * P), ENOMEM);
  EXPECT_EQ(f.mm->locked_vm, 0U);
  EXPECT_EQ(mlock(a - 2 * P, 4 * P), ENOMEM);  // starts in a hole: nothing done
  EXPECT_EQ(f.mm->locked_vm, 0U);
  EXPECT_EQ(mlock(a, P, 2), EINVAL);
  EXPECT_EQ(mlock(a, P, MLOCK_ONFAULT), 0);
  EXPECT_EQ(f.mm->locked_vm, 1U);
  EXPECT_EQ(mlock(a + 2 * P + 100, 10), 0);  // rounds to the page
  EXPECT_EQ(f.mm->locked_vm, 2U);
  EXPECT_EQ(mlock(a, ~0ULL), 0);  // wraps to an empty range
  EXPECT_EQ(mlock(a, -P), EINVAL);
  EXPECT_EQ(munlock(a, ~0ULL), 0);
  EXPECT_EQ(munlock(a, 8 * P), 0);
  EXPECT_EQ(f.mm->locked_vm, 0U);
  EXPECT_EQ(mlockall(0), EINVAL);
  EXPECT_EQ(mlockall(MCL_ONFAULT), EINVAL);
  EXPECT_EQ(mlockall(8), EINVAL);
  EXPECT_EQ(ok(), "");
}

// Population failures: EFAULT becomes ENOMEM; the lock stays.
TEST_P(MlockTest, PopulationFailuresAfterLocking) {
  const vaddr_t n = map_at(8, 2, PROT_NONE);
  map_at(10, 2, PROT_READ);
  EXPECT_EQ(mlock(n, 4 * P), ENOMEM);
  EXPECT_EQ(f.mm->locked_vm, 4U);
  EXPECT_FALSE(pte(n));
  EXPECT_FALSE(pte(pg(10)));  // population stopped at the PROT_NONE VMA
  const vaddr_t r = map_at(20, 2, PROT_READ);
  map_at(22, 2, PROT_NONE);
  map_at(24, 2, PROT_READ);
  EXPECT_EQ(mlock(r, 6 * P), ENOMEM);
  EXPECT_TRUE(pte(r));
  EXPECT_FALSE(pte(pg(24)));
  EXPECT_EQ(mlock(map_at(30, 2, PROT_EXEC), 2 * P), ENOMEM);  // no VM_READ: EFAULT inside
  EXPECT_EQ(mlock(map_at(34, 2, PROT_WRITE), 2 * P), 0);
  EXPECT_TRUE(mlocked(pg(34)));
  const vaddr_t fb = map_file_at(40, 4, PROT_READ, MAP_PRIVATE, false, 1);
  EXPECT_EQ(mlock(fb, 4 * P), ENOMEM);  // SIGBUS past the end of the file
  EXPECT_TRUE(mlocked(fb));             // the page-cache page before it is locked
  // An allocation failure during population is EAGAIN.
  const vaddr_t g = map_at(50, 2);
  f.m.inject.fail_nth(AllocSite::Page, 1);
  EXPECT_EQ(mlock(g, 2 * P), EAGAIN);
  EXPECT_TRUE(flags_at(g) & VM_LOCKED);
  EXPECT_EQ(ok(), "");
}

TEST_P(MlockTest, SplitsPopulatesAndMergesBack) {
  const vaddr_t a = map_at(0, 6);
  f.write8(a, 1);
  EXPECT_EQ(mlock(a + 2 * P, 2 * P), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 2}, {2, 4}, {4, 6}}));
  EXPECT_EQ(flags_at(a + 2 * P) & VM_LOCKED_MASK, VM_LOCKED);
  EXPECT_EQ(f.mm->locked_vm, 2U);
  EXPECT_TRUE(mlocked(a + 2 * P));  // populated (write faults: private writable)
  EXPECT_TRUE(mlocked(a + 3 * P));
  EXPECT_NE(pfn_at(a + 3 * P), f.m.phys.zero_pfn());
  EXPECT_FALSE(mlocked(a));
  EXPECT_FALSE(pte(a + 4 * P));
  EXPECT_EQ(mlock(a, 4 * P), 0);  // overlapping: only the new part counts
  EXPECT_EQ(f.mm->locked_vm, 4U);
  EXPECT_TRUE(mlocked(a));
  EXPECT_EQ(area_layout(), (Layout{{0, 4}, {4, 6}}));
  EXPECT_EQ(munlock(a, 6 * P), 0);
  EXPECT_EQ(area_layout(), (Layout{{0, 6}}));
  EXPECT_EQ(f.mm->locked_vm, 0U);
  EXPECT_FALSE(mlocked(a));
  EXPECT_FALSE(mlocked(a + 3 * P));
  EXPECT_EQ(ok(), "");
}

TEST_P(MlockTest, OnFaultLocksWithoutPopulating) {
  const vaddr_t a = map_at(0, 2);
  EXPECT_EQ(mlock(a, 2 * P, MLOCK_ONFAULT), 0);
  EXPECT_EQ(flags_at(a) & VM_LOCKED_MASK, VM_LOCKED | VM_LOCKONFAULT);
  EXPECT_FALSE(pte(a));
  f.write8(a, 1);
  EXPECT_TRUE(mlocked(a));        // a page faulted in later is locked
  EXPECT_EQ(mlock(a, 2 * P), 0);  // now populate all of it
  EXPECT_EQ(flags_at(a) & VM_LOCKED_MASK, VM_LOCKED);
  EXPECT_TRUE(mlocked(a + P));
  EXPECT_EQ(f.mm->locked_vm, 2U);
  EXPECT_EQ(ok(), "");
}

TEST_P(MlockTest, UnprivilegedLimits) {
  const vaddr_t a = map_at(0, 8);
  unprivileged(0);
  EXPECT_EQ(mlock(a, P), EPERM);
  EXPECT_EQ(mlock(pg(100), P), EPERM);  // before looking at the range
  EXPECT_EQ(mlockall(MCL_CURRENT), EPERM);
  EXPECT_EQ(mlockall(MCL_FUTURE), EPERM);
  EXPECT_EQ(munlock(a, P), 0);
  EXPECT_EQ(err_of(do_munlockall(*f.mm)), 0);
  EXPECT_EQ(mlock(a, P, 2), EINVAL);  // flags first
  EXPECT_EQ(err_of(sys_mmap(*f.mm, 0, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
                            nullptr, 0)),
            EPERM);
  unprivileged(4);
  EXPECT_EQ(mlock(a, 5 * P), ENOMEM);
  EXPECT_EQ(mlock(pg(100), 5 * P), ENOMEM);  // the limit before the hole
  EXPECT_EQ(mlock(pg(100), 2 * P), ENOMEM);  // the hole
  EXPECT_EQ(mlock(a, 4 * P), 0);
  EXPECT_EQ(mlock(a, 4 * P), 0);  // already locked: counted once
  EXPECT_EQ(mlock(a + 2 * P, 4 * P), ENOMEM);
  EXPECT_EQ(mlock(a + P, 4 * P), ENOMEM);
  EXPECT_EQ(f.mm->locked_vm, 4U);
  EXPECT_EQ(mlockall(MCL_CURRENT), ENOMEM);  // total_vm 8 > 4
  EXPECT_EQ(mlockall(MCL_FUTURE), 0);
  EXPECT_EQ(err_of(sys_mmap(*f.mm, 0, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 0)),
            EAGAIN);
  // CAP_IPC_LOCK lifts the limit but not the EINVALs.
  f.mm->caps = CAP_IPC_LOCK_BIT;
  EXPECT_EQ(mlock(a, 8 * P), 0);
  EXPECT_EQ(f.mm->locked_vm, 8U);
  f.rlimits[Rlim::Memlock] = {0, 0};
  EXPECT_EQ(mlockall(MCL_CURRENT), 0);
  EXPECT_EQ(ok(), "");
}

TEST_P(MlockTest, MlockallCurrentAndFuture) {
  const vaddr_t a = map_at(0, 2);
  const vaddr_t n = map_at(4, 2, PROT_NONE);
  const vaddr_t r = map_at(8, 2, PROT_READ);
  EXPECT_EQ(mlockall(MCL_CURRENT | MCL_FUTURE), 0);
  EXPECT_EQ(f.mm->def_flags, VM_LOCKED);
  EXPECT_EQ(f.mm->locked_vm, 6U);
  EXPECT_TRUE(mlocked(a + P));
  EXPECT_FALSE(pte(n));  // PROT_NONE: not populated, errors ignored
  EXPECT_EQ(pfn_at(r), f.m.phys.zero_pfn());
  // Future mappings come locked and populated.
  const vaddr_t b = map_at(20, 2);
  EXPECT_TRUE(flags_at(b) & VM_LOCKED);
  EXPECT_TRUE(mlocked(b + P));
  EXPECT_EQ(f.mm->locked_vm, 8U);
  EXPECT_EQ(err_of(do_munlockall(*f.mm)), 0);
  EXPECT_EQ(f.mm->def_flags, 0U);
  EXPECT_EQ(f.mm->locked_vm, 0U);
  EXPECT_FALSE(mlocked(b));
  EXPECT_FALSE(flags_at(a) & VM_LOCKED);
  // MCL_ONFAULT: locked on fault only.
  EXPECT_EQ(mlockall(MCL_CURRENT | MCL_ONFAULT), 0);
  EXPECT_EQ(flags_at(pg(30)), 0U);
  const vaddr_t c = map_at(30, 2);
  EXPECT_FALSE(flags_at(c) & VM_LOCKED);  // no MCL_FUTURE: new mappings are not locked
  EXPECT_EQ(flags_at(a) & VM_LOCKED_MASK, VM_LOCKED | VM_LOCKONFAULT);
  EXPECT_EQ(ok(), "");
}

// A page two locked VMAs map stays PG_mlocked until neither is locked.
TEST_P(MlockTest, SharedPageStaysLockedWhileAnyLockedVmaMapsIt) {
  const vaddr_t s = map_shared_at(0, 1);
  f.write8(s, 1);
  auto d = do_mremap(*f.mm, s, 0, P, MREMAP_MAYMOVE, 0);  // a second mapping of the same page
  ASSERT_TRUE(d);
  ASSERT_EQ(f.read8(*d), 1);
  ASSERT_EQ(pfn_at(*d), pfn_at(s));
  EXPECT_EQ(mlock(s, P), 0);
  EXPECT_EQ(mlock(*d, P), 0);
  EXPECT_TRUE(mlocked(s));
  EXPECT_EQ(munlock(s, P), 0);
  EXPECT_TRUE(mlocked(s));
  EXPECT_EQ(munlock(*d, P), 0);
  EXPECT_FALSE(mlocked(s));
  EXPECT_EQ(ok(), "");
}

// MAP_POPULATE / MAP_LOCKED populate by GUP's rules too (measured natively: an exec-only
// MAP_POPULATE mapping stays empty), and locked file pages are marked.
TEST_P(MlockTest, MmapPopulateFollowsTheSameRules) {
  const vaddr_t x = map_at(0, 2, PROT_EXEC, MAP_POPULATE);
  EXPECT_FALSE(pte(x));
  const vaddr_t rx = map_at(4, 2, PROT_READ | PROT_EXEC, MAP_POPULATE);
  EXPECT_EQ(pfn_at(rx + P), f.m.phys.zero_pfn());
  const vaddr_t w = map_at(8, 2, PROT_WRITE, MAP_POPULATE);
  EXPECT_NE(pfn_at(w + P), 0U);
  EXPECT_NE(pfn_at(w + P), f.m.phys.zero_pfn());
  const vaddr_t fl = map_file_at(12, 2, PROT_READ, MAP_PRIVATE | MAP_LOCKED);
  EXPECT_TRUE(mlocked(fl));
  EXPECT_TRUE(mlocked(fl + P));
  EXPECT_EQ(f.mm->locked_vm, 2U);
  // Locked on fault: a page-cache page is marked when a fault maps it.
  const vaddr_t lf = map_file_at(16, 2, PROT_READ, MAP_PRIVATE);
  EXPECT_EQ(mlock(lf, 2 * P, MLOCK_ONFAULT), 0);
  EXPECT_FALSE(pte(lf));
  ASSERT_EQ(f.touch(lf + P, Access::Read), FaultResult::Ok);
  EXPECT_TRUE(mlocked(lf + P));
  EXPECT_EQ(munlock(lf, 2 * P), 0);
  EXPECT_FALSE(mlocked(lf + P));
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(MlockTest);

}  // namespace
}  // namespace mmemu::test
