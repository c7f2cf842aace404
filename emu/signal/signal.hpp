// Signal state of a guest process and the delivery machinery: sigaction table, blocked and
// pending sets, siginfo, the alternate stack, and the Linux-exact rt_sigframe of each
// architecture (emu/signal/frame_x86_64.cpp, emu/signal/frame_arm64.cpp). Signal numbers and SA_*
// values are the same on x86_64 and arm64 and equal to the host's <signal.h>.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "mmu/types.hpp"

namespace mmemu {

class Process;
class Kernel;

inline constexpr int kNSig = 64;  // _NSIG
using sigset64 = std::uint64_t;   // bit (sig - 1), as the kernel's sigset_t on 64-bit
constexpr sigset64 sig_bit(int sig) {
  return 1ULL << (sig - 1);
}
inline constexpr int kSigKill = 9, kSigStop = 19;
// Never blockable, never caught.
inline constexpr sigset64 kUnblockable = (1ULL << (kSigKill - 1)) | (1ULL << (kSigStop - 1));

// sa_flags bits (uapi values; SA_RESTORER is not in glibc's public headers).
inline constexpr std::uint64_t kSaNoCldStop = 0x1, kSaNoCldWait = 0x2, kSaSiginfo = 0x4,
                               kSaRestorer = 0x04000000, kSaOnStack = 0x08000000,
                               kSaRestart = 0x10000000, kSaNoDefer = 0x40000000,
                               kSaResetHand = 0x80000000;
inline constexpr std::uint64_t kSigDfl = 0, kSigIgn = 1;

// struct k_sigaction as rt_sigaction passes it (handler, flags, restorer, mask).
struct KSigAction {
  std::uint64_t handler = kSigDfl;
  std::uint64_t flags = 0;
  std::uint64_t restorer = 0;
  sigset64 mask = 0;
  friend bool operator==(const KSigAction&, const KSigAction&) = default;
};

// si_code values used here (uapi).
inline constexpr int kSiUser = 0, kSiKernel = 0x80, kSiQueue = -1, kSiTkill = -6;
inline constexpr int kSegvMapErr = 1, kSegvAccErr = 2, kBusAdrAln = 1, kBusAdrErr = 2,
                     kIllIllOpc = 1, kIllIllOpn = 2, kFpeIntDiv = 1, kTrapBrkpt = 1, kCldExited = 1,
                     kCldKilled = 2, kCldDumped = 3;

// kernel_siginfo: which union member is meaningful follows from signo/code, as in Linux.
struct SigInfo {
  int signo = 0;
  int err = 0;  // si_errno
  int code = 0;
  int pid = 0;              // sender (SI_USER, SI_TKILL, SI_QUEUE) or child (SIGCHLD)
  std::uint32_t uid = 0;    // sender's uid
  int status = 0;           // SIGCHLD: exit code or signal
  std::uint64_t addr = 0;   // SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP: si_addr
  std::uint64_t value = 0;  // sigqueue's sival
  std::uint32_t pkey = 0;   // SIGSEGV SEGV_PKUERR: si_pkey
};

// What happens when a signal with SIG_DFL arrives (sig_kernel_* in Linux).
enum class DefaultAction : std::uint8_t { Terminate, CoreDump, Ignore, Stop, Continue };
DefaultAction default_action(int sig);
std::string_view signal_name(int sig);  // "SIGSEGV"; "SIG34" style for real-time ones

struct AltStack {
  std::uint64_t sp = 0;
  std::uint64_t size = 0;
  int flags = 2;  // SS_DISABLE; SS_ONSTACK is computed from the current sp when asked
};

// The part of a process's signal state a forked child inherits (copy_sighand's actions,
// the blocked mask and the alternate stack); pending signals and saved masks are not.
struct SigInherited {
  std::array<KSigAction, kNSig> action{};  // index sig - 1
  sigset64 blocked = 0;
  AltStack altstack;
};

struct SignalState : SigInherited {
  sigset64 pending = 0;               // standard signals: one pending instance each
  std::array<SigInfo, kNSig> info{};  // the pending instance's siginfo (standard signals)
  std::deque<SigInfo> rt_queue;       // pending real-time signals (SIGRTMIN..), in order
  // rt_sigsuspend/ppoll: the mask to restore after the handler frame is set up.
  std::optional<sigset64> saved_mask;
  // rt_sigtimedwait: the mask to put back once the wait ends (the waited-for signals are
  // unblocked while it sleeps, as the kernel's real_blocked).
  std::optional<sigset64> real_blocked;

  SigInherited& inherited() { return *this; }
  const SigInherited& inherited() const { return *this; }
  KSigAction& act(int sig) { return action[sig - 1]; }
  const KSigAction& act(int sig) const { return action[sig - 1]; }
  // Pending and not blocked (SIGKILL/SIGSTOP always), lowest first as Linux picks
  // synchronous signals first; 0 when none. Signals in `skip` are passed over.
  int next_deliverable(sigset64 skip = 0) const;
  // The signal delivery would act on first: next_deliverable() passing over the pending
  // signals whose action is to ignore them (they are discarded on the way, as get_signal
  // does). Decides whether an interrupted call is restarted. 0 when none.
  int next_acted_on() const;
  // Whether sig sent now would be acted on: neither blocked nor ignored.
  bool would_act_on(int sig) const;
  bool is_pending(int sig) const;
  sigset64 pending_set() const;  // rt_sigpending: standard | queued real-time
};

// The register state a handler is entered with and rt_sigreturn restores lives in the
// guest's stack frame; these functions build and read it exactly as Linux lays it out.
// They return false when the frame cannot be written/read (the kernel then forces
// SIGSEGV). Implemented per architecture in emu/signal/frame_x86_64.cpp and
// emu/signal/frame_arm64.cpp.
bool setup_rt_frame(Kernel& k, Process& p, int sig, const KSigAction& ka, const SigInfo& info,
                    sigset64 old_blocked);
bool restore_rt_frame(Kernel& k, Process& p, sigset64* restored_blocked);

}  // namespace mmemu
