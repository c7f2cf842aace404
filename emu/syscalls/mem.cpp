// System calls: mem group (mmap, munmap, mprotect, mremap, madvise, mincore, mlock,
// mlock2, munlock, mlockall, munlockall, brk, msync), all through vma/mm_syscalls.hpp.
#include <sys/mman.h>

#include <cerrno>

#include "emu/fs/dev_file.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"

namespace mmemu {

namespace {

// x86_64's MAP_32BIT has no meaning on arm64, where the bit is unused (ignored, as
// Linux ignores unknown mmap flags).
constexpr int kMap32Bit = 0x40;

SysResult sc_mmap(SyscallContext& ctx) {
  const vaddr_t addr = ctx.arg(0);
  const std::uint64_t len = ctx.arg(1);
  const int prot = ctx.arg_int(2);
  int flags = ctx.arg_int(3);
  const int fd = ctx.arg_int(4);
  const std::uint64_t off = ctx.arg(5);
  if (ctx.arch() == Arch::Arm64) flags &= ~kMap32Bit;
  // sys_mmap: the offset is checked before the descriptor.
  if (off & ~PAGE_MASK) return SysResult::err(EINVAL);
  File* file = nullptr;
  bool fmode_write = false;
  if (!(flags & MAP_ANONYMOUS)) {
    auto f = fd_file(ctx, fd);
    if (!f) return SysResult::err(EBADF);
    OpenFile& of = **f;
    if (auto* dev = dynamic_cast<CharDev*>(&of); dev && dev->dev_kind() == CharDevKind::Zero) {
      // mmap_zero: a private mapping is anonymous memory, a shared one shmem; the open
      // mode still limits what the mapping may allow.
      if (!of.readable()) return SysResult::err(EACCES);
      if ((flags & MAP_TYPE) != MAP_PRIVATE && (prot & PROT_WRITE) && !of.writable())
        return SysResult::err(EACCES);
      return SysResult::from(
          sys_mmap(ctx.mm(), addr, len, prot, flags | MAP_ANONYMOUS, nullptr, 0));
    }
    file = of.mmap_file();
    if (!file) return SysResult::err(len ? ENODEV : EINVAL);
    if (!of.readable()) return SysResult::err(EACCES);
    fmode_write = of.writable();
  }
  return SysResult::from(sys_mmap(ctx.mm(), addr, len, prot, flags, file, off, fmode_write));
}

SysResult sc_munmap(SyscallContext& ctx) {
  return SysResult::from(do_munmap(ctx.mm(), ctx.arg(0), ctx.arg(1)));
}

// mprotect's prot and mremap's flags are unsigned long: bits above the int the mm layer
// takes are unknown bits, EINVAL like any other.
SysResult sc_mprotect(SyscallContext& ctx) {
  if (ctx.arg(2) >> 32) return SysResult::err(EINVAL);
  return SysResult::from(do_mprotect(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg_int(2)));
}

SysResult sc_mremap(SyscallContext& ctx) {
  if (ctx.arg(3) >> 32) return SysResult::err(EINVAL);
  return SysResult::from(
      do_mremap(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg_int(3), ctx.arg(4)));
}

SysResult sc_madvise(SyscallContext& ctx) {
  return SysResult::from(do_madvise(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg_int(2)));
}

SysResult sc_mincore(SyscallContext& ctx) {
  return SysResult::from(sys_mincore(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg(2)));
}

SysResult sc_mlock(SyscallContext& ctx) {
  return SysResult::from(do_mlock(ctx.mm(), ctx.arg(0), ctx.arg(1), 0));
}

SysResult sc_mlock2(SyscallContext& ctx) {
  return SysResult::from(
      do_mlock(ctx.mm(), ctx.arg(0), ctx.arg(1), static_cast<unsigned>(ctx.arg(2))));
}

SysResult sc_munlock(SyscallContext& ctx) {
  return SysResult::from(do_munlock(ctx.mm(), ctx.arg(0), ctx.arg(1)));
}

SysResult sc_mlockall(SyscallContext& ctx) {
  return SysResult::from(do_mlockall(ctx.mm(), ctx.arg_int(0)));
}

SysResult sc_munlockall(SyscallContext& ctx) {
  return SysResult::from(do_munlockall(ctx.mm()));
}

SysResult sc_brk(SyscallContext& ctx) {
  return SysResult::ok(sys_brk(ctx.mm(), ctx.arg(0)));
}

SysResult sc_msync(SyscallContext& ctx) {
  return SysResult::from(do_msync(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg_int(2)));
}

SysResult sc_mseal(SyscallContext& ctx) {
  return SysResult::from(do_mseal(ctx.mm(), ctx.arg(0), ctx.arg(1), ctx.arg(2)));
}

}  // namespace

void register_mem_syscalls(SyscallTable& t) {
  register_shm_syscalls(t);
  t.add(Sys::mmap, sc_mmap);
  t.add(Sys::munmap, sc_munmap);
  t.add(Sys::mprotect, sc_mprotect);
  t.add(Sys::mremap, sc_mremap);
  t.add(Sys::madvise, sc_madvise);
  t.add(Sys::mincore, sc_mincore);
  t.add(Sys::mlock, sc_mlock);
  t.add(Sys::mlock2, sc_mlock2);
  t.add(Sys::munlock, sc_munlock);
  t.add(Sys::mlockall, sc_mlockall);
  t.add(Sys::munlockall, sc_munlockall);
  t.add(Sys::brk, sc_brk);
  t.add(Sys::msync, sc_msync);
  t.add(Sys::mseal, sc_mseal);
}

}  // namespace mmemu
