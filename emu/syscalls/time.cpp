// System calls: time group (clock_gettime, clock_getres, gettimeofday, time, nanosleep,
// clock_nanosleep, times).
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

#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

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
// Woken early by a signal that will be handled: -EINTR with the time left in *rem (relative
// sleeps only), as hrtimer_nanosleep's restart path reports it.
SysResult sleep_until(SyscallContext& ctx, clockid_t clk, const GuestTimespec& t, bool absolute,
                      vaddr_t rem) {
  if (t.sec < 0 || t.nsec < 0 || t.nsec >= kNsecPerSec) return SysResult::err(EINVAL);
  const std::uint64_t now = host_monotonic_ns();
  if (ctx.retry > 0) {
    if (!ctx.deadline_ns || now >= ctx.deadline_ns) return SysResult::ok(0);
    if (ctx.proc.sig.next_deliverable() == 0)
      return SysResult::block_until(ctx.deadline_ns, nullptr, Restart::Never);
    if (!absolute && rem) {
      // The kernel's remaining time runs to the hard expiry: the deadline plus the
      // default timer slack of 50 us.
      const std::uint64_t left = ctx.deadline_ns + 50000 - now;
      if (!write_timespec(ctx, rem, static_cast<std::int64_t>(left / kNsecPerSec),
                          static_cast<std::int64_t>(left % kNsecPerSec)))
        return SysResult::err(EFAULT);
    }
    return SysResult::err(EINTR);
  }
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
  return sleep_until(ctx, CLOCK_MONOTONIC, *t, false, ctx.arg(1));
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
  return sleep_until(ctx, static_cast<clockid_t>(id), *t, (flags & kTimerAbstime) != 0, ctx.arg(3));
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

// ---- interval timers: getitimer, setitimer, alarm ----

constexpr std::int64_t kUsecPerSec = 1000000;

// The clock an interval timer runs on: CLOCK_MONOTONIC for ITIMER_REAL, CPU time otherwise.
std::uint64_t itimer_clock(const Process& p, int which) {
  return which == 0 ? host_monotonic_ns() : cpu_ns(p);
}

// struct itimerval {it_interval, it_value} of two 64-bit timevals (both ABIs).
struct GuestItimerval {
  std::int64_t interval_sec, interval_usec, value_sec, value_usec;
};

GuestItimerval itimer_get(const Process& p, int which) {
  const Process::ITimer& t = p.itimers[static_cast<std::size_t>(which)];
  std::uint64_t left = 0;
  if (t.expires) {
    const std::uint64_t now = itimer_clock(p, which);
    left = t.expires > now ? t.expires - now : 1000;  // an expiry not yet signalled: 1 usec
  }
  const auto us = [](std::uint64_t ns) { return static_cast<std::int64_t>(ns / 1000); };
  return {us(t.interval) / kUsecPerSec, us(t.interval) % kUsecPerSec, us(left) / kUsecPerSec,
          us(left) % kUsecPerSec};
}

bool timeval_valid(std::int64_t sec, std::int64_t usec) {
  return sec >= 0 && usec >= 0 && usec < kUsecPerSec;
}

// do_setitimer: arms (a zero value disarms) and returns the previous setting.
GuestItimerval itimer_set(Process& p, int which, const GuestItimerval& nv) {
  const GuestItimerval old = itimer_get(p, which);
  Process::ITimer& t = p.itimers[static_cast<std::size_t>(which)];
  const auto ns = [](std::int64_t sec, std::int64_t usec) {
    return static_cast<std::uint64_t>(sec) * kNsecPerSec + static_cast<std::uint64_t>(usec) * 1000;
  };
  const std::uint64_t value = ns(nv.value_sec, nv.value_usec);
  t.interval = ns(nv.interval_sec, nv.interval_usec);
  t.expires = value ? itimer_clock(p, which) + value : 0;
  if (!value) t.interval = 0;
  return old;
}

SysResult sys_getitimer(SyscallContext& ctx) {
  const int which = ctx.arg_int(0);
  if (which < 0 || which > 2) return SysResult::err(EINVAL);
  return SysResult::from(ctx.write_obj(ctx.arg(1), itimer_get(ctx.proc, which)));
}

SysResult sys_setitimer(SyscallContext& ctx) {
  const int which = ctx.arg_int(0);
  GuestItimerval nv{};
  if (ctx.arg(1)) {
    auto r = ctx.read_obj<GuestItimerval>(ctx.arg(1));
    if (!r) return SysResult::err(EFAULT);
    nv = *r;
  }
  if (which < 0 || which > 2) return SysResult::err(EINVAL);
  if (!timeval_valid(nv.value_sec, nv.value_usec) ||
      !timeval_valid(nv.interval_sec, nv.interval_usec))
    return SysResult::err(EINVAL);
  const GuestItimerval old = itimer_set(ctx.proc, which, nv);
  if (ctx.arg(2) && !ctx.write_obj(ctx.arg(2), old)) return SysResult::err(EFAULT);
  return SysResult::ok(0);
}

// alarm_setitimer: the old value in whole seconds, rounded to nearest, never 0 while armed.
SysResult sys_alarm(SyscallContext& ctx) {
  const auto secs = static_cast<std::uint32_t>(ctx.arg(0));
  const GuestItimerval old = itimer_set(ctx.proc, 0, {0, 0, secs, 0});
  std::int64_t left = old.value_sec;
  if ((!left && old.value_usec) || old.value_usec >= 500000) ++left;
  return SysResult::ok(static_cast<std::uint64_t>(left));
}

}  // namespace

void register_time_syscalls(SyscallTable& t) {
  t.add(Sys::getitimer, sys_getitimer);
  t.add(Sys::setitimer, sys_setitimer);
  t.add(Sys::alarm, sys_alarm);
  t.add(Sys::clock_gettime, sys_clock_gettime);
  t.add(Sys::clock_getres, sys_clock_getres);
  t.add(Sys::gettimeofday, sys_gettimeofday);
  t.add(Sys::time, sys_time);
  t.add(Sys::nanosleep, sys_nanosleep);
  t.add(Sys::clock_nanosleep, sys_clock_nanosleep);
  t.add(Sys::times, sys_times);
}

}  // namespace mmemu
