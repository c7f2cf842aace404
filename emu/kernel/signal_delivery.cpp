// Signal generation, delivery at the return to user mode, and interrupted system calls.
#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

constexpr int kSigRtMin = 32;
constexpr std::int64_t kEintr = 4;

bool is_handler(const KSigAction& ka) {
  return ka.handler != kSigDfl && ka.handler != kSigIgn;
}

// sig_ignored: discarded at generation (never for a blocked signal, which may be unblocked
// after its action changes).
bool sig_ignored(const Process& p, int sig) {
  if (p.sig.blocked & sig_bit(sig) & ~kUnblockable) return false;
  const KSigAction& ka = p.sig.act(sig);
  if (ka.handler == kSigIgn) return sig != kSigKill && sig != kSigStop;
  return ka.handler == kSigDfl && default_action(sig) == DefaultAction::Ignore;
}

// How far back the pc must go to re-execute the system-call instruction.
std::uint64_t syscall_insn_len(Arch a) {
  return a == Arch::X86_64 ? 2 : 4;
}

}  // namespace

void Kernel::send_signal(Process& p, const SigInfo& info) {
  const int sig = info.signo;
  if (sig < 1 || sig > kNSig || p.state == ProcState::Zombie) return;
  if (sig == 18 /* SIGCONT */ || sig == kSigKill) {
    // SIGCONT (and SIGKILL) resume a stopped process; pending stop signals go.
    p.sig.pending &= ~(sig_bit(19) | sig_bit(20) | sig_bit(21) | sig_bit(22));
    if (p.state == ProcState::Stopped) make_runnable(p);
  }
  if (sig == 19 || sig == 20 || sig == 21 || sig == 22) p.sig.pending &= ~sig_bit(18);
  if (sig_ignored(p, sig)) return;
  if (sig >= kSigRtMin) {
    p.sig.rt_queue.push_back(info);
  } else {
    if (p.sig.pending & sig_bit(sig)) return;  // standard signals do not queue
    p.sig.pending |= sig_bit(sig);
    p.sig.info[sig - 1] = info;
  }
  const bool deliverable = sig == kSigKill || !(p.sig.blocked & sig_bit(sig));
  const bool killable_only =
      p.blocked && p.blocked->restart == Restart::Uninterruptible && sig != kSigKill;
  if (deliverable && !killable_only && p.state == ProcState::Blocked) make_runnable(p);
}

void Kernel::force_signal(Process& p, const SigInfo& info) {
  const int sig = info.signo;
  KSigAction& ka = p.sig.act(sig);
  const bool blocked = (p.sig.blocked & sig_bit(sig)) != 0;
  if (blocked || ka.handler == kSigIgn) {
    ka.handler = kSigDfl;
    p.sig.blocked &= ~sig_bit(sig);
  }
  send_signal(p, info);
}

// Takes the pending instance of sig off the queue.
static SigInfo dequeue(Process& p, int sig) {
  SigInfo info;
  if (sig >= kSigRtMin) {
    for (auto it = p.sig.rt_queue.begin(); it != p.sig.rt_queue.end(); ++it)
      if (it->signo == sig) {
        info = *it;
        p.sig.rt_queue.erase(it);
        break;
      }
  } else {
    info = p.sig.info[sig - 1];
    p.sig.pending &= ~sig_bit(sig);
  }
  return info;
}

void Kernel::interrupt_blocked(Process& p) {
  const BlockedCall call = *p.blocked;
  p.blocked.reset();
  p.state = ProcState::Runnable;
  // The first signal that is not discarded decides, as the first handler frame does in
  // Linux (ignored ones go before it; with none left the call restarts).
  const int sig = p.sig.next_acted_on();
  const KSigAction& ka = p.sig.act(sig ? sig : 1);
  bool restart = true;  // no handler runs: the call is restarted transparently
  if (sig && is_handler(ka))
    restart = call.restart == Restart::IfSaRestart && (ka.flags & kSaRestart) != 0;
  if (restart) {
    // Registers were never touched while it waited: re-executing the instruction re-issues
    // the same call (rax / x8 and the arguments are still in place).
    p.cpu->set_pc(p.cpu->pc() - syscall_insn_len(p.arch));
  } else {
    p.cpu->set_syscall_ret(static_cast<std::uint64_t>(-kEintr));
  }
  record("syscall_interrupted", p.pid,
         {{"name", sys_name(static_cast<Sys>(call.sys))}, {"restart", restart}, {"sig", sig}});
}

bool Kernel::deliver_signals(Process& p) {
  while (p.state == ProcState::Runnable && p.cpu) {
    const int sig = p.sig.next_deliverable();
    if (!sig) {
      // restore_saved_sigmask: no handler consumed sigsuspend's saved mask.
      if (p.sig.saved_mask) {
        p.sig.blocked = *p.sig.saved_mask;
        p.sig.saved_mask.reset();
      }
      return true;
    }
    const SigInfo info = dequeue(p, sig);
    const KSigAction ka = p.sig.act(sig);
    if (ka.handler == kSigIgn) continue;
    if (ka.handler == kSigDfl) {
      const DefaultAction a = default_action(sig);
      if (a == DefaultAction::Ignore || a == DefaultAction::Continue) continue;
      if (a == DefaultAction::Stop) {
        record("signal", p.pid, {{"sig", sig}, {"action", "stop"}});
        p.state = ProcState::Stopped;
        return true;
      }
      const bool core = a == DefaultAction::CoreDump && p.rlimits[Rlim::Core].cur != 0;
      record("signal", p.pid,
             {{"sig", sig},
              {"code", info.code},
              {"addr", fmt::format("{:#x}", info.addr)},
              {"action", a == DefaultAction::CoreDump ? "core" : "terminate"}});
      exit_process(p, sig | (core ? 0x80 : 0));
      return false;
    }
    const sigset64 old = p.sig.saved_mask ? *p.sig.saved_mask : p.sig.blocked;
    p.sig.saved_mask.reset();
    if (!setup_rt_frame(*this, p, sig, ka, info, old)) {
      // force_sigsegv: the frame could not be written (bad stack, no restorer on x86_64).
      record("signal", p.pid, {{"sig", sig}, {"action", "bad-frame"}});
      p.last_trap = {};
      if (sig == 11) p.sig.act(11).handler = kSigDfl;
      force_signal(p, SigInfo{11, 0, 0x80, 0, 0, 0, 0, 0});
      continue;
    }
    p.last_trap = {};
    record("signal", p.pid,
           {{"sig", sig},
            {"code", info.code},
            {"addr", fmt::format("{:#x}", info.addr)},
            {"action", "handler"}});
    p.sig.blocked |= ka.mask;
    if (!(ka.flags & kSaNoDefer)) p.sig.blocked |= sig_bit(sig);
    p.sig.blocked &= ~kUnblockable;
    if (ka.flags & kSaResetHand) p.sig.act(sig).handler = kSigDfl;
  }
  return p.state != ProcState::Zombie;
}

}  // namespace mmemu
