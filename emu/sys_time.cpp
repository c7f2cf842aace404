// System calls: time group (clock_gettime, clock_getres, gettimeofday, time, nanosleep,
// clock_nanosleep, times). Owned by the syscall helper (see /work/notes/emu-contract.md).
//
// Wall and monotonic clocks (REALTIME, MONOTONIC, BOOTTIME, TAI, the COARSE and RAW
// variants) are the host's: they are read with the host's clock_gettime, so their values
// and errors (unsupported alarm clocks) are the host kernel's. CPU-time clocks
// (CLOCK_PROCESS/THREAD_CPUTIME_ID and the clock ids clock_getcpuclockid builds) are
// emulated: one nanosecond per guest instruction, so they replay exactly. Sleeps block the
// process until the host's CLOCK_MONOTONIC reaches the deadline; other processes run
// meanwhile.
#include <sys/times.h>
#include <time.h>

#include <cerrno>

#include "emu/sys_abi.hpp"
#include "emu/syscall.hpp"

namespace mmemu {

namespace {

constexpr std::int64_t kNsecPerSec = 1000000000;
constexpr std::int64_t kTickNsec = 4000000;  // TICK_NSEC at HZ=250, as this machine runs
constexpr int kClockProcessCputime = 2, kClockThreadCputime = 3;
constexpr int kTimerAbstime = 1;

// A CPU-time clock of a guest process: 2, 3, or the encoded form (~pid << 3 | type, with
// bit 2 set for a thread clock); nullptr with *valid false when the id is not one.
struct CpuClock {
  Process* proc = nullptr;
  int type = 2;  // CPUCLOCK_PROF 0, VIRT 1, SCHED 2
  bool thread = false;
};

std::optional<CpuClock> cpu_clock(SyscallContext& ctx, int id) {
  if (id == kClockProcessCputime) return CpuClock{&ctx.proc, 2, false};
  if (id == kClockThreadCputime) return CpuClock{&ctx.proc, 2, true};
  if (id >= 0) return std::nullopt;
  const int type = id & 3;
  if (type == 3) return std::nullopt;  // CPUCLOCK_MAX
  const int pid = ~(id >> 3);
  Process* p = pid == 0 || pid == ctx.proc.pid ? &ctx.proc : ctx.kernel.find(pid);
  if (!p) return std::nullopt;
  return CpuClock{p, type, (id & 4) != 0};
}

std::uint64_t cpu_ns(const Process& p) {
  return p.instructions;  // one nanosecond per instruction
}

SysResult put_ts(SyscallContext& ctx, vaddr_t dst, std::int64_t sec, std::int64_t nsec) {
  return SysResult::from(write_timespec(ctx, dst, sec, nsec));
}

SysResult sys_clock_gettime(SyscallContext& ctx) {
  const int id = ctx.arg_int(0);
  if (auto c = cpu_clock(ctx, id)) {
    const auto ns = static_cast<std::int64_t>(cpu_ns(*c->proc));
    return put_ts(ctx, ctx.arg(1), ns / kNsecPerSec, ns % kNsecPerSec);
  }
  if (id < 0) return SysResult::err(EINVAL);
  timespec ts;
  if (::clock_gettime(static_cast<clockid_t>(id), &ts) != 0) return SysResult::err(errno);
  return put_ts(ctx, ctx.arg(1), ts.tv_sec, ts.tv_nsec);
}

SysResult sys_clock_getres(SyscallContext& ctx) {
  const int id = ctx.arg_int(0);
  std::int64_t res = 0;
  if (auto c = cpu_clock(ctx, id)) {
    res = c->type == 2 ? 1 : kTickNsec;
  } else {
    if (id < 0) return SysResult::err(EINVAL);
    timespec ts;
    if (::clock_getres(static_cast<clockid_t>(id), &ts) != 0) return SysResult::err(errno);
    res = ts.tv_sec * kNsecPerSec + ts.tv_nsec;
  }
  if (ctx.arg(1) == 0) return SysResult::ok(0);
  return put_ts(ctx, ctx.arg(1), res / kNsecPerSec, res % kNsecPerSec);
}

SysResult sys_gettimeofday(SyscallContext& ctx) {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  if (ctx.arg(0)) {
    const std::int64_t tv[2] = {ts.tv_sec, ts.tv_nsec / 1000};
    if (!ctx.write(ctx.arg(0), tv, sizeof tv)) return SysResult::err(EFAULT);
  }
  if (ctx.arg(1)) {
    const std::int32_t tz[2] = {0, 0};  // sys_tz: UTC, no DST
    if (!ctx.write(ctx.arg(1), tz, sizeof tz)) return SysResult::err(EFAULT);
  }
  return SysResult::ok(0);
}

SysResult sys_time(SyscallContext& ctx) {
  const std::int64_t now = ::time(nullptr);
  if (ctx.arg(0) && !ctx.write_obj(ctx.arg(0), now)) return SysResult::err(EFAULT);
  return SysResult::ok(static_cast<std::uint64_t>(now));
}

// A relative or absolute sleep on a host clock, as a CLOCK_MONOTONIC deadline. Woken (the
// retry) only once the deadline passed: a signal interrupts or restarts the call in the
// dispatcher without running it again.
SysResult sleep_until(SyscallContext& ctx, clockid_t clk, const GuestTimespec& t, bool absolute) {
  if (t.sec < 0 || t.nsec < 0 || t.nsec >= kNsecPerSec) return SysResult::err(EINVAL);
  if (ctx.retry > 0) return SysResult::ok(0);
  const std::uint64_t now = host_monotonic_ns();
  const auto req =
      static_cast<std::uint64_t>(t.sec) * kNsecPerSec + static_cast<std::uint64_t>(t.nsec);
  std::uint64_t deadline = now + req;
  if (absolute) {
    timespec c;
    ::clock_gettime(clk, &c);
    const auto cur =
        static_cast<std::uint64_t>(c.tv_sec) * kNsecPerSec + static_cast<std::uint64_t>(c.tv_nsec);
    if (req <= cur) return SysResult::ok(0);
    deadline = now + (req - cur);
  }
  if (deadline <= now) return SysResult::ok(0);
  return SysResult::block_until(deadline, nullptr, Restart::Never);
}

SysResult sys_nanosleep(SyscallContext& ctx) {
  auto t = read_timespec(ctx, ctx.arg(0));
  if (!t) return SysResult::err(EFAULT);
  return sleep_until(ctx, CLOCK_MONOTONIC, *t, false);
}

SysResult sys_clock_nanosleep(SyscallContext& ctx) {
  const int id = ctx.arg_int(0);
  const int flags = ctx.arg_int(1);
  if (id == kClockThreadCputime) return SysResult::err(EOPNOTSUPP);
  auto t = read_timespec(ctx, ctx.arg(2));
  if (auto c = cpu_clock(ctx, id)) {
    if (c->thread) return SysResult::err(EINVAL);
    if (!t) return SysResult::err(EFAULT);
    if (t->sec < 0 || t->nsec < 0 || t->nsec >= kNsecPerSec) return SysResult::err(EINVAL);
    // The sleeper's own CPU clock cannot advance while it sleeps: only an elapsed
    // deadline can be met.
    const auto req = t->sec * kNsecPerSec + t->nsec;
    const auto cur = static_cast<std::int64_t>(cpu_ns(*c->proc));
    if (req == 0 || ((flags & kTimerAbstime) && req <= cur)) return SysResult::ok(0);
    return SysResult::err(EINVAL);
  }
  switch (id) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_BOOTTIME:
    case CLOCK_TAI:
      break;
    default:
      return SysResult::err(id == CLOCK_MONOTONIC_RAW || id == CLOCK_REALTIME_COARSE ||
                                    id == CLOCK_MONOTONIC_COARSE
                                ? ENOTSUP
                                : EINVAL);
  }
  if (!t) return SysResult::err(EFAULT);
  return sleep_until(ctx, static_cast<clockid_t>(id), *t, (flags & kTimerAbstime) != 0);
}

SysResult sys_times(SyscallContext& ctx) {
  // clock_t in USER_HZ (100) ticks; user time is the emulated CPU time, system time 0.
  if (ctx.arg(0)) {
    const auto ticks = static_cast<std::int64_t>(cpu_ns(ctx.proc) / 10000000ULL);
    const std::int64_t tms[4] = {ticks, 0, 0, 0};
    if (!ctx.write(ctx.arg(0), tms, sizeof tms)) return SysResult::err(EFAULT);
  }
  return SysResult::ok(static_cast<std::uint64_t>(::times(nullptr)));
}

}  // namespace

void register_time_syscalls(SyscallTable& t) {
  t.add(Sys::clock_gettime, sys_clock_gettime);
  t.add(Sys::clock_getres, sys_clock_getres);
  t.add(Sys::gettimeofday, sys_gettimeofday);
  t.add(Sys::time, sys_time);
  t.add(Sys::nanosleep, sys_nanosleep);
  t.add(Sys::clock_nanosleep, sys_clock_nanosleep);
  t.add(Sys::times, sys_times);
}

}  // namespace mmemu
