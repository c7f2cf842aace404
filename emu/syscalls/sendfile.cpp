// System calls: sendfile and copy_file_range, file-to-file copies inside the kernel.
// - sendfile (do_sendfile): from anything Linux can splice from (a regular file, a /proc
//   file, a character device such as /dev/zero; a socket only into a pipe; a pipe or a
//   terminal is EINVAL) to any writable file. With an offset pointer the input's position is left
//   alone and the pointer advanced; without one the input's position moves. Bytes count when the
//   output took them. Into a pipe, as much as fits moves at once (blocking only while it is full).
// - copy_file_range (generic_copy_file_checks + the splice fallback): regular files only
//   (EISDIR for a directory, EINVAL for anything else), EBADF for the wrong access mode or
//   an O_APPEND output, EINVAL for flags or an overlapping copy within one file.
// - splice (__do_splice): one side must be a pipe (EINVAL otherwise, and for a pipe to
//   itself); an offset given for a pipe is ESPIPE. From a pipe the bytes go to any
//   writable file (what the output does not take stays in the pipe); into a pipe they come
//   as sendfile's do, or from another pipe. SPLICE_F_NONBLOCK makes an empty input or a
//   full output pipe EAGAIN.
// - tee (do_tee): pipe to pipe without consuming the input; EINVAL for anything else.
// vmsplice is not implemented: it answers ENOSYS.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "emu/fs/pipe.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

constexpr std::uint64_t kChunk = 65536;
constexpr std::int64_t kMaxLfs = 0x7fffffffffffffffLL;

SysResult err(int e) {
  return SysResult::err(e);
}
SysResult err(const Errno& e) {
  return SysResult::err(e.code);
}

// An optional loff_t argument: the value at `at`, or `fallback` when at is NULL; nullopt
// (EFAULT) when it cannot be read.
std::optional<std::int64_t> offset_arg(const SyscallContext& ctx, vaddr_t at,
                                       std::int64_t fallback) {
  if (!at) return fallback;
  auto o = ctx.read_obj<std::int64_t>(at);
  if (!o) return std::nullopt;
  return *o;
}

// Has a splice_read (what sendfile reads through) that reads at a position.
bool positioned_source(const OpenFile& f) {
  const std::string_view k = f.kind();
  return k == "file" || k == "proc" || k == "dev";
}

// Copies up to count bytes from `in` at pos (a socket: its next bytes) to `out` (its own position
// or, with out_pos, pwrite at *out_pos): the bytes the output took, or the first answer that
// stopped it.
SysResult copy_loop(SyscallContext& ctx, OpenFile& in, std::uint64_t pos, OpenFile& out,
                    std::uint64_t count, std::uint64_t* out_pos) {
  std::uint64_t done = 0;
  auto* pipe = dynamic_cast<PipeEnd*>(&out);
  while (done < count) {
    std::uint64_t chunk = std::min(count - done, kChunk);
    if (pipe) {
      // splice_file_to_pipe: what fits now; a full pipe waits (only before the first byte).
      const Pipe& p = pipe->pipe();
      const std::size_t room = p.capacity() - std::min(p.capacity(), p.size());
      if (room == 0 && done) break;
      if (room) chunk = std::min<std::uint64_t>(chunk, room);
    }
    std::vector<std::uint8_t> buf(chunk);
    const SysResult r = positioned_source(in) ? in.pread(ctx, buf, pos + done) : in.read(ctx, buf);
    if (!r.is_return() || r.is_error()) return done ? SysResult::ok(done) : r;
    const auto n = std::min<std::uint64_t>(static_cast<std::uint64_t>(r.value()), chunk);
    if (n == 0) break;
    const std::span<const std::uint8_t> data(buf.data(), n);
    const SysResult w = out_pos ? out.pwrite(ctx, data, *out_pos + done) : out.write(ctx, data);
    if (!w.is_return() || w.is_error()) return done ? SysResult::ok(done) : w;
    const auto wn = std::min<std::uint64_t>(static_cast<std::uint64_t>(w.value()), n);
    done += wn;
    if (wn < n) break;
  }
  return SysResult::ok(done);
}

SysResult sys_sendfile(SyscallContext& ctx) {
  const int out_fd = ctx.arg_int(0), in_fd = ctx.arg_int(1);
  const vaddr_t off_at = ctx.arg(2);
  std::uint64_t count = ctx.arg(3);
  std::int64_t off = 0;
  const auto off_arg = offset_arg(ctx, off_at, off);
  if (!off_arg) return err(EFAULT);
  off = *off_arg;
  auto in = fd_file(ctx, in_fd);
  if (!in) return err(in.error());
  if (!(*in)->readable()) return err(EBADF);
  const bool positioned = positioned_source(**in);
  if (off_at && !positioned) return err(ESPIPE);
  const std::int64_t pos = off_at ? off : positioned ? static_cast<std::int64_t>((*in)->pos()) : 0;
  if (pos < 0) return err(EINVAL);
  count = std::min(count, kMaxRwCount);
  auto out = fd_file(ctx, out_fd);
  if (!out) return err(out.error());
  if (!(*out)->writable()) return err(EBADF);
  if (count && static_cast<std::uint64_t>(pos) > static_cast<std::uint64_t>(kMaxLfs) - count)
    return err(EINVAL);
  const bool to_pipe = dynamic_cast<PipeEnd*>(out->get()) != nullptr;
  if (!to_pipe && ((*out)->flags() & O_APPEND)) return err(EINVAL);
  // splice_direct_to_actor takes regular files (and devices); a pipe takes a socket too.
  const bool socket_in = (*in)->kind() == "socket";
  if (!positioned && !(socket_in && to_pipe)) return err(EINVAL);
  if (count == 0) return SysResult::ok(0);
  const SysResult r = copy_loop(ctx, **in, static_cast<std::uint64_t>(pos), **out, count, nullptr);
  if (!r.is_return() || r.is_error()) return r;
  const auto moved = static_cast<std::uint64_t>(r.value());
  if (off_at) {
    if (!ctx.write_obj(off_at, pos + static_cast<std::int64_t>(moved))) return err(EFAULT);
  } else if (positioned) {
    (*in)->set_pos(static_cast<std::uint64_t>(pos) + moved);
  }
  return r;
}

SysResult sys_copy_file_range(SyscallContext& ctx) {
  const int fd_in = ctx.arg_int(0), fd_out = ctx.arg_int(2);
  const vaddr_t off_in_at = ctx.arg(1), off_out_at = ctx.arg(3);
  std::uint64_t len = ctx.arg(4);
  if (ctx.arg(5) & 0xffffffffULL) return err(EINVAL);
  auto in = fd_file(ctx, fd_in);
  if (!in) return err(in.error());
  auto out = fd_file(ctx, fd_out);
  if (!out) return err(out.error());
  std::int64_t pos_in = static_cast<std::int64_t>((*in)->pos());
  std::int64_t pos_out = static_cast<std::int64_t>((*out)->pos());
  const auto pos_in_arg = offset_arg(ctx, off_in_at, pos_in);
  if (!pos_in_arg) return err(EFAULT);
  pos_in = *pos_in_arg;
  const auto pos_out_arg = offset_arg(ctx, off_out_at, pos_out);
  if (!pos_out_arg) return err(EFAULT);
  pos_out = *pos_out_arg;
  auto st_in = (*in)->stat();
  auto st_out = (*out)->stat();
  if (!st_in || !st_out) return err(EINVAL);
  if (S_ISDIR(st_in->mode) || S_ISDIR(st_out->mode)) return err(EISDIR);
  if (!S_ISREG(st_in->mode) || !S_ISREG(st_out->mode)) return err(EINVAL);
  if (!(*in)->readable() || !(*out)->writable() || ((*out)->flags() & O_APPEND)) return err(EBADF);
  if (pos_in < 0 || pos_out < 0) return err(EINVAL);
  len = std::min(len, kMaxRwCount);
  if (st_in->dev == st_out->dev && st_in->ino == st_out->ino) {
    const auto a = static_cast<std::uint64_t>(pos_in), b = static_cast<std::uint64_t>(pos_out);
    if (a + len > b && b + len > a) return err(EINVAL);
  }
  // Nothing past the end of the input.
  const auto size = static_cast<std::uint64_t>(std::max<std::int64_t>(st_in->size, 0));
  const auto from = static_cast<std::uint64_t>(pos_in);
  len = from >= size ? 0 : std::min(len, size - from);
  if (len == 0) return SysResult::ok(0);
  std::uint64_t wpos = static_cast<std::uint64_t>(pos_out);
  const SysResult r = copy_loop(ctx, **in, from, **out, len, &wpos);
  if (!r.is_return() || r.is_error()) return r;
  const auto moved = static_cast<std::int64_t>(r.value());
  if (off_in_at) {
    if (!ctx.write_obj(off_in_at, pos_in + moved)) return err(EFAULT);
  } else {
    (*in)->set_pos(static_cast<std::uint64_t>(pos_in + moved));
  }
  if (off_out_at) {
    if (!ctx.write_obj(off_out_at, pos_out + moved)) return err(EFAULT);
  } else {
    (*out)->set_pos(static_cast<std::uint64_t>(pos_out + moved));
  }
  return r;
}

constexpr unsigned kSpliceFNonblock = 0x2, kSpliceFAll = 0xf;

// From a pipe: one read of the pipe, written on; bytes the output refused go back.
SysResult splice_from_pipe(SyscallContext& ctx, PipeEnd& in, OpenFile& out, std::uint64_t len,
                           bool nonblock, std::uint64_t* out_pos) {
  Pipe& p = in.pipe();
  if (p.size() == 0 && p.writers() > 0 && nonblock) return err(EAGAIN);
  auto* opipe = dynamic_cast<PipeEnd*>(&out);
  std::uint64_t chunk = std::min(len, kChunk);
  if (opipe) {
    const Pipe& q = opipe->pipe();
    const std::size_t room = q.capacity() - std::min(q.capacity(), q.size());
    if (room == 0 && q.readers() > 0 && p.size() > 0) {
      if (nonblock) return err(EAGAIN);
      chunk = std::min<std::uint64_t>(chunk, Pipe::kPipeBuf);  // an atomic write: waits whole
    } else if (room) {
      chunk = std::min<std::uint64_t>(chunk, room);
    }
  }
  std::vector<std::uint8_t> buf(chunk);
  const SysResult r = in.read(ctx, buf);
  if (!r.is_return() || r.is_error() || r.value() == 0) return r;
  const auto n = static_cast<std::uint64_t>(r.value());
  const std::span<const std::uint8_t> data(buf.data(), n);
  const SysResult w = out_pos ? out.pwrite(ctx, data, *out_pos) : out.write(ctx, data);
  if (!w.is_return() || w.is_error()) {
    p.unread(data);
    return w;
  }
  const auto wn = std::min<std::uint64_t>(static_cast<std::uint64_t>(w.value()), n);
  if (wn < n) p.unread(data.subspan(wn));
  return SysResult::ok(wn);
}

SysResult sys_splice(SyscallContext& ctx) {
  const int fd_in = ctx.arg_int(0), fd_out = ctx.arg_int(2);
  const vaddr_t off_in_at = ctx.arg(1), off_out_at = ctx.arg(3);
  const std::uint64_t len = std::min(ctx.arg(4), kMaxRwCount);
  const auto flags = static_cast<unsigned>(ctx.arg(5));
  if (flags & ~kSpliceFAll) return err(EINVAL);
  if (len == 0) return SysResult::ok(0);
  auto in = fd_file(ctx, fd_in);
  if (!in) return err(in.error());
  auto out = fd_file(ctx, fd_out);
  if (!out) return err(out.error());
  auto* ipipe = dynamic_cast<PipeEnd*>(in->get());
  auto* opipe = dynamic_cast<PipeEnd*>(out->get());
  if (ipipe && off_in_at) return err(ESPIPE);
  if (opipe && off_out_at) return err(ESPIPE);
  std::int64_t off_in = 0, off_out = 0;
  const auto off_in_arg = offset_arg(ctx, off_in_at, off_in);
  if (!off_in_arg) return err(EFAULT);
  off_in = *off_in_arg;
  const auto off_out_arg = offset_arg(ctx, off_out_at, off_out);
  if (!off_out_arg) return err(EFAULT);
  off_out = *off_out_arg;
  if (!(*in)->readable() || !(*out)->writable()) return err(EBADF);
  if (ipipe) {
    if (opipe && &ipipe->pipe() == &opipe->pipe()) return err(EINVAL);
    const bool nonblock = (flags & kSpliceFNonblock) || ((*in)->flags() & O_NONBLOCK) ||
                          (opipe && ((*out)->flags() & O_NONBLOCK));
    if (!opipe) {
      if (off_out_at && !positioned_source(**out)) return err(ESPIPE);
      if (off_out < 0) return err(EINVAL);
      if ((*out)->flags() & O_APPEND) return err(EINVAL);
    }
    std::uint64_t wpos = static_cast<std::uint64_t>(off_out);
    const SysResult r =
        splice_from_pipe(ctx, *ipipe, **out, len, nonblock, off_out_at ? &wpos : nullptr);
    if (r.is_return() && !r.is_error() && off_out_at)
      if (!ctx.write_obj(off_out_at, off_out + r.value())) return err(EFAULT);
    return r;
  }
  if (!opipe) return err(EINVAL);
  // Into a pipe from a file (at its position or *off_in) or a socket.
  const bool positioned = positioned_source(**in);
  if (off_in_at && !positioned) return err(ESPIPE);
  if (!positioned && (*in)->kind() != "socket") return err(EINVAL);
  const std::int64_t pos = off_in_at    ? off_in
                           : positioned ? static_cast<std::int64_t>((*in)->pos())
                                        : 0;
  if (pos < 0) return err(EINVAL);
  const Pipe& q = opipe->pipe();
  const bool nonblock = (flags & kSpliceFNonblock) || ((*out)->flags() & O_NONBLOCK);
  if (q.size() >= q.capacity() && q.readers() > 0 && nonblock) return err(EAGAIN);
  const SysResult r = copy_loop(ctx, **in, static_cast<std::uint64_t>(pos), **out, len, nullptr);
  if (!r.is_return() || r.is_error()) return r;
  if (off_in_at) {
    if (!ctx.write_obj(off_in_at, pos + r.value())) return err(EFAULT);
  } else if (positioned) {
    (*in)->set_pos(static_cast<std::uint64_t>(pos + r.value()));
  }
  return r;
}

SysResult sys_tee(SyscallContext& ctx) {
  const std::uint64_t len = std::min(ctx.arg(2), kMaxRwCount);
  const auto flags = static_cast<unsigned>(ctx.arg(3));
  if (flags & ~kSpliceFAll) return err(EINVAL);
  if (len == 0) return SysResult::ok(0);
  auto in = fd_file(ctx, ctx.arg_int(0));
  if (!in) return err(in.error());
  auto out = fd_file(ctx, ctx.arg_int(1));
  if (!out) return err(out.error());
  if (!(*in)->readable() || !(*out)->writable()) return err(EBADF);
  auto* ipipe = dynamic_cast<PipeEnd*>(in->get());
  auto* opipe = dynamic_cast<PipeEnd*>(out->get());
  if (!ipipe || !opipe || &ipipe->pipe() == &opipe->pipe()) return err(EINVAL);
  Pipe& p = ipipe->pipe();
  const Pipe& q = opipe->pipe();
  const bool nonblock =
      (flags & kSpliceFNonblock) || ((*in)->flags() & O_NONBLOCK) || ((*out)->flags() & O_NONBLOCK);
  if (p.size() == 0 && p.writers() > 0 && nonblock) return err(EAGAIN);
  const std::size_t room = q.capacity() - std::min(q.capacity(), q.size());
  if (room == 0 && q.readers() > 0 && nonblock) return err(EAGAIN);
  // A read put straight back is a look at the input.
  std::vector<std::uint8_t> buf(
      std::min<std::uint64_t>(len, room ? std::min<std::uint64_t>(room, kChunk) : Pipe::kPipeBuf));
  const SysResult r = ipipe->read(ctx, buf);
  if (!r.is_return() || r.is_error() || r.value() == 0) return r;
  const std::span<const std::uint8_t> data(buf.data(), static_cast<std::size_t>(r.value()));
  p.unread(data);
  const SysResult w = opipe->write(ctx, data);
  return w;
}

}  // namespace

void register_sendfile_syscalls(SyscallTable& t) {
  t.add(Sys::tee, sys_tee);
  t.add(Sys::splice, sys_splice);
  t.add(Sys::sendfile, sys_sendfile);
  t.add(Sys::copy_file_range, sys_copy_file_range);
}

}  // namespace mmemu
