// siginfo encoding, the alternate stack, and the per-architecture frame dispatch.
#include <algorithm>

#include "emu/kernel/kernel.hpp"
#include "emu/signal/frame.hpp"

namespace mmemu {

namespace sigframe {

std::array<std::uint8_t, kSiginfoSize> encode_siginfo(const SigInfo& i) {
  std::array<std::uint8_t, kSiginfoSize> b{};
  put<std::int32_t>(b.data(), 0, i.signo);
  put<std::int32_t>(b.data(), 4, i.err);
  put<std::int32_t>(b.data(), 8, i.code);
  const bool fault =
      (i.signo == 11 || i.signo == 7 || i.signo == 4 || i.signo == 8 || i.signo == 5) &&
      i.code > 0 && i.code < 0x80;
  if (fault) {
    put<std::uint64_t>(b.data(), 16, i.addr);  // _sigfault.si_addr
    // _addr_pkey._pkey, after si_addr and the 8-byte pad (__ADDR_BND_PKEY_PAD).
    if (i.signo == 11 && i.code == 4) put<std::uint32_t>(b.data(), 32, i.pkey);
  } else if (i.signo == 17 && i.code > 0 && i.code < 0x80) {
    put<std::int32_t>(b.data(), 16, i.pid);  // _sigchld
    put<std::uint32_t>(b.data(), 20, i.uid);
    put<std::int32_t>(b.data(), 24, i.status);
  } else if (i.code == 0x80) {
    // SI_KERNEL: nothing else (a #GP's SIGSEGV has si_addr 0).
  } else {
    put<std::int32_t>(b.data(), 16, i.pid);  // _kill / _rt
    put<std::uint32_t>(b.data(), 20, i.uid);
    put<std::uint64_t>(b.data(), 24, i.value);
  }
  return b;
}

int sas_ss_flags(const AltStack& a, std::uint64_t sp) {
  if (a.size == 0) return kSsDisable;
  return (sp > a.sp && sp - a.sp <= a.size) ? kSsOnStack : 0;
}

std::uint64_t sigsp(const Process& p, const KSigAction& ka, std::uint64_t sp) {
  if ((ka.flags & kSaOnStack) && sas_ss_flags(p.sig.altstack, sp) == 0)
    return p.sig.altstack.sp + p.sig.altstack.size;
  return sp;
}

void save_altstack(const Process& p, std::uint64_t sp, std::uint8_t* out) {
  put<std::uint64_t>(out, 0, p.sig.altstack.sp);
  put<std::int32_t>(out, 8, sas_ss_flags(p.sig.altstack, sp));
  put<std::int32_t>(out, 12, 0);
  put<std::uint64_t>(out, 16, p.sig.altstack.size);
}

void restore_altstack(Process& p, const std::uint8_t* in, std::uint64_t sp) {
  const auto ss_sp = get<std::uint64_t>(in, 0);
  const auto flags = get<std::int32_t>(in, 8);
  const auto size = get<std::uint64_t>(in, 16);
  if (sas_ss_flags(p.sig.altstack, sp) == kSsOnStack) return;  // EPERM, ignored
  if (flags & kSsDisable) {
    p.sig.altstack = AltStack{};
    return;
  }
  if ((flags & ~(kSsOnStack | (1 << 31))) != 0) return;  // EINVAL, ignored
  if (size < 2048) return;                               // ENOMEM (MINSIGSTKSZ), ignored
  p.sig.altstack = AltStack{ss_sp, size, 0};
}

}  // namespace sigframe

bool setup_rt_frame(Kernel& k, Process& p, int sig, const KSigAction& ka, const SigInfo& info,
                    sigset64 old_blocked) {
  return p.arch == Arch::X86_64 ? sigframe::setup_rt_frame_x86(k, p, sig, ka, info, old_blocked)
                                : sigframe::setup_rt_frame_arm64(k, p, sig, ka, info, old_blocked);
}

bool restore_rt_frame(Kernel& k, Process& p, sigset64* restored_blocked) {
  return p.arch == Arch::X86_64 ? sigframe::restore_rt_frame_x86(k, p, restored_blocked)
                                : sigframe::restore_rt_frame_arm64(k, p, restored_blocked);
}

}  // namespace mmemu
