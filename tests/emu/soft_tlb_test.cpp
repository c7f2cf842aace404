// The software TLB: refill coalescing, dirty and accessed tracking, eviction, and that no
// access can go through a stale entry after munmap, mprotect or fork.
#include <gtest/gtest.h>

#include <cstring>

#include "emu/cpu/soft_tlb.hpp"
#include "emu/cpu/unicorn_cpu.hpp"
#include "snippets.hpp"
#include "vma/fault.hpp"
#include "vma/fork.hpp"
#include "vma/mm_syscalls.hpp"

namespace mmemu {
namespace {

constexpr vaddr_t kCode = 0x400000;

struct Rig {
  explicit Rig(Arch a = Arch::X86_64, std::size_t entries = 64) : machine(64ULL << 20), arch(a) {
    mm = std::move(*Mm::create(machine, arch));
    cpu = std::move(*make_unicorn_cpu(arch));
    tlb = std::make_unique<SoftTlb>(*cpu, *mm, entries);
    mm->set_flusher(tlb.get());
  }
  ~Rig() {
    mm->set_flusher(nullptr);
    tlb.reset();
    mm.reset();
  }
  vaddr_t map(std::uint64_t pages, int prot, int flags = MAP_PRIVATE | MAP_ANONYMOUS,
              vaddr_t at = 0) {
    auto r = do_mmap(*mm, at, pages * PAGE_SIZE, prot, flags | (at ? MAP_FIXED : 0), nullptr, 0);
    EXPECT_TRUE(r.has_value());
    return r.value_or(0);
  }
  // Puts code at kCode (read+exec).
  void load_code(const std::vector<std::uint8_t>& code, vaddr_t at = kCode) {
    map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, at);
    ASSERT_TRUE(copy_to_user(*mm, at, code.data(), code.size()));
    ASSERT_TRUE(do_mprotect(*mm, at, PAGE_SIZE, PROT_READ | PROT_EXEC));
  }
  // Runs from kCode until a trap; faults go through the TLB. Returns the signal-type
  // outcome that stopped it, if any.
  std::optional<TlbFaultOutcome> run(std::uint64_t addr_reg, std::uint64_t value = 0,
                                     vaddr_t code = kCode) {
    cpu->set_pc(code);
    if (arch == Arch::X86_64) {
      (void)cpu->set_reg("rdi", addr_reg);
      (void)cpu->set_reg("rax", value);
    } else {
      (void)cpu->set_reg("x1", addr_reg);
      (void)cpu->set_reg("x0", value);
    }
    for (int i = 0; i < 100; ++i) {
      RunResult r = cpu->run(10000);
      if (r.reason != StopReason::MemFault) return std::nullopt;
      auto o = tlb->resolve(r.fault);
      if (o.kind != TlbFaultOutcome::Kind::Retry) return o;
    }
    ADD_FAILURE() << "did not finish";
    return std::nullopt;
  }
  pte_t pte(vaddr_t va) {
    auto ref = mm->pt().lookup(va);
    return ref ? mm->pt().get(*ref) : 0;
  }
  const SoftTlb::Entry* entry_at(vaddr_t va) {
    static SoftTlb::Entry found;
    for (const auto& e : tlb->entries())
      if (e.start <= va && va < e.end) {
        found = e;
        return &found;
      }
    return nullptr;
  }
  const std::vector<std::uint8_t>& load() {
    return arch == Arch::X86_64 ? snippets::kX86Load : snippets::kArmLoad;
  }
  const std::vector<std::uint8_t>& store() {
    return arch == Arch::X86_64 ? snippets::kX86Store : snippets::kArmStore;
  }

  Machine machine;
  Arch arch;
  std::unique_ptr<Mm> mm;
  std::unique_ptr<Cpu> cpu;
  std::unique_ptr<SoftTlb> tlb;
};

class SoftTlbTest : public ::testing::TestWithParam<Arch> {};

TEST_P(SoftTlbTest, RefillCoalescesContiguousYoungPagesWithEqualPermissions) {
  Rig r(GetParam());
  r.load_code(r.load());
  const vaddr_t buf = r.map(16, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(mm_populate(*r.mm, buf, 16 * PAGE_SIZE, false));  // written: young and dirty
  EXPECT_FALSE(r.run(buf + 5 * PAGE_SIZE).has_value());
  const auto* e = r.entry_at(buf + 5 * PAGE_SIZE);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->start, buf);
  EXPECT_EQ(e->end, buf + 16 * PAGE_SIZE);
  EXPECT_EQ(e->perms, PERM_R | PERM_W);
  EXPECT_TRUE(r.tlb->verify().empty());
}

TEST_P(SoftTlbTest, WithoutCoalescingOnePagePerRefill) {
  Rig r(GetParam());
  r.tlb->set_coalescing(false);
  r.load_code(r.load());
  const vaddr_t buf = r.map(16, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(mm_populate(*r.mm, buf, 16 * PAGE_SIZE, false));
  EXPECT_FALSE(r.run(buf + 5 * PAGE_SIZE).has_value());
  const auto* e = r.entry_at(buf + 5 * PAGE_SIZE);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->end - e->start, PAGE_SIZE);
}

TEST_P(SoftTlbTest, CleanWritablePageIsReadOnlyUntilTheFirstWriteSetsDirty) {
  Rig r(GetParam());
  r.load_code(r.load());
  // A shared page read in is writable in the tables but clean.
  const vaddr_t buf = r.map(1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  EXPECT_FALSE(r.run(buf).has_value());
  const PteFormat& f = r.mm->fmt();
  ASSERT_TRUE(f.write(r.pte(buf)));
  EXPECT_FALSE(f.dirty(r.pte(buf)));
  ASSERT_NE(r.entry_at(buf), nullptr);
  EXPECT_EQ(r.entry_at(buf)->perms, PERM_R);

  const vaddr_t store_code = kCode + 4 * PAGE_SIZE;
  r.load_code(r.store(), store_code);
  const auto upgrades = r.tlb->stats().dirty_upgrades;
  EXPECT_FALSE(r.run(buf, 0x1234, store_code).has_value());
  EXPECT_TRUE(f.dirty(r.pte(buf)));
  ASSERT_NE(r.entry_at(buf), nullptr);
  EXPECT_EQ(r.entry_at(buf)->perms, PERM_R | PERM_W);
  EXPECT_EQ(r.tlb->stats().dirty_upgrades, upgrades + 1);
  std::uint64_t v = 0;
  ASSERT_TRUE(copy_from_user(*r.mm, &v, buf, 8));
  EXPECT_EQ(v, 0x1234u);
}

TEST_P(SoftTlbTest, RefillSetsTheAccessedBitAndLeavesOldNeighboursOut) {
  Rig r(GetParam());
  r.load_code(r.load());
  const vaddr_t buf = r.map(4, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(mm_populate(*r.mm, buf, 4 * PAGE_SIZE, false));
  const PteFormat& f = r.mm->fmt();
  for (int i = 0; i < 4; ++i) {
    auto ref = *r.mm->pt().lookup(buf + i * PAGE_SIZE);
    r.mm->pt().set(ref, f.mkold(r.mm->pt().get(ref)));
  }
  EXPECT_FALSE(r.run(buf + 2 * PAGE_SIZE).has_value());
  EXPECT_TRUE(f.young(r.pte(buf + 2 * PAGE_SIZE)));
  EXPECT_FALSE(f.young(r.pte(buf + 1 * PAGE_SIZE)));
  EXPECT_FALSE(f.young(r.pte(buf + 3 * PAGE_SIZE)));
  const auto* e = r.entry_at(buf + 2 * PAGE_SIZE);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->start, buf + 2 * PAGE_SIZE);
  EXPECT_EQ(e->end, buf + 3 * PAGE_SIZE);
}

TEST_P(SoftTlbTest, BoundedEntriesEvictTheOldest) {
  Rig r(GetParam(), 3);
  // Four pages in four different 2 MiB windows: four separate entries.
  std::vector<vaddr_t> pages;
  for (int i = 0; i < 4; ++i) {
    const vaddr_t at = 0x10000000 + static_cast<vaddr_t>(i) * PMD_SIZE;
    pages.push_back(r.map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, at));
  }
  for (vaddr_t p : pages) {
    MemFault f;
    f.va = p;
    f.access = Access::Write;
    EXPECT_EQ(r.tlb->resolve(f).kind, TlbFaultOutcome::Kind::Retry);
  }
  EXPECT_EQ(r.tlb->nr_entries(), 3u);
  EXPECT_EQ(r.cpu->region_count(), 3u);
  EXPECT_EQ(r.tlb->stats().evictions, 1u);
  EXPECT_EQ(r.entry_at(pages[0]), nullptr);  // the oldest went
  for (int i = 1; i < 4; ++i)
    EXPECT_NE(r.entry_at(pages[static_cast<std::size_t>(i)]), nullptr);
}

TEST_P(SoftTlbTest, NoReadThroughAStaleEntryAfterMunmap) {
  Rig r(GetParam());
  r.load_code(r.load());
  const vaddr_t buf = r.map(2, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(mm_populate(*r.mm, buf, 2 * PAGE_SIZE, false));
  EXPECT_FALSE(r.run(buf).has_value());
  ASSERT_NE(r.entry_at(buf), nullptr);
  ASSERT_TRUE(do_munmap(*r.mm, buf, PAGE_SIZE));
  EXPECT_EQ(r.entry_at(buf), nullptr);
  auto o = r.run(buf);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->kind, TlbFaultOutcome::Kind::Signal);
  EXPECT_EQ(o->signo, 11);
  EXPECT_EQ(o->code, 1);  // SEGV_MAPERR
  EXPECT_EQ(o->addr, buf);
  EXPECT_TRUE(r.tlb->verify().empty());
}

TEST_P(SoftTlbTest, NoWriteThroughAStaleEntryAfterMprotect) {
  Rig r(GetParam());
  r.load_code(r.store());
  const vaddr_t buf = r.map(1, PROT_READ | PROT_WRITE);
  EXPECT_FALSE(r.run(buf, 1).has_value());
  ASSERT_NE(r.entry_at(buf), nullptr);
  EXPECT_EQ(r.entry_at(buf)->perms & PERM_W, PERM_W);
  ASSERT_TRUE(do_mprotect(*r.mm, buf, PAGE_SIZE, PROT_READ));
  auto o = r.run(buf, 2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->signo, 11);
  EXPECT_EQ(o->code, 2);  // SEGV_ACCERR
  std::uint64_t v = 0;
  ASSERT_TRUE(copy_from_user(*r.mm, &v, buf, 8));
  EXPECT_EQ(v, 1u);
}

TEST_P(SoftTlbTest, NoWriteThroughAStaleEntryAfterFork) {
  Rig r(GetParam());
  r.load_code(r.store());
  const vaddr_t buf = r.map(1, PROT_READ | PROT_WRITE);
  EXPECT_FALSE(r.run(buf, 1).has_value());
  const pfn_t before = r.mm->fmt().pfn(r.pte(buf));
  auto child = dup_mm(*r.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(child.has_value());
  // The parent's entry for the page must not allow writing any more: the write below has
  // to go through copy-on-write.
  if (const auto* e = r.entry_at(buf)) {
    EXPECT_EQ(e->perms & PERM_W, 0u);
  }
  EXPECT_FALSE(r.run(buf, 2).has_value());
  const pfn_t after = r.mm->fmt().pfn(r.pte(buf));
  EXPECT_NE(before, after);
  std::uint64_t mine = 0, childs = 0;
  ASSERT_TRUE(copy_from_user(*r.mm, &mine, buf, 8));
  ASSERT_TRUE(copy_from_user(**child, &childs, buf, 8));
  EXPECT_EQ(mine, 2u);
  EXPECT_EQ(childs, 1u);
  EXPECT_TRUE(r.tlb->verify().empty());
}

TEST_P(SoftTlbTest, VerifyReportsAnEntryWhosePteChangedWithoutAFlush) {
  Rig r(GetParam());
  const vaddr_t buf = r.map(1, PROT_READ | PROT_WRITE);
  MemFault f;
  f.va = buf;
  f.access = Access::Write;
  ASSERT_EQ(r.tlb->resolve(f).kind, TlbFaultOutcome::Kind::Retry);
  EXPECT_TRUE(r.tlb->verify().empty());
  auto ref = *r.mm->pt().lookup(buf);
  const pte_t old = r.mm->pt().get(ref);
  r.mm->pt().set(ref, r.mm->fmt().wrprotect(old));  // a PTE change nobody flushed
  EXPECT_EQ(r.tlb->verify().size(), 1u);
  r.mm->pt().set(ref, old);
}

INSTANTIATE_TEST_SUITE_P(Arches, SoftTlbTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& pi) { return std::string(arch_name(pi.param)); });

}  // namespace
}  // namespace mmemu
