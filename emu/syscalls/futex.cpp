// futex(2): wait queues keyed like get_futex_key (private: mm + address; shared mapping:
// physical address).
#include "emu/syscalls/futex.hpp"

#include <cerrno>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "emu/syscalls/abi.hpp"
#include "vma/fault.hpp"

namespace mmemu {

namespace {

constexpr int kFutexWait = 0, kFutexWake = 1, kFutexWaitBitset = 9, kFutexWakeBitset = 10;
constexpr int kFutexPrivate = 128, kFutexClockRealtime = 256;
constexpr std::int64_t kNsecPerSec = 1000000000;

using FutexKey = std::pair<std::uint64_t, std::uint64_t>;

struct Waiter {
  int pid;
  std::uint32_t bitset;
  std::unique_ptr<WaitQueue> wq;  // this waiter's own queue: WAKE n wakes exactly n
};

// One kernel's futex state. The kernel has no slot for it, so states live in a registry
// keyed by the Kernel; "futex_waits" in the kernel's stats tells a new kernel that
// happens to reuse an old one's address from the old one.
struct FutexState {
  std::map<FutexKey, std::deque<Waiter>> queues;
  std::set<int> woken;  // pids woken by FUTEX_WAKE whose retried wait must return 0
  std::uint64_t waits = 0;
};

FutexState& state(Kernel& k) {
  static std::map<const Kernel*, FutexState> registry;
  FutexState& s = registry[&k];
  if (s.waits > k.stats().get("futex_waits")) s = FutexState{};
  return s;
}

// get_futex_key: a futex in a shared mapping is the same object in every process.
Result<FutexKey> futex_key(Mm& mm, vaddr_t uaddr) {
  const Vma* v = mm.vma_lookup(uaddr);
  if (v && (v->vm_flags & VM_SHARED)) {
    auto t = fault_in(mm, uaddr, Access::Read);
    if (!t) return fail(EFAULT);
    return FutexKey{~0ULL, (t->pfn << PAGE_SHIFT) | (uaddr & (PAGE_SIZE - 1))};
  }
  return FutexKey{mm.id(), uaddr};
}

std::uint64_t ns_of(const GuestTimespec& t) {
  return static_cast<std::uint64_t>(t.sec) * kNsecPerSec + static_cast<std::uint64_t>(t.nsec);
}

SysResult futex_wait(SyscallContext& ctx, vaddr_t uaddr, std::uint32_t val, vaddr_t timeout,
                     std::uint32_t bitset, bool absolute, bool realtime) {
  FutexState& s = state(ctx.kernel);
  const int pid = ctx.proc.pid;
  auto key = futex_key(ctx.mm(), uaddr);
  if (!key) return SysResult::err(EFAULT);
  auto& q = s.queues[*key];
  if (ctx.retry > 0) {
    if (s.woken.erase(pid)) return SysResult::ok(0);
    // Not woken: the timeout passed (a signal never reaches here).
    std::erase_if(q, [pid](const Waiter& w) { return w.pid == pid; });
    if (timeout) return SysResult::err(ETIMEDOUT);
  }
  s.woken.erase(pid);
  // The timeout is read and checked on entry; the value comparison comes before any
  // expiry (an elapsed absolute time with a changed value is EAGAIN).
  std::uint64_t deadline = 0;
  bool expired = false;
  if (timeout) {
    auto t = read_timespec(ctx, timeout);
    if (!t) return SysResult::err(EFAULT);
    if (t->sec < 0 || t->nsec < 0 || t->nsec >= kNsecPerSec) return SysResult::err(EINVAL);
    const std::uint64_t now = host_monotonic_ns();
    if (absolute) {
      timespec c;
      ::clock_gettime(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &c);
      const std::uint64_t cur = ns_of(GuestTimespec{c.tv_sec, c.tv_nsec});
      expired = ns_of(*t) <= cur;
      deadline = expired ? now : now + (ns_of(*t) - cur);
    } else {
      deadline = now + ns_of(*t);
    }
  }
  if (ctx.retry == 0) {
    auto cur = ctx.read_obj<std::uint32_t>(uaddr);
    if (!cur) return SysResult::err(EFAULT);
    if (*cur != val) return SysResult::err(EAGAIN);
  }
  if (expired) return SysResult::err(ETIMEDOUT);
  // One queue entry per waiting pid; a restarted wait replaces its stale entry.
  std::erase_if(q, [pid](const Waiter& w) { return w.pid == pid; });
  q.push_back(Waiter{pid, bitset, std::make_unique<WaitQueue>()});
  ctx.kernel.stats().add("futex_waits");
  s.waits = ctx.kernel.stats().get("futex_waits");
  WaitQueue& wq = *q.back().wq;
  if (deadline) return SysResult::block_until(deadline, &wq, Restart::Never);
  return SysResult::block(wq, Restart::IfSaRestart);
}

}  // namespace

int futex_wake(Kernel& k, Mm& mm, vaddr_t uaddr, int n, std::uint32_t bitset) {
  FutexState& s = state(k);
  auto key = futex_key(mm, uaddr);
  if (!key) return 0;
  auto it = s.queues.find(*key);
  if (it == s.queues.end()) return 0;
  int woken = 0;
  auto& q = it->second;
  for (auto w = q.begin(); w != q.end();) {
    if (!w->wq->has_waiters()) {  // gone (killed, interrupted): drop it
      w = q.erase(w);
      continue;
    }
    if (!(w->bitset & bitset)) {
      ++w;
      continue;
    }
    s.woken.insert(w->pid);
    w->wq->wake_all();
    w = q.erase(w);
    if (++woken >= n) break;
  }
  if (q.empty()) s.queues.erase(it);
  return woken;
}

SysResult sys_futex(SyscallContext& ctx) {
  const vaddr_t uaddr = ctx.arg(0);
  const int op = ctx.arg_int(1);
  const auto val = static_cast<std::uint32_t>(ctx.arg(2));
  const vaddr_t timeout = ctx.arg(3);
  const auto val3 = static_cast<std::uint32_t>(ctx.arg(5));
  const int cmd = op & ~(kFutexPrivate | kFutexClockRealtime);
  const bool realtime = (op & kFutexClockRealtime) != 0;
  if (realtime && cmd != kFutexWaitBitset) return SysResult::err(ENOSYS);
  if (cmd != kFutexWait && cmd != kFutexWake && cmd != kFutexWaitBitset && cmd != kFutexWakeBitset)
    return SysResult::err(ENOSYS);
  if (uaddr & 3) return SysResult::err(EINVAL);
  switch (cmd) {
    case kFutexWait:
      return futex_wait(ctx, uaddr, val, timeout, ~0U, false, false);
    case kFutexWaitBitset:
      if (!val3) return SysResult::err(EINVAL);
      return futex_wait(ctx, uaddr, val, timeout, val3, true, realtime);
    case kFutexWake:
      return SysResult::ok(static_cast<std::uint64_t>(
          futex_wake(ctx.kernel, ctx.mm(), uaddr, static_cast<int>(val))));
    case kFutexWakeBitset:
      if (!val3) return SysResult::err(EINVAL);
      return SysResult::ok(static_cast<std::uint64_t>(
          futex_wake(ctx.kernel, ctx.mm(), uaddr, static_cast<int>(val), val3)));
  }
  return SysResult::err(ENOSYS);
}

}  // namespace mmemu
