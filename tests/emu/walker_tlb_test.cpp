// The walker behind the CPU's TLB (emu/cpu/walker_tlb.*) with a real Unicorn CPU: a guest
// can never use a translation the page tables no longer give (munmap, mprotect, fork's
// write-protect, MADV_DONTNEED, MADV_FREE + reclaim, a new mm on the CPU); the accessed
// and dirty bits end up as a hardware walker leaves them; faults resolved inside the fill
// come out as they do outside; an out-of-memory inside the fill stops the CPU cleanly.
//
// Every "no stale translation" scenario runs twice: through the real flush path, and with
// a flusher that drops every flush (FlushRemoval tests), where the stale translation must
// then be used. So a scenario cannot pass by luck (say, because the emulator dropped its
// TLB by itself between runs): it passes because the flush is made.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstring>

#include "emu/cpu/unicorn_cpu.hpp"
#include "emu/cpu/walker_tlb.hpp"
#include "snippets.hpp"
#include "vma/fault.hpp"
#include "vma/fork.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/reclaim.hpp"

namespace mmemu {
namespace {

// Code: the load snippet on one page, the store snippet on the next (read+exec).
constexpr vaddr_t kLoadCode = 0x400000;
constexpr vaddr_t kStoreCode = 0x401000;
// Data, at fixed addresses whose TLB slots differ from the code's on both arches.
constexpr vaddr_t kBuf = 0x10005000;
constexpr vaddr_t kOther = 0x10009000;  // a second mapping where a test needs one

// The mm's flusher: forwards every flush to the CPU's WalkerTlb, or drops it (and counts)
// once `drop` is set. Dropping is what a missing flush call in the mm would do.
class SwitchableFlusher final : public TlbFlusher {
 public:
  explicit SwitchableFlusher(TlbFlusher& to) : to_(to) {}
  void flush_page(vaddr_t va) override {
    if (drop) {
      ++dropped;
    } else {
      to_.flush_page(va);
    }
  }
  void flush_range(vaddr_t start, vaddr_t end) override {
    if (drop) {
      ++dropped;
    } else {
      to_.flush_range(start, end);
    }
  }
  void flush_all() override {
    if (drop) {
      ++dropped;
    } else {
      to_.flush_all();
    }
  }
  bool drop = false;
  int dropped = 0;

 private:
  TlbFlusher& to_;
};

// What a run of a snippet came to.
struct Outcome {
  bool done = false;                     // reached the snippet's breakpoint
  std::optional<TlbFaultOutcome> fault;  // the signal or OOM that stopped it
  vaddr_t fault_pc = 0;
  std::uint64_t value = 0;  // rax / x0 at the end (the loaded value)
  int outside = 0;          // MemFault stops resolved outside the emulator
};

struct Rig {
  explicit Rig(Arch a, bool faults_inside = false) : machine(64ULL << 20), arch(a) {
    auto m = Mm::create(machine, arch);
    EXPECT_TRUE(m.has_value());
    auto c = unicorn_cpu_factory()(arch, machine.phys);
    EXPECT_TRUE(c.has_value());
    cpu = std::move(*c);
    tlb = std::make_unique<WalkerTlb>(*cpu, **m);
    flusher = std::make_unique<SwitchableFlusher>(*tlb);
    mm = std::move(*m);
    mm->set_flusher(flusher.get());
    tlb->set_tracking(true);
    if (faults_inside) inside();
    map_code(*mm);
  }
  ~Rig() {
    mm.reset();  // exit_mmap flushes through the TLB, still here
    tlb.reset();
    cpu.reset();
  }

  // Faults resolved inside the TLB fill, as the kernel sets it up.
  void inside() {
    tlb->set_fault_handler([t = tlb.get()](const MemFault& f) { return t->resolve(f); });
  }

  void map_code(Mm& m) {
    ASSERT_TRUE(do_mmap(m, kLoadCode, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
    const auto& load = arch == Arch::X86_64 ? snippets::kX86Load : snippets::kArmLoad;
    const auto& store = arch == Arch::X86_64 ? snippets::kX86Store : snippets::kArmStore;
    ASSERT_TRUE(copy_to_user(m, kLoadCode, load.data(), load.size()));
    ASSERT_TRUE(copy_to_user(m, kStoreCode, store.data(), store.size()));
    ASSERT_TRUE(do_mprotect(m, kLoadCode, 2 * PAGE_SIZE, PROT_READ | PROT_EXEC));
  }

  vaddr_t map(vaddr_t at, std::uint64_t pages, int prot, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
    auto r = do_mmap(*mm, at, pages * PAGE_SIZE, prot, flags | MAP_FIXED, nullptr, 0);
    EXPECT_TRUE(r.has_value());
    return r.value_or(0);
  }

  // Runs the snippet at `code` until its breakpoint; a fault the fill did not resolve is
  // resolved here (as the kernel's handle_fault does) and the run goes on, until a signal
  // or an out-of-memory is due.
  Outcome go(vaddr_t code, vaddr_t addr, std::uint64_t value) {
    cpu->set_pc(code);
    const bool x86 = arch == Arch::X86_64;
    EXPECT_TRUE(cpu->set_reg(x86 ? "rdi" : "x1", addr));
    EXPECT_TRUE(cpu->set_reg(x86 ? "rax" : "x0", value));
    Outcome out;
    for (int i = 0; i < 16 && !out.done && !out.fault; ++i) {
      const RunResult r = cpu->run(100000);
      if (r.reason == StopReason::Exception) {
        EXPECT_EQ(r.exception.kind, ExceptionKind::Breakpoint);
        out.done = true;
        break;
      }
      if (r.reason != StopReason::MemFault) {
        ADD_FAILURE() << "stopped for " << stop_reason_name(r.reason);
        break;
      }
      std::optional<TlbFaultOutcome> o = tlb->take_outcome();
      if (o) {
        // Inside the fill only the page was known; the stop decoded the exact address.
        if (o->kind == TlbFaultOutcome::Kind::Signal) o->addr = r.fault.va;
      } else {
        ++out.outside;
        o = tlb->resolve(r.fault);
      }
      if (o->kind != TlbFaultOutcome::Kind::Retry) {
        out.fault = o;
        out.fault_pc = r.fault.pc;
      }
    }
    EXPECT_TRUE(out.done || out.fault) << "did not finish";
    out.value = *cpu->reg(x86 ? "rax" : "x0");
    return out;
  }
  Outcome load(vaddr_t addr) { return go(kLoadCode, addr, 0); }
  Outcome store(vaddr_t addr, std::uint64_t v) { return go(kStoreCode, addr, v); }

  pte_t pte(vaddr_t va, Mm* m = nullptr) {
    Mm& which = m ? *m : *mm;
    auto ref = which.pt().lookup(va);
    return ref ? which.pt().get(*ref) : 0;
  }
  void set_pte(vaddr_t va, pte_t e) {
    auto ref = mm->pt().lookup(va);
    ASSERT_TRUE(ref.has_value());
    mm->pt().set(*ref, e);
  }
  // The value the page tables give (what the guest must see).
  std::uint64_t mem(vaddr_t va, Mm* m = nullptr) {
    std::uint64_t v = 0;
    EXPECT_TRUE(copy_from_user(m ? *m : *mm, &v, va, sizeof v));
    return v;
  }
  const PteFormat& fmt() const { return mm->fmt(); }

  Machine machine;
  Arch arch;
  std::unique_ptr<Cpu> cpu;
  std::unique_ptr<WalkerTlb> tlb;
  std::unique_ptr<SwitchableFlusher> flusher;
  std::unique_ptr<Mm> mm;
};

class WalkerTlbTest : public ::testing::TestWithParam<Arch> {};

void expect_segv(const Outcome& o, int code, vaddr_t addr) {
  ASSERT_TRUE(o.fault.has_value()) << "the access went through (value " << o.value << ")";
  EXPECT_EQ(o.fault->kind, TlbFaultOutcome::Kind::Signal);
  EXPECT_EQ(o.fault->signo, 11);
  EXPECT_EQ(o.fault->code, code);
  EXPECT_EQ(o.fault->addr, addr);
}

// ---- the scenarios: each ends in the access that must not use a stale translation ----

// After each scenario, `stale` says whether the stale translation was used (the outcome
// Linux would never give), and the rig is left for further checks.
struct Scenario {
  const char* name;
  // Runs the scenario; drop: the flusher drops every flush made by the mm operation.
  // Returns true when the stale translation was used.
  bool (*run)(Rig& r, bool drop);
};

bool munmap_read(Rig& r, bool drop) {
  r.map(kBuf, 2, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x1111).done);
  EXPECT_EQ(r.load(kBuf).value, 0x1111u);  // the CPU holds a translation for kBuf
  r.flusher->drop = drop;
  EXPECT_TRUE(do_munmap(*r.mm, kBuf, PAGE_SIZE));
  r.flusher->drop = false;
  const Outcome o = r.load(kBuf);
  if (!o.fault) return o.value == 0x1111;
  expect_segv(o, 1, kBuf);
  EXPECT_EQ(o.fault_pc, kLoadCode + (r.arch == Arch::X86_64 ? 7 : 4));
  return false;
}

bool munmap_write(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x1111).done);
  const pfn_t old = r.fmt().pfn(r.pte(kBuf));
  r.flusher->drop = drop;
  EXPECT_TRUE(do_munmap(*r.mm, kBuf, PAGE_SIZE));
  r.flusher->drop = false;
  const Outcome o = r.store(kBuf, 0x2222);
  std::uint64_t in_frame = 0;
  std::memcpy(&in_frame, r.machine.phys.frame(old), sizeof in_frame);
  if (!o.fault) return in_frame == 0x2222;  // a store into a freed frame
  expect_segv(o, 1, kBuf);
  EXPECT_EQ(in_frame, 0x1111u);
  return false;
}

bool mprotect_rw_to_r(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 1).done);  // a writable, dirty translation
  r.flusher->drop = drop;
  EXPECT_TRUE(do_mprotect(*r.mm, kBuf, PAGE_SIZE, PROT_READ));
  r.flusher->drop = false;
  const Outcome o = r.store(kBuf, 2);
  if (!o.fault) return r.mem(kBuf) == 2;
  expect_segv(o, 2, kBuf);
  EXPECT_EQ(r.mem(kBuf), 1u);
  EXPECT_EQ(r.load(kBuf).value, 1u);  // still readable
  return false;
}

bool mprotect_r_to_none(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x77).done);
  EXPECT_TRUE(do_mprotect(*r.mm, kBuf, PAGE_SIZE, PROT_READ));
  EXPECT_EQ(r.load(kBuf).value, 0x77u);  // a read-only translation
  r.flusher->drop = drop;
  EXPECT_TRUE(do_mprotect(*r.mm, kBuf, PAGE_SIZE, PROT_NONE));
  r.flusher->drop = false;
  const Outcome o = r.load(kBuf);
  if (!o.fault) return o.value == 0x77;
  expect_segv(o, 2, kBuf);
  return false;
}

// After fork the parent's write must copy: the child's frame keeps the old value.
bool fork_cow(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 1).done);  // writable translation to the frame
  const pfn_t before = r.fmt().pfn(r.pte(kBuf));
  r.flusher->drop = drop;
  auto child = dup_mm(*r.mm, ForkRecovery::TreeMax);
  r.flusher->drop = false;
  EXPECT_TRUE(child.has_value());
  if (!child) return false;
  const Outcome o = r.store(kBuf, 2);
  EXPECT_TRUE(o.done);
  const std::uint64_t childs = r.mem(kBuf, child->get());
  const pfn_t after = r.fmt().pfn(r.pte(kBuf));
  (*child)->set_flusher(nullptr);
  child->reset();
  if (childs == 2) return true;
  EXPECT_EQ(childs, 1u);
  EXPECT_EQ(r.mem(kBuf), 2u);
  EXPECT_EQ(r.load(kBuf).value, 2u);
  EXPECT_NE(after, before);
  return false;
}

bool madv_dontneed(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x5a5a).done);
  EXPECT_EQ(r.load(kBuf).value, 0x5a5au);
  r.flusher->drop = drop;
  EXPECT_TRUE(do_madvise(*r.mm, kBuf, PAGE_SIZE, MADV_DONTNEED));
  r.flusher->drop = false;
  const std::uint64_t fills = r.tlb->stats().fills;
  const Outcome o = r.load(kBuf);
  EXPECT_TRUE(o.done);
  if (o.value == 0x5a5a) return true;
  EXPECT_EQ(o.value, 0u);
  EXPECT_GT(r.tlb->stats().fills, fills);                          // the read went to the walker
  EXPECT_EQ(r.fmt().pfn(r.pte(kBuf)), r.machine.phys.zero_pfn());  // and mapped zeros
  return false;
}

// MADV_FREE, then reclaim drops the clean page: the next read gives zeros.
bool madv_free_reclaimed(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x4242).done);
  EXPECT_EQ(r.load(kBuf).value, 0x4242u);
  r.flusher->drop = drop;
  EXPECT_TRUE(do_madvise(*r.mm, kBuf, PAGE_SIZE, MADV_FREE));
  const ReclaimReport rep = reclaim_lazyfree(r.machine.phys);
  r.flusher->drop = false;
  EXPECT_EQ(rep.dropped, 1u);
  const Outcome o = r.load(kBuf);
  EXPECT_TRUE(o.done);
  if (o.value == 0x4242) return true;
  EXPECT_EQ(o.value, 0u);
  EXPECT_EQ(r.mem(kBuf), 0u);
  return false;
}

// MADV_FREE, then the guest writes again: the write must come back through the walker and
// set the accessed and dirty bits, so reclaim keeps the page and the data survives.
bool madv_free_rewritten(Rig& r, bool drop) {
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x4242).done);
  r.flusher->drop = drop;
  EXPECT_TRUE(do_madvise(*r.mm, kBuf, PAGE_SIZE, MADV_FREE));
  EXPECT_TRUE(r.store(kBuf, 0x4343).done);  // redirtied
  const ReclaimReport first = reclaim_lazyfree(r.machine.phys);
  const ReclaimReport second = reclaim_lazyfree(r.machine.phys);
  r.flusher->drop = false;
  if (r.mem(kBuf) == 0) return true;  // the data the guest wrote is lost
  EXPECT_EQ(first.referenced, 1u);
  EXPECT_EQ(second.redirtied, 1u);
  EXPECT_EQ(first.dropped + second.dropped, 0u);
  EXPECT_EQ(r.mem(kBuf), 0x4343u);
  EXPECT_EQ(r.load(kBuf).value, 0x4343u);
  return false;
}

const Scenario kScenarios[] = {
    {"munmap_read", munmap_read},
    {"munmap_write", munmap_write},
    {"mprotect_rw_to_r", mprotect_rw_to_r},
    {"mprotect_r_to_none", mprotect_r_to_none},
    {"fork_cow", fork_cow},
    {"madv_dontneed", madv_dontneed},
    {"madv_free_reclaimed", madv_free_reclaimed},
    {"madv_free_rewritten", madv_free_rewritten},
};

TEST_P(WalkerTlbTest, NoAccessThroughAStaleTranslation) {
  for (bool inside : {false, true}) {
    for (const Scenario& s : kScenarios) {
      SCOPED_TRACE(std::string(s.name) + (inside ? " (faults inside the fill)" : ""));
      Rig r(GetParam(), inside);
      EXPECT_FALSE(s.run(r, false)) << "a stale translation was used";
      EXPECT_EQ(r.flusher->dropped, 0);
      EXPECT_TRUE(r.tlb->verify().empty());
    }
  }
}

// The same scenarios with every flush of the mm operation dropped: the stale translation
// is used, and --check's verify() sees it. This is what makes the test above meaningful.
TEST_P(WalkerTlbTest, FlushRemovalMakesEveryScenarioUseTheStaleTranslation) {
  for (const Scenario& s : kScenarios) {
    SCOPED_TRACE(s.name);
    Rig r(GetParam(), true);
    // The stale outcome breaks the positive checks on purpose; only whether it happened
    // counts here.
    bool stale = false;
    {
      testing::TestPartResultArray ignored;
      testing::ScopedFakeTestPartResultReporter rep(
          testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &ignored);
      stale = s.run(r, true);
    }
    EXPECT_TRUE(stale) << "the scenario gives the right answer even without the flush: it "
                          "tests nothing";
    EXPECT_GT(r.flusher->dropped, 0);
  }
}

// One missing flush_range, shown step by step: munmap's range flush is what takes the
// translation away, and --check's verify() reports the entry the flush would have dropped.
TEST_P(WalkerTlbTest, DroppingTheRangeFlushOfMunmapLeavesAStaleEntry) {
  Rig r(GetParam());
  r.map(kBuf, 2, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r.store(kBuf, 0x1111).done);
  ASSERT_EQ(r.load(kBuf).value, 0x1111u);
  r.flusher->drop = true;
  ASSERT_TRUE(do_munmap(*r.mm, kBuf, PAGE_SIZE));
  r.flusher->drop = false;
  EXPECT_EQ(r.flusher->dropped, 1);
  const auto stale = r.tlb->verify();
  ASSERT_FALSE(stale.empty());
  EXPECT_NE(stale[0].find("no PTE"), std::string::npos) << stale[0];
  const Outcome used = r.load(kBuf);
  EXPECT_TRUE(used.done);  // no fault: the unmapped page was read
  EXPECT_EQ(used.value, 0x1111u);
  // The flush the mm should have made puts it right.
  r.tlb->flush_range(kBuf, kBuf + PAGE_SIZE);
  EXPECT_TRUE(r.tlb->verify().empty());
  expect_segv(r.load(kBuf), 1, kBuf);
}

// ---- exit: a new mm on the same CPU sees nothing of the old ----

TEST_P(WalkerTlbTest, ANewMmOnTheSameCpuSeesNothingOfTheOld) {
  Rig r(GetParam());
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  r.map(kOther, 1, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(r.store(kBuf, 0xdead).done);
  ASSERT_TRUE(r.store(kOther, 0xbeef).done);
  ASSERT_EQ(r.load(kBuf).value, 0xdeadu);
  // exit: the mm goes (exit_mmap flushes), then the TLB; the CPU stays.
  r.mm.reset();
  r.tlb.reset();
  auto m2 = Mm::create(r.machine, r.arch);
  ASSERT_TRUE(m2.has_value());
  r.mm = std::move(*m2);
  r.tlb = std::make_unique<WalkerTlb>(*r.cpu, *r.mm);
  r.flusher = std::make_unique<SwitchableFlusher>(*r.tlb);
  r.mm->set_flusher(r.flusher.get());
  r.tlb->set_tracking(true);
  // The same layout, but the code pages swapped (a stale code translation would run the
  // other snippet) and nothing at kBuf yet.
  r.map(kLoadCode, 2, PROT_READ | PROT_WRITE);
  const auto& load = r.arch == Arch::X86_64 ? snippets::kX86Load : snippets::kArmLoad;
  const auto& store = r.arch == Arch::X86_64 ? snippets::kX86Store : snippets::kArmStore;
  ASSERT_TRUE(copy_to_user(*r.mm, kStoreCode, load.data(), load.size()));
  ASSERT_TRUE(copy_to_user(*r.mm, kLoadCode, store.data(), store.size()));
  ASSERT_TRUE(do_mprotect(*r.mm, kLoadCode, 2 * PAGE_SIZE, PROT_READ | PROT_EXEC));
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  const Outcome o = r.go(kStoreCode, kBuf, 0x99);  // the new mm's load snippet
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.value, 0u);
  EXPECT_EQ(r.fmt().pfn(r.pte(kBuf)), r.machine.phys.zero_pfn());
  expect_segv(r.load(kOther), 1, kOther);  // the old mm's other page is not there
  EXPECT_TRUE(r.tlb->verify().empty());
}

// Without the flush a WalkerTlb makes when it takes a CPU, the CPU would go on using the
// previous mm's translations: shown by handing the CPU from one TLB to another by hand.
TEST_P(WalkerTlbTest, FlushRemovalHandingTheCpuToAnotherMmWithoutAFlushLeaksTheOld) {
  Rig r(GetParam());
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(r.store(kBuf, 0xdead).done);
  auto m2 = Mm::create(r.machine, r.arch);
  ASSERT_TRUE(m2.has_value());
  r.map_code(**m2);
  ASSERT_TRUE(do_mmap(**m2, kBuf, PAGE_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  {
    WalkerTlb other(*r.cpu, **m2);
    other.set_fault_handler([&other](const MemFault& f) { return other.resolve(f); });
    r.cpu->set_tlb_miss_handler(r.tlb.get());  // back to the first mm, no flush
    ASSERT_EQ(r.load(kBuf).value, 0xdeadu);
    r.cpu->set_tlb_miss_handler(&other);  // to the second, no flush
    const std::uint64_t fills = other.stats().fills;
    const Outcome leaked = r.load(kBuf);
    EXPECT_TRUE(leaked.done);
    EXPECT_EQ(leaked.value, 0xdeadu);  // the first mm's page, read in the second
    EXPECT_EQ(other.stats().fills, fills);
    r.cpu->flush_tlb();
    EXPECT_EQ(r.load(kBuf).value, 0u);
    EXPECT_GT(other.stats().fills, fills);
  }
  r.cpu->set_tlb_miss_handler(r.tlb.get());
  r.cpu->flush_tlb();
  m2->reset();
}

// ---- accessed and dirty bits ----

TEST_P(WalkerTlbTest, AReadSetsAccessedAndLeavesDirtyClear) {
  Rig r(GetParam());
  // A shared anonymous page read in: writable in the tables, clean.
  r.map(kBuf, 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_TRUE(r.load(kBuf).done);
  const PteFormat& f = r.fmt();
  ASSERT_TRUE(f.present(r.pte(kBuf)));
  ASSERT_TRUE(f.write(r.pte(kBuf)));
  // Clear A (with the flush, as ptep_clear_flush_young does) and read again.
  r.set_pte(kBuf, f.mkold(r.pte(kBuf)));
  r.flusher->flush_page(kBuf);
  ASSERT_TRUE(r.load(kBuf).done);
  EXPECT_TRUE(f.young(r.pte(kBuf)));
  EXPECT_FALSE(f.dirty(r.pte(kBuf)));
  // The read's fill was read-only: the first write comes back to the walker, sets D.
  const std::uint64_t dirty_fills = r.tlb->stats().dirty_fills;
  ASSERT_TRUE(r.store(kBuf, 0x1234).done);
  EXPECT_TRUE(f.dirty(r.pte(kBuf)));
  EXPECT_TRUE(f.young(r.pte(kBuf)));
  EXPECT_EQ(r.tlb->stats().dirty_fills, dirty_fills + 1);
  EXPECT_EQ(r.mem(kBuf), 0x1234u);
  EXPECT_TRUE(r.tlb->verify().empty());
}

TEST_P(WalkerTlbTest, AReadOfAPrivateZeroPageSetsAccessedOnly) {
  Rig r(GetParam());
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(r.load(kBuf).done);
  const PteFormat& f = r.fmt();
  EXPECT_EQ(f.pfn(r.pte(kBuf)), r.machine.phys.zero_pfn());
  EXPECT_TRUE(f.young(r.pte(kBuf)));
  EXPECT_FALSE(f.dirty(r.pte(kBuf)));
  ASSERT_TRUE(r.store(kBuf, 5).done);  // copy-on-write from the zero page
  EXPECT_NE(f.pfn(r.pte(kBuf)), r.machine.phys.zero_pfn());
  EXPECT_TRUE(f.dirty(r.pte(kBuf)));
  EXPECT_TRUE(f.young(r.pte(kBuf)));
}

// Clearing A or D in the PTE is only seen by the CPU after a flush: with the flush the
// next access sets the bit again; without it the CPU keeps using its entry and the bit
// stays clear (a page reclaim would think idle, a writeback would think clean).
TEST_P(WalkerTlbTest, ClearedAccessedBitIsSetAgainOnlyAfterAFlush) {
  Rig r(GetParam());
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(r.store(kBuf, 1).done);
  ASSERT_EQ(r.load(kBuf).value, 1u);
  const PteFormat& f = r.fmt();
  ASSERT_TRUE(f.young(r.pte(kBuf)));

  r.set_pte(kBuf, f.mkold(r.pte(kBuf)));  // test_and_clear_young without the flush
  ASSERT_EQ(r.load(kBuf).value, 1u);
  EXPECT_FALSE(f.young(r.pte(kBuf))) << "the CPU re-walked without a flush";

  r.flusher->flush_page(kBuf);  // ptep_clear_flush_young's flush
  ASSERT_EQ(r.load(kBuf).value, 1u);
  EXPECT_TRUE(f.young(r.pte(kBuf)));
}

TEST_P(WalkerTlbTest, ClearedDirtyBitIsSetAgainOnlyAfterAFlush) {
  Rig r(GetParam());
  r.map(kBuf, 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_TRUE(r.store(kBuf, 1).done);
  const PteFormat& f = r.fmt();
  ASSERT_TRUE(f.dirty(r.pte(kBuf)));

  r.set_pte(kBuf, f.mkclean(r.pte(kBuf)));  // page_mkclean without the flush
  EXPECT_FALSE(r.tlb->verify().empty());    // --check sees the writable clean entry
  ASSERT_TRUE(r.store(kBuf, 2).done);
  EXPECT_FALSE(f.dirty(r.pte(kBuf))) << "the CPU re-walked without a flush";

  r.set_pte(kBuf, f.mkclean(r.pte(kBuf)));
  r.flusher->flush_page(kBuf);  // page_mkclean's flush
  EXPECT_TRUE(r.tlb->verify().empty());
  ASSERT_TRUE(r.store(kBuf, 3).done);
  EXPECT_TRUE(f.dirty(r.pte(kBuf)));
  EXPECT_EQ(r.mem(kBuf), 3u);
}

// ---- faults inside the fill come out as outside ----

// A fingerprint of everything a sequence of demand-zero, copy-on-write and bad accesses
// leaves: values, outcomes, PTEs (frame, bits), the child's view and the counters.
std::vector<std::string> fault_sequence(Rig& r) {
  std::vector<std::string> out;
  auto note = [&](const char* what, const Outcome& o) {
    std::string s = std::string(what) + ": done " + std::to_string(o.done) + " value " +
                    std::to_string(o.value);
    if (o.fault)
      s += " fault kind " + std::to_string(static_cast<int>(o.fault->kind)) + " signo " +
           std::to_string(o.fault->signo) + " code " + std::to_string(o.fault->code) + " addr " +
           std::to_string(o.fault->addr) + " pc " + std::to_string(o.fault_pc);
    for (vaddr_t va : {kBuf, kBuf + PAGE_SIZE}) {
      const pte_t e = r.pte(va);
      s += " | pte " + std::to_string(va) + " " +
           (r.fmt().present(e) ? r.fmt().decode(e, Level::Pte) : std::string("none"));
    }
    out.push_back(s);
  };
  r.map(kBuf, 2, PROT_READ | PROT_WRITE);
  r.map(kOther, 1, PROT_READ);
  note("demand-zero read", r.load(kBuf));
  note("write after zero-page read", r.store(kBuf, 0x1001));
  note("demand-zero write", r.store(kBuf + PAGE_SIZE, 0x2002));
  auto child = dup_mm(*r.mm, ForkRecovery::TreeMax);
  EXPECT_TRUE(child.has_value());
  note("read after fork", r.load(kBuf));
  note("copy-on-write", r.store(kBuf, 0x3003));
  note("second copy-on-write", r.store(kBuf + PAGE_SIZE, 0x4004));
  out.push_back("child sees " + std::to_string(r.mem(kBuf, child->get())) + " " +
                std::to_string(r.mem(kBuf + PAGE_SIZE, child->get())));
  note("write to read-only", r.store(kOther + 8, 1));
  note("read of a hole", r.load(kBuf + 2 * PAGE_SIZE));
  out.push_back("rss anon " + std::to_string(r.mm->rss[MM_ANONPAGES]) + " child " +
                std::to_string((*child)->rss[MM_ANONPAGES]));
  child->reset();
  return out;
}

TEST_P(WalkerTlbTest, FaultsResolvedInsideTheFillMatchFaultsResolvedOutside) {
  Rig outside(GetParam(), false);
  Rig inside(GetParam(), true);
  const auto a = fault_sequence(outside);
  const auto b = fault_sequence(inside);
  EXPECT_EQ(a, b);
  // And the two really took different paths.
  EXPECT_EQ(outside.tlb->stats().hook_faults, 0u);
  EXPECT_GE(inside.tlb->stats().hook_faults, 4u);
  EXPECT_EQ(inside.tlb->stats().mm_faults, outside.tlb->stats().mm_faults);
  EXPECT_TRUE(outside.tlb->verify().empty());
  EXPECT_TRUE(inside.tlb->verify().empty());
  // The expected facts, once.
  ASSERT_EQ(a.size(), 10u);
  EXPECT_EQ(a[6], "child sees 4097 8194");
}

TEST_P(WalkerTlbTest, InsideTheFillAResolvedFaultCostsNoStop) {
  Rig r(GetParam(), true);
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  const Outcome o = r.store(kBuf, 7);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.outside, 0);
  EXPECT_EQ(r.mem(kBuf), 7u);
  Rig s(GetParam(), false);
  s.map(kBuf, 1, PROT_READ | PROT_WRITE);
  const Outcome p = s.store(kBuf, 7);
  EXPECT_TRUE(p.done);
  EXPECT_GE(p.outside, 1);
  EXPECT_EQ(s.mem(kBuf), 7u);
}

// ---- out of memory inside the fill ----

// Once the mm is gone, nothing it or its faults allocated may be left.
void expect_no_leak(Rig& r) {
  r.mm.reset();
  for (AllocSite s : kAllAllocSites)
    EXPECT_EQ(r.machine.live.live(s), 0) << site_name(s);
  EXPECT_EQ(r.machine.live.unknown_frees(), 0u);
}

TEST_P(WalkerTlbTest, OutOfMemoryInADemandZeroFillStopsTheCpuWithOom) {
  Rig r(GetParam(), true);
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  const std::int64_t pages = r.machine.live.live(AllocSite::Page);
  r.machine.inject.fail_nth(AllocSite::Page, 1);
  const Outcome o = r.store(kBuf, 0x55);
  ASSERT_TRUE(o.fault.has_value());
  EXPECT_EQ(o.fault->kind, TlbFaultOutcome::Kind::Oom);
  EXPECT_EQ(o.fault->result, FaultResult::Oom);
  EXPECT_EQ(o.outside, 0);  // it stopped from inside the fill, with the outcome
  EXPECT_EQ(o.fault_pc, kStoreCode + (r.arch == Arch::X86_64 ? 7 : 4));
  EXPECT_EQ(r.cpu->pc(), o.fault_pc);  // at the store: nothing of it ran
  EXPECT_EQ(r.machine.inject.failures(AllocSite::Page), 1u);
  EXPECT_EQ(r.machine.live.live(AllocSite::Page), pages);
  EXPECT_FALSE(r.fmt().present(r.pte(kBuf)));
  EXPECT_FALSE(r.tlb->take_outcome().has_value());  // taken once
  // Retried without the injection, the store completes.
  const Outcome again = r.go(o.fault_pc, kBuf, 0x55);
  EXPECT_TRUE(again.done);
  EXPECT_EQ(r.mem(kBuf), 0x55u);
  expect_no_leak(r);
}

TEST_P(WalkerTlbTest, OutOfMemoryInACopyOnWriteFillLeavesBothSidesIntact) {
  Rig r(GetParam(), true);
  r.map(kBuf, 1, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(r.store(kBuf, 1).done);
  auto child = dup_mm(*r.mm, ForkRecovery::TreeMax);
  ASSERT_TRUE(child.has_value());
  const pte_t shared = r.pte(kBuf);
  const std::int64_t pages = r.machine.live.live(AllocSite::Page);
  r.machine.inject.fail_nth(AllocSite::Page, 1);
  const Outcome o = r.store(kBuf, 2);
  ASSERT_TRUE(o.fault.has_value());
  EXPECT_EQ(o.fault->kind, TlbFaultOutcome::Kind::Oom);
  EXPECT_EQ(r.machine.live.live(AllocSite::Page), pages);
  EXPECT_EQ(r.fmt().pfn(r.pte(kBuf)), r.fmt().pfn(shared));
  EXPECT_FALSE(r.fmt().write(r.pte(kBuf)));
  EXPECT_EQ(r.mem(kBuf), 1u);
  EXPECT_EQ(r.mem(kBuf, child->get()), 1u);
  EXPECT_TRUE(r.go(o.fault_pc, kBuf, 2).done);
  EXPECT_EQ(r.mem(kBuf), 2u);
  EXPECT_EQ(r.mem(kBuf, child->get()), 1u);
  child->reset();
  EXPECT_TRUE(r.tlb->verify().empty());
  expect_no_leak(r);
}

INSTANTIATE_TEST_SUITE_P(Arches, WalkerTlbTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& pi) { return std::string(arch_name(pi.param)); });

}  // namespace
}  // namespace mmemu
