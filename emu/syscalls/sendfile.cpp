// System calls: sendfile and copy_file_range, file-to-file copies inside the kernel.
// - sendfile (do_sendfile): from anything Linux can splice from (a regular file, a /proc
//   file, a character device such as /dev/zero; a socket only into a pipe; a pipe or a
//   terminal is EINVAL) to any writable file. With an offset pointer the input's position is left
//   alone and the pointer advanced; without one the input's position moves. Bytes count when the
//   output took them. Into a pipe, as much as fits moves at once (blocking only while it is full).
// - copy_file_range (generic_copy_file_checks + the splice fallback): regular files only
//   (EISDIR for a directory, EINVAL for anything else), EBADF for the wrong access mode or
//   an O_APPEND output, EINVAL for flags or an overlapping copy within one file.
// splice, tee and vmsplice are not implemented: they answer ENOSYS, on which programs
// (coreutils' cat and copy, for one) fall back to read and write.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
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
  if (off_at) {
    auto o = ctx.read_obj<std::int64_t>(off_at);
    if (!o) return err(EFAULT);
    off = *o;
  }
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
  if (off_in_at) {
    auto o = ctx.read_obj<std::int64_t>(off_in_at);
    if (!o) return err(EFAULT);
    pos_in = *o;
  }
  if (off_out_at) {
    auto o = ctx.read_obj<std::int64_t>(off_out_at);
    if (!o) return err(EFAULT);
    pos_out = *o;
  }
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

}  // namespace

void register_sendfile_syscalls(SyscallTable& t) {
  t.add(Sys::sendfile, sys_sendfile);
  t.add(Sys::copy_file_range, sys_copy_file_range);
}

}  // namespace mmemu
