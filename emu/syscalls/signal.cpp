// Signal system calls: kill/tgkill/tkill, rt_sigaction, rt_sigprocmask, rt_sigpending,
// rt_sigsuspend, pause, sigaltstack, rt_sigqueueinfo, rt_sigreturn.
#include <cstring>

#include "emu/signal/frame.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

// The sa_flags bits Linux keeps (UAPI_SA_FLAGS); others read back as clear.
constexpr std::uint64_t kUapiSaFlags = kSaNoCldStop | kSaNoCldWait | kSaSiginfo | kSaOnStack |
                                       kSaRestart | kSaNoDefer | kSaResetHand | kSaRestorer |
                                       0x800 /* SA_EXPOSE_TAGBITS */;

bool valid_sig(std::uint64_t sig) {
  return sig >= 1 && sig <= static_cast<std::uint64_t>(kNSig);
}

SigInfo user_info(const SyscallContext& ctx, int sig, int code) {
  SigInfo i;
  i.signo = sig;
  i.code = code;
  i.pid = ctx.proc.pid;
  i.uid = ctx.proc.cred.uid;
  return i;
}

SysResult sys_kill(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  const int sig = ctx.arg_int(1);
  if (sig < 0 || sig > kNSig) return SysResult::err(EINVAL);
  std::vector<Process*> targets;
  if (pid > 0) {
    if (Process* t = ctx.kernel.find(pid)) targets.push_back(t);
  } else {
    const int pgid = pid == 0 ? ctx.proc.pgid : -pid;
    for (Process* t : ctx.kernel.processes()) {
      if (pid == -1) {
        if (t != &ctx.proc) targets.push_back(t);
      } else if (t->pgid == pgid) {
        targets.push_back(t);
      }
    }
  }
  if (targets.empty()) return SysResult::err(ESRCH);
  if (sig == 0) return SysResult::ok(0);
  for (Process* t : targets)
    ctx.kernel.send_signal(*t, user_info(ctx, sig, kSiUser));
  return SysResult::ok(0);
}

SysResult do_tkill(SyscallContext& ctx, int tgid, int tid, int sig) {
  if (tid <= 0) return SysResult::err(EINVAL);
  if (sig < 0 || sig > kNSig) return SysResult::err(EINVAL);
  Process* t = ctx.kernel.find(tid);
  if (!t || (tgid > 0 && t->pid != tgid)) return SysResult::err(ESRCH);
  if (sig == 0) return SysResult::ok(0);
  ctx.kernel.send_signal(*t, user_info(ctx, sig, kSiTkill));
  return SysResult::ok(0);
}

SysResult sys_tgkill(SyscallContext& ctx) {
  if (ctx.arg_int(0) <= 0) return SysResult::err(EINVAL);
  return do_tkill(ctx, ctx.arg_int(0), ctx.arg_int(1), ctx.arg_int(2));
}

SysResult sys_tkill(SyscallContext& ctx) {
  return do_tkill(ctx, 0, ctx.arg_int(0), ctx.arg_int(1));
}

SysResult sys_rt_sigqueueinfo(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  const int sig = ctx.arg_int(1);
  std::array<std::uint8_t, 128> raw{};
  if (!ctx.read(ctx.arg(2), raw.data(), raw.size())) return SysResult::err(EFAULT);
  SigInfo i;
  std::memcpy(&i.code, raw.data() + 8, 4);
  std::memcpy(&i.pid, raw.data() + 16, 4);
  std::memcpy(&i.uid, raw.data() + 20, 4);
  std::memcpy(&i.value, raw.data() + 24, 8);
  i.signo = sig;
  // A process may not pretend to be the kernel (or kill) when signalling another process.
  if ((i.code >= 0 || i.code == kSiTkill) && pid != ctx.proc.pid) return SysResult::err(EPERM);
  if (sig < 0 || sig > kNSig) return SysResult::err(EINVAL);
  Process* t = ctx.kernel.find(pid);
  if (!t) return SysResult::err(ESRCH);
  if (sig) ctx.kernel.send_signal(*t, i);
  return SysResult::ok(0);
}

SysResult sys_rt_sigaction(SyscallContext& ctx) {
  const std::uint64_t sig = ctx.arg(0);
  const vaddr_t act_at = ctx.arg(1), old_at = ctx.arg(2);
  if (ctx.arg(3) != 8) return SysResult::err(EINVAL);
  if (!valid_sig(sig)) return SysResult::err(EINVAL);
  const int s = static_cast<int>(sig);
  KSigAction nu;
  if (act_at) {
    std::uint64_t raw[4];
    if (!ctx.read(act_at, raw, sizeof raw)) return SysResult::err(EFAULT);
    nu = {raw[0], raw[1] & kUapiSaFlags, raw[2], raw[3] & ~kUnblockable};
    if (s == kSigKill || s == kSigStop) return SysResult::err(EINVAL);
  }
  if (old_at) {
    const KSigAction& o = ctx.proc.sig.act(s);
    const std::uint64_t raw[4] = {o.handler, o.flags, o.restorer, o.mask};
    if (!ctx.write(old_at, raw, sizeof raw)) return SysResult::err(EFAULT);
  }
  if (act_at) {
    SignalState& st = ctx.proc.sig;
    st.act(s) = nu;
    // POSIX: setting SIG_IGN (or a default of ignore) discards a pending instance.
    const bool ignored = nu.handler == kSigIgn ||
                         (nu.handler == kSigDfl && default_action(s) == DefaultAction::Ignore);
    if (ignored) {
      st.pending &= ~sig_bit(s);
      std::erase_if(st.rt_queue, [s](const SigInfo& i) { return i.signo == s; });
    }
  }
  return SysResult::ok(0);
}

SysResult sys_rt_sigprocmask(SyscallContext& ctx) {
  const int how = ctx.arg_int(0);
  const vaddr_t set_at = ctx.arg(1), old_at = ctx.arg(2);
  if (ctx.arg(3) != 8) return SysResult::err(EINVAL);
  SignalState& st = ctx.proc.sig;
  const sigset64 old = st.blocked;
  if (set_at) {
    auto set = ctx.read_obj<std::uint64_t>(set_at);
    if (!set) return SysResult::err(EFAULT);
    sigset64 nu;
    switch (how) {
      case 0:  // SIG_BLOCK
        nu = old | *set;
        break;
      case 1:  // SIG_UNBLOCK
        nu = old & ~*set;
        break;
      case 2:  // SIG_SETMASK
        nu = *set;
        break;
      default:
        return SysResult::err(EINVAL);
    }
    st.blocked = nu & ~kUnblockable;
  }
  if (old_at && !ctx.write_obj<std::uint64_t>(old_at, old)) return SysResult::err(EFAULT);
  return SysResult::ok(0);
}

SysResult sys_rt_sigpending(SyscallContext& ctx) {
  if (ctx.arg(1) > 8) return SysResult::err(EINVAL);
  const sigset64 set = ctx.proc.sig.pending_set() & ctx.proc.sig.blocked;
  if (!ctx.write(ctx.arg(0), &set, ctx.arg(1))) return SysResult::err(EFAULT);
  return SysResult::ok(0);
}

// Waits for a signal that runs a handler (or kills); never returns anything but -EINTR.
SysResult wait_for_signal(SyscallContext&) {
  return SysResult::block_until(0, nullptr, Restart::Never);
}

SysResult sys_rt_sigsuspend(SyscallContext& ctx) {
  if (ctx.arg(1) != 8) return SysResult::err(EINVAL);
  if (ctx.retry == 0) {
    auto mask = ctx.read_obj<std::uint64_t>(ctx.arg(0));
    if (!mask) return SysResult::err(EFAULT);
    if (!ctx.proc.sig.saved_mask) ctx.proc.sig.saved_mask = ctx.proc.sig.blocked;
    ctx.proc.sig.blocked = *mask & ~kUnblockable;
  }
  return wait_for_signal(ctx);
}

SysResult sys_pause(SyscallContext& ctx) {
  return wait_for_signal(ctx);
}

// do_sigtimedwait: takes a pending signal of the set (blocked or not) with its siginfo;
// -EAGAIN once the timeout passes, -EINTR when another signal is to be handled first.
SysResult sys_rt_sigtimedwait(SyscallContext& ctx) {
  if (ctx.arg(3) != 8) return SysResult::err(EINVAL);
  SignalState& st = ctx.proc.sig;
  if (st.real_blocked) {  // a retry: the wait is over whatever happens next
    st.blocked = *st.real_blocked;
    st.real_blocked.reset();
  }
  auto set = ctx.read_obj<std::uint64_t>(ctx.arg(0));
  if (!set) return SysResult::err(EFAULT);
  const sigset64 want = *set & ~kUnblockable;
  std::uint64_t timeout_ns = 0;
  bool has_timeout = false;
  if (ctx.arg(2)) {
    std::int64_t ts[2];
    if (!ctx.read(ctx.arg(2), ts, sizeof ts)) return SysResult::err(EFAULT);
    if (ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000) return SysResult::err(EINVAL);
    has_timeout = true;
    timeout_ns =
        static_cast<std::uint64_t>(ts[0]) * 1000000000ULL + static_cast<std::uint64_t>(ts[1]);
  }
  const sigset64 ready = st.pending_set() & want;
  if (ready) {
    // Synchronous signals first, then the lowest, as next_signal picks.
    SignalState probe;
    probe.pending = ready;
    const int sig = probe.next_deliverable();
    SigInfo info;
    if (sig >= 32) {
      for (auto it = st.rt_queue.begin(); it != st.rt_queue.end(); ++it)
        if (it->signo == sig) {
          info = *it;
          st.rt_queue.erase(it);
          break;
        }
    } else {
      info = st.info[sig - 1];
      st.pending &= ~sig_bit(sig);
    }
    if (ctx.arg(1)) {
      const auto raw = sigframe::encode_siginfo(info);
      if (!ctx.write(ctx.arg(1), raw.data(), raw.size())) return SysResult::err(EFAULT);
    }
    return SysResult::ok(static_cast<std::uint64_t>(sig));
  }
  const std::uint64_t now = host_monotonic_ns();
  std::uint64_t deadline = 0;
  if (ctx.retry == 0) {
    if (has_timeout && timeout_ns == 0) return SysResult::err(EAGAIN);
    if (has_timeout) deadline = now + timeout_ns;
  } else {
    deadline = ctx.deadline_ns;
    if (deadline && now >= deadline) return SysResult::err(EAGAIN);
    if (st.next_deliverable()) return SysResult::err(EINTR);
  }
  st.real_blocked = st.blocked;
  st.blocked &= ~want;
  return SysResult::block_until(deadline, nullptr, Restart::Never);
}

SysResult sys_sigaltstack(SyscallContext& ctx) {
  const vaddr_t ss_at = ctx.arg(0), old_at = ctx.arg(1);
  Process& p = ctx.proc;
  const std::uint64_t sp = p.cpu->sp();
  std::uint8_t old[24];
  sigframe::save_altstack(p, sp, old);
  if (ss_at) {
    std::uint8_t nu[24];
    if (!ctx.read(ss_at, nu, sizeof nu)) return SysResult::err(EFAULT);
    const auto ss_sp = sigframe::get<std::uint64_t>(nu, 0);
    const auto flags = sigframe::get<std::int32_t>(nu, 8);
    const auto size = sigframe::get<std::uint64_t>(nu, 16);
    if (sigframe::sas_ss_flags(p.sig.altstack, sp) == sigframe::kSsOnStack)
      return SysResult::err(EPERM);
    const int mode = flags & ~static_cast<std::int32_t>(1U << 31);  // SS_AUTODISARM
    if (mode != 0 && mode != sigframe::kSsDisable && mode != sigframe::kSsOnStack)
      return SysResult::err(EINVAL);
    if (mode == sigframe::kSsDisable) {
      p.sig.altstack = AltStack{};
    } else {
      const std::uint64_t min = ctx.arch() == Arch::X86_64 ? 2048 : 5120;  // MINSIGSTKSZ
      if (size < min) return SysResult::err(ENOMEM);
      p.sig.altstack = AltStack{ss_sp, size, 0};
    }
  }
  if (old_at && !ctx.write(old_at, old, sizeof old)) return SysResult::err(EFAULT);
  return SysResult::ok(0);
}

SysResult sys_rt_sigreturn(SyscallContext& ctx) {
  sigset64 blocked = 0;
  if (!restore_rt_frame(ctx.kernel, ctx.proc, &blocked)) {
    ctx.kernel.force_signal(ctx.proc, SigInfo{11, 0, 0x80, 0, 0, 0, 0, 0});
    return SysResult::no_return();
  }
  ctx.proc.sig.blocked = blocked;
  return SysResult::no_return();
}

}  // namespace

void register_signal_syscalls(SyscallTable& t) {
  t.add(Sys::kill, sys_kill);
  t.add(Sys::tgkill, sys_tgkill);
  t.add(Sys::tkill, sys_tkill);
  t.add(Sys::rt_sigqueueinfo, sys_rt_sigqueueinfo);
  t.add(Sys::rt_sigaction, sys_rt_sigaction);
  t.add(Sys::rt_sigprocmask, sys_rt_sigprocmask);
  t.add(Sys::rt_sigpending, sys_rt_sigpending);
  t.add(Sys::rt_sigsuspend, sys_rt_sigsuspend);
  t.add(Sys::pause, sys_pause);
  t.add(Sys::sigaltstack, sys_sigaltstack);
  t.add(Sys::rt_sigtimedwait, sys_rt_sigtimedwait);
  t.add(Sys::rt_sigreturn, sys_rt_sigreturn);
}

}  // namespace mmemu
