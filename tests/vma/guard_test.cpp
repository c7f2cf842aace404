// Guard regions (MADV_GUARD_INSTALL / MADV_GUARD_REMOVE): the raw marker entries per arch, the
// tables install allocates and the counts that see markers as used entries, no VMA split,
// what DONTNEED/FREE/REMOVE/munmap/fork/mremap/populate/mlock do with markers (as measured
// on Linux 6.18, see tests/guests/guard_regions.c), the page-table use-after-free report
// naming markers, and every allocation of an install failing in turn without a leak.
#include <gtest/gtest.h>

#include "inject_sweep.hpp"
#include "mmu/walker.hpp"
#include "syscall_test_util.hpp"
#include "vma/fork.hpp"
#include "vma/guard.hpp"

namespace mmemu::test {
namespace {

constexpr std::uint64_t P = PAGE_SIZE;

class GuardTest : public SyscallTest {
 protected:
  int adv(vaddr_t a, std::uint64_t len, int advice) {
    return err_of(do_madvise(*f.mm, a, len, advice));
  }
  pte_t marker() const { return f.mm->fmt().mk_guard_marker(); }
  // The raw leaf at va (0 when none or no table).
  pte_t raw(vaddr_t va) const { return pte(va).value_or(0); }
  // Per page of [a, a + n pages): 'G' guard marker, 'P' present, '-' none.
  std::string map_of(vaddr_t a, std::uint64_t n) const {
    std::string s;
    for (std::uint64_t i = 0; i < n; ++i) {
      const pte_t e = raw(a + i * P);
      s += f.mm->fmt().is_guard_marker(e) ? 'G' : f.mm->fmt().present(e) ? 'P' : '-';
    }
    return s;
  }
  std::size_t nr_tables() const { return f.mm->pt().nr_tables_total(); }
  unsigned used_in_pte_table(vaddr_t va) const {
    auto t = f.mm->pt().table_for(va, Level::Pte);
    return t ? f.mm->pt().nr_used_entries(*t) : 0;
  }
};

TEST_P(GuardTest, MarkerIsLinuxsSwapEncodedPteMarker) {
  const PteFormat& fmt = f.mm->fmt();
  const pte_t m = fmt.mk_guard_marker();
  // make_pte_marker(PTE_MARKER_GUARD): swap type 31 (SWP_PTE_MARKER), offset 4.
  EXPECT_EQ(m, GetParam() == Arch::X86_64 ? 0xfffffffffffff600ULL : 0x4f8ULL);
  EXPECT_TRUE(fmt.is_guard_marker(m));
  EXPECT_FALSE(fmt.none(m));
  EXPECT_FALSE(fmt.present(m));
  EXPECT_FALSE(fmt.protnone(m));
  EXPECT_EQ(fmt.decode(m, Level::Pte), "guard");
  EXPECT_FALSE(fmt.is_guard_marker(0));
  const PteProt none{};
  const PteProt rw{true, true, false, true};
  EXPECT_FALSE(fmt.is_guard_marker(fmt.mk_pte(5, none)));  // PROT_NONE keeps its frame
  EXPECT_FALSE(fmt.is_guard_marker(fmt.mk_pte(5, rw)));
  EXPECT_FALSE(fmt.is_guard_marker(fmt.mk_table(5)));
  // Another marker type (PTE_MARKER_UFFD_WP alone) is not a guard.
  const pte_t uffd = GetParam() == Arch::X86_64 ? 0xfffffffffffffa00ULL : 0x1f8ULL;
  EXPECT_FALSE(fmt.is_guard_marker(uffd));
}

TEST_P(GuardTest, InstallZapsPopulatedPagesAndNeverSplits) {
  const vaddr_t a = map_at(0, 8);
  touch_all(a, 4);
  const vm_flags_t flags = flags_at(a);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 4);
  const std::size_t tables = nr_tables();
  ASSERT_EQ(adv(a + 2 * P, 4 * P, MADV_GUARD_INSTALL), 0);
  EXPECT_EQ(map_of(a, 8), "PPGGGG--");
  for (std::uint64_t i = 2; i < 6; ++i)
    EXPECT_EQ(raw(a + i * P), marker());
  EXPECT_EQ(area_layout(), (Layout{{0, 8}}));
  EXPECT_EQ(flags_at(a), flags);
  EXPECT_NE(vma_at(a)->anon_vma, nullptr);
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], 2);  // pages 2 and 3 were zapped
  EXPECT_EQ(nr_tables(), tables);
  EXPECT_EQ(used_in_pte_table(a), 6U);  // markers are used entries
  EXPECT_EQ(count_guard_markers(*f.mm, a, a + 8 * P), 4U);
  // Installing again over markers and pages: markers stay, page 1 is zapped.
  ASSERT_EQ(adv(a + P, 3 * P, MADV_GUARD_INSTALL), 0);
  EXPECT_EQ(map_of(a, 8), "PGGGGG--");
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, TouchingAGuardIsItsOwnFaultKind) {
  const vaddr_t a = map_at(0, 2);
  ASSERT_EQ(adv(a, P, MADV_GUARD_INSTALL), 0);
  for (Access acc : {Access::Read, Access::Write, Access::Exec}) {
    auto w = walk(f.mm->pt(), a, acc, /*set_ad=*/false);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), (WalkFault{WalkFaultKind::Guard, Level::Pte, ProtReason::None}));
    EXPECT_EQ(walk_fault_name(w.error()), "guard");
  }
  EXPECT_EQ(f.touch(a, Access::Read), FaultResult::SegvGuard);
  EXPECT_EQ(f.touch(a + 5, Access::Write), FaultResult::SegvGuard);
  EXPECT_EQ(fault_result_name(FaultResult::SegvGuard), "SEGV_MAPERR (guard)");
  EXPECT_EQ(raw(a), marker());  // a fault changes nothing
  EXPECT_EQ(f.touch(a + P, Access::Write), FaultResult::Ok);
  // The VMA's own checks come first: read-only refuses the write as SEGV_ACCERR.
  ASSERT_EQ(err_of(do_mprotect(*f.mm, a, 2 * P, PROT_READ)), 0);
  EXPECT_EQ(raw(a), marker());  // mprotect leaves markers alone
  EXPECT_EQ(f.touch(a, Access::Write), FaultResult::SegvAccErr);
  EXPECT_EQ(f.touch(a, Access::Read), FaultResult::SegvGuard);
  // GUP users: EFAULT.
  std::uint8_t b = 0;
  EXPECT_EQ(err_of(copy_from_user(*f.mm, &b, a + 7, 1)), EFAULT);
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, InstallAllocatesTablesAndATableOfMarkersIsInUse) {
  // 2 pages on each side of a PMD boundary, where no table exists yet.
  const vaddr_t a = map_at(510, 4);
  const std::size_t before = nr_tables();
  ASSERT_EQ(adv(a, 4 * P, MADV_GUARD_INSTALL), 0);
  EXPECT_EQ(nr_tables(), before + 4);  // pud, pmd and two pte tables
  EXPECT_EQ(used_in_pte_table(a), 2U);
  EXPECT_EQ(used_in_pte_table(a + 2 * P), 2U);
  // DONTNEED and FREE keep markers (and the tables holding them).
  ASSERT_EQ(adv(a, 4 * P, MADV_DONTNEED), 0);
  ASSERT_EQ(adv(a, 4 * P, MADV_FREE), 0);
  EXPECT_EQ(map_of(a, 4), "GGGG");
  EXPECT_EQ(nr_tables(), before + 4);
  // munmap drops them and frees the tables: nothing held in use.
  ASSERT_EQ(err_of(do_munmap(*f.mm, a, 4 * P)), 0);
  EXPECT_EQ(nr_tables(), before);
  EXPECT_TRUE(f.m.freed_in_use.empty());
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, RemoveClearsMarkersAndThePageComesBackZero) {
  const vaddr_t a = map_at(0, 4);
  f.write8(a, 0x5a);
  f.write8(a + P, 0x6b);
  ASSERT_EQ(adv(a, 3 * P, MADV_GUARD_INSTALL), 0);
  EXPECT_EQ(map_of(a, 4), "GGG-");
  ASSERT_EQ(adv(a + P, 3 * P, MADV_GUARD_REMOVE), 0);
  EXPECT_EQ(map_of(a, 4), "G---");
  EXPECT_EQ(f.read8(a + P), 0);  // the data went with the install
  EXPECT_EQ(used_in_pte_table(a), 2U);
  // Removing where there are no tables at all allocates nothing.
  const vaddr_t far = map_at(4096, 2);
  const std::size_t tables = nr_tables();
  ASSERT_EQ(adv(far, 2 * P, MADV_GUARD_REMOVE), 0);
  EXPECT_EQ(nr_tables(), tables);
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, ErrorsAsLinux) {
  const vaddr_t a = map_at(0, 6);
  EXPECT_EQ(adv(a + 1, P, MADV_GUARD_INSTALL), EINVAL);
  EXPECT_EQ(adv(a, 0, MADV_GUARD_INSTALL), 0);
  // A hole: both sides guarded, then ENOMEM.
  ASSERT_EQ(err_of(do_munmap(*f.mm, a + 2 * P, P)), 0);
  EXPECT_EQ(adv(a, 6 * P, MADV_GUARD_INSTALL), ENOMEM);
  EXPECT_EQ(map_of(a, 6), "GG-GGG");
  EXPECT_EQ(adv(a, 6 * P, MADV_GUARD_REMOVE), ENOMEM);
  EXPECT_EQ(map_of(a, 6), "------");
  // Locked: install refused, remove allowed.
  ASSERT_EQ(adv(a, P, MADV_GUARD_INSTALL), 0);
  ASSERT_EQ(err_of(do_mlock(*f.mm, a, 2 * P, MLOCK_ONFAULT)), 0);
  EXPECT_EQ(adv(a + P, P, MADV_GUARD_INSTALL), EINVAL);
  EXPECT_EQ(adv(a, P, MADV_GUARD_REMOVE), 0);
  EXPECT_EQ(map_of(a, 1), "-");
  // VM_SPECIAL: both refused.
  const vaddr_t io = map_at(100, 2);
  const_cast<Vma*>(vma_at(io))->vm_flags |= VM_PFNMAP;
  EXPECT_EQ(adv(io, P, MADV_GUARD_INSTALL), EINVAL);
  EXPECT_EQ(adv(io, P, MADV_GUARD_REMOVE), EINVAL);
  const_cast<Vma*>(vma_at(io))->vm_flags &= ~VM_PFNMAP;
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, PopulateStopsAtTheGuardAndMlockFails) {
  const vaddr_t a = map_at(0, 6);
  ASSERT_EQ(adv(a + 3 * P, P, MADV_GUARD_INSTALL), 0);
  EXPECT_EQ(adv(a, 6 * P, MADV_POPULATE_WRITE), EFAULT);
  EXPECT_EQ(map_of(a, 6), "PPPG--");
  EXPECT_EQ(adv(a + 3 * P, P, MADV_POPULATE_READ), EFAULT);
  ASSERT_EQ(adv(a, 3 * P, MADV_DONTNEED), 0);
  EXPECT_EQ(err_of(do_mlock(*f.mm, a, 6 * P, 0)), ENOMEM);
  EXPECT_EQ(map_of(a, 6), "PPPG--");
  EXPECT_TRUE(flags_at(a) & VM_LOCKED);  // locked anyway, as on Linux
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, ForkCopiesMarkersEvenWithoutPages) {
  const vaddr_t a = map_at(0, 4);
  f.write8(a, 1);
  ASSERT_EQ(adv(a + P, P, MADV_GUARD_INSTALL), 0);
  const vaddr_t e = map_at(10, 2);  // never written: only the install gave it an anon_vma
  ASSERT_EQ(adv(e, P, MADV_GUARD_INSTALL), 0);
  const vaddr_t w = map_at(20, 2);
  ASSERT_EQ(adv(w, P, MADV_GUARD_INSTALL), 0);
  ASSERT_EQ(adv(w, 2 * P, MADV_WIPEONFORK), 0);
  ForkReport rep;
  auto child = dup_mm(*f.mm, ForkRecovery::TreeMax, &rep);
  ASSERT_TRUE(child);
  Mm& c = **child;
  auto craw = [&](vaddr_t va) -> pte_t {
    auto ref = c.pt().lookup(va);
    return ref ? c.pt().get(*ref) : 0;
  };
  EXPECT_EQ(craw(a + P), marker());
  EXPECT_EQ(craw(e), marker());
  EXPECT_EQ(craw(w), 0U);          // a wipe-on-fork VMA starts empty
  EXPECT_EQ(rep.ptes_copied, 3U);  // page a, and the two markers
  EXPECT_EQ(map_of(w, 1), "G");
  std::uint8_t b = 0;
  EXPECT_EQ(err_of(copy_from_user(c, &b, e, 1)), EFAULT);
  ASSERT_EQ(err_of(do_madvise(c, a + P, P, MADV_GUARD_REMOVE)), 0);
  EXPECT_EQ(craw(a + P), 0U);
  EXPECT_EQ(raw(a + P), marker());  // the parent's stay
  child->reset();
  EXPECT_EQ(ok(), "");
}

TEST_P(GuardTest, MremapMovesMarkers) {
  const vaddr_t a = map_at(0, 4);
  f.write8(a, 7);
  ASSERT_EQ(adv(a + P, P, MADV_GUARD_INSTALL), 0);
  auto n = do_mremap(*f.mm, a, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, pg(1000));
  ASSERT_TRUE(n);
  EXPECT_EQ(map_of(pg(1000), 4), "PG--");
  EXPECT_EQ(raw(pg(1001)), marker());
  EXPECT_EQ(f.read8(pg(1000)), 7);
  EXPECT_EQ(f.touch(pg(1001), Access::Read), FaultResult::SegvGuard);
  EXPECT_EQ(area_layout(2000), (Layout{{1000, 1004}}));
  EXPECT_EQ(ok(), "");
}

// Wrong free_pgtables limits freeing a table that holds only a neighbour's markers: a
// page-table use-after-free, and the markers are its live entries.
TEST_P(GuardTest, TableOfMarkersFreedByWrongLimitsIsReported) {
  const vaddr_t a = map_at(0, 2);
  ASSERT_EQ(adv(a, 2 * P, MADV_GUARD_INSTALL), 0);
  const vaddr_t b = map_at(4, 1);
  f.write8(b, 1);
  auto r = do_munmap_with_limits(*f.mm, b, P, /*floor=*/0, /*ceiling=*/0, /*tree_max=*/0);
  ASSERT_TRUE(r);
  ASSERT_FALSE(f.m.freed_in_use.empty());
  std::vector<LiveEntry> guards;
  for (const FreedInUseTable& t : f.m.freed_in_use)
    for (const LiveEntry& e : t.entries)
      if (e.guard) guards.push_back(e);
  ASSERT_EQ(guards.size(), 2U);
  EXPECT_EQ(guards[0].va, a);
  EXPECT_EQ(guards[1].va, a + P);
  EXPECT_EQ(guards[0].entry, marker());
  EXPECT_FALSE(guards[0].present);
  EXPECT_EQ(guards[0].owner.rfind("vma ", 0), 0U) << guards[0].owner;
  EXPECT_NE(kasan_report(f.m.freed_in_use.front()).find("guard marker"), std::string::npos);
  // The markers went with the table: the VMA faults afresh.
  EXPECT_EQ(map_of(a, 2), "--");
  f.m.freed_in_use.clear();
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(GuardTest);

// Install over a range crossing a PMD boundary in an empty area (pud, pmd and two pte tables
// to allocate), after an anon_vma to prepare; a fork copies the markers; then the tables and
// markers go with munmap. Every allocation fails in turn: install answers ENOMEM, keeps
// what it did before the failure, and nothing leaks.
void guard_workload(MmFixture& f, const std::function<void()>& step) {
  Mm& mm = *f.mm;
  const vaddr_t a = 0x4000000000ULL + 508 * P;
  auto m = sys_mmap(mm, a, 8 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                    nullptr, 0);
  step();
  if (!m) return;
  const auto r = do_madvise(mm, a, 8 * P, MADV_GUARD_INSTALL);
  step();
  const std::uint64_t n = count_guard_markers(mm, a, a + 8 * P);
  // All or (failure) a prefix: the pages whose table existed before the failing one.
  if (r) {
    EXPECT_EQ(n, 8U);
  } else {
    EXPECT_EQ(r.error(), Errno{ENOMEM});
    EXPECT_TRUE(n == 0 || n == 4) << n;
  }
  EXPECT_EQ(mm.vma_lookup(a)->vm_end, a + 8 * P);  // never split
  {
    auto child = dup_mm(mm, ForkRecovery::TreeMax);
    step();
  }
  step();
  (void)do_madvise(mm, a, 8 * P, MADV_GUARD_REMOVE);
  step();
  (void)do_munmap(mm, a, 8 * P);
  step();
}

TEST(GuardInject, EveryAllocationOfAnInstallCanFail) {
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    const SiteAttempts attempts = inject_clean_run(arch, guard_workload);
    EXPECT_GE(attempts[AllocSite::PgTable], 4U);
    EXPECT_GE(attempts[AllocSite::AnonVma], 1U);
    inject_sweep(arch, guard_workload, attempts);
  }
}

// The exact partial result of a failing table allocation: the second PTE table fails, the
// first table's markers stay, the call says ENOMEM.
TEST(GuardInject, SecondPteTableFailingKeepsTheFirstTablesMarkers) {
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    MmFixture f(arch);
    const vaddr_t a = 0x4000000000ULL + 508 * P;
    ASSERT_TRUE(sys_mmap(*f.mm, a, 8 * P, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
    f.m.inject.fail_nth(AllocSite::PgTable, 4);  // pud, pmd, pte, then the second pte
    const auto r = do_madvise(*f.mm, a, 8 * P, MADV_GUARD_INSTALL);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Errno{ENOMEM});
    EXPECT_EQ(count_guard_markers(*f.mm, a, a + 8 * P), 4U);
    EXPECT_EQ(f.m.inject.failures(AllocSite::PgTable), 1U);
    EXPECT_EQ(f.problems(), "");
    // Retrying finishes the job.
    EXPECT_TRUE(do_madvise(*f.mm, a, 8 * P, MADV_GUARD_INSTALL));
    EXPECT_EQ(count_guard_markers(*f.mm, a, a + 8 * P), 8U);
    f.mm.reset();
    for (AllocSite s : kAllAllocSites)
      EXPECT_EQ(f.m.live.live(s), 0) << site_name(s);
  }
}

}  // namespace
}  // namespace mmemu::test
