// System calls on scheduling: the CPU affinity (one CPU), nice values (getpriority/
// setpriority), policies (sched_setscheduler and friends, sched_getattr) and I/O priorities
// (ioprio_get/ioprio_set). mmemu's scheduler runs every process in turn whatever these say;
// they are kept per process, inherited and checked as Linux checks them.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "emu/kernel/cred.hpp"
#include "emu/kernel/kernel.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

SysResult err(int e) {
  return SysResult::err(e);
}

// ---- affinity: one CPU ----

SysResult sys_sched_getaffinity(SyscallContext& ctx) {
  // The mask is returned in cpumask_size() bytes (one long).
  const int pid = ctx.arg_int(0);
  const std::uint64_t len = ctx.arg(1) & 0xffffffffULL;
  if (!pid_or_self(ctx, pid)) return err(ESRCH);
  if (len * 8 < 1 || (len & 7)) return err(EINVAL);
  const std::uint64_t mask = 1;
  if (!ctx.write_obj(ctx.arg(2), mask)) return err(EFAULT);
  return SysResult::ok(8);
}

SysResult sys_sched_setaffinity(SyscallContext& ctx) {
  if (!pid_or_self(ctx, ctx.arg_int(0))) return err(ESRCH);
  const std::uint64_t len = ctx.arg(1) & 0xffffffffULL;
  std::uint8_t first = 0;
  if (len > 0 && !ctx.read(ctx.arg(2), &first, 1)) return err(EFAULT);
  if (!(first & 1)) return err(EINVAL);  // no CPU of the mask exists
  return SysResult::ok(0);
}

// ---- nice values (getpriority/setpriority) ----

constexpr int kPrioProcess = 0, kPrioPgrp = 1, kPrioUser = 2, kMinNice = -20, kMaxNice = 19;

// The processes a (which, who) pair names: one process, a process group, a user's.
std::vector<Process*> prio_targets(SyscallContext& ctx, int which, int who) {
  std::vector<Process*> out;
  const std::uint32_t uid = who ? static_cast<std::uint32_t>(who) : ctx.proc.cred.uid;
  const int pgrp = who ? who : ctx.proc.pgid;
  for (Process* q : ctx.kernel.processes()) {
    const bool match = which == kPrioProcess ? q->pid == (who ? who : ctx.proc.pid)
                       : which == kPrioPgrp  ? q->pgid == pgrp
                                             : q->cred.uid == uid;
    if (match) out.push_back(q);
  }
  if (which == kPrioProcess && out.empty() && (who == 0 || who == ctx.proc.pid))
    out.push_back(&ctx.proc);  // a process the table does not hold yet (tests)
  return out;
}

// getpriority answers 20 - nice (1..40) of the highest-priority match: no negative value
// can be mistaken for an error.
SysResult sys_getpriority(SyscallContext& ctx) {
  const int which = ctx.arg_int(0), who = ctx.arg_int(1);
  if (which < kPrioProcess || which > kPrioUser) return err(EINVAL);
  int best = 0;
  for (Process* q : prio_targets(ctx, which, who))
    best = std::max(best, 20 - q->sched.nice);
  return best ? SysResult::ok(static_cast<std::uint64_t>(best)) : err(ESRCH);
}

// can_nice: a nice value below the current one must stay within RLIMIT_NICE (20 - nice).
bool can_nice(const Credentials& me, const Process& p, int nice) {
  const auto floor = static_cast<std::uint64_t>(20 - nice);
  return floor <= p.rlimits[Rlim::Nice].cur || capable(me, CAP_SYS_NICE);
}

// The caller may change the target: same user (real or effective) or CAP_SYS_NICE.
bool may_set_sched(const Credentials& me, const Process& p) {
  return p.cred.uid == me.euid || p.cred.euid == me.euid || capable(me, CAP_SYS_NICE);
}

// set_one_prio: lowering the nice value past RLIMIT_NICE needs CAP_SYS_NICE, as does a
// target holding capabilities the caller does not (cap_safe_nice).
int set_one_prio(const Credentials& me, Process& p, int nice, int error) {
  const bool sys_nice = capable(me, CAP_SYS_NICE);
  if (!may_set_sched(me, p)) return EPERM;
  if (nice < p.sched.nice && !can_nice(me, p, nice)) return EACCES;
  if ((p.cred.cap_permitted & ~me.cap_permitted) && !sys_nice) return EPERM;
  p.sched.nice = nice;
  return error == ESRCH ? 0 : error;
}

SysResult sys_setpriority(SyscallContext& ctx) {
  const int which = ctx.arg_int(0), who = ctx.arg_int(1);
  if (which < kPrioProcess || which > kPrioUser) return err(EINVAL);
  const int nice = std::clamp(ctx.arg_int(2), kMinNice, kMaxNice);
  int error = ESRCH;
  for (Process* q : prio_targets(ctx, which, who))
    error = set_one_prio(ctx.proc.cred, *q, nice, error);
  return error ? err(error) : SysResult::ok(0);
}

// ---- policies ----

constexpr int kSchedOther = 0, kSchedFifo = 1, kSchedRr = 2, kSchedBatch = 3, kSchedIdle = 5,
              kSchedDeadline = 6;
constexpr int kSchedResetOnFork = 0x40000000;
constexpr int kMaxRtPrio = 99;

bool rt_policy(int policy) {
  return policy == kSchedFifo || policy == kSchedRr;
}

// The target of a sched_* call: EINVAL for a negative pid, ESRCH for none.
Result<Process*> sched_target(SyscallContext& ctx, int pid) {
  if (pid < 0) return fail(EINVAL);
  Process* p = pid_or_self(ctx, pid);
  if (!p) return fail(ESRCH);
  return p;
}

// __sched_setscheduler's checks and the change. DEADLINE (admission control against the
// runqueue's bandwidth) is not modelled: EINVAL, as for a policy this kernel lacks.
int set_scheduler(const Credentials& me, Process& p, int policy, int prio, bool reset_on_fork) {
  const bool known =
      policy == kSchedOther || rt_policy(policy) || policy == kSchedBatch || policy == kSchedIdle;
  if (!known) return EINVAL;
  if (prio < 0 || prio > kMaxRtPrio || rt_policy(policy) != (prio != 0)) return EINVAL;
  if (!capable(me, CAP_SYS_NICE)) {
    if (rt_policy(policy)) {
      const std::uint64_t rtprio = p.rlimits[Rlim::Rtprio].cur;
      // Leaving a normal policy for FIFO/RR, or raising the priority, stays within RTPRIO.
      if (!rtprio && !rt_policy(p.sched.policy)) return EPERM;
      if (static_cast<std::uint64_t>(prio) > std::max<std::uint64_t>(p.sched.rt_priority, rtprio))
        return EPERM;
    }
    // Leaving SCHED_IDLE is raising the priority: RLIMIT_NICE must allow the nice value.
    if (p.sched.policy == kSchedIdle && policy != kSchedIdle && !can_nice(me, p, p.sched.nice))
      return EPERM;
    if (!may_set_sched(me, p)) return EPERM;
    if (p.sched.reset_on_fork && !reset_on_fork) return EPERM;
  }
  p.sched.policy = policy;
  p.sched.rt_priority = prio;
  p.sched.reset_on_fork = reset_on_fork;
  return 0;
}

SysResult do_sched_setscheduler(SyscallContext& ctx, int pid, int policy, vaddr_t param_at) {
  if (pid < 0 || !param_at) return err(EINVAL);
  std::int32_t prio = 0;
  if (!ctx.read(param_at, &prio, sizeof prio)) return err(EFAULT);
  auto p = sched_target(ctx, pid);
  if (!p) return err(p.error().code);
  const bool keep = policy == -1;  // sched_setparam: the current policy
  const bool reset = keep ? (*p)->sched.reset_on_fork : (policy & kSchedResetOnFork) != 0;
  if (keep) policy = (*p)->sched.policy;
  policy &= ~kSchedResetOnFork;
  const int e = set_scheduler(ctx.proc.cred, **p, policy, prio, reset);
  return e ? err(e) : SysResult::ok(0);
}

SysResult sys_sched_setscheduler(SyscallContext& ctx) {
  const int policy = ctx.arg_int(1);
  if (policy < 0) return err(EINVAL);
  return do_sched_setscheduler(ctx, ctx.arg_int(0), policy, ctx.arg(2));
}

SysResult sys_sched_setparam(SyscallContext& ctx) {
  return do_sched_setscheduler(ctx, ctx.arg_int(0), -1, ctx.arg(1));
}

SysResult sys_sched_getscheduler(SyscallContext& ctx) {
  auto p = sched_target(ctx, ctx.arg_int(0));
  if (!p) return err(p.error().code);
  const int v = (*p)->sched.policy | ((*p)->sched.reset_on_fork ? kSchedResetOnFork : 0);
  return SysResult::ok(static_cast<std::uint64_t>(v));
}

SysResult sys_sched_getparam(SyscallContext& ctx) {
  if (!ctx.arg(1)) return err(EINVAL);
  auto p = sched_target(ctx, ctx.arg_int(0));
  if (!p) return err(p.error().code);
  const std::int32_t prio = (*p)->sched.rt_priority;
  return ctx.write_obj(ctx.arg(1), prio) ? SysResult::ok(0) : err(EFAULT);
}

SysResult sys_sched_get_priority_max(SyscallContext& ctx) {
  const int policy = ctx.arg_int(0);
  if (rt_policy(policy)) return SysResult::ok(kMaxRtPrio);
  if (policy == kSchedOther || policy == kSchedBatch || policy == kSchedIdle ||
      policy == kSchedDeadline)
    return SysResult::ok(0);
  return err(EINVAL);
}

SysResult sys_sched_get_priority_min(SyscallContext& ctx) {
  const int policy = ctx.arg_int(0);
  if (rt_policy(policy)) return SysResult::ok(1);
  if (policy == kSchedOther || policy == kSchedBatch || policy == kSchedIdle ||
      policy == kSchedDeadline)
    return SysResult::ok(0);
  return err(EINVAL);
}

// struct sched_attr, SCHED_ATTR_SIZE_VER1 (56 bytes); VER0 (48) lacks the two util clamps.
struct SchedAttr {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
  std::uint32_t sched_util_min;
  std::uint32_t sched_util_max;
};
static_assert(sizeof(SchedAttr) == 56);
constexpr std::uint32_t kSchedAttrSizeVer0 = 48;
constexpr std::uint64_t kSchedFlagResetOnFork = 1;
// A fair task's slice: sysctl_sched_base_slice, 0.7 ms scaled by 1 + ilog2(CPUs) = 1.
constexpr std::uint64_t kFairSliceNs = 700000;

SysResult sys_sched_getattr(SyscallContext& ctx) {
  const int pid = ctx.arg_int(0);
  const vaddr_t at = ctx.arg(1);
  const auto usize = static_cast<std::uint32_t>(ctx.arg(2));
  if (!at || pid < 0 || usize > 4096 || usize < kSchedAttrSizeVer0 || ctx.arg(3) != 0)
    return err(EINVAL);
  auto p = sched_target(ctx, pid);
  if (!p) return err(p.error().code);
  const SchedParams& s = (*p)->sched;
  SchedAttr a{};
  a.size = std::min<std::uint32_t>(usize, sizeof a);
  a.sched_policy = static_cast<std::uint32_t>(s.policy);
  a.sched_flags = s.reset_on_fork ? kSchedFlagResetOnFork : 0;
  if (rt_policy(s.policy)) {
    a.sched_priority = static_cast<std::uint32_t>(s.rt_priority);
  } else {
    a.sched_nice = s.nice;
    a.sched_runtime = kFairSliceNs;
  }
  return ctx.write(at, &a, a.size) ? SysResult::ok(0) : err(EFAULT);
}

// ---- I/O priorities ----

constexpr int kIoprioWhoProcess = 1, kIoprioWhoPgrp = 2, kIoprioWhoUser = 3;
constexpr int kIoprioClassNone = 0, kIoprioClassRt = 1, kIoprioClassBe = 2, kIoprioClassIdle = 3;
constexpr int kIoprioClassShift = 13, kIoprioNrLevels = 8;

// ioprio_get/set's (which, who) as getpriority's, shifted by one.
Result<std::vector<Process*>> ioprio_targets(SyscallContext& ctx, int which, int who) {
  if (which < kIoprioWhoProcess || which > kIoprioWhoUser) return fail(EINVAL);
  return prio_targets(ctx, which - 1, who);
}

SysResult sys_ioprio_get(SyscallContext& ctx) {
  auto targets = ioprio_targets(ctx, ctx.arg_int(0), ctx.arg_int(1));
  if (!targets) return err(targets.error().code);
  if (targets->empty()) return err(ESRCH);
  // ioprio_best: the lowest class number above NONE wins, then the lowest level.
  auto rank = [](std::uint16_t v) {
    const int cls = v >> kIoprioClassShift;
    return (cls == kIoprioClassNone ? kIoprioClassBe : cls) * 0x2000 + (v & 0x1fff);
  };
  std::uint16_t best = (*targets)[0]->sched.ioprio;
  for (Process* q : *targets)
    if (rank(q->sched.ioprio) < rank(best)) best = q->sched.ioprio;
  return SysResult::ok(best);
}

// ioprio_check_cap: the class and level are valid; the RT class needs CAP_SYS_NICE or
// CAP_SYS_ADMIN.
int ioprio_check(const Credentials& me, std::uint32_t v) {
  const std::uint32_t cls = v >> kIoprioClassShift, level = v & 7, hint = (v >> 3) & 0x3ff;
  if (v > 0xffff) return EINVAL;
  switch (static_cast<int>(cls)) {
    case kIoprioClassRt:
      if (!capable(me, CAP_SYS_NICE) && !capable(me, CAP_SYS_ADMIN)) return EPERM;
      [[fallthrough]];
    case kIoprioClassBe:
      if (level >= static_cast<std::uint32_t>(kIoprioNrLevels)) return EINVAL;
      break;
    case kIoprioClassIdle:
      break;
    case kIoprioClassNone:
      if (level) return EINVAL;
      break;
    default:
      return EINVAL;
  }
  return hint ? EINVAL : 0;
}

SysResult sys_ioprio_set(SyscallContext& ctx) {
  const auto v = static_cast<std::uint32_t>(ctx.arg(2));
  if (const int e = ioprio_check(ctx.proc.cred, v)) return err(e);
  auto targets = ioprio_targets(ctx, ctx.arg_int(0), ctx.arg_int(1));
  if (!targets) return err(targets.error().code);
  if (targets->empty()) return err(ESRCH);
  int e = 0;
  for (Process* q : *targets) {
    // set_task_ioprio: the target's uid is the caller's real or effective one, or CAP_SYS_NICE.
    const Credentials& me = ctx.proc.cred;
    if (q->cred.uid != me.euid && q->cred.uid != me.uid && !capable(me, CAP_SYS_NICE)) {
      e = EPERM;
      continue;
    }
    q->sched.ioprio = static_cast<std::uint16_t>(v);
  }
  return e ? err(e) : SysResult::ok(0);
}

}  // namespace

void register_sched_syscalls(SyscallTable& t) {
  t.add(Sys::sched_getaffinity, sys_sched_getaffinity);
  t.add(Sys::sched_setaffinity, sys_sched_setaffinity);
  t.add(Sys::getpriority, sys_getpriority);
  t.add(Sys::setpriority, sys_setpriority);
  t.add(Sys::sched_setscheduler, sys_sched_setscheduler);
  t.add(Sys::sched_setparam, sys_sched_setparam);
  t.add(Sys::sched_getscheduler, sys_sched_getscheduler);
  t.add(Sys::sched_getparam, sys_sched_getparam);
  t.add(Sys::sched_get_priority_max, sys_sched_get_priority_max);
  t.add(Sys::sched_get_priority_min, sys_sched_get_priority_min);
  t.add(Sys::sched_getattr, sys_sched_getattr);
  t.add(Sys::ioprio_get, sys_ioprio_get);
  t.add(Sys::ioprio_set, sys_ioprio_set);
}

}  // namespace mmemu
