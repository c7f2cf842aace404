// Minimal stand-ins for calls the syscall groups (emu/sys_*.cpp, another owner) provide,
// registered first so the real ones replace them: enough for static glibc to start, print
// and exit, so the kernel can be tested on its own. Each is the simplest Linux-correct
// answer for the common case.
#include <sys/utsname.h>
#include <time.h>

#include <cstring>

#include "emu/syscall.hpp"
#include "vma/mm_syscalls.hpp"

namespace mmemu {

namespace {

SysResult sys_write(SyscallContext& ctx) {
  auto f = ctx.proc.fds->get(ctx.arg_int(0));
  if (!f) return SysResult::err(EBADF);
  std::vector<std::uint8_t> buf(ctx.arg(2));
  if (!buf.empty() && !ctx.read(ctx.arg(1), buf.data(), buf.size())) return SysResult::err(EFAULT);
  return f->write(ctx, buf);
}

SysResult sys_writev(SyscallContext& ctx) {
  auto f = ctx.proc.fds->get(ctx.arg_int(0));
  if (!f) return SysResult::err(EBADF);
  std::vector<std::uint8_t> buf;
  for (std::uint64_t i = 0; i < ctx.arg(2); ++i) {
    std::uint64_t iov[2];
    if (!ctx.read(ctx.arg(1) + 16 * i, iov, sizeof iov)) return SysResult::err(EFAULT);
    const std::size_t at = buf.size();
    buf.resize(at + iov[1]);
    if (iov[1] && !ctx.read(iov[0], buf.data() + at, iov[1])) return SysResult::err(EFAULT);
  }
  return f->write(ctx, buf);
}

SysResult sys_brk(SyscallContext& ctx) {
  return SysResult::ok(sys_brk(ctx.mm(), ctx.arg(0)));
}

SysResult sys_mmap(SyscallContext& ctx) {
  const int flags = ctx.arg_int(3);
  if (!(flags & MAP_ANONYMOUS)) return SysResult::err(ENODEV);
  return SysResult::from(
      sys_mmap(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg_int(2), flags, nullptr, ctx.arg(5)));
}

SysResult sys_munmap(SyscallContext& ctx) {
  return SysResult::from(do_munmap(ctx.mm(), ctx.arg(0), ctx.arg(1)));
}

SysResult sys_mprotect(SyscallContext& ctx) {
  return SysResult::from(do_mprotect(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg_int(2)));
}

SysResult sys_arch_prctl(SyscallContext& ctx) {
  constexpr int kSetFs = 0x1002, kGetFs = 0x1003;
  switch (ctx.arg_int(0)) {
    case kSetFs:
      ctx.proc.cpu->set_tls(ctx.arg(1));
      return SysResult::ok(0);
    case kGetFs:
      return SysResult::from(ctx.write_obj<std::uint64_t>(ctx.arg(1), ctx.proc.cpu->tls()));
    default:
      return SysResult::err(EINVAL);
  }
}

SysResult sys_uname(SyscallContext& ctx) {
  struct utsname host;
  ::uname(&host);
  char u[6][65] = {};
  std::strcpy(u[0], "Linux");
  std::strcpy(u[1], "mmemu");
  std::memcpy(u[2], host.release, strnlen(host.release, 64));
  std::memcpy(u[3], host.version, strnlen(host.version, 64));
  std::strcpy(u[4], ctx.arch() == Arch::X86_64 ? "x86_64" : "aarch64");
  std::strcpy(u[5], "(none)");
  return SysResult::from(ctx.write(ctx.arg(0), u, sizeof u));
}

SysResult sys_ok(SyscallContext&) {
  return SysResult::ok(0);
}

SysResult sys_enosys(SyscallContext&) {
  return SysResult::err(ENOSYS);
}

SysResult sys_getuid(SyscallContext& ctx) {
  return SysResult::ok(ctx.proc.uid);
}

SysResult sys_prlimit64(SyscallContext& ctx) {
  if (ctx.arg(0) != 0 && ctx.arg_int(0) != ctx.proc.pid) return SysResult::err(ESRCH);
  const int res = ctx.arg_int(1);
  if (res < 0 || res >= kRlimNlimits) return SysResult::err(EINVAL);
  Rlimit cur = ctx.proc.rlimits[static_cast<std::size_t>(res)];
  if (res == 3) cur = ctx.mm().rlimit_stack;
  if (res == 8) cur = ctx.mm().rlimit_memlock;
  if (ctx.arg(3)) {
    const std::uint64_t v[2] = {cur.cur, cur.max};
    if (!ctx.write(ctx.arg(3), v, sizeof v)) return SysResult::err(EFAULT);
  }
  return SysResult::ok(0);
}

SysResult sys_getrandom(SyscallContext& ctx) {
  std::vector<std::uint8_t> buf(std::min<std::uint64_t>(ctx.arg(1), 256));
  for (std::size_t i = 0; i < buf.size(); ++i)
    buf[i] = static_cast<std::uint8_t>(i * 131 + 7);
  if (!ctx.write(ctx.arg(0), buf.data(), buf.size())) return SysResult::err(EFAULT);
  return SysResult::ok(buf.size());
}

SysResult sys_clock_gettime(SyscallContext& ctx) {
  timespec ts;
  if (::clock_gettime(static_cast<clockid_t>(ctx.arg_int(0)), &ts) != 0)
    return SysResult::err(EINVAL);
  const std::int64_t v[2] = {ts.tv_sec, ts.tv_nsec};
  return SysResult::from(ctx.write(ctx.arg(1), v, sizeof v));
}

SysResult sys_ioctl(SyscallContext& ctx) {
  auto f = ctx.proc.fds->get(ctx.arg_int(0));
  if (!f) return SysResult::err(EBADF);
  return f->ioctl(ctx, ctx.arg(1), ctx.arg(2));
}

}  // namespace

void register_bootstrap_syscalls(SyscallTable& t) {
  t.add(Sys::write, sys_write);
  t.add(Sys::writev, sys_writev);
  t.add(Sys::brk, sys_brk);
  t.add(Sys::mmap, sys_mmap);
  t.add(Sys::munmap, sys_munmap);
  t.add(Sys::mprotect, sys_mprotect);
  t.add(Sys::arch_prctl, sys_arch_prctl);
  t.add(Sys::uname, sys_uname);
  t.add(Sys::set_robust_list, sys_ok);
  t.add(Sys::rseq, sys_enosys);
  t.add(Sys::getuid, sys_getuid);
  t.add(Sys::geteuid, sys_getuid);
  t.add(Sys::getgid, sys_getuid);
  t.add(Sys::getegid, sys_getuid);
  t.add(Sys::prlimit64, sys_prlimit64);
  t.add(Sys::getrandom, sys_getrandom);
  t.add(Sys::clock_gettime, sys_clock_gettime);
  t.add(Sys::ioctl, sys_ioctl);
}

}  // namespace mmemu
