// System calls of the process lifecycle: fork/vfork/clone, execve, exit, wait4/waitid,
// ids, set_tid_address, sched_yield and mmemu's dump call.
#include <fmt/format.h>

#include "emu/fs/path_lookup.hpp"
#include "emu/fs/pidfd.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

constexpr int kWnohang = 1, kWuntraced = 2, kWexited = 4, kWcontinued = 8, kWnowait = 0x01000000,
              kWnothread = 0x20000000, kWall = 0x40000000, kWclone = static_cast<int>(0x80000000U);
constexpr std::uint64_t kCloneVm = 0x100, kCloneVfork = 0x4000;
constexpr std::uint64_t kClonePidfd = 0x1000, kCloneThread = 0x10000, kCloneDetached = 0x400000,
                        kCloneParentSettid = 0x100000;
constexpr std::size_t kMaxArgStrlen = 32 * PAGE_SIZE;  // MAX_ARG_STRLEN
constexpr std::size_t kMaxArgs = 0x7fffffff / 8;

// The flags fork_process refuses (EINVAL), by name: once per run in the log, since a guest
// that creates threads (pthread_create, Go's runtime) fails on this and may not say why.
void report_unsupported_clone(SyscallContext& ctx, std::uint64_t flags) {
  static constexpr std::pair<std::uint64_t, const char*> kNames[] = {
      {0x100, "CLONE_VM"},
      {0x200, "CLONE_FS"},
      {0x400, "CLONE_FILES"},
      {0x800, "CLONE_SIGHAND"},
      {0x1000, "CLONE_PIDFD"},
      {0x2000, "CLONE_PTRACE"},
      {0x4000, "CLONE_VFORK"},
      {0x8000, "CLONE_PARENT"},
      {0x10000, "CLONE_THREAD"},
      {0x20000, "CLONE_NEWNS"},
      {0x40000, "CLONE_SYSVSEM"},
      {0x80000, "CLONE_SETTLS"},
      {0x100000, "CLONE_PARENT_SETTID"},
      {0x200000, "CLONE_CHILD_CLEARTID"},
      {0x400000, "CLONE_DETACHED"},
      {0x800000, "CLONE_UNTRACED"},
      {0x1000000, "CLONE_CHILD_SETTID"},
      {0x2000000, "CLONE_NEWCGROUP"},
      {0x4000000, "CLONE_NEWUTS"},
      {0x8000000, "CLONE_NEWIPC"},
      {0x10000000, "CLONE_NEWUSER"},
      {0x20000000, "CLONE_NEWPID"},
      {0x40000000, "CLONE_NEWNET"},
      {0x80000000, "CLONE_IO"}};
  std::string names;
  std::uint64_t known = 0;
  for (const auto& [bit, name] : kNames) {
    known |= bit;
    if (flags & bit) names += (names.empty() ? "" : "|") + std::string(name);
  }
  if (flags & ~known) names += fmt::format("{}{:#x}", names.empty() ? "" : "|", flags & ~known);
  const bool thread = (flags & kCloneVm) && !(flags & kCloneVfork);
  // fork_process's supported set (emu/kernel/fork.cpp): VM, VFORK, SETTLS, PARENT_SETTID,
  // CHILD_CLEARTID, CHILD_SETTID, SYSVSEM. Its other EINVAL (a CPU context that does not
  // copy) is not about the flags.
  constexpr std::uint64_t kSupported =
      0x100 | 0x4000 | 0x80000 | 0x100000 | 0x200000 | 0x1000000 | 0x40000;
  if (!thread && !(flags & ~kSupported)) return;
  ctx.kernel.log_once("clone",
                      fmt::format("clone flags {} not supported{}: returning EINVAL",
                                  names.empty() ? "0" : names, thread ? " (threads)" : ""));
}

SysResult do_clone(SyscallContext& ctx, const CloneArgs& a) {
  Process& p = ctx.proc;
  if (ctx.retry > 0) {
    // Woken as a vfork parent: done once the child exec'd or exited.
    Process* c = ctx.kernel.find(p.vfork_child);
    if (c && c->state != ProcState::Zombie && c->vfork_parent == p.pid)
      return SysResult::block(p.vfork_done, Restart::Uninterruptible);
    const int pid = p.vfork_child;
    p.vfork_child = 0;
    return SysResult::ok(static_cast<std::uint64_t>(pid));
  }
  // CLONE_PIDFD (clone(): the pidfd's number goes to parent_tid): the descriptor is taken
  // and its number stored before the child exists, as copy_process does, so EMFILE or
  // EFAULT leave no child behind.
  int pidfd = -1;
  CloneArgs fa = a;
  if (a.flags & kClonePidfd) {
    if (a.flags & (kCloneThread | kCloneDetached | kCloneParentSettid))
      return SysResult::err(EINVAL);
    auto fd = p.fds->install(std::make_shared<PidfdFile>(ctx.kernel, 0, 0), /*cloexec=*/true);
    if (!fd) return SysResult::err(fd.error().code);
    pidfd = *fd;
    if (!ctx.write_obj<std::int32_t>(a.parent_tid, pidfd)) {
      (void)p.fds->close(pidfd);
      return SysResult::err(EFAULT);
    }
    fa.flags &= ~kClonePidfd;
  }
  auto pid = ctx.kernel.fork_process(p, fa);
  if (!pid) {
    if (pidfd >= 0) (void)p.fds->close(pidfd);
    if (pid.error().code == EINVAL) report_unsupported_clone(ctx, fa.flags);
    return SysResult::err(pid.error().code);
  }
  if (pidfd >= 0) {
    (void)p.fds->install_at(pidfd, std::make_shared<PidfdFile>(ctx.kernel, *pid, 0),
                            /*cloexec=*/true);
    // Linux installs it after copying the table: the child never had the descriptor.
    if (Process* c = ctx.kernel.find(*pid); c && c->fds) (void)c->fds->close(pidfd);
  }
  if (a.flags & kCloneVfork) return SysResult::block(p.vfork_done, Restart::Uninterruptible);
  return SysResult::ok(static_cast<std::uint64_t>(*pid));
}

SysResult sys_fork(SyscallContext& ctx) {
  return do_clone(ctx, CloneArgs{0, 17, 0, 0, 0, 0});
}

SysResult sys_vfork(SyscallContext& ctx) {
  return do_clone(ctx, CloneArgs{kCloneVm | kCloneVfork, 17, 0, 0, 0, 0});
}

SysResult sys_clone(SyscallContext& ctx) {
  CloneArgs a;
  a.flags = ctx.arg(0) & ~0xffULL;
  a.exit_signal = static_cast<int>(ctx.arg(0) & 0xff);
  if (a.exit_signal > kNSig) return SysResult::err(EINVAL);
  a.stack = ctx.arg(1);
  a.parent_tid = ctx.arg(2);
  // x86_64: (flags, stack, parent_tid, child_tid, tls); arm64 (CLONE_BACKWARDS):
  // (flags, stack, parent_tid, tls, child_tid).
  if (ctx.arch() == Arch::X86_64) {
    a.child_tid = ctx.arg(3);
    a.tls = ctx.arg(4);
  } else {
    a.tls = ctx.arg(3);
    a.child_tid = ctx.arg(4);
  }
  return do_clone(ctx, a);
}

SysResult sys_clone3(SyscallContext&) {
  return SysResult::err(ENOSYS);  // glibc falls back to clone
}

// argv/envp: a NULL-terminated array of string pointers.
Result<std::vector<std::string>> read_strv(SyscallContext& ctx, vaddr_t at) {
  std::vector<std::string> v;
  if (!at) return v;
  for (std::size_t i = 0; i < kMaxArgs; ++i) {
    auto ptr = ctx.read_obj<std::uint64_t>(at + 8 * i);
    if (!ptr) return std::unexpected(ptr.error());
    if (!*ptr) return v;
    auto s = ctx.read_string(*ptr, kMaxArgStrlen);
    if (!s) return std::unexpected(Errno{s.error().code == ENAMETOOLONG ? E2BIG : EFAULT});
    v.push_back(std::move(*s));
  }
  return fail(E2BIG);
}

SysResult do_execve(SyscallContext& ctx, int dirfd, vaddr_t path_at, vaddr_t argv_at,
                    vaddr_t envp_at, int flags) {
  auto path = ctx.read_string(path_at, 4095);
  if (!path) return SysResult::err(path.error().code);
  auto argv = read_strv(ctx, argv_at);
  if (!argv) return SysResult::err(argv.error().code);
  auto envp = read_strv(ctx, envp_at);
  if (!envp) return SysResult::err(envp.error().code);
  auto r = ctx.kernel.exec_process_at(ctx.proc, dirfd, *path, flags, *argv, *envp);
  if (!r) return SysResult::err(r.error().err);
  return SysResult::no_return();
}

SysResult sys_execve(SyscallContext& ctx) {
  return do_execve(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1), ctx.arg(2), 0);
}

SysResult sys_execveat(SyscallContext& ctx) {
  // dirfd-relative, AT_EMPTY_PATH (fexecve) and AT_SYMLINK_NOFOLLOW: see open_exec.
  return do_execve(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg_int(4));
}

SysResult sys_exit(SyscallContext& ctx) {
  ctx.kernel.exit_process(ctx.proc, (ctx.arg_int(0) & 0xff) << 8);
  return SysResult::no_return();
}

// The children a wait selector (wait4's pid / waitid's idtype+id) matches.
std::vector<Process*> matching_children(SyscallContext& ctx, int which, int id) {
  std::vector<Process*> out;
  for (int pid : ctx.proc.children) {
    Process* c = ctx.kernel.find(pid);
    if (!c) continue;
    bool m = false;
    switch (which) {
      case 0:  // any
        m = true;
        break;
      case 1:  // pid
        m = c->pid == id;
        break;
      case 2:  // process group
        m = c->pgid == id;
        break;
    }
    if (m) out.push_back(c);
  }
  return out;
}

SysResult sys_wait4(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  const vaddr_t status_at = ctx.arg(1);
  const int options = ctx.arg_int(2);
  const vaddr_t rusage_at = ctx.arg(3);
  if (options & ~(kWnohang | kWuntraced | kWcontinued | kWnothread | kWall | kWclone))
    return SysResult::err(EINVAL);
  if (pid == INT32_MIN) return SysResult::err(ESRCH);
  int which = 0, id = 0;
  if (pid > 0) {
    which = 1, id = pid;
  } else if (pid == 0) {
    which = 2, id = ctx.proc.pgid;
  } else if (pid < -1) {
    which = 2, id = -pid;
  }
  auto kids = matching_children(ctx, which, id);
  if (kids.empty()) return SysResult::err(ECHILD);
  for (Process* c : kids) {
    if (c->state != ProcState::Zombie) continue;
    const int st = c->wait_status;
    const int cpid = c->pid;
    if (status_at)
      if (auto r = ctx.write_obj<std::int32_t>(status_at, st); !r) return SysResult::err(EFAULT);
    if (rusage_at) {
      const std::array<std::uint8_t, 144> zero{};
      if (auto r = ctx.write(rusage_at, zero.data(), zero.size()); !r)
        return SysResult::err(EFAULT);
    }
    ctx.kernel.reap(*c);
    return SysResult::ok(static_cast<std::uint64_t>(cpid));
  }
  if (options & kWnohang) return SysResult::ok(0);
  return SysResult::block(ctx.proc.child_wait, Restart::IfSaRestart);
}

SysResult sys_waitid(SyscallContext& ctx) {
  const int idtype = ctx.arg_int(0);
  const int id = ctx.arg_int(1);
  const vaddr_t info_at = ctx.arg(2);
  const int options = ctx.arg_int(3);
  const vaddr_t rusage_at = ctx.arg(4);
  if (options & ~(kWnohang | kWnowait | kWexited | 2 /*WSTOPPED*/ | kWcontinued | kWnothread |
                  kWall | kWclone))
    return SysResult::err(EINVAL);
  if (!(options & (kWexited | 2 | kWcontinued))) return SysResult::err(EINVAL);
  int which = 0;
  int pid_id = id;
  bool nonblock = false;  // a PIDFD_NONBLOCK pidfd: WNOHANG, and EAGAIN when nothing came
  switch (idtype) {
    case 0:  // P_ALL
      which = 0;
      break;
    case 1:  // P_PID
      if (id <= 0) return SysResult::err(EINVAL);
      which = 1;
      break;
    case 2:  // P_PGID
      if (id < 0) return SysResult::err(EINVAL);
      which = 2;
      break;
    case 3: {  // P_PIDFD: the pid the pidfd names (a reaped one matches no child: ECHILD)
      if (id < 0) return SysResult::err(EINVAL);
      auto f = pidfd_of(ctx.proc, id);
      if (!f) return SysResult::err(f.error().code);
      which = 1;
      pid_id = (*f)->pid();
      nonblock = ((*f)->flags() & kPidfdNonblock) != 0;
      break;
    }
    default:
      return SysResult::err(EINVAL);
  }
  auto kids = matching_children(ctx, which, which == 2 && id == 0 ? ctx.proc.pgid : pid_id);
  if (kids.empty()) return SysResult::err(ECHILD);
  std::array<std::uint8_t, 128> si{};
  if (options & kWexited) {
    for (Process* c : kids) {
      if (c->state != ProcState::Zombie) continue;
      const int st = c->wait_status;
      const std::int32_t signo = 17;
      std::int32_t code = kCldExited, status = (st >> 8) & 0xff;
      if (st & 0x7f) {
        code = (st & 0x80) ? kCldDumped : kCldKilled;
        status = st & 0x7f;
      }
      std::memcpy(si.data() + 0, &signo, 4);
      std::memcpy(si.data() + 8, &code, 4);
      const std::int32_t cpid = c->pid;
      std::memcpy(si.data() + 16, &cpid, 4);
      std::memcpy(si.data() + 20, &c->cred.uid, 4);
      std::memcpy(si.data() + 24, &status, 4);
      if (info_at)
        if (!ctx.write(info_at, si.data(), si.size())) return SysResult::err(EFAULT);
      if (rusage_at) {
        const std::array<std::uint8_t, 144> zero{};
        if (!ctx.write(rusage_at, zero.data(), zero.size())) return SysResult::err(EFAULT);
      }
      if (!(options & kWnowait)) ctx.kernel.reap(*c);
      return SysResult::ok(0);
    }
  }
  if ((options & kWnohang) || nonblock) {
    if (info_at && !ctx.write(info_at, si.data(), 32)) return SysResult::err(EFAULT);
    if (!(options & kWnohang)) return SysResult::err(EAGAIN);
    return SysResult::ok(0);
  }
  return SysResult::block(ctx.proc.child_wait, Restart::IfSaRestart);
}

SysResult sys_getpid(SyscallContext& ctx) {
  return SysResult::ok(static_cast<std::uint64_t>(ctx.proc.pid));
}

SysResult sys_getppid(SyscallContext& ctx) {
  return SysResult::ok(static_cast<std::uint64_t>(ctx.proc.ppid));
}

SysResult sys_set_tid_address(SyscallContext& ctx) {
  ctx.proc.clear_child_tid = ctx.arg(0);
  return SysResult::ok(static_cast<std::uint64_t>(ctx.proc.pid));
}

SysResult sys_sched_yield(SyscallContext& ctx) {
  ctx.proc.yield = true;
  return SysResult::ok(0);
}

SysResult sys_mmemu_dump(SyscallContext& ctx) {
  const std::size_t len = std::min<std::uint64_t>(ctx.arg(1), 200);
  std::string label(len, '\0');
  if (len && !ctx.read(ctx.arg(0), label.data(), len)) return SysResult::err(EFAULT);
  if (ctx.kernel.options().dump.guest)
    ctx.kernel.dump(DumpKind::Guest, ctx.proc.pid, ctx.mm(), std::move(label));
  return SysResult::ok(0);
}

}  // namespace

void register_process_syscalls(SyscallTable& t) {
  t.add(Sys::fork, sys_fork);
  t.add(Sys::vfork, sys_vfork);
  t.add(Sys::clone, sys_clone);
  t.add(Sys::clone3, sys_clone3);
  t.add(Sys::execve, sys_execve);
  t.add(Sys::execveat, sys_execveat);
  t.add(Sys::exit, sys_exit);
  t.add(Sys::exit_group, sys_exit);
  t.add(Sys::wait4, sys_wait4);
  t.add(Sys::waitid, sys_waitid);
  t.add(Sys::getpid, sys_getpid);
  t.add(Sys::gettid, sys_getpid);
  t.add(Sys::getppid, sys_getppid);
  t.add(Sys::set_tid_address, sys_set_tid_address);
  t.add(Sys::sched_yield, sys_sched_yield);
  t.add(Sys::mmemu_dump, sys_mmemu_dump);
}

}  // namespace mmemu
