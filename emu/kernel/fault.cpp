// What stops the CPU other than a system call: memory faults (resolved inside the TLB's
// fill, or outside when they end in a signal), and traps (illegal instruction, breakpoint, divide
// error, ...).
#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"

namespace mmemu {

namespace {

// x86 page-fault error code: P (protection), W/R, U/S (always user), I/D (fetch).
std::uint64_t x86_pf_error(const MemFault& f, bool protection) {
  return (protection ? 1u : 0u) | (f.access == Access::Write ? 2u : 0u) | 4u |
         (f.access == Access::Exec ? 0x10u : 0u);
}

// arm64 ESR for an abort from EL0: EC data (0x24) or instruction (0x20) abort, IL, WnR,
// and the fault status (translation or permission fault, level 3).
std::uint64_t arm64_esr(const MemFault& f, bool protection) {
  const std::uint64_t ec = f.access == Access::Exec ? 0x20 : 0x24;
  std::uint64_t esr = (ec << 26) | (1ULL << 25) | (protection ? 0x0f : 0x07);
  if (f.access == Access::Write) esr |= 1ULL << 6;
  return esr;
}

std::string_view outcome_name(const TlbFaultOutcome& o) {
  switch (o.kind) {
    case TlbFaultOutcome::Kind::Retry:
      return "ok";
    case TlbFaultOutcome::Kind::Oom:
      return "oom";
    case TlbFaultOutcome::Kind::Signal:
      break;
  }
  if (o.signo == 7) return "sigbus";
  if (o.result == FaultResult::SegvGuard) return "segv-guard";  // SEGV_MAPERR from a guard marker
  if (o.code == 0x80) return "segv-gp";
  if (o.code == 4) return "segv-pkuerr";
  return o.code == 2 ? "segv-accerr" : "segv-maperr";
}

}  // namespace

TlbFaultOutcome Kernel::resolve_fault(Process& p, const MemFault& f) {
  machine_.inject.set_context(
      fmt::format("pid {}: {} fault at {:#x}", p.pid, access_name(f.access), f.va));
  const TlbFaultOutcome o = p.tlb->resolve(f);
  nlohmann::json ev{{"access", access_name(f.access)},
                    {"addr", fmt::format("{:#x}", f.va)},
                    {"result", outcome_name(o)}};
  // Inside the emulator (the TLB's fill) the CPU's pc is not exact yet: left out there.
  if (f.pc) ev["pc"] = fmt::format("{:#x}", f.pc);
  record("fault", p.pid, std::move(ev));
  stats_.add(fmt::format("fault.{}", outcome_name(o)));
  if (opts_.check) check_mm(p, "fault");
  if (o.kind == TlbFaultOutcome::Kind::Retry) p.oom_retries = 0;
  return o;
}

void Kernel::handle_fault(Process& p, const MemFault& f) {
  // The TLB's fill usually ran the fault handler already; otherwise (no handler, or a
  // fault the walker sends outside) resolve it now.
  std::optional<TlbFaultOutcome> taken = p.tlb->take_outcome();
  // do_user_addr_fault looks at the vsyscall page before any VMA.
  if (emulate_vsyscall(p, f)) return;
  TlbFaultOutcome o = taken ? *taken : resolve_fault(p, f);
  // Inside the fill only the page was known; the stop decoded the exact address.
  if (taken && o.kind == TlbFaultOutcome::Kind::Signal && o.code != 0x80) o.addr = f.va;
  switch (o.kind) {
    case TlbFaultOutcome::Kind::Retry:
      return;
    case TlbFaultOutcome::Kind::Oom:
      // VM_FAULT_OOM: the kernel reclaims/kills and retries. One more try; a second
      // failure in a row kills the faulting process, as the OOM killer would.
      if (++p.oom_retries <= 1) return;
      p.oom_retries = 0;
      log_.msg(fmt::format("out of memory: killing pid {} (fault at {:#x})", p.pid, f.va));
      record("oom_kill", p.pid, {{"addr", fmt::format("{:#x}", f.va)}});
      send_signal(p, SigInfo{9, 0, 0x80, 0, 0, 0, 0, 0});
      return;
    case TlbFaultOutcome::Kind::Signal:
      break;
  }
  bool protection = o.code == 2;
  std::uint64_t pk = 0;
  if (o.code == 4) {
    // SEGV_PKUERR: the CPU reports X86_PF_PK (and P) only when the entry was present.
    auto ref = p.mm().pt().lookup(page_align_down(f.va));
    if (ref && p.mm().fmt().present(p.mm().pt().get(*ref))) {
      protection = true;
      pk = 0x20;
    }
  }
  p.last_trap = {true, 14, x86_pf_error(f, protection) | pk, o.addr, arm64_esr(f, protection)};
  if (o.code == 0x80) p.last_trap = {true, 13, 0, 0, 0};
  force_signal(p, SigInfo{o.signo, 0, o.code, 0, 0, 0, o.addr, 0, o.pkey});
}

void Kernel::handle_exception(Process& p, const ExceptionInfo& e) {
  SigInfo info;
  const bool x86 = p.arch == Arch::X86_64;
  std::uint64_t trapno = 0;
  switch (e.kind) {
    case ExceptionKind::IllegalInstruction:
      info = {4, 0, x86 ? 2 /* ILL_ILLOPN */ : 1 /* ILL_ILLOPC */, 0, 0, 0, e.pc, 0};
      trapno = 6;
      break;
    case ExceptionKind::Breakpoint:
      // x86 int3: SIGTRAP SI_KERNEL; arm64 brk: TRAP_BRKPT at the brk.
      info = x86 ? SigInfo{5, 0, 0x80, 0, 0, 0, 0, 0} : SigInfo{5, 0, 1, 0, 0, 0, e.pc, 0};
      trapno = 3;
      break;
    case ExceptionKind::DivideError:
      info = {8, 0, 1 /* FPE_INTDIV */, 0, 0, 0, e.pc, 0};
      trapno = 0;
      break;
    case ExceptionKind::SoftwareInterrupt:
    case ExceptionKind::Halt:
      // int N without a user gate, hlt: #GP -> SIGSEGV SI_KERNEL, si_addr 0.
      if (e.kind == ExceptionKind::SoftwareInterrupt && e.code == 0x80)
        log_.msg(fmt::format("pid {}: int $0x80 (ia32 system calls) is not supported", p.pid));
      info = {11, 0, 0x80, 0, 0, 0, 0, 0};
      trapno = 13;
      break;
    case ExceptionKind::Other:
      log_.msg(fmt::format("pid {}: CPU stopped for an unknown reason (code {}) at {:#x}", p.pid,
                           e.code, e.pc));
      info = {4, 0, x86 ? 2 : 1, 0, 0, 0, e.pc, 0};
      trapno = 6;
      break;
  }
  record("trap", p.pid,
         {{"kind", exception_kind_name(e.kind)}, {"pc", fmt::format("{:#x}", e.pc)}});
  p.last_trap = {x86, trapno, 0, 0, 0};
  force_signal(p, info);
}

}  // namespace mmemu
