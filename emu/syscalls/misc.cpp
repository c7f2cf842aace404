// System calls: misc group (arch_prctl, set/get_robust_list, rseq, prlimit64/getrlimit/
// setrlimit, getrandom, uname, umask, sysinfo, futex, process groups and sessions,
// getcpu, personality, prctl, getrusage). The id calls,
// groups and capabilities are emu/syscalls/cred.cpp's (registered from here).
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "emu/fs/dev_file.hpp"
#include "emu/fs/proc_system.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/cred.hpp"
#include "emu/syscalls/futex.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

SysResult err(int e) {
  return SysResult::err(e);
}

// ---- x86_64 arch_prctl ----

constexpr int kArchSetGs = 0x1001, kArchSetFs = 0x1002, kArchGetFs = 0x1003, kArchGetGs = 0x1004,
              kArchGetCpuid = 0x1011, kArchSetCpuid = 0x1012;

SysResult sys_arch_prctl(SyscallContext& ctx) {
  const int code = ctx.arg_int(0);
  const std::uint64_t addr = ctx.arg(1);
  Cpu* cpu = ctx.proc.cpu.get();
  switch (code) {
    case kArchSetFs:
    case kArchSetGs:
      if (addr >= arch_params(Arch::X86_64).task_size_max) return err(EPERM);
      if (!cpu) return err(EINVAL);
      if (code == kArchSetFs) {
        cpu->set_tls(addr);
        return SysResult::ok(0);
      }
      return SysResult::from(cpu->set_reg("gs_base", addr));
    case kArchGetFs:
    case kArchGetGs: {
      if (!cpu) return err(EINVAL);
      std::uint64_t v = 0;
      if (code == kArchGetFs) {
        v = cpu->tls();
      } else {
        auto r = cpu->reg("gs_base");
        if (!r) return err(r.error().code);
        v = *r;
      }
      return SysResult::from(ctx.write_obj(addr, v));
    }
    case kArchGetCpuid:
      return SysResult::ok(1);  // CPUID is not faulting
    case kArchSetCpuid:
      return err(ENODEV);  // no CPUID faulting on this CPU
    default:
      return err(EINVAL);
  }
}

// ---- per-thread registrations ----

constexpr std::uint64_t kRobustListHeadSize = 24;

SysResult sys_set_robust_list(SyscallContext& ctx) {
  if (ctx.arg(1) != kRobustListHeadSize) return err(EINVAL);
  ctx.proc.areas.robust_list = ctx.arg(0);
  ctx.proc.areas.robust_list_len = ctx.arg(1);
  return SysResult::ok(0);
}

SysResult sys_get_robust_list(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  Process* p = pid == 0 ? &ctx.proc : ctx.kernel.find(pid);
  if (!p || p->state == ProcState::Zombie) return err(ESRCH);
  if (!ctx.write_obj(ctx.arg(2), p->areas.robust_list_len)) return err(EFAULT);
  if (!ctx.write_obj(ctx.arg(1), p->areas.robust_list)) return err(EFAULT);
  return SysResult::ok(0);
}

// rseq: registration as Linux validates it. There is one CPU and no preemption inside a
// guest's critical section, so the fields are written once, at registration: cpu_id_start
// and cpu_id 0, node_id 0, mm_cid 0.
constexpr std::uint32_t kRseqOrigSize = 32;
constexpr int kRseqFlagUnregister = 1;

SysResult sys_rseq(SyscallContext& ctx) {
  const vaddr_t rseq = ctx.arg(0);
  const auto len = static_cast<std::uint32_t>(ctx.arg(1));
  const int flags = ctx.arg_int(2);
  const auto sig = static_cast<std::uint32_t>(ctx.arg(3));
  Process& p = ctx.proc;
  if (flags & kRseqFlagUnregister) {
    if (flags & ~kRseqFlagUnregister) return err(EINVAL);
    if (!p.areas.rseq_area || p.areas.rseq_area != rseq) return err(EINVAL);
    if (len != p.areas.rseq_len) return err(EINVAL);
    if (p.areas.rseq_sig != sig) return err(EPERM);
    // rseq_reset_rseq_cpu_node_id: cpu_id back to RSEQ_CPU_ID_UNINITIALIZED.
    const std::uint32_t reset[2] = {0, ~0U};
    if (!ctx.write(rseq, reset, sizeof reset)) return err(EFAULT);
    p.areas.rseq_area = 0;
    p.areas.rseq_len = 0;
    p.areas.rseq_sig = 0;
    return SysResult::ok(0);
  }
  if (flags) return err(EINVAL);
  if (p.areas.rseq_area) {
    if (p.areas.rseq_area != rseq || len != p.areas.rseq_len) return err(EINVAL);
    if (p.areas.rseq_sig != sig) return err(EPERM);
    return err(EBUSY);
  }
  // struct rseq is 32-byte aligned; a longer (extended) area keeps that alignment.
  if (len < kRseqOrigSize || (rseq & (kRseqOrigSize - 1))) return err(EINVAL);
  if (!access_ok(ctx.arch(), rseq, len)) return err(EFAULT);
  const std::uint32_t cpu[2] = {0, 0};
  const std::uint32_t ids[3] = {0, 0, 0};  // flags, node_id, mm_cid
  if (!ctx.write(rseq, cpu, sizeof cpu) || !ctx.write(rseq + 20, ids + 1, 8)) return err(EFAULT);
  p.areas.rseq_area = rseq;
  p.areas.rseq_len = len;
  p.areas.rseq_sig = sig;
  return SysResult::ok(0);
}

// ---- resource limits ----

Rlimit get_rlimit(const Process& p, Rlim res) {
  Rlimit r = p.rlimits[res];
  if (res == Rlim::Nofile && p.fds) r.cur = static_cast<std::uint64_t>(p.fds->max_fds());
  return r;
}

// do_prlimit: checks, then the old value, then the new one. Raising a hard limit needs
// the caller's CAP_SYS_RESOURCE.
Result<Rlimit> do_prlimit(const Credentials& caller, Process& p, std::int64_t number,
                          const Rlimit* nw) {
  const std::optional<Rlim> res = Rlimits::from_number(number);
  if (!res) return fail(EINVAL);
  const Rlimit old = get_rlimit(p, *res);
  if (nw) {
    if (nw->cur > nw->max) return fail(EINVAL);
    if (*res == Rlim::Nofile && nw->max > kNrOpen) return fail(EPERM);
    if (nw->max > old.max && !capable(caller, CAP_SYS_RESOURCE)) return fail(EPERM);
    p.rlimits[*res] = *nw;
    if (*res == Rlim::Nofile && p.fds)
      p.fds->set_max_fds(static_cast<int>(std::min<std::uint64_t>(nw->cur, kNrOpen)));
  }
  return old;
}

// check_prlimit_permission: another process's limits (read or written) need all its user
// and group ids to be the caller's real ones, or CAP_SYS_RESOURCE.
bool may_prlimit(const Credentials& c, const Process& target) {
  const Credentials& t = target.cred;
  const bool ids = c.uid == t.uid && c.uid == t.euid && c.uid == t.suid && c.gid == t.gid &&
                   c.gid == t.egid && c.gid == t.sgid;
  return ids || capable(c, CAP_SYS_RESOURCE);
}

SysResult sys_prlimit64(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  const int res = ctx.arg_int(1);
  const vaddr_t new_p = ctx.arg(2), old_p = ctx.arg(3);
  std::optional<Rlimit> nw;
  if (new_p) {
    auto r = ctx.read_obj<Rlimit>(new_p);
    if (!r) return err(EFAULT);
    nw = *r;
  }
  Process* p = pid == 0 ? &ctx.proc : ctx.kernel.find(pid);
  if (!p || p->state == ProcState::Zombie) return err(ESRCH);
  if (p != &ctx.proc && !may_prlimit(ctx.proc.cred, *p)) return err(EPERM);
  auto old = do_prlimit(ctx.proc.cred, *p, res, nw ? &*nw : nullptr);
  if (!old) return err(old.error().code);
  if (old_p && !ctx.write_obj(old_p, *old)) return err(EFAULT);
  return SysResult::ok(0);
}

SysResult sys_getrlimit(SyscallContext& ctx) {
  const std::optional<Rlim> res = Rlimits::from_number(ctx.arg_int(0));
  if (!res) return err(EINVAL);
  return SysResult::from(ctx.write_obj(ctx.arg(1), get_rlimit(ctx.proc, *res)));
}

SysResult sys_setrlimit(SyscallContext& ctx) {
  const int res = ctx.arg_int(0);
  auto nw = ctx.read_obj<Rlimit>(ctx.arg(1));
  if (!nw) return err(EFAULT);
  auto old = do_prlimit(ctx.proc.cred, ctx.proc, res, &*nw);
  return old ? SysResult::ok(0) : err(old.error().code);
}

// ---- randomness, identity ----

constexpr unsigned kGrndNonblock = 1, kGrndRandom = 2, kGrndInsecure = 4;

SysResult sys_getrandom(SyscallContext& ctx) {
  const vaddr_t buf = ctx.arg(0);
  std::uint64_t len = ctx.arg(1);
  const auto flags = static_cast<unsigned>(ctx.arg(2));
  if (flags & ~(kGrndNonblock | kGrndRandom | kGrndInsecure)) return err(EINVAL);
  if ((flags & (kGrndInsecure | kGrndRandom)) == (kGrndInsecure | kGrndRandom)) return err(EINVAL);
  len = std::min<std::uint64_t>(len, 0x7fffffff);
  if (!access_ok(ctx.arch(), buf, len)) return err(EFAULT);
  std::uint64_t done = 0;
  while (done < len) {
    std::vector<std::uint8_t> tmp(std::min<std::uint64_t>(len - done, 1 << 16));
    guest_random_bytes(ctx.kernel, tmp);
    const std::uint64_t c = copy_out_partial(ctx, buf + done, tmp.data(), tmp.size());
    done += c;
    if (c < tmp.size()) return done ? SysResult::ok(done) : err(EFAULT);
  }
  return SysResult::ok(done);
}

SysResult sys_uname(SyscallContext& ctx) {
  struct ::utsname host;
  ::uname(&host);
  char u[6][65] = {};
  const auto put = [&u](int i, const char* s) {
    std::memcpy(u[i], s, std::min<std::size_t>(std::strlen(s), 64));
  };
  put(0, "Linux");
  put(1, host.nodename);
  put(2, host.release);
  put(3, host.version);
  put(4, ctx.arch() == Arch::X86_64 ? "x86_64" : "aarch64");
  put(5, host.domainname);
  return SysResult::from(ctx.write(ctx.arg(0), u, sizeof u));
}

SysResult sys_umask(SyscallContext& ctx) {
  const std::uint32_t old = ctx.proc.fs.umask;
  ctx.proc.fs.umask = static_cast<std::uint32_t>(ctx.arg(0)) & 0777;
  return SysResult::ok(old);
}

SysResult sys_sysinfo(SyscallContext& ctx) {
  // struct sysinfo on 64-bit: 112 bytes. The numbers /proc/meminfo and /proc/uptime show.
  std::uint8_t b[112] = {};
  const auto put64 = [&b](std::size_t off, std::uint64_t v) { std::memcpy(b + off, &v, 8); };
  const SystemSnapshot s = system_snapshot(ctx.kernel);
  put64(0, s.uptime_ns / 1000000000ULL);
  // loads[3] (8..31) stay 0: no load sampling.
  put64(32, s.total << PAGE_SHIFT);
  put64(40, s.free << PAGE_SHIFT);
  put64(48, s.shmem << PAGE_SHIFT);
  const auto procs = static_cast<std::uint16_t>(std::min(s.procs, 65535));
  std::memcpy(b + 80, &procs, 2);
  const std::uint32_t unit = 1;
  std::memcpy(b + 104, &unit, 4);
  return SysResult::from(ctx.write(ctx.arg(0), b, sizeof b));
}

// ---- process groups and sessions ----

SysResult sys_getpgid(SyscallContext& ctx) {
  Process* p = pid_or_self(ctx, ctx.arg_int(0));
  if (!p) return err(ESRCH);
  return SysResult::ok(static_cast<std::uint64_t>(p->pgid));
}

SysResult sys_getpgrp(SyscallContext& ctx) {
  return SysResult::ok(static_cast<std::uint64_t>(ctx.proc.pgid));
}

SysResult sys_getsid(SyscallContext& ctx) {
  Process* p = pid_or_self(ctx, ctx.arg_int(0));
  if (!p) return err(ESRCH);
  return SysResult::ok(static_cast<std::uint64_t>(p->sid));
}

SysResult sys_setsid(SyscallContext& ctx) {
  Process& p = ctx.proc;
  // A process group leader cannot start a session; nor can anyone if a group with its
  // pid exists.
  for (Process* q : ctx.kernel.processes())
    if (q->pgid == p.pid) return err(EPERM);
  if (p.pgid == p.pid) return err(EPERM);
  p.sid = p.pgid = p.pid;
  return SysResult::ok(static_cast<std::uint64_t>(p.sid));
}

SysResult sys_setpgid(SyscallContext& ctx) {
  int pid = ctx.arg_int(0), pgid = ctx.arg_int(1);
  Process& me = ctx.proc;
  if (pid == 0) pid = me.pid;
  if (pgid == 0) pgid = pid;
  if (pgid < 0) return err(EINVAL);
  Process* p = pid == me.pid ? &me : ctx.kernel.find(pid);
  if (!p || (p != &me && p->ppid != me.pid)) return err(ESRCH);
  if (p != &me && p->sid != me.sid) return err(EPERM);
  if (p->sid == p->pid) return err(EPERM);  // a session leader
  if (pgid != p->pid) {
    bool found = false;
    for (Process* q : ctx.kernel.processes())
      if (q->pgid == pgid && q->sid == me.sid) found = true;
    if (me.pgid == pgid) found = true;
    if (!found) return err(EPERM);
  }
  p->pgid = pgid;
  return SysResult::ok(0);
}

SysResult sys_getcpu(SyscallContext& ctx) {
  const std::uint32_t zero = 0;
  if (ctx.arg(0) && !ctx.write_obj(ctx.arg(0), zero)) return err(EFAULT);
  if (ctx.arg(1) && !ctx.write_obj(ctx.arg(1), zero)) return err(EFAULT);
  return SysResult::ok(0);
}

// ---- odds and ends ----

SysResult sys_personality(SyscallContext& ctx) {
  // PER_LINUX and nothing else: queries and changes both answer the old value 0.
  (void)ctx;
  return SysResult::ok(0);
}

constexpr int kPrSetPdeathsig = 1, kPrGetPdeathsig = 2, kPrGetDumpable = 3, kPrSetDumpable = 4,
              kPrSetName = 15, kPrGetName = 16;

SysResult sys_prctl(SyscallContext& ctx) {
  const int option = ctx.arg_int(0);
  const std::uint64_t a2 = ctx.arg(1);
  switch (option) {
    case kPrSetName: {
      char name[16] = {};
      for (std::size_t i = 0; i < 15; ++i) {
        auto c = ctx.read_obj<char>(a2 + i);
        if (!c) return err(EFAULT);
        name[i] = *c;
        if (!*c) break;
      }
      ctx.proc.comm = name;
      return SysResult::ok(0);
    }
    case kPrGetName: {
      char name[16] = {};
      std::memcpy(name, ctx.proc.comm.data(), std::min<std::size_t>(ctx.proc.comm.size(), 15));
      return SysResult::from(ctx.write(a2, name, sizeof name));
    }
    case kPrGetDumpable:
      return SysResult::ok(1);
    case kPrSetDumpable:
      return a2 <= 1 ? SysResult::ok(0) : err(EINVAL);
    case kPrSetPdeathsig:
      return a2 <= 64 ? SysResult::ok(0) : err(EINVAL);
    case kPrGetPdeathsig: {
      const std::int32_t none = 0;
      return SysResult::from(ctx.write_obj(a2, none));
    }
    default:
      return prctl_caps(ctx, option).value_or(err(EINVAL));
  }
}

SysResult sys_getrusage(SyscallContext& ctx) {
  const int who = ctx.arg_int(0);
  if (who != 0 && who != -1 && who != 1) return err(EINVAL);
  std::int64_t ru[18] = {};  // utime, stime (timevals), then the 14 longs
  if (who != -1) {
    const std::uint64_t ns = ctx.proc.instructions;  // emulated CPU time (see time.cpp)
    ru[0] = static_cast<std::int64_t>(ns / 1000000000ULL);
    ru[1] = static_cast<std::int64_t>(ns % 1000000000ULL / 1000);
    if (ctx.proc.has_mm()) {
      const Mm& mm = ctx.proc.mm();
      std::int64_t rss = 0;
      for (auto v : mm.rss)
        rss += std::max<std::int64_t>(v, 0);
      ru[4] = rss * static_cast<std::int64_t>(PAGE_SIZE >> 10);  // ru_maxrss in KiB
    }
  }
  return SysResult::from(ctx.write(ctx.arg(1), ru, sizeof ru));
}

}  // namespace

void register_misc_syscalls(SyscallTable& t) {
  t.add(Sys::arch_prctl, sys_arch_prctl);
  t.add(Sys::set_robust_list, sys_set_robust_list);
  t.add(Sys::get_robust_list, sys_get_robust_list);
  t.add(Sys::rseq, sys_rseq);
  t.add(Sys::prlimit64, sys_prlimit64);
  t.add(Sys::getrlimit, sys_getrlimit);
  t.add(Sys::setrlimit, sys_setrlimit);
  t.add(Sys::getrandom, sys_getrandom);
  t.add(Sys::uname, sys_uname);
  t.add(Sys::umask, sys_umask);
  t.add(Sys::sysinfo, sys_sysinfo);
  t.add(Sys::futex, sys_futex);
  t.add(Sys::getpgid, sys_getpgid);
  t.add(Sys::getpgrp, sys_getpgrp);
  t.add(Sys::getsid, sys_getsid);
  t.add(Sys::setsid, sys_setsid);
  t.add(Sys::setpgid, sys_setpgid);
  t.add(Sys::getcpu, sys_getcpu);
  t.add(Sys::personality, sys_personality);
  t.add(Sys::prctl, sys_prctl);
  t.add(Sys::getrusage, sys_getrusage);
  register_cred_syscalls(t);
}

}  // namespace mmemu
