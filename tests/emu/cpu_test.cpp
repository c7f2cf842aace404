// The Cpu interface on both architectures with real machine code (tests/emu/snippets.hpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "emu/cpu/unicorn_cpu.hpp"
#include "snippets.hpp"

namespace mmemu {
namespace {

using namespace snippets;

// Page-aligned, zero-filled host memory standing in for emulated frames.
class HostPages {
 public:
  explicit HostPages(std::size_t pages)
      : size_(pages * PAGE_SIZE),
        p_(static_cast<std::uint8_t*>(std::aligned_alloc(PAGE_SIZE, size_))) {
    std::memset(p_, 0, size_);
  }
  ~HostPages() { std::free(p_); }
  HostPages(const HostPages&) = delete;
  HostPages& operator=(const HostPages&) = delete;
  std::uint8_t* page(std::size_t i) { return p_ + i * PAGE_SIZE; }
  std::uint64_t u64(std::size_t off) const {
    std::uint64_t v;
    std::memcpy(&v, p_ + off, 8);
    return v;
  }
  void set_u64(std::size_t off, std::uint64_t v) { std::memcpy(p_ + off, &v, 8); }

 private:
  std::size_t size_;
  std::uint8_t* p_;
};

constexpr vaddr_t kCode = 0x400000;
constexpr vaddr_t kData = 0x10000000;

// Per-architecture view of the snippets: which register holds what.
struct ArchCase {
  Arch arch;
  const char* addr;     // register holding the data address
  const char* value;    // register holding the value stored / loaded
  const char* mark;     // register set to 1 before and 2 after the memory access
  unsigned access_off;  // offset of the load/store in kLoad/kStore
  unsigned mark2_off;   // offset of the instruction after it
  const std::vector<std::uint8_t>* syscall;
  const std::vector<std::uint8_t>* load;
  const std::vector<std::uint8_t>* store;
  const std::vector<std::uint8_t>* jump;
  const std::vector<std::uint8_t>* loop;
  const std::vector<std::uint8_t>* flags;
  const std::vector<std::uint8_t>* tls;
  const std::vector<std::uint8_t>* mix;
};

void PrintTo(const ArchCase& c, std::ostream* os) {
  *os << arch_name(c.arch);
}

const ArchCase kX86{Arch::X86_64, "rdi",        "rax",     "rbx",      7,
                    10,           &kX86Syscall, &kX86Load, &kX86Store, &kX86Jump,
                    &kX86Loop,    &kX86Flags,   &kX86Tls,  &kX86Mix};
const ArchCase kArm{Arch::Arm64, "x1",         "x0",      "x19",      4,
                    8,           &kArmSyscall, &kArmLoad, &kArmStore, &kArmJump,
                    &kArmLoop,   &kArmFlags,   &kArmTls,  &kArmMix};

class CpuTest : public ::testing::TestWithParam<ArchCase> {
 protected:
  void SetUp() override {
    auto c = UnicornCpu::create(GetParam().arch);
    ASSERT_TRUE(c.has_value());
    cpu = std::move(*c);
  }
  // Maps `code` read+exec at kCode and points pc at it.
  void load_code(const std::vector<std::uint8_t>& code) {
    std::memcpy(code_mem.page(0), code.data(), code.size());
    ASSERT_TRUE(cpu->map(kCode, PAGE_SIZE, code_mem.page(0), PERM_RX));
    cpu->set_pc(kCode);
  }
  std::uint64_t r(const char* name) const { return *cpu->reg(name); }
  void set(const char* name, std::uint64_t v) { ASSERT_TRUE(cpu->set_reg(name, v)); }
  const ArchCase& a() const { return GetParam(); }
  bool x86() const { return a().arch == Arch::X86_64; }
  // pc after the terminating breakpoint: x86 int3 reports pc past itself, arm64 brk at itself.
  vaddr_t brk_pc(const std::vector<std::uint8_t>& code) const {
    return kCode + code.size() - (x86() ? 0 : 4);
  }

  std::unique_ptr<UnicornCpu> cpu;
  HostPages code_mem{1};
  HostPages data{4};
};

TEST_P(CpuTest, SyscallStopsPastTheInstructionWithNumberArgsAndReturn) {
  load_code(*a().syscall);
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::Syscall);
  EXPECT_EQ(res.executed, 3u);
  EXPECT_EQ(cpu->pc(), kCode + (x86() ? 12 : 12));
  EXPECT_EQ(cpu->syscall_nr(), x86() ? 39u : 172u);
  EXPECT_EQ(cpu->syscall_arg(0), 7u);
  if (x86()) {
    // As the hardware does: rcx = return address, r11 = rflags.
    EXPECT_EQ(r("rcx"), kCode + 12);
    EXPECT_EQ(r("r11"), r("rflags"));
  }
  cpu->set_syscall_ret(1234);
  res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  EXPECT_EQ(res.exception.kind, ExceptionKind::Breakpoint);
  EXPECT_EQ(res.executed, x86() ? 2u : 1u);  // arm64 brk does not complete
  EXPECT_EQ(r(x86() ? "rbx" : "x19"), 1234u);
  EXPECT_EQ(cpu->instructions(), x86() ? 5u : 4u);
}

TEST_P(CpuTest, SyscallHandlerContinueAndExit) {
  load_code(*a().syscall);
  int calls = 0;
  cpu->set_syscall_handler([&] {
    ++calls;
    EXPECT_EQ(cpu->syscall_arg(0), 7u);
    cpu->set_syscall_ret(77);
    return SyscallAction::Continue;
  });
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r(x86() ? "rbx" : "x19"), 77u);

  cpu->set_pc(kCode);
  cpu->set_syscall_handler([] { return SyscallAction::Exit; });
  res = cpu->run(0);
  EXPECT_EQ(res.reason, StopReason::Exited);
  EXPECT_EQ(res.executed, 3u);
}

TEST_P(CpuTest, ReadFaultRetriedAfterMappingInsideHandler) {
  load_code(*a().load);
  set(a().addr, kData + 0x18);
  data.set_u64(0x18, 0xfeedface);
  std::vector<MemFault> seen;
  cpu->set_fault_handler([&](const MemFault& f) {
    seen.push_back(f);
    EXPECT_TRUE(cpu->map(page_align_down(f.va), PAGE_SIZE, data.page(0), PERM_R));
    return FaultAction::Retry;
  });
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].va, kData + 0x18);
  EXPECT_EQ(seen[0].size, 8u);
  EXPECT_EQ(seen[0].access, Access::Read);
  EXPECT_TRUE(seen[0].unmapped);
  EXPECT_EQ(seen[0].pc, kCode + a().access_off);
  EXPECT_EQ(r(a().value), 0xfeedfaceu);
  EXPECT_EQ(r(a().mark), 2u);
}

TEST_P(CpuTest, WriteFaultStopsAtTheExactInstructionAndRestarts) {
  load_code(*a().store);
  set(a().addr, kData + 8);
  set(a().value, 0x1122334455667788);
  int calls = 0;
  cpu->set_fault_handler([&](const MemFault&) {
    ++calls;
    return FaultAction::Stop;
  });
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(res.fault.va, kData + 8);
  EXPECT_EQ(res.fault.access, Access::Write);
  EXPECT_TRUE(res.fault.unmapped);
  EXPECT_EQ(res.fault.pc, kCode + a().access_off);
  EXPECT_EQ(cpu->pc(), kCode + a().access_off);
  EXPECT_EQ(res.executed, 1u);  // only the first mark
  EXPECT_EQ(r(a().mark), 1u);

  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_RW));
  res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  EXPECT_EQ(data.u64(8), 0x1122334455667788u);
  EXPECT_EQ(r(a().mark), 2u);
  EXPECT_EQ(cpu->instructions(), x86() ? 4u : 3u);
}

TEST_P(CpuTest, NoHandlerMeansStop) {
  load_code(*a().load);
  set(a().addr, kData);
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_EQ(res.fault.va, kData);
  EXPECT_EQ(cpu->pc(), kCode + a().access_off);
}

TEST_P(CpuTest, WriteProtectionRaisedInsideHandler) {
  load_code(*a().store);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_R));
  set(a().addr, kData + 16);
  set(a().value, 42);
  std::vector<MemFault> seen;
  cpu->set_fault_handler([&](const MemFault& f) {
    seen.push_back(f);
    EXPECT_TRUE(cpu->protect(kData, PAGE_SIZE, PERM_RW));
    return FaultAction::Retry;
  });
  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_FALSE(seen[0].unmapped);
  EXPECT_EQ(seen[0].access, Access::Write);
  EXPECT_EQ(seen[0].va, kData + 16);
  EXPECT_EQ(data.u64(16), 42u);
}

TEST_P(CpuTest, RetryWithoutFixingIsAStopAndNeverWritesThroughReadOnly) {
  load_code(*a().store);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_R));
  set(a().addr, kData);
  set(a().value, 42);
  cpu->set_fault_handler([](const MemFault&) { return FaultAction::Retry; });
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_FALSE(res.fault.unmapped);
  EXPECT_EQ(data.u64(0), 0u);
  EXPECT_EQ(cpu->pc(), kCode + a().access_off);
}

// Copy-on-write as the TLB will do it: the written region must afterwards point at another
// host page. Inside the hook, replacing a data region away from the running code works.
TEST_P(CpuTest, CowReplacesTheSameRegionInsideTheHandler) {
  load_code(*a().store);
  HostPages shared(1), priv(1);
  shared.set_u64(0, 0xaaaa);
  shared.set_u64(8, 0xbbbb);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, shared.page(0), PERM_R));
  set(a().addr, kData + 8);
  set(a().value, 0xcccc);
  cpu->set_fault_handler([&](const MemFault& f) {
    EXPECT_FALSE(f.unmapped);
    std::memcpy(priv.page(0), shared.page(0), PAGE_SIZE);
    EXPECT_TRUE(cpu->unmap(kData, PAGE_SIZE));
    EXPECT_TRUE(cpu->map(kData, PAGE_SIZE, priv.page(0), PERM_RW));
    return FaultAction::Retry;
  });
  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  EXPECT_EQ(shared.u64(8), 0xbbbbu);  // the shared page is untouched
  EXPECT_EQ(priv.u64(0), 0xaaaau);
  EXPECT_EQ(priv.u64(8), 0xccccu);
  EXPECT_EQ(r(a().mark), 2u);
}

// When the written page shares a region with the running code, the handler may not replace
// it (EBUSY): it answers Stop, the caller replaces the region, and the store restarts.
TEST_P(CpuTest, CowNextToRunningCodeStopsAndRestarts) {
  HostPages shared(1), priv(1);
  const auto& code = *a().store;
  std::memcpy(shared.page(0), code.data(), code.size());
  ASSERT_TRUE(cpu->map(kCode, PAGE_SIZE, shared.page(0), PERM_RX));
  cpu->set_pc(kCode);
  set(a().addr, kCode + 0x800);
  set(a().value, 0x5a5a);
  Result<> in_hook;
  cpu->set_fault_handler([&](const MemFault&) {
    in_hook = cpu->unmap(kCode, PAGE_SIZE);
    return FaultAction::Stop;
  });
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_EQ(in_hook, fail(EBUSY));
  EXPECT_EQ(cpu->pc(), kCode + a().access_off);
  std::memcpy(priv.page(0), shared.page(0), PAGE_SIZE);
  ASSERT_TRUE(cpu->unmap(kCode, PAGE_SIZE));  // outside the hook: allowed
  ASSERT_TRUE(cpu->map(kCode, PAGE_SIZE, priv.page(0), PERM_RWX));
  res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  EXPECT_EQ(priv.u64(0x800), 0x5a5au);
  EXPECT_EQ(shared.u64(0x800), 0u);
  EXPECT_EQ(r(a().mark), 2u);
}

// An 8-byte load 4 bytes before a page end: each missing page is reported on its own.
TEST_P(CpuTest, StraddlingAccessFaultsOncePerPage) {
  load_code(*a().load);
  set(a().addr, kData + PAGE_SIZE - 4);
  for (unsigned i = 0; i < 8; i++)
    data.page(0)[PAGE_SIZE - 4 + i] = static_cast<std::uint8_t>(i + 1);
  std::vector<vaddr_t> seen;
  cpu->set_fault_handler([&](const MemFault& f) {
    seen.push_back(f.va);
    vaddr_t pg = page_align_down(f.va);
    EXPECT_TRUE(cpu->map(pg, PAGE_SIZE, data.page((pg - kData) / PAGE_SIZE), PERM_R));
    return FaultAction::Retry;
  });
  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  EXPECT_EQ(seen, (std::vector<vaddr_t>{kData + PAGE_SIZE - 4, kData + PAGE_SIZE}));
  EXPECT_EQ(r(a().value), 0x0807060504030201u);
}

TEST_P(CpuTest, FetchFaultReportsTheTargetAndRestarts) {
  load_code(*a().jump);
  constexpr vaddr_t target = 0x7000000;
  set(a().addr, target);
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_EQ(res.fault.access, Access::Exec);
  EXPECT_EQ(res.fault.va, target);
  EXPECT_EQ(res.fault.pc, target);
  EXPECT_EQ(cpu->pc(), target);
  EXPECT_EQ(res.executed, 1u);
  // Map the syscall snippet there and go on.
  HostPages text(1);
  std::memcpy(text.page(0), a().syscall->data(), a().syscall->size());
  ASSERT_TRUE(cpu->map(target, PAGE_SIZE, text.page(0), PERM_RX));
  EXPECT_EQ(cpu->run(0).reason, StopReason::Syscall);
  EXPECT_EQ(cpu->syscall_arg(0), 7u);
}

TEST_P(CpuTest, FetchFromNonExecutableRegionIsAProtectionFault) {
  load_code(*a().jump);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_RW));
  set(a().addr, kData);
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_EQ(res.fault.access, Access::Exec);
  EXPECT_FALSE(res.fault.unmapped);
  EXPECT_EQ(res.fault.va, kData);
}

// The loop executes 1 + 4 * 1000 instructions before its breakpoint.
TEST_P(CpuTest, SlicesResumeExactly) {
  for (std::uint64_t n : {1ULL, 3ULL, 7ULL, 100ULL, 4001ULL}) {
    SCOPED_TRACE(n);
    auto c = UnicornCpu::create(a().arch);
    ASSERT_TRUE(c);
    auto& cp = **c;
    HostPages text(1), mem(1);
    std::memcpy(text.page(0), a().loop->data(), a().loop->size());
    ASSERT_TRUE(cp.map(kCode, PAGE_SIZE, text.page(0), PERM_RX));
    ASSERT_TRUE(cp.map(kData, PAGE_SIZE, mem.page(0), PERM_RW));
    cp.set_pc(kCode);
    ASSERT_TRUE(cp.set_reg(a().addr, kData));
    std::uint64_t slices = 0, sum = 0;
    RunResult res;
    while ((res = cp.run(n)).reason == StopReason::SliceEnd) {
      EXPECT_EQ(res.executed, n);
      sum += res.executed;
      slices++;
    }
    ASSERT_EQ(res.reason, StopReason::Exception);
    sum += res.executed;
    // x86 int3 completes (pc past it), arm64 brk does not.
    std::uint64_t total = x86() ? 4002 : 4001;
    EXPECT_EQ(sum, total);
    EXPECT_EQ(cp.instructions(), total);
    EXPECT_EQ(slices, 4001 / n);
    EXPECT_EQ(*cp.reg(a().value), 500500u);
    EXPECT_EQ(mem.u64(0), 500500u);
  }
}

// Flags computed before a store that faults and stops must survive the restart.
TEST_P(CpuTest, FlagsSurviveAFaultStop) {
  load_code(*a().flags);
  set(a().value, 5);
  set(x86() ? "rbx" : "x3", 5);
  set(a().addr, kData);
  set(x86() ? "rcx" : "x2", 9);
  set(x86() ? "rdx" : "x4", 0x77);
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_RW));
  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  EXPECT_EQ(r(x86() ? "rdx" : "x4"), x86() ? 0x01u : 1u);  // sete dl / cset x4, eq
  EXPECT_EQ(data.u64(0), 9u);
}

TEST_P(CpuTest, ThreadPointerRegister) {
  load_code(*a().tls);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_R));
  data.set_u64(8, 0x7157);
  cpu->set_tls(x86() ? kData : 0x7157);
  EXPECT_EQ(cpu->tls(), x86() ? kData : 0x7157);
  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  EXPECT_EQ(r(a().value), 0x7157u);
}

TEST_P(CpuTest, ContextCopiedToAnotherCpuRunsIdentically) {
  load_code(*a().mix);
  ASSERT_TRUE(cpu->map(kData, PAGE_SIZE, data.page(0), PERM_RW));
  set(a().value, 3);
  set(x86() ? "rbx" : "x3", 4);
  set(x86() ? "rcx" : "x2", 5);
  set(a().addr, kData);
  set(x86() ? "xmm7" : "v7", 0xabcdef);
  cpu->set_tls(0x1000);
  CpuContext before = cpu->save_context();

  auto child = UnicornCpu::create(a().arch);
  ASSERT_TRUE(child);
  HostPages child_data(1);
  ASSERT_TRUE((*child)->map(kCode, PAGE_SIZE, code_mem.page(0), PERM_RX));
  ASSERT_TRUE((*child)->map(kData, PAGE_SIZE, child_data.page(0), PERM_RW));
  ASSERT_TRUE((*child)->restore_context(before));
  EXPECT_EQ((*child)->save_context(), before);
  EXPECT_EQ((*child)->tls(), 0x1000u);

  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  ASSERT_EQ((*child)->run(0).reason, StopReason::Exception);
  EXPECT_EQ(data.u64(0), 35u);
  EXPECT_EQ(child_data.u64(0), 35u);
  EXPECT_EQ((*child)->save_context(), cpu->save_context());
  EXPECT_NE(cpu->save_context(), before);
  EXPECT_EQ(*(*child)->reg(x86() ? "xmm7" : "v7"), 0xabcdefu);

  auto other = UnicornCpu::create(x86() ? Arch::Arm64 : Arch::X86_64);
  ASSERT_TRUE(other);
  EXPECT_EQ((*other)->restore_context(before), fail(EINVAL));
}

TEST_P(CpuTest, NamedRegisters) {
  EXPECT_TRUE(cpu->set_reg(a().value, 99));
  EXPECT_EQ(r(a().value), 99u);
  EXPECT_EQ(cpu->syscall_ret(), 99u);
  EXPECT_EQ(cpu->reg("nosuchreg"), std::unexpected(Errno{ENOENT}));
  EXPECT_EQ(cpu->set_reg("nosuchreg", 1), fail(ENOENT));
  auto names = cpu->reg_names();
  EXPECT_EQ(names.size(), x86() ? 20u : 35u);
  for (auto n : names)
    EXPECT_TRUE(cpu->reg(n)) << n;
  cpu->set_sp(0x7ff0);
  EXPECT_EQ(r(x86() ? "rsp" : "sp"), 0x7ff0u);
  for (unsigned i = 0; i < 6; i++)
    cpu->set_syscall_arg(i, 100 + i);
  const char* x86_args[] = {"rdi", "rsi", "rdx", "r10", "r8", "r9"};
  const char* arm_args[] = {"x0", "x1", "x2", "x3", "x4", "x5"};
  for (unsigned i = 0; i < 6; i++)
    EXPECT_EQ(r(x86() ? x86_args[i] : arm_args[i]), 100 + i);
}

TEST_P(CpuTest, RegionBookkeeping) {
  HostPages mem(8);
  EXPECT_EQ(cpu->map(kData + 1, PAGE_SIZE, mem.page(0), PERM_R), fail(EINVAL));
  EXPECT_EQ(cpu->map(kData, 100, mem.page(0), PERM_R), fail(EINVAL));
  EXPECT_EQ(cpu->map(kData, PAGE_SIZE, mem.page(0) + 8, PERM_R), fail(EINVAL));
  ASSERT_TRUE(cpu->map(kData, 4 * PAGE_SIZE, mem.page(0), PERM_RW));
  EXPECT_EQ(cpu->map(kData + 3 * PAGE_SIZE, 2 * PAGE_SIZE, mem.page(4), PERM_R), fail(EEXIST));
  EXPECT_EQ(cpu->map(kData - PAGE_SIZE, 2 * PAGE_SIZE, mem.page(4), PERM_R), fail(EEXIST));
  EXPECT_EQ(cpu->region_count(), 1u);
  // Punch a hole: the region splits in two, the pieces keep their host pages.
  ASSERT_TRUE(cpu->unmap(kData + PAGE_SIZE, PAGE_SIZE));
  EXPECT_EQ(cpu->region_count(), 2u);
  EXPECT_EQ(cpu->unmap(kData, 2 * PAGE_SIZE), fail(ENOENT));
  EXPECT_EQ(cpu->protect(kData + PAGE_SIZE, PAGE_SIZE, PERM_R), fail(ENOENT));
  ASSERT_TRUE(cpu->protect(kData + 3 * PAGE_SIZE, PAGE_SIZE, PERM_R));
  EXPECT_EQ(cpu->region_count(), 3u);
  ASSERT_TRUE(cpu->map(kData + PAGE_SIZE, PAGE_SIZE, mem.page(5), PERM_RW));
  EXPECT_EQ(cpu->region_count(), 4u);
  // Reading each page through the CPU shows which host page backs it.
  mem.set_u64(0, 10);
  mem.set_u64(5 * PAGE_SIZE, 11);
  mem.set_u64(2 * PAGE_SIZE, 12);
  mem.set_u64(3 * PAGE_SIZE, 13);
  load_code(*a().load);
  std::uint64_t expect[] = {10, 11, 12, 13};
  for (unsigned i = 0; i < 4; i++) {
    cpu->set_pc(kCode);
    set(a().addr, kData + i * PAGE_SIZE);
    ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
    EXPECT_EQ(r(a().value), expect[i]);
  }
  // Unmapping across several regions at once; nothing is reachable there afterwards.
  ASSERT_TRUE(cpu->unmap(kData, 4 * PAGE_SIZE));
  EXPECT_EQ(cpu->region_count(), 1u);  // the code page
  cpu->set_pc(kCode);
  set(a().addr, kData + 2 * PAGE_SIZE);
  RunResult res = cpu->run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_TRUE(res.fault.unmapped);
  EXPECT_EQ(res.fault.va, kData + 2 * PAGE_SIZE);
}

// Inside a handler, permissions near the running code may change except for X.
TEST_P(CpuTest, ProtectNearRunningCodeInsideTheHandler) {
  HostPages page(1);
  const auto& code = *a().store;
  std::memcpy(page.page(0), code.data(), code.size());
  ASSERT_TRUE(cpu->map(kCode, PAGE_SIZE, page.page(0), PERM_RX));
  cpu->set_pc(kCode);
  set(a().addr, kCode + 0x800);
  set(a().value, 0x6b6b);
  Result<> drop_x, add_w;
  cpu->set_fault_handler([&](const MemFault&) {
    drop_x = cpu->protect(kCode, PAGE_SIZE, PERM_RW);
    add_w = cpu->protect(kCode, PAGE_SIZE, PERM_RWX);
    return FaultAction::Retry;
  });
  ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  EXPECT_EQ(drop_x, fail(EBUSY));
  EXPECT_TRUE(add_w);
  EXPECT_EQ(page.u64(0x800), 0x6b6bu);
  EXPECT_EQ(r(a().mark), 2u);
}

// A TLB of two data regions: the handler evicts the older one before each refill.
TEST_P(CpuTest, EvictionInsideTheHandler) {
  load_code(*a().loop);
  HostPages mem(1);
  set(a().addr, kData);
  std::vector<vaddr_t> resident;
  int refills = 0;
  cpu->set_fault_handler([&](const MemFault& f) {
    if (resident.size() == 2) {
      EXPECT_TRUE(cpu->unmap(resident.front(), PAGE_SIZE));
      resident.erase(resident.begin());
    }
    vaddr_t pg = page_align_down(f.va);
    EXPECT_TRUE(cpu->map(pg, PAGE_SIZE, mem.page(0), PERM_RW));
    resident.push_back(pg);
    ++refills;
    return FaultAction::Retry;
  });
  // Each run touches one of four pages; the pages rotate so every run refills.
  for (unsigned i = 0; i < 8; i++) {
    cpu->set_pc(kCode);
    set(a().value, 0);
    set(a().addr, kData + (i % 4) * PAGE_SIZE * 16);
    ASSERT_EQ(cpu->run(0).reason, StopReason::Exception);
  }
  EXPECT_EQ(refills, 8);
  EXPECT_EQ(cpu->region_count(), 3u);
  EXPECT_EQ(mem.u64(0), 500500u);
}

// An instruction straddling into a missing page faults while its block is translated:
// nothing of the block has run, so pc is the block start and a restart there is exact.
TEST(CpuX86, FetchStraddlingIntoAMissingPage) {
  auto c = UnicornCpu::create(Arch::X86_64);
  ASSERT_TRUE(c);
  auto& cpu = **c;
  HostPages text(2);
  constexpr std::size_t start = PAGE_SIZE - 6;  // the movabs begins 4 bytes before the end
  std::memcpy(text.page(0) + start, kX86Straddle.data(), kX86Straddle.size());
  ASSERT_TRUE(cpu.map(kCode, PAGE_SIZE, text.page(0), PERM_RX));
  cpu.set_pc(kCode + start);
  RunResult res = cpu.run(0);
  ASSERT_EQ(res.reason, StopReason::MemFault);
  EXPECT_EQ(res.fault.access, Access::Exec);
  EXPECT_EQ(res.fault.va, kCode + PAGE_SIZE);
  EXPECT_EQ(res.fault.pc, kCode + start);
  EXPECT_EQ(cpu.pc(), kCode + start);
  EXPECT_EQ(res.executed, 0u);
  ASSERT_TRUE(cpu.map(kCode + PAGE_SIZE, PAGE_SIZE, text.page(1), PERM_RX));
  res = cpu.run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  EXPECT_EQ(res.executed, 4u);  // nop, nop, movabs, int3
  EXPECT_EQ(*cpu.reg("rax"), 0x0807060504030201u);
}

INSTANTIATE_TEST_SUITE_P(Arch, CpuTest, ::testing::Values(kX86, kArm),
                         [](const auto& p) { return std::string(arch_name(p.param.arch)); });

// ---- exceptions, per architecture ----

struct ExceptionCase {
  const char* name;
  Arch arch;
  const std::vector<std::uint8_t>* code;
  ExceptionKind kind;
  vaddr_t pc_off;  // expected pc offset after the stop
  std::uint32_t code_nr;
  std::uint64_t executed;
};

void PrintTo(const ExceptionCase& c, std::ostream* os) {
  *os << c.name;
}

class CpuExceptionTest : public ::testing::TestWithParam<ExceptionCase> {};

TEST_P(CpuExceptionTest, Classified) {
  const auto& c = GetParam();
  auto cpu = UnicornCpu::create(c.arch);
  ASSERT_TRUE(cpu);
  HostPages text(1);
  std::memcpy(text.page(0), c.code->data(), c.code->size());
  ASSERT_TRUE((*cpu)->map(kCode, PAGE_SIZE, text.page(0), PERM_RX));
  (*cpu)->set_pc(kCode);
  RunResult res = (*cpu)->run(0);
  ASSERT_EQ(res.reason, StopReason::Exception);
  EXPECT_EQ(res.exception.kind, c.kind);
  EXPECT_EQ(res.exception.pc, kCode + c.pc_off);
  EXPECT_EQ((*cpu)->pc(), kCode + c.pc_off);
  if (c.kind == ExceptionKind::SoftwareInterrupt) {
    EXPECT_EQ(res.exception.code, c.code_nr);
  }
  EXPECT_EQ(res.executed, c.executed);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, CpuExceptionTest,
    ::testing::Values(
        ExceptionCase{"x86_ud2", Arch::X86_64, &kX86Ud2, ExceptionKind::IllegalInstruction, 1, 0,
                      1},
        ExceptionCase{"x86_int3", Arch::X86_64, &kX86Int3, ExceptionKind::Breakpoint, 2, 3, 2},
        ExceptionCase{"x86_div0", Arch::X86_64, &kX86Div, ExceptionKind::DivideError, 2, 0, 1},
        ExceptionCase{"x86_hlt", Arch::X86_64, &kX86Hlt, ExceptionKind::Halt, 1, 0, 1},
        ExceptionCase{"x86_int80", Arch::X86_64, &kX86Int80, ExceptionKind::SoftwareInterrupt, 3,
                      0x80, 2},
        ExceptionCase{"arm64_brk", Arch::Arm64, &kArmBrk, ExceptionKind::Breakpoint, 4, 0, 1},
        ExceptionCase{"arm64_udf", Arch::Arm64, &kArmUdf, ExceptionKind::IllegalInstruction, 4, 0,
                      1},
        // wfi halts Unicorn; the CPU goes on as Linux does at EL0, up to the brk.
        ExceptionCase{"arm64_wfi", Arch::Arm64, &kArmWfi, ExceptionKind::Breakpoint, 8, 0, 2}),
    [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace mmemu
