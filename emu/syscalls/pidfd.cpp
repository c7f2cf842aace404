// System calls on process file descriptors (kernel/pid.c, kernel/signal.c, mm/oom_kill.c,
// mm/madvise.c): pidfd_open, pidfd_send_signal, pidfd_getfd, process_mrelease and
// process_madvise. waitid(P_PIDFD) is in process.cpp. The pidfd itself: emu/fs/pidfd.hpp.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <memory>

#include "emu/fs/pidfd.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/walkers.hpp"

namespace mmemu {

namespace {

constexpr int kCapSysPtrace = 19;
constexpr unsigned kSignalThread = 1, kSignalThreadGroup = 2, kSignalProcessGroup = 4;
constexpr int kMadvWillneed = 3, kMadvCold = 20, kMadvPageout = 21, kMadvCollapse = 25;

// pidfd_get_task: the process a pidfd names while it still has its task (EBADF: not a
// pidfd; ESRCH: reaped, or exited — Linux 6.18 answers ESRCH for a zombie here too, as a
// native run shows).
Result<Process*> pidfd_get_task(SyscallContext& ctx, int fd) {
  auto f = pidfd_of(ctx.proc, fd);
  if (!f) return std::unexpected(f.error());
  Process* t = (*f)->process();
  if (!t || t->state == ProcState::Zombie) return fail(ESRCH);
  return t;
}

// __ptrace_may_access with PTRACE_MODE_REALCREDS (fscreds false) or _FSCREDS: the caller
// itself; or the caller's uid (fsuid) matches the target's real, effective and saved uids
// and its gid (fsgid) the target's gids; or CAP_SYS_PTRACE. (No dumpable or LSM checks:
// mmemu models neither.)
bool ptrace_may_access(const Process& caller, const Process& t, bool fscreds) {
  if (&caller == &t) return true;
  const Credentials& c = caller.cred;
  const Credentials& tc = t.cred;
  const std::uint32_t uid = fscreds ? c.fsuid : c.uid, gid = fscreds ? c.fsgid : c.gid;
  if (uid == tc.uid && uid == tc.euid && uid == tc.suid && gid == tc.gid && gid == tc.egid &&
      gid == tc.sgid)
    return true;
  return capable(c, kCapSysPtrace);
}

SysResult sys_pidfd_open(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  const std::uint64_t flags = ctx.arg(1) & 0xffffffffULL;
  if (flags & ~static_cast<std::uint64_t>(kPidfdNonblock | kPidfdThread))
    return SysResult::err(EINVAL);
  if (pid <= 0) return SysResult::err(EINVAL);
  // A zombie keeps its pid until reaped: pidfd_open of one succeeds.
  if (!ctx.kernel.find(pid)) return SysResult::err(ESRCH);
  auto f = std::make_shared<PidfdFile>(ctx.kernel, pid, static_cast<int>(flags));
  auto fd = ctx.proc.fds->install(std::move(f), /*cloexec=*/true);
  if (!fd) return SysResult::err(fd.error().code);
  return SysResult::ok(static_cast<std::uint64_t>(*fd));
}

SysResult sys_pidfd_send_signal(SyscallContext& ctx) {
  const int sig = ctx.arg_int(1);
  const vaddr_t info_at = ctx.arg(2);
  const unsigned flags = static_cast<unsigned>(ctx.arg(3));
  if (sig < 0 || sig > kNSig) return SysResult::err(EINVAL);
  constexpr unsigned kAll = kSignalThread | kSignalThreadGroup | kSignalProcessGroup;
  if (flags & ~kAll) return SysResult::err(EINVAL);
  if (std::popcount(flags) > 1) return SysResult::err(EINVAL);
  auto f = pidfd_of(ctx.proc, ctx.arg_int(0));
  if (!f) return SysResult::err(f.error().code);
  const int pid = (*f)->pid();
  // The pid type: by flag, else what the pidfd was opened as. One thread per process:
  // a thread and its group are the same process.
  const bool thread = (flags & kSignalThread) || (!flags && ((*f)->flags() & kPidfdThread));
  const bool pgrp = flags & kSignalProcessGroup;
  SigInfo info;
  if (info_at) {
    std::array<std::uint8_t, 128> raw{};
    if (!ctx.read(info_at, raw.data(), raw.size())) return SysResult::err(EFAULT);
    std::memcpy(&info.signo, raw.data() + 0, 4);
    std::memcpy(&info.err, raw.data() + 4, 4);
    std::memcpy(&info.code, raw.data() + 8, 4);
    std::memcpy(&info.pid, raw.data() + 16, 4);
    std::memcpy(&info.uid, raw.data() + 20, 4);
    std::memcpy(&info.value, raw.data() + 24, 8);
    if (info.signo != sig) return SysResult::err(EINVAL);
    // Only yourself may be sent a signal claiming to come from the kernel or kill.
    if ((pid != ctx.proc.pid || pgrp) && (info.code >= 0 || info.code == kSiTkill))
      return SysResult::err(EPERM);
  } else {
    info.signo = sig;
    info.code = thread ? kSiTkill : kSiUser;
    info.pid = ctx.proc.pid;
    info.uid = ctx.proc.cred.uid;
  }
  std::vector<Process*> targets;
  if (pgrp) {
    for (Process* t : ctx.kernel.processes())
      if (t->pgid == pid) targets.push_back(t);
  } else if (Process* t = ctx.kernel.find(pid)) {
    targets.push_back(t);
  }
  if (targets.empty()) return SysResult::err(ESRCH);
  if (sig == 0) return SysResult::ok(0);
  for (Process* t : targets)
    ctx.kernel.send_signal(*t, info);
  return SysResult::ok(0);
}

SysResult sys_pidfd_getfd(SyscallContext& ctx) {
  const int target_fd = ctx.arg_int(1);
  if (ctx.arg(2) & 0xffffffffULL) return SysResult::err(EINVAL);
  auto t = pidfd_get_task(ctx, ctx.arg_int(0));
  if (!t) return SysResult::err(t.error().code);
  if (!ptrace_may_access(ctx.proc, **t, /*fscreds=*/false)) return SysResult::err(EPERM);
  OpenFileRef file = (*t)->fds ? (*t)->fds->get(target_fd) : nullptr;
  if (!file) return SysResult::err(EBADF);
  // receive_fd: always close-on-exec.
  auto fd = ctx.proc.fds->install(std::move(file), /*cloexec=*/true);
  if (!fd) return SysResult::err(fd.error().code);
  return SysResult::ok(static_cast<std::uint64_t>(*fd));
}

// task_will_free_mem: the process is on its way out (SIGKILL, or a fatal signal without a
// core dump, is pending: complete_signal set SIGNAL_GROUP_EXIT when it was sent) and no
// other process uses its mm (a vfork partner).
bool task_will_free_mem(const Process& t) {
  if (t.mm().mm_users > 1) return false;
  for (int sig = 1; sig <= kNSig; ++sig) {
    if (!t.sig.is_pending(sig)) continue;
    if (sig == kSigKill) return true;
    if ((t.sig.blocked & sig_bit(sig)) || t.sig.act(sig).handler != kSigDfl) continue;
    if (default_action(sig) == DefaultAction::Terminate) return true;
  }
  return false;
}

SysResult sys_process_mrelease(SyscallContext& ctx) {
  if (ctx.arg(1) & 0xffffffffULL) return SysResult::err(EINVAL);
  auto t = pidfd_get_task(ctx, ctx.arg_int(0));
  if (!t) return SysResult::err(t.error().code);
  Process& victim = **t;
  if (!victim.has_mm()) return SysResult::ok(0);  // the mm is already gone
  Mm& mm = victim.mm();
  if (!task_will_free_mem(victim)) {
    // Not dying: an error only if the reaper has not already done the work.
    if (mm.flags & MMF_OOM_SKIP) return SysResult::ok(0);
    return SysResult::err(EINVAL);
  }
  if (mm.flags & MMF_OOM_SKIP) {
    ctx.kernel.record(
        "process_mrelease", ctx.proc.pid,
        {{"target", victim.pid}, {"outcome", "skipped-oom-skip"}, {"pages_reaped", 0}});
    return SysResult::ok(0);
  }
  // __oom_reap_task_mm through the same walker a failed fork's lock-drop point runs.
  auto walker = make_walker(WalkerKind::OomReaper, /*checks=*/true);
  const WalkerReport rep = walker->walk(mm, mm);
  ctx.kernel.record("process_mrelease", ctx.proc.pid,
                    {{"target", victim.pid},
                     {"outcome", rep.outcome},
                     {"vmas_seen", rep.vmas_seen},
                     {"pages_reaped", rep.pages_reaped}});
  ctx.kernel.stats().add("process_mrelease_pages", rep.pages_reaped);
  return SysResult::ok(0);
}

// process_madvise_remote_valid: the advice another process may be given.
bool remote_valid(int advice) {
  return advice == kMadvCold || advice == kMadvPageout || advice == kMadvWillneed ||
         advice == kMadvCollapse;
}

SysResult sys_process_madvise(SyscallContext& ctx) {
  const int advice = ctx.arg_int(3);
  if (ctx.arg(4) & 0xffffffffULL) return SysResult::err(EINVAL);
  auto iov = import_iovec(ctx, ctx.arg(1), ctx.arg(2));
  if (!iov) return SysResult::err(iov.error().code);
  auto t = pidfd_get_task(ctx, ctx.arg_int(0));
  if (!t) return SysResult::err(t.error().code);
  Process& target = **t;
  if (!target.has_mm()) return SysResult::err(ESRCH);
  // mm_access with PTRACE_MODE_READ_FSCREDS: no ASLR information for the unprivileged.
  if (!ptrace_may_access(ctx.proc, target, /*fscreds=*/true)) return SysResult::err(EACCES);
  Mm& mm = target.mm();
  const bool remote = &mm != &ctx.mm();
  if (remote && !remote_valid(advice)) return SysResult::err(EINVAL);
  // Influencing another process's memory needs CAP_SYS_NICE.
  if (remote && !capable(ctx.proc.cred, CAP_SYS_NICE)) return SysResult::err(EPERM);
  // vector_madvise: each range through do_madvise (the madvise(2) path, so whatever advice
  // it models is modelled here); the bytes advised before the first failure, or that error.
  std::uint64_t done = 0;
  int err = 0;
  for (const auto& [base, len] : iov->seg) {
    if (auto r = do_madvise(mm, base, len, advice); !r) {
      err = r.error().code;
      break;
    }
    done += len;
  }
  if (done || !err) return SysResult::ok(done);
  return SysResult::err(err);
}

}  // namespace

void register_pidfd_syscalls(SyscallTable& t) {
  t.add(Sys::pidfd_open, sys_pidfd_open);
  t.add(Sys::pidfd_send_signal, sys_pidfd_send_signal);
  t.add(Sys::pidfd_getfd, sys_pidfd_getfd);
  t.add(Sys::process_mrelease, sys_process_mrelease);
  t.add(Sys::process_madvise, sys_process_madvise);
}

}  // namespace mmemu
