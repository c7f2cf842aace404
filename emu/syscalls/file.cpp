// System calls: file group, descriptor side (read/write and their vector and positioned
// forms, lseek, close, dup*, fcntl, pipe*, ioctl, fstat, fsync). The name side (open,
// stat, readlink, access, getcwd, chdir, getdents) is emu/syscalls/fs.cpp. Checks come in
// the order Linux makes them, so each failure has Linux's errno.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "emu/fs/dev_file.hpp"
#include "emu/fs/path_lookup.hpp"
#include "emu/fs/pipe.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

constexpr std::uint64_t kChunk = 1ULL << 20;  // host bounce buffer per step

SysResult err(int e) {
  return SysResult::err(e);
}
SysResult err(const Errno& e) {
  return SysResult::err(e.code);
}

// Gathers the segments into one host buffer, stopping at the first fault.
std::vector<std::uint8_t> gather(const SyscallContext& ctx, const Segments& s) {
  std::vector<std::uint8_t> buf(s.total);
  std::uint64_t done = 0;
  for (const auto& [base, len] : s.seg) {
    const std::uint64_t c = copy_in_partial(ctx, buf.data() + done, base, len);
    done += c;
    if (c < len) break;
  }
  buf.resize(done);
  return buf;
}

// Returns bytes a read took but the guest could not receive.
void give_back(OpenFile& f, const std::uint8_t* data, std::uint64_t n) {
  if (auto* pe = dynamic_cast<PipeEnd*>(&f)) {
    pe->pipe().unread({data, n});
    return;
  }
  const std::string_view k = f.kind();
  if (k == "file" || k == "proc") f.set_pos(f.pos() - std::min(f.pos(), n));
  // A terminal cannot take bytes back: they are lost, as they would be to a faulting
  // reader of a real tty line only in corner cases.
}

// The read loop: bounce buffers of up to kChunk bytes, continuing while they fill (a
// regular file), stopping at a short read, a fault or a blocking answer once something
// was read. off: positioned read (pread) instead of the file position.
SysResult read_into(SyscallContext& ctx, OpenFile& f, const Segments& s,
                    std::optional<std::uint64_t> off) {
  std::uint64_t done = 0;
  do {
    const std::uint64_t chunk = std::min(s.total - done, kChunk);
    std::vector<std::uint8_t> tmp(chunk);
    const SysResult r = off ? f.pread(ctx, tmp, *off + done) : f.read(ctx, tmp);
    if (!r.is_return() || r.is_error()) return done ? SysResult::ok(done) : r;
    const auto n = std::min<std::uint64_t>(static_cast<std::uint64_t>(r.value()), chunk);
    const std::uint64_t copied = scatter(ctx, s, done, tmp.data(), n);
    done += copied;
    if (copied < n) {
      if (!off) give_back(f, tmp.data() + copied, n - copied);
      return done ? SysResult::ok(done) : err(EFAULT);
    }
    if (n < chunk || n == 0) break;
  } while (done < s.total);
  return SysResult::ok(done);
}

SysResult write_from(SyscallContext& ctx, OpenFile& f, const Segments& s) {
  const std::vector<std::uint8_t> buf = gather(ctx, s);
  if (buf.empty() && s.total > 0) return err(EFAULT);
  return f.write(ctx, buf);
}

Segments one_segment(vaddr_t buf, std::uint64_t count) {
  Segments s;
  s.seg.emplace_back(buf, count);
  s.total = count;
  return s;
}

bool can_pread(const OpenFile& f) {
  const std::string_view k = f.kind();
  return k != "pipe" && k != "tty";
}

// ---- read / write ----

SysResult sys_read(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  if (!(*f)->readable()) return err(EBADF);
  const vaddr_t buf = ctx.arg(1);
  std::uint64_t count = ctx.arg(2);
  if (!access_ok(ctx.arch(), buf, count)) return err(EFAULT);
  count = std::min(count, kMaxRwCount);
  return read_into(ctx, **f, one_segment(buf, count), std::nullopt);
}

SysResult sys_write(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  if (!(*f)->writable()) return err(EBADF);
  const vaddr_t buf = ctx.arg(1);
  std::uint64_t count = ctx.arg(2);
  if (!access_ok(ctx.arch(), buf, count)) return err(EFAULT);
  count = std::min(count, kMaxRwCount);
  return write_from(ctx, **f, one_segment(buf, count));
}

SysResult sys_pread64(SyscallContext& ctx) {
  const auto pos = static_cast<std::int64_t>(ctx.arg(3));
  if (pos < 0) return err(EINVAL);
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  if (!can_pread(**f)) return err(ESPIPE);
  if (!(*f)->readable()) return err(EBADF);
  const vaddr_t buf = ctx.arg(1);
  std::uint64_t count = ctx.arg(2);
  if (!access_ok(ctx.arch(), buf, count)) return err(EFAULT);
  count = std::min(count, kMaxRwCount);
  return read_into(ctx, **f, one_segment(buf, count), static_cast<std::uint64_t>(pos));
}

// Positioned writes (host files are never open for writing; devices ignore the offset).
SysResult pwrite_common(SyscallContext& ctx, OpenFile& f, const Segments& s, std::uint64_t pos) {
  if (!can_pread(f)) return err(ESPIPE);
  if (!f.writable()) return err(EBADF);
  const std::vector<std::uint8_t> buf = gather(ctx, s);
  if (buf.empty() && s.total > 0) return err(EFAULT);
  return f.pwrite(ctx, buf, pos);
}

SysResult sys_pwrite64(SyscallContext& ctx) {
  const auto pos = static_cast<std::int64_t>(ctx.arg(3));
  if (pos < 0) return err(EINVAL);
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  if (!can_pread(**f)) return err(ESPIPE);
  if (!(*f)->writable()) return err(EBADF);
  const vaddr_t buf = ctx.arg(1);
  std::uint64_t count = ctx.arg(2);
  if (!access_ok(ctx.arch(), buf, count)) return err(EFAULT);
  count = std::min(count, kMaxRwCount);
  return pwrite_common(ctx, **f, one_segment(buf, count), static_cast<std::uint64_t>(pos));
}

// readv/writev/preadv/pwritev/preadv2/pwritev2. pos < 0 (the v2 forms' -1): the file
// position.
SysResult vector_io(SyscallContext& ctx, bool write, bool positioned, std::int64_t pos) {
  if (positioned && pos < 0) return err(EINVAL);
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  OpenFile& file = **f;
  if (positioned && !can_pread(file)) return err(ESPIPE);
  if (write ? !file.writable() : !file.readable()) return err(EBADF);
  auto s = import_iovec(ctx, ctx.arg(1), ctx.arg(2));
  if (!s) return err(s.error());
  if (write)
    return positioned ? pwrite_common(ctx, file, *s, static_cast<std::uint64_t>(pos))
                      : write_from(ctx, file, *s);
  if (s->seg.empty()) return SysResult::ok(0);
  return read_into(
      ctx, file, *s,
      positioned ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(pos)) : std::nullopt);
}

SysResult sys_readv(SyscallContext& ctx) {
  return vector_io(ctx, false, false, 0);
}
SysResult sys_writev(SyscallContext& ctx) {
  return vector_io(ctx, true, false, 0);
}
SysResult sys_preadv(SyscallContext& ctx) {
  return vector_io(ctx, false, true, static_cast<std::int64_t>(ctx.arg(3)));
}
SysResult sys_pwritev(SyscallContext& ctx) {
  return vector_io(ctx, true, true, static_cast<std::int64_t>(ctx.arg(3)));
}
// preadv2/pwritev2: offset -1 means the file position; RWF_* flags beyond the known ones
// are EOPNOTSUPP.
SysResult vector_io2(SyscallContext& ctx, bool write) {
  const auto pos = static_cast<std::int64_t>(ctx.arg(3));
  const std::uint64_t flags = ctx.arg(5) & 0xffffffffULL;
  if (flags & ~0x7fULL) return err(EOPNOTSUPP);
  if (pos == -1) return vector_io(ctx, write, false, 0);
  return vector_io(ctx, write, true, pos);
}
SysResult sys_preadv2(SyscallContext& ctx) {
  return vector_io2(ctx, false);
}
SysResult sys_pwritev2(SyscallContext& ctx) {
  return vector_io2(ctx, true);
}

// ---- positions, descriptors ----

SysResult sys_lseek(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  const auto whence = static_cast<unsigned>(ctx.arg(2));
  if (whence > SEEK_HOLE) return err(EINVAL);
  auto r = (*f)->lseek(static_cast<std::int64_t>(ctx.arg(1)), static_cast<int>(whence));
  return SysResult::from(r);
}

SysResult sys_close(SyscallContext& ctx) {
  return SysResult::from(ctx.proc.fds->close(ctx.arg_int(0)));
}

// close_range(first, last, flags): CLOSE_RANGE_UNSHARE (a no-op: tables are never shared)
// and CLOSE_RANGE_CLOEXEC.
SysResult sys_close_range(SyscallContext& ctx) {
  const auto first = static_cast<unsigned>(ctx.arg(0));
  const auto last = static_cast<unsigned>(ctx.arg(1));
  const auto flags = static_cast<unsigned>(ctx.arg(2));
  if (flags & ~6U) return err(EINVAL);
  if (first > last) return err(EINVAL);
  for (int fd : ctx.proc.fds->open_fds()) {
    const auto u = static_cast<unsigned>(fd);
    if (u < first || u > last) continue;
    if (flags & 4U)
      (void)ctx.proc.fds->set_cloexec(fd, true);
    else
      (void)ctx.proc.fds->close(fd);
  }
  return SysResult::ok(0);
}

SysResult sys_dup(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0), true);
  if (!f) return err(f.error());
  return SysResult::from(ctx.proc.fds->install(*f, false));
}

SysResult dup3_common(SyscallContext& ctx, int oldfd, int newfd, bool cloexec) {
  FdTable& t = *ctx.proc.fds;
  if (newfd < 0 || newfd >= t.max_fds()) return err(EBADF);
  OpenFileRef f = t.get(oldfd);
  if (!f) return err(EBADF);
  if (auto r = t.install_at(newfd, std::move(f), cloexec); !r) return err(r.error());
  return SysResult::ok(static_cast<std::uint64_t>(newfd));
}

SysResult sys_dup2(SyscallContext& ctx) {
  const int oldfd = ctx.arg_int(0), newfd = ctx.arg_int(1);
  if (oldfd == newfd) {
    if (!ctx.proc.fds->is_open(oldfd)) return err(EBADF);
    return SysResult::ok(static_cast<std::uint64_t>(newfd));
  }
  return dup3_common(ctx, oldfd, newfd, false);
}

SysResult sys_dup3(SyscallContext& ctx) {
  const int oldfd = ctx.arg_int(0), newfd = ctx.arg_int(1);
  const auto flags = static_cast<std::uint32_t>(ctx.arg(2));
  if (flags & ~static_cast<std::uint32_t>(O_CLOEXEC)) return err(EINVAL);
  if (oldfd == newfd) return err(EINVAL);
  return dup3_common(ctx, oldfd, newfd, flags & O_CLOEXEC);
}

constexpr int kFSetPipeSz = 1031, kFGetPipeSz = 1032, kFAddSeals = 1033, kFGetSeals = 1034;
constexpr int kFOfdGetlk = 36, kFOfdSetlk = 37, kFOfdSetlkw = 38;

// F_GETLK/F_SETLK(W) and the OFD forms: nobody else holds locks on anything here, so a
// query answers F_UNLCK and a request succeeds when the descriptor's mode allows its type.
SysResult fcntl_lock(SyscallContext& ctx, OpenFile& f, int cmd, vaddr_t arg) {
  // struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
  auto type = ctx.read_obj<std::int16_t>(arg);
  if (!type) return err(EFAULT);
  if (*type != F_RDLCK && *type != F_WRLCK && *type != F_UNLCK) return err(EINVAL);
  if (cmd == F_GETLK || cmd == kFOfdGetlk) {
    const std::int16_t unlck = F_UNLCK;
    return SysResult::from(ctx.write_obj(arg, unlck));
  }
  if (*type == F_RDLCK && !f.readable()) return err(EBADF);
  if (*type == F_WRLCK && !f.writable()) return err(EBADF);
  return SysResult::ok(0);
}

SysResult sys_fcntl(SyscallContext& ctx) {
  const int fd = ctx.arg_int(0);
  const int cmd = ctx.arg_int(1);
  const std::uint64_t arg = ctx.arg(2);
  FdTable& t = *ctx.proc.fds;
  OpenFileRef f = t.get(fd);
  if (!f) return err(EBADF);
  const bool opath = (f->flags() & O_PATH) != 0;
  if (opath && cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC && cmd != F_GETFD && cmd != F_SETFD &&
      cmd != F_GETFL)
    return err(EBADF);
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      if (arg >= static_cast<std::uint64_t>(t.max_fds())) return err(EINVAL);
      return SysResult::from(t.install(f, cmd == F_DUPFD_CLOEXEC, static_cast<int>(arg)));
    }
    case F_GETFD:
      return SysResult::ok(t.cloexec(fd) ? FD_CLOEXEC : 0);
    case F_SETFD:
      return SysResult::from(t.set_cloexec(fd, (arg & FD_CLOEXEC) != 0));
    case F_GETFL:
      return SysResult::ok(oflags_to_guest(ctx.arch(), f->flags()));
    case F_SETFL: {
      constexpr int kSettable = O_APPEND | O_NONBLOCK | kO_DIRECT | O_NOATIME | FASYNC;
      const int want = oflags_from_guest(ctx.arch(), arg);
      f->set_flags((f->flags() & ~kSettable) | (want & kSettable));
      return SysResult::ok(0);
    }
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case kFOfdGetlk:
    case kFOfdSetlk:
    case kFOfdSetlkw:
      return fcntl_lock(ctx, *f, cmd, arg);
    case F_GETOWN:
    case F_SETOWN:
    case F_GETSIG:
    case F_SETSIG:
      return SysResult::ok(0);
    case kFGetPipeSz:
    case kFSetPipeSz: {
      auto* pe = dynamic_cast<PipeEnd*>(f.get());
      if (!pe) return err(EBADF);
      if (cmd == kFGetPipeSz) return SysResult::ok(pe->pipe().capacity());
      return SysResult::from(pe->pipe().set_capacity(arg & 0xffffffffULL));
    }
    case kFAddSeals:
    case kFGetSeals:
      return memfd_fcntl(*f, cmd == kFAddSeals, arg);
    default:
      return err(EINVAL);
  }
}

SysResult pipe_common(SyscallContext& ctx, vaddr_t out, std::uint64_t guest_flags) {
  const int flags = oflags_from_guest(ctx.arch(), guest_flags);
  constexpr int kNotificationPipe = O_EXCL;  // O_NOTIFICATION_PIPE (watch queues): not modelled
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | kO_DIRECT | kNotificationPipe)) return err(EINVAL);
  if (flags & kNotificationPipe) return err(ENOPKG);
  ctx.kernel.stats().add("pipe_inodes");
  const std::uint64_t ino = 4026531840ULL + ctx.kernel.stats().get("pipe_inodes");
  auto [rd, wr] = make_pipe(ino, flags);
  FdTable& t = *ctx.proc.fds;
  const bool cloexec = (flags & O_CLOEXEC) != 0;
  auto r = t.install(rd, cloexec);
  if (!r) return err(r.error());
  auto w = t.install(wr, cloexec);
  if (!w) {
    (void)t.close(*r);
    return err(w.error());
  }
  const std::int32_t fds[2] = {*r, *w};
  if (!ctx.write(out, fds, sizeof fds)) {
    (void)t.close(*r);
    (void)t.close(*w);
    return err(EFAULT);
  }
  return SysResult::ok(0);
}

SysResult sys_pipe(SyscallContext& ctx) {
  return pipe_common(ctx, ctx.arg(0), 0);
}
SysResult sys_pipe2(SyscallContext& ctx) {
  return pipe_common(ctx, ctx.arg(0), ctx.arg(1) & 0xffffffffULL);
}

SysResult sys_ioctl(SyscallContext& ctx) {
  const int fd = ctx.arg_int(0);
  const auto req = static_cast<std::uint32_t>(ctx.arg(1));
  const vaddr_t arg = ctx.arg(2);
  auto f = fd_file(ctx, fd);
  if (!f) return err(f.error());
  OpenFile& file = **f;
  // do_vfs_ioctl: the requests every file answers before its own ioctl.
  switch (req) {
    case FIOCLEX:
      return SysResult::from(ctx.proc.fds->set_cloexec(fd, true));
    case FIONCLEX:
      return SysResult::from(ctx.proc.fds->set_cloexec(fd, false));
    case FIONBIO: {
      auto on = ctx.read_obj<std::int32_t>(arg);
      if (!on) return err(EFAULT);
      file.set_flags(*on ? (file.flags() | O_NONBLOCK) : (file.flags() & ~O_NONBLOCK));
      return SysResult::ok(0);
    }
    case FIOASYNC: {
      auto on = ctx.read_obj<std::int32_t>(arg);
      if (!on) return err(EFAULT);
      return SysResult::ok(0);
    }
    case FIONREAD:
      if (file.kind() == "file") {
        auto st = file.stat();
        const auto size = st ? st->size : 0;
        const auto left = static_cast<std::int32_t>(
            std::max<std::int64_t>(0, size - static_cast<std::int64_t>(file.pos())));
        return SysResult::from(ctx.write_obj(arg, left));
      }
      break;
    default:
      break;
  }
  return file.ioctl(ctx, req, arg);
}

SysResult sys_fstat(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0), true);
  if (!f) return err(f.error());
  auto st = (*f)->stat();
  if (!st) return err(st.error());
  return SysResult::from(write_stat(ctx, ctx.arg(1), *st));
}

// fsync/fdatasync: nothing is ever dirty; only regular files and directories have an
// fsync (pipes, terminals, devices and /proc files answer EINVAL).
SysResult sys_fsync(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  const std::string_view k = (*f)->kind();
  if (k != "file" && k != "dir") return err(EINVAL);
  return SysResult::ok(0);
}

}  // namespace

void register_file_syscalls(SyscallTable& t) {
  register_poll_syscalls(t);
  register_memfd_syscalls(t);
  t.add(Sys::read, sys_read);
  t.add(Sys::write, sys_write);
  t.add(Sys::pread64, sys_pread64);
  t.add(Sys::pwrite64, sys_pwrite64);
  t.add(Sys::readv, sys_readv);
  t.add(Sys::writev, sys_writev);
  t.add(Sys::preadv, sys_preadv);
  t.add(Sys::pwritev, sys_pwritev);
  t.add(Sys::preadv2, sys_preadv2);
  t.add(Sys::pwritev2, sys_pwritev2);
  t.add(Sys::lseek, sys_lseek);
  t.add(Sys::close, sys_close);
  t.add(Sys::close_range, sys_close_range);
  t.add(Sys::dup, sys_dup);
  t.add(Sys::dup2, sys_dup2);
  t.add(Sys::dup3, sys_dup3);
  t.add(Sys::fcntl, sys_fcntl);
  t.add(Sys::pipe, sys_pipe);
  t.add(Sys::pipe2, sys_pipe2);
  t.add(Sys::ioctl, sys_ioctl);
  t.add(Sys::fstat, sys_fstat);
  t.add(Sys::fsync, sys_fsync);
  t.add(Sys::fdatasync, sys_fsync);
  register_fs_syscalls(t);
}

}  // namespace mmemu
