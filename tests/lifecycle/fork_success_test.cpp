// A successful fork of the mixed parent: copy-on-write seen in the entries themselves and
// through user copies, what is and is not copied per kind of VMA, the counters, and an exit
// that frees every table, the arch mapping's included.
#include <gtest/gtest.h>

#include "lifecycle_util.hpp"
#include "vma/exit_mmap.hpp"

namespace mmemu::test {
namespace {

std::optional<pte_t> pte_at(const Mm& mm, vaddr_t va) {
  const auto ref = mm.pt().lookup(va);
  if (!ref) return std::nullopt;
  const pte_t e = mm.pt().get(*ref);
  if (mm.fmt().none(e)) return std::nullopt;
  return e;
}

vaddr_t kind_addr(const MixedParent& p, int group, Kind k) {
  return p.vmas[static_cast<std::size_t>(group * kKinds + static_cast<int>(k))].first;
}

class ForkSuccess : public ::testing::TestWithParam<Arch> {
 protected:
  void SetUp() override {
    p = build_mixed_parent(m, GetParam());
    before = MmSnapshot::of(*p.mm);
    live0 = live_now(m);
    auto c = dup_mm(*p.mm, ForkRecovery::TreeMax, &rep);
    ASSERT_TRUE(c.has_value());
    child = std::move(*c);
  }
  Machine m{kLifePhys};
  MixedParent p;
  MmSnapshot before;
  std::array<std::int64_t, kAllocSites> live0{};
  ForkReport rep;
  std::unique_ptr<Mm> child;
};

TEST_P(ForkSuccess, CopyOnWriteInTheEntries) {
  Mm& par = *p.mm;
  Mm& ch = *child;
  const PteFormat& fmt = par.fmt();
  const PhysMem& phys = m.phys;
  ASSERT_EQ(problems({&par, &ch}), "");
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(rep.pages_copied, 1U);

  // A written private page (group 1: not the pinned one): one frame, read-only on both
  // sides, old in the child, both mappings counted.
  const vaddr_t a = kind_addr(p, 1, Kind::AnonWritten);
  ASSERT_TRUE(before.writable.at(a));
  const pte_t pe = *pte_at(par, a);
  const pte_t ce = *pte_at(ch, a);
  EXPECT_EQ(fmt.pfn(pe), fmt.pfn(ce));
  EXPECT_FALSE(fmt.write(pe));
  EXPECT_FALSE(fmt.write(ce));
  EXPECT_TRUE(fmt.young(pe));
  EXPECT_FALSE(fmt.young(ce));
  EXPECT_TRUE(fmt.dirty(ce));  // only shared mappings are made clean in the child
  EXPECT_EQ(phys.desc(fmt.pfn(pe)).mapcount, 2);
  EXPECT_EQ(phys.desc(fmt.pfn(pe)).refcount, 2U);

  // Mixed: the zero page is copied as is; the untouched page stays empty.
  const vaddr_t mx = kind_addr(p, 1, Kind::AnonMixed);
  EXPECT_EQ(fmt.pfn(*pte_at(ch, mx + PAGE_SIZE)), phys.zero_pfn());
  EXPECT_FALSE(pte_at(ch, mx + 2 * PAGE_SIZE));

  // Mappings a fault fills correctly are not copied: no anon_vma, or shared.
  for (Kind k : {Kind::AnonReadOnly, Kind::SharedAnon, Kind::FileReadOnly}) {
    const vaddr_t v = kind_addr(p, 2, k);
    EXPECT_TRUE(pte_at(par, v)) << static_cast<int>(k);
    EXPECT_FALSE(pte_at(ch, v)) << static_cast<int>(k);
    EXPECT_TRUE(ch.vma_lookup(v)) << static_cast<int>(k);
  }
  // The shared page keeps its write access in the parent.
  EXPECT_TRUE(fmt.write(*pte_at(par, kind_addr(p, 2, Kind::SharedAnon))));

  // A private file mapping with a COW'd page is copied whole: the page-cache page and the
  // anonymous copy.
  const vaddr_t fp = kind_addr(p, 3, Kind::FilePrivate);
  const pfn_t cache = fmt.pfn(*pte_at(par, fp));
  EXPECT_TRUE(phys.desc(cache).flags & PG_pagecache);
  EXPECT_EQ(fmt.pfn(*pte_at(ch, fp)), cache);
  EXPECT_EQ(fmt.pfn(*pte_at(ch, fp + PAGE_SIZE)), fmt.pfn(*pte_at(par, fp + PAGE_SIZE)));

  // VM_DONTCOPY: no VMA in the child, the parent's pages untouched and still writable.
  const vaddr_t dc = kind_addr(p, 4, Kind::DontCopy);
  EXPECT_FALSE(ch.find_vma_intersection(dc, dc + 3 * PAGE_SIZE));
  EXPECT_TRUE(fmt.write(*pte_at(par, dc)));
  // VM_WIPEONFORK: the VMA is there, empty, with no anon_vma; the parent keeps its pages.
  const vaddr_t wf = kind_addr(p, 4, Kind::WipeOnFork);
  ASSERT_TRUE(ch.vma_lookup(wf));
  EXPECT_EQ(ch.vma_lookup(wf)->anon_vma, nullptr);
  EXPECT_FALSE(pte_at(ch, wf));
  EXPECT_TRUE(fmt.write(*pte_at(par, wf)));

  // The pinned page is copied for the child at once; the parent's stays writable.
  const pte_t pp = *pte_at(par, p.pinned);
  const pte_t cp = *pte_at(ch, p.pinned);
  EXPECT_EQ(fmt.pfn(pp), p.pinned_pfn);
  EXPECT_TRUE(fmt.write(pp));
  EXPECT_NE(fmt.pfn(cp), p.pinned_pfn);
  EXPECT_TRUE(fmt.write(cp));
  EXPECT_TRUE(fmt.dirty(cp));
  EXPECT_EQ(phys.desc(fmt.pfn(cp)).mapcount, 1);
  EXPECT_EQ(read8(ch, p.pinned), read8(par, p.pinned));

  // The arch page: same frame, mapped by both.
  const vaddr_t av = arch_page_va(GetParam());
  EXPECT_EQ(fmt.pfn(*pte_at(ch, av)), p.arch_frame);
  EXPECT_EQ(phys.desc(p.arch_frame).mapcount, 2);
  ASSERT_EQ(ch.pt().arch_mappings().size(), 1U);
  EXPECT_EQ(ch.pt().arch_mappings()[0].start, av);

  // Exactly the private writable entries of copied VMAs were write-protected in the parent.
  std::uint64_t wp = 0;
  for (const auto& [va, w] : before.writable) {
    const bool now = fmt.write(*pte_at(par, va));
    const Vma* v = par.vma_lookup(va);
    const bool cow_copied = v && v->anon_vma && !(v->vm_flags & (VM_DONTCOPY | VM_WIPEONFORK)) &&
                            !(v->vm_flags & VM_SHARED) && va != p.pinned;
    EXPECT_EQ(now, w && !cow_copied) << std::hex << va;
    wp += w && cow_copied;
  }
  EXPECT_EQ(rep.ptes_wrprotected, wp);
}

TEST_P(ForkSuccess, CopyOnWriteThroughUserCopies) {
  Mm& par = *p.mm;
  Mm& ch = *child;
  const PteFormat& fmt = par.fmt();
  const vaddr_t a = kind_addr(p, 1, Kind::AnonWritten);
  const pfn_t shared = fmt.pfn(*pte_at(par, a));
  const std::uint8_t orig = read8(par, a);
  EXPECT_EQ(read8(ch, a), orig);

  write8(ch, a, 0xc1);  // the child breaks COW: a new frame for it
  EXPECT_EQ(read8(ch, a), 0xc1);
  EXPECT_EQ(read8(par, a), orig);
  EXPECT_NE(fmt.pfn(*pte_at(ch, a)), shared);
  EXPECT_EQ(m.phys.desc(shared).mapcount, 1);

  write8(par, a, 0xb2);  // the parent is now the only user: the page is reused in place
  EXPECT_EQ(fmt.pfn(*pte_at(par, a)), shared);
  EXPECT_EQ(read8(par, a), 0xb2);
  EXPECT_EQ(read8(ch, a), 0xc1);

  // The other way round on another page: the parent writes first and gets the copy.
  const vaddr_t b = a + PAGE_SIZE;
  const pfn_t sb = fmt.pfn(*pte_at(par, b));
  write8(par, b, 0xa3);
  EXPECT_NE(fmt.pfn(*pte_at(par, b)), sb);
  EXPECT_EQ(read8(ch, b), orig);

  // Shared memory stays shared; WIPEONFORK memory reads as zero in the child.
  const vaddr_t sh = kind_addr(p, 0, Kind::SharedAnon);
  write8(ch, sh, 0x99);
  EXPECT_EQ(read8(par, sh), 0x99);
  EXPECT_EQ(read8(ch, kind_addr(p, 0, Kind::WipeOnFork)), 0);
  EXPECT_NE(read8(par, kind_addr(p, 0, Kind::WipeOnFork)), 0);
  // The grown stack came along.
  EXPECT_EQ(ch.vma_lookup(ch.task_size - PAGE_SIZE)->vm_start, p.stack_start);
  EXPECT_EQ(read8(ch, ch.task_size - 6 * PAGE_SIZE), 0x5d);
  EXPECT_EQ(problems({&par, &ch}), "");
}

TEST_P(ForkSuccess, CountersAsTheKernelKeepsThem) {
  Mm& par = *p.mm;
  Mm& ch = *child;
  std::uint64_t dontcopy_pages = 0;
  int dontcopy = 0;
  for (const Vma* v : par.vmas())
    if (v->vm_flags & VM_DONTCOPY) {
      ++dontcopy;
      dontcopy_pages += v->pages();
    }
  EXPECT_EQ(dontcopy, 5);
  EXPECT_EQ(ch.map_count, par.map_count - dontcopy);
  EXPECT_EQ(ch.total_vm, par.total_vm - dontcopy_pages);
  EXPECT_EQ(ch.data_vm, par.data_vm - dontcopy_pages);
  EXPECT_EQ(ch.stack_vm, par.stack_vm);
  EXPECT_EQ(ch.exec_vm, par.exec_vm);
  // Memory locks are not inherited.
  EXPECT_GT(par.locked_vm, 0U);
  EXPECT_EQ(ch.locked_vm, 0U);
  EXPECT_TRUE(par.vma_lookup(p.locked)->vm_flags & VM_LOCKED);
  EXPECT_FALSE(ch.vma_lookup(p.locked)->vm_flags & VM_LOCKED_MASK);
  EXPECT_EQ(ch.pinned_vm, 0U);
  EXPECT_EQ(ch.flags, 0U);
  EXPECT_EQ(ch.mmap_base, par.mmap_base);
  // RSS: every entry copied counts (validate_mms checks them against the tables too).
  EXPECT_EQ(ch.rss[MM_ANONPAGES] + ch.rss[MM_FILEPAGES] + ch.rss[MM_SHMEMPAGES],
            static_cast<std::int64_t>(rep.ptes_copied) - 5 /* zero pages */);
  EXPECT_EQ(problems({&par, &ch}), "");
}

TEST_P(ForkSuccess, ExitFreesEveryTableIncludingTheArchMappings) {
  Mm& ch = *child;
  const std::size_t tables = ch.pt().nr_tables_total();
  EXPECT_GT(ch.pt().nr_tables(Level::Pte), 5U);
  int events = 0;
  ch.on_exit_mmap = [&](Mm&, const ExitMmapReport&) { ++events; };
  const ExitMmapReport er = exit_mmap(ch);
  EXPECT_EQ(events, 1);
  EXPECT_EQ(er.tables_freed, tables - 1);  // all but the pgd, which goes with the mm
  EXPECT_EQ(ch.pt().nr_tables_total(), 1U);
  EXPECT_TRUE(ch.pt().arch_mappings().empty());
  EXPECT_EQ(er.vmas_removed, er.map_count);
  EXPECT_FALSE(er.met_xa_zero);
  child.reset();
  EXPECT_EQ(live_now(m), live0);
  EXPECT_EQ(snapshot_diff(before, MmSnapshot::of(*p.mm)), "");
  EXPECT_EQ(m.phys.desc(p.arch_frame).mapcount, 1);
  // And the parent's own exit leaves nothing at all.
  unpin_user_pages(m.phys, std::vector<pfn_t>{p.pinned_pfn});
  p.mm.reset();
  for (AllocSite s : kAllAllocSites)
    EXPECT_EQ(m.live.live(s), 0) << site_name(s);
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, ForkSuccess, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
