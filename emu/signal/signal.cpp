// Signal state queries, default actions and names.
#include "emu/signal/signal.hpp"

#include <fmt/format.h>

#include <bit>

namespace mmemu {

DefaultAction default_action(int sig) {
  switch (sig) {
    case 1:   // SIGHUP
    case 2:   // SIGINT
    case 9:   // SIGKILL
    case 10:  // SIGUSR1
    case 12:  // SIGUSR2
    case 13:  // SIGPIPE
    case 14:  // SIGALRM
    case 15:  // SIGTERM
    case 16:  // SIGSTKFLT
    case 26:  // SIGVTALRM
    case 27:  // SIGPROF
    case 29:  // SIGIO
    case 30:  // SIGPWR
      return DefaultAction::Terminate;
    case 3:   // SIGQUIT
    case 4:   // SIGILL
    case 5:   // SIGTRAP
    case 6:   // SIGABRT
    case 7:   // SIGBUS
    case 8:   // SIGFPE
    case 11:  // SIGSEGV
    case 24:  // SIGXCPU
    case 25:  // SIGXFSZ
    case 31:  // SIGSYS
      return DefaultAction::CoreDump;
    case 17:  // SIGCHLD
    case 23:  // SIGURG
    case 28:  // SIGWINCH
      return DefaultAction::Ignore;
    case 18:  // SIGCONT
      return DefaultAction::Continue;
    case 19:  // SIGSTOP
    case 20:  // SIGTSTP
    case 21:  // SIGTTIN
    case 22:  // SIGTTOU
      return DefaultAction::Stop;
    default:
      return DefaultAction::Terminate;  // real-time signals
  }
}

std::string_view signal_name(int sig) {
  static constexpr std::string_view kNames[] = {
      "0",         "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",   "SIGTRAP", "SIGABRT", "SIGBUS",
      "SIGFPE",    "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",  "SIGPIPE", "SIGALRM", "SIGTERM",
      "SIGSTKFLT", "SIGCHLD", "SIGCONT",   "SIGSTOP", "SIGTSTP",  "SIGTTIN", "SIGTTOU", "SIGURG",
      "SIGXCPU",   "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",   "SIGPWR",  "SIGSYS"};
  if (sig >= 0 && sig < static_cast<int>(std::size(kNames))) return kNames[sig];
  static thread_local std::string buf;
  buf = fmt::format("SIG{}", sig);
  return buf;
}

bool SignalState::is_pending(int sig) const {
  if (sig < 1 || sig > kNSig) return false;
  if (pending & sig_bit(sig)) return true;
  for (const SigInfo& i : rt_queue)
    if (i.signo == sig) return true;
  return false;
}

sigset64 SignalState::pending_set() const {
  sigset64 s = pending;
  for (const SigInfo& i : rt_queue)
    s |= sig_bit(i.signo);
  return s;
}

int SignalState::next_deliverable(sigset64 skip) const {
  const sigset64 ready = pending_set() & ~(blocked & ~kUnblockable) & ~skip;
  if (!ready) return 0;
  // Synchronous (fault) signals first, as Linux's SYNCHRONOUS_MASK, then the lowest.
  constexpr sigset64 kSync =
      sig_bit(11) | sig_bit(7) | sig_bit(4) | sig_bit(5) | sig_bit(8) | sig_bit(31);
  const sigset64 sync = ready & kSync;
  const sigset64 pick = sync ? sync : ready;
  return std::countr_zero(pick) + 1;
}

bool SignalState::would_act_on(int sig) const {
  if (sig < 1 || sig > kNSig) return false;
  if (blocked & sig_bit(sig) & ~kUnblockable) return false;
  const KSigAction& ka = act(sig);
  if (ka.handler == kSigIgn) return sig == kSigKill || sig == kSigStop;
  const DefaultAction a = default_action(sig);
  return ka.handler != kSigDfl || (a != DefaultAction::Ignore && a != DefaultAction::Continue);
}

int SignalState::next_acted_on() const {
  sigset64 skip = 0;
  for (;;) {
    const int sig = next_deliverable(skip);
    if (!sig) return 0;
    const KSigAction& ka = act(sig);
    const DefaultAction a = default_action(sig);
    const bool ignored =
        ka.handler == kSigIgn ||
        (ka.handler == kSigDfl && (a == DefaultAction::Ignore || a == DefaultAction::Continue));
    if (!ignored || sig == kSigKill || sig == kSigStop) return sig;
    skip |= sig_bit(sig);
  }
}

}  // namespace mmemu
