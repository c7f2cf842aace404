// The CPU of one guest process, independent of the emulator behind it. The CPU caches
// translations in its own TLB; on a miss it asks its TlbMissHandler, which walks the
// process's page tables the way a hardware walker does (emu/cpu/walker_tlb.hpp), and the
// mm's flushes reach it through flush_tlb(). The process layer runs the CPU in instruction
// slices and handles what stops it. Unicorn 2.1 implements it in emu/cpu/unicorn_cpu.*.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mmu/types.hpp"
#include "mmu/walker.hpp"

namespace mmemu {

class PhysMem;

// Translation permissions, combined as a bit set.
enum Perm : unsigned { PERM_NONE = 0, PERM_R = 1, PERM_W = 2, PERM_X = 4 };
constexpr unsigned PERM_RW = PERM_R | PERM_W;
constexpr unsigned PERM_RX = PERM_R | PERM_X;
constexpr unsigned PERM_RWX = PERM_R | PERM_W | PERM_X;

// Access kinds are the walker's (mmu/walker.hpp): Read, Write, Exec (an instruction fetch).
std::string_view access_name(Access a);  // "read", "write", "fetch"

// A guest access the TLB could not translate: the miss handler found no translation that
// allows it (and could not make one).
struct MemFault {
  vaddr_t va = 0;  // the exact faulting address (a straddling access reports each page)
  Access access = Access::Read;
  // Where execution restarts: the faulting instruction itself (for a fetch, its target;
  // nothing of it has run).
  vaddr_t pc = 0;
};

// A TLB entry: the frame behind a page and what the entry allows (PERM_*; W only once the
// page is dirty, so that the first store misses again and the walker can set D).
struct TlbFill {
  pfn_t pfn = 0;
  unsigned perms = PERM_NONE;
};

// Called inside the emulator on every TLB miss, like a hardware page-table walker. It may
// resolve the fault (demand paging, copy-on-write) before answering. nullopt stops the run
// with MemFault at the exact instruction.
class TlbMissHandler {
 public:
  virtual ~TlbMissHandler() = default;
  virtual std::optional<TlbFill> tlb_miss(vaddr_t va, Access access) = 0;
  // The frame behind va for reading the guest's code (no accessed-bit update, no fault);
  // kNoPfn when there is none.
  virtual pfn_t peek(vaddr_t va) = 0;
};

// The answer to a system call, given inside the hook. Registers may be changed there.
enum class SyscallAction : std::uint8_t {
  Continue,  // handled (return value set): go on with the next instruction
  Stop,      // leave the run (run() returns Syscall); handle it outside
  Exit,      // the process is gone: leave the run (run() returns Exited)
};
using SyscallHandler = std::function<SyscallAction()>;

enum class StopReason : std::uint8_t {
  Syscall,    // a system-call instruction completed; pc is past it; nr/args readable
  MemFault,   // the miss handler found no translation; see RunResult::fault
  SliceEnd,   // max_instructions completed; pc is the next instruction
  Exception,  // illegal instruction, breakpoint, arithmetic trap, ...; see exception
  Exited,     // a syscall handler answered Exit
};
std::string_view stop_reason_name(StopReason r);

enum class ExceptionKind : std::uint8_t {
  IllegalInstruction,  // SIGILL: x86 #UD (ud2, AVX, sysenter...), arm64 udf/hlt/hvc/smc
  Breakpoint,          // SIGTRAP: x86 int3 (pc past it), arm64 brk (pc at it)
  DivideError,         // SIGFPE: x86 #DE (pc at the div)
  SoftwareInterrupt,   // x86 int N other than 3 (code = N, pc past it): 0x80 is the ia32
                       // syscall gate on Linux, any other N raises SIGSEGV there
  Halt,                // x86 hlt (pc at it): SIGSEGV on Linux
  Other,               // anything the backend cannot classify (code says what)
};
std::string_view exception_kind_name(ExceptionKind k);

struct ExceptionInfo {
  ExceptionKind kind = ExceptionKind::Other;
  vaddr_t pc = 0;          // pc as Linux reports it for this trap (see ExceptionKind)
  std::uint32_t code = 0;  // backend detail: Unicorn interrupt number, or vector of int N
};

struct RunResult {
  StopReason reason = StopReason::SliceEnd;
  std::uint64_t executed = 0;  // instructions completed during this run() call
  MemFault fault{};            // valid when reason == MemFault
  ExceptionInfo exception{};   // valid when reason == Exception
};

// Full user-visible register state, for signal frames and fork (the child CPU starts as a
// copy of the parent's registers).
struct X86Context {
  std::array<std::uint64_t, 16> gpr{};  // rax rbx rcx rdx rsi rdi rbp rsp r8..r15
  std::uint64_t rip = 0, rflags = 0, fs_base = 0, gs_base = 0;
  std::uint16_t fcw = 0x37f, fsw = 0, ftw = 0xffff;   // x87 control, status (with TOP), tags
  std::array<std::array<std::uint8_t, 10>, 8> fpr{};  // x87 physical registers R0..R7
  std::uint32_t mxcsr = 0x1f80;
  std::array<std::array<std::uint8_t, 16>, 16> xmm{};
  friend bool operator==(const X86Context&, const X86Context&) = default;
};
struct Arm64Context {
  std::array<std::uint64_t, 31> x{};  // x0..x30
  std::uint64_t sp = 0, pc = 0, nzcv = 0, tpidr_el0 = 0, tpidrro_el0 = 0;
  std::uint32_t fpcr = 0, fpsr = 0;
  std::array<std::array<std::uint8_t, 16>, 32> v{};
  friend bool operator==(const Arm64Context&, const Arm64Context&) = default;
};
using CpuContext = std::variant<X86Context, Arm64Context>;

class Cpu {
 public:
  virtual ~Cpu() = default;
  virtual Arch arch() const = 0;

  // Registers in each architecture's Linux ABI.
  virtual vaddr_t pc() const = 0;
  virtual void set_pc(vaddr_t v) = 0;
  virtual std::uint64_t sp() const = 0;
  virtual void set_sp(std::uint64_t v) = 0;
  virtual std::uint64_t syscall_nr() const = 0;             // rax / x8
  virtual std::uint64_t syscall_arg(unsigned i) const = 0;  // rdi rsi rdx r10 r8 r9 / x0..x5
  virtual void set_syscall_arg(unsigned i, std::uint64_t v) = 0;
  virtual std::uint64_t syscall_ret() const = 0;  // rax / x0
  virtual void set_syscall_ret(std::uint64_t v) = 0;
  virtual std::uint64_t tls() const = 0;  // fs_base / tpidr_el0
  virtual void set_tls(std::uint64_t v) = 0;

  // Any register by its lower-case name ("rax", "xmm3", "x29", "nzcv", "v0"; vector
  // registers read as their low 64 bits). ENOENT for an unknown name.
  virtual Result<std::uint64_t> reg(std::string_view name) const = 0;
  virtual Result<> set_reg(std::string_view name, std::uint64_t v) = 0;
  virtual std::vector<std::string_view> reg_names() const = 0;  // general registers, for dumps

  virtual CpuContext save_context() const = 0;
  virtual Result<> restore_context(const CpuContext& ctx) = 0;  // EINVAL: other arch

  // Translation: the miss handler (none: every access faults) and the TLB flush. A flush
  // drops every cached translation; it may be called inside the miss handler.
  virtual void set_tlb_miss_handler(TlbMissHandler* h) = 0;
  virtual void flush_tlb() = 0;
  // Handlers run inside the emulator: they may read and write registers, never run().
  // Without a handler, syscalls stop the run.
  virtual void set_syscall_handler(SyscallHandler h) = 0;

  // Run from pc() until something stops it or the slice of max_instructions (0: no limit)
  // is used up. Slices end on translation-block boundaries: a run stops before a block
  // that would take it past the budget (so `executed` <= max_instructions, except that a
  // run always completes at least its first block). After a MemFault or Exception stop,
  // pc() is where a restart or signal frame belongs. An instruction counts as completed
  // unless the stop leaves pc() at it (a fault, ud2, arm64 brk); int3, syscalls and svc
  // count.
  virtual RunResult run(std::uint64_t max_instructions) = 0;
  virtual std::uint64_t instructions() const = 0;  // completed over the CPU's life
};

// Creates the CPU of a new process (fork, execve, the first process) over the machine's
// physical memory; ENOMEM when the backend cannot. The kernel is handed one, so it never
// names a backend.
using CpuFactory = std::function<Result<std::unique_ptr<Cpu>>(Arch, PhysMem&)>;

}  // namespace mmemu
