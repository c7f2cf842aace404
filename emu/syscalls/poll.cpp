// System calls: poll, ppoll, select, pselect6 (registered by register_file_syscalls).
//
// Readiness comes from OpenFile::poll. A call that must wait sleeps on the one queue that
// can change its answer; with several such queues it re-checks on a 1 ms tick (a process
// waits on one queue at a time here). A handled signal ends the wait with -EINTR.
#include <algorithm>
#include <cstring>
#include <vector>

#include "emu/kernel/process.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

constexpr unsigned kPollIn = 0x1, kPollPri = 0x2, kPollOut = 0x4, kPollErr = 0x8, kPollHup = 0x10,
                   kPollNval = 0x20, kPollRdNorm = 0x40, kPollRdBand = 0x80, kPollWrNorm = 0x100,
                   kPollWrBand = 0x200;
constexpr std::uint64_t kNsecPerSec = 1000000000;
constexpr std::uint64_t kTickNs = 1000000;
constexpr std::uint64_t kNoTimeout = ~0ULL;

// What one pass over the descriptors found.
struct Scan {
  int ready = 0;
  WaitQueue* queue = nullptr;  // the only queue seen
  bool several = false;        // more than one distinct queue
};

void note_queue(Scan& s, WaitQueue* wq) {
  if (!wq || wq == s.queue) return;
  if (s.queue) s.several = true;
  s.queue = wq;
}

// Nothing ready: decide how to wait. timeout_ns is relative (kNoTimeout: forever) on the
// first attempt; later attempts use the deadline kept in the process.
SysResult wait_or_time_out(SyscallContext& ctx, const Scan& s, std::uint64_t timeout_ns,
                           bool* timed_out) {
  *timed_out = false;
  Process& p = ctx.proc;
  const std::uint64_t now = host_monotonic_ns();
  std::uint64_t deadline = 0;
  if (ctx.retry == 0) {
    if (timeout_ns == 0) {
      *timed_out = true;
      return SysResult::ok(0);
    }
    if (timeout_ns != kNoTimeout) deadline = now + timeout_ns;
  } else {
    deadline = p.poll_deadline_ns;
    if (deadline && now >= deadline) {
      p.poll_deadline_ns = 0;
      *timed_out = true;
      return SysResult::ok(0);
    }
  }
  p.poll_deadline_ns = deadline;
  std::uint64_t wake = deadline;
  if (s.several || (!s.queue && !deadline)) {
    // Several queues, or none at all with no deadline (only a signal can end it): a queue
    // of our own would never be woken, so sleep on a tick only when there is a queue.
    if (s.several) wake = deadline ? std::min(deadline, now + kTickNs) : now + kTickNs;
  }
  return SysResult::block_until(wake, s.several ? nullptr : s.queue, Restart::Never);
}

struct GuestPollFd {
  std::int32_t fd;
  std::int16_t events, revents;
};

SysResult do_poll(SyscallContext& ctx, vaddr_t ufds, std::uint64_t nfds, std::uint64_t timeout_ns) {
  if (nfds > static_cast<std::uint64_t>(ctx.proc.fds->max_fds())) return SysResult::err(EINVAL);
  std::vector<GuestPollFd> fds(nfds);
  if (nfds && !ctx.read(ufds, fds.data(), nfds * sizeof(GuestPollFd)))
    return SysResult::err(EFAULT);
  Scan s;
  for (GuestPollFd& f : fds) {
    f.revents = 0;
    if (f.fd < 0) continue;
    OpenFileRef file = ctx.proc.fds->get(f.fd);
    unsigned m = kPollNval;
    if (file) {
      WaitQueue* wq = nullptr;
      m = file->poll(&wq) & (static_cast<std::uint16_t>(f.events) | kPollErr | kPollHup);
      note_queue(s, wq);
    }
    f.revents = static_cast<std::int16_t>(m);
    if (m) ++s.ready;
  }
  if (!s.ready) {
    bool timed_out = false;
    SysResult w = wait_or_time_out(ctx, s, timeout_ns, &timed_out);
    if (!timed_out) return w;
  }
  ctx.proc.poll_deadline_ns = 0;
  if (nfds && !ctx.write(ufds, fds.data(), nfds * sizeof(GuestPollFd)))
    return SysResult::err(EFAULT);
  return SysResult::ok(static_cast<std::uint64_t>(s.ready));
}

// A timespec timeout pointer: kNoTimeout for NULL; EINVAL/EFAULT as poll_select_set_timeout.
Result<std::uint64_t> timespec_timeout(SyscallContext& ctx, vaddr_t at) {
  if (!at) return kNoTimeout;
  auto t = read_timespec(ctx, at);
  if (!t) return fail(EFAULT);
  if (t->sec < 0 || t->nsec < 0 || t->nsec >= static_cast<std::int64_t>(kNsecPerSec))
    return fail(EINVAL);
  return static_cast<std::uint64_t>(t->sec) * kNsecPerSec + static_cast<std::uint64_t>(t->nsec);
}

// ppoll/pselect6's temporary signal mask, as sigsuspend's (restored after delivery).
Result<void> set_temp_mask(SyscallContext& ctx, vaddr_t mask_at, std::uint64_t size) {
  if (!mask_at || ctx.retry > 0) return {};
  if (size != 8) return fail(EINVAL);
  auto mask = ctx.read_obj<std::uint64_t>(mask_at);
  if (!mask) return fail(EFAULT);
  if (!ctx.proc.sig.saved_mask) ctx.proc.sig.saved_mask = ctx.proc.sig.blocked;
  ctx.proc.sig.blocked = *mask & ~kUnblockable;
  return {};
}

// poll_select_finish: a call that returns (ready descriptors, the timeout, an error) puts
// the old mask back at once, so a signal its mask let through is not delivered; only an
// interrupted call keeps it for the handler frame (restored when the handler returns).
SysResult finish_temp_mask(SyscallContext& ctx, const SysResult& r) {
  if (r.kind() == SysResult::Kind::Return && ctx.proc.sig.saved_mask) {
    ctx.proc.sig.blocked = *ctx.proc.sig.saved_mask;
    ctx.proc.sig.saved_mask.reset();
  }
  return r;
}

SysResult sys_poll(SyscallContext& ctx) {
  const int ms = ctx.arg_int(2);
  const std::uint64_t timeout = ms < 0 ? kNoTimeout : static_cast<std::uint64_t>(ms) * 1000000ULL;
  return do_poll(ctx, ctx.arg(0), static_cast<std::uint32_t>(ctx.arg(1)), timeout);
}

SysResult sys_ppoll(SyscallContext& ctx) {
  auto timeout = timespec_timeout(ctx, ctx.arg(2));
  if (!timeout) return SysResult::err(timeout.error().code);
  if (auto r = set_temp_mask(ctx, ctx.arg(3), ctx.arg(4)); !r)
    return SysResult::err(r.error().code);
  return finish_temp_mask(
      ctx, do_poll(ctx, ctx.arg(0), static_cast<std::uint32_t>(ctx.arg(1)), *timeout));
}

// core_sys_select over three fd_set bitmaps of n bits.
SysResult do_select(SyscallContext& ctx, int n, const std::array<vaddr_t, 3>& sets,
                    std::uint64_t timeout_ns) {
  if (n < 0) return SysResult::err(EINVAL);
  n = std::min(n, ctx.proc.fds->table_size());  // not the rlimit: fds past the table are ignored
  const std::size_t words = (static_cast<std::size_t>(n) + 63) / 64;
  const std::size_t bytes = words * 8;  // whole longs in and out, as FDS_BYTES
  std::array<std::vector<std::uint64_t>, 3> in, out;
  for (int k = 0; k < 3; ++k) {
    in[k].assign(words, 0);
    out[k].assign(words, 0);
    if (sets[k] && words && !ctx.read(sets[k], in[k].data(), bytes)) return SysResult::err(EFAULT);
    if (n % 64 && words) in[k][words - 1] &= (1ULL << (n % 64)) - 1;
  }
  constexpr unsigned kInSet = kPollRdNorm | kPollRdBand | kPollIn | kPollHup | kPollErr;
  constexpr unsigned kOutSet = kPollWrBand | kPollWrNorm | kPollOut | kPollErr;
  Scan s;
  for (int fd = 0; fd < n; ++fd) {
    const std::size_t w = static_cast<std::size_t>(fd) / 64;
    const std::uint64_t bit = 1ULL << (fd % 64);
    if (!((in[0][w] | in[1][w] | in[2][w]) & bit)) continue;
    OpenFileRef file = ctx.proc.fds->get(fd);
    if (!file) return SysResult::err(EBADF);
    WaitQueue* wq = nullptr;
    const unsigned m = file->poll(&wq);
    note_queue(s, wq);
    if ((in[0][w] & bit) && (m & kInSet)) out[0][w] |= bit, ++s.ready;
    if ((in[1][w] & bit) && (m & kOutSet)) out[1][w] |= bit, ++s.ready;
    if ((in[2][w] & bit) && (m & kPollPri)) out[2][w] |= bit, ++s.ready;
  }
  if (!s.ready) {
    bool timed_out = false;
    SysResult wres = wait_or_time_out(ctx, s, timeout_ns, &timed_out);
    if (!timed_out) return wres;
  }
  ctx.proc.poll_deadline_ns = 0;
  for (int k = 0; k < 3; ++k)
    if (sets[k] && words && !ctx.write(sets[k], out[k].data(), bytes))
      return SysResult::err(EFAULT);
  return SysResult::ok(static_cast<std::uint64_t>(s.ready));
}

SysResult sys_select(SyscallContext& ctx) {
  std::uint64_t timeout = kNoTimeout;
  if (ctx.arg(4)) {
    std::int64_t tv[2];
    if (!ctx.read(ctx.arg(4), tv, sizeof tv)) return SysResult::err(EFAULT);
    if (tv[0] < 0 || tv[1] < 0) return SysResult::err(EINVAL);
    // poll_select_set_timeout normalises large microseconds into seconds.
    timeout =
        static_cast<std::uint64_t>(tv[0]) * kNsecPerSec + static_cast<std::uint64_t>(tv[1]) * 1000;
  }
  return do_select(ctx, ctx.arg_int(0), {ctx.arg(1), ctx.arg(2), ctx.arg(3)}, timeout);
}

SysResult sys_pselect6(SyscallContext& ctx) {
  auto timeout = timespec_timeout(ctx, ctx.arg(4));
  if (!timeout) return SysResult::err(timeout.error().code);
  if (ctx.arg(5)) {  // {const sigset_t *ss; size_t ss_len}
    std::uint64_t sig[2];
    if (!ctx.read(ctx.arg(5), sig, sizeof sig)) return SysResult::err(EFAULT);
    if (auto r = set_temp_mask(ctx, sig[0], sig[1]); !r) return SysResult::err(r.error().code);
  }
  return finish_temp_mask(
      ctx, do_select(ctx, ctx.arg_int(0), {ctx.arg(1), ctx.arg(2), ctx.arg(3)}, *timeout));
}

}  // namespace

void register_poll_syscalls(SyscallTable& t) {
  t.add(Sys::poll, sys_poll);
  t.add(Sys::ppoll, sys_ppoll);
  t.add(Sys::select, sys_select);
  t.add(Sys::pselect6, sys_pselect6);
}

}  // namespace mmemu
