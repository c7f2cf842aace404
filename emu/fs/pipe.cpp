// Pipes with Linux's blocking, atomicity, EOF and SIGPIPE rules.
#include "emu/fs/pipe.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>

#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {
constexpr int kSigPipe = 13;
}  // namespace

Result<std::size_t> Pipe::set_capacity(std::uint64_t bytes) {
  if (bytes == 0) return fail(EINVAL);
  if (bytes > kMaxSize) return fail(EPERM);
  std::size_t cap = PAGE_SIZE;
  while (cap < bytes)
    cap <<= 1;
  if (cap < buf_.size()) return fail(EBUSY);
  capacity_ = cap;
  write_wait_.wake_all();
  return cap;
}

void Pipe::unread(std::span<const std::uint8_t> bytes) {
  buf_.insert(buf_.begin(), bytes.begin(), bytes.end());
}

PipeEnd::PipeEnd(std::shared_ptr<Pipe> pipe, int flags)
    : OpenFile(flags),
      pipe_(std::move(pipe)),
      write_end_((flags & O_ACCMODE) == O_WRONLY),
      both_((flags & O_ACCMODE) == O_RDWR) {
  ++(write_end_ ? pipe_->writers_ : pipe_->readers_);
  if (both_) ++pipe_->writers_;
}

PipeEnd::~PipeEnd() {
  // The other side learns about it: readers see EOF, writers EPIPE.
  if (both_ && --pipe_->writers_ == 0) pipe_->read_wait_.wake_all();
  if (write_end_) {
    if (--pipe_->writers_ == 0) pipe_->read_wait_.wake_all();
  } else {
    if (--pipe_->readers_ == 0) pipe_->write_wait_.wake_all();
  }
}

std::string PipeEnd::path() const {
  return "pipe:[" + std::to_string(pipe_->ino()) + "]";
}

SysResult PipeEnd::read(SyscallContext&, std::span<std::uint8_t> buf) {
  if (!readable()) return SysResult::err(EBADF);
  Pipe& p = *pipe_;
  if (buf.empty()) return SysResult::ok(0);
  if (p.buf_.empty()) {
    if (p.writers_ == 0) return SysResult::ok(0);
    if (flags_ & O_NONBLOCK) return SysResult::err(EAGAIN);
    return SysResult::block(p.read_wait_);
  }
  const std::size_t n = std::min(buf.size(), p.buf_.size());
  std::copy_n(p.buf_.begin(), n, buf.begin());
  p.buf_.erase(p.buf_.begin(), p.buf_.begin() + static_cast<std::ptrdiff_t>(n));
  p.write_wait_.wake_all();
  return SysResult::ok(n);
}

SysResult PipeEnd::write(SyscallContext& ctx, std::span<const std::uint8_t> buf) {
  if (!writable()) return SysResult::err(EBADF);
  Pipe& p = *pipe_;
  const int pid = ctx.proc.pid;
  if (ctx.retry == 0) p.partial_.erase(pid);
  if (buf.empty()) return SysResult::ok(0);
  std::uint64_t done = 0;
  if (auto it = p.partial_.find(pid); it != p.partial_.end()) {
    done = std::min<std::uint64_t>(it->second, buf.size());
    p.partial_.erase(it);
  }
  if (p.readers_ == 0) {
    // send_sig(SIGPIPE, current, 0): SI_USER from the writer itself.
    SigInfo info;
    info.signo = kSigPipe;
    info.code = kSiUser;
    info.pid = pid;
    info.uid = ctx.proc.cred.uid;
    ctx.kernel.send_signal(ctx.proc, info);
    return done ? SysResult::ok(done) : SysResult::err(EPIPE);
  }
  const std::size_t room = p.capacity_ - std::min(p.capacity_, p.buf_.size());
  const std::uint64_t left = buf.size() - done;
  // Up to PIPE_BUF bytes go in at once or not at all; more may be split.
  const bool atomic = buf.size() <= Pipe::kPipeBuf;
  std::uint64_t n = 0;
  if (!atomic || room >= left) n = std::min<std::uint64_t>(room, left);
  if (n) {
    const auto* from = buf.data() + done;
    p.buf_.insert(p.buf_.end(), from, from + n);
    done += n;
    p.read_wait_.wake_all();
  }
  if (done == buf.size()) return SysResult::ok(done);
  if (flags_ & O_NONBLOCK) return done ? SysResult::ok(done) : SysResult::err(EAGAIN);
  if (done) p.partial_[pid] = done;
  return SysResult::block(p.write_wait_);
}

Result<FileStat> PipeEnd::stat() const {
  FileStat s;
  s.dev = makedev(0, 15);  // pipefs, as this machine numbers it
  s.ino = pipe_->ino();
  s.mode = S_IFIFO | 0600;
  s.nlink = 1;
  s.blksize = 4096;
  return s;
}

SysResult PipeEnd::ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) {
  if (request == FIONREAD) {
    const int n = static_cast<int>(pipe_->size());
    return SysResult::from(ctx.write_obj(arg, n));
  }
  return SysResult::err(ENOTTY);
}

std::pair<OpenFileRef, OpenFileRef> make_pipe(std::uint64_t ino, int flags) {
  auto p = std::make_shared<Pipe>(ino);
  const int keep = flags & (O_NONBLOCK | kO_DIRECT);
  return {std::make_shared<PipeEnd>(p, O_RDONLY | keep),
          std::make_shared<PipeEnd>(p, O_WRONLY | keep)};
}

Result<OpenFileRef> fifo_open(SyscallContext& ctx, const std::shared_ptr<Pipe>& pipe, int flags) {
  Pipe& p = *pipe;
  const int pid = ctx.proc.pid;
  if (auto it = p.opening_.find(pid); it != p.opening_.end()) {
    if (ctx.retry > 0) return it->second.first;
    p.opening_.erase(it);  // an open that a signal interrupted
  }
  const int acc = flags & O_ACCMODE;
  if (acc == O_WRONLY && (flags & O_NONBLOCK) && p.readers_ == 0) return fail(ENXIO);
  if (p.readers_ == 0 && p.writers_ == 0) p.buf_.clear();
  auto end = std::make_shared<PipeEnd>(pipe, flags);
  if (acc != O_WRONLY) ++p.r_counter_;
  if (acc != O_RDONLY) ++p.w_counter_;
  p.open_wait_.wake_all();
  return OpenFileRef(std::move(end));
}

SysResult fifo_wait(SyscallContext& ctx, const OpenFileRef& end) {
  auto* pe = dynamic_cast<PipeEnd*>(end.get());
  if (!pe) return SysResult::ok(0);
  Pipe& p = pe->pipe();
  if (p.r_counter_ == 0 && p.w_counter_ == 0) return SysResult::ok(0);  // not a FIFO
  const int pid = ctx.proc.pid;
  const int acc = pe->flags() & O_ACCMODE;
  std::uint64_t* counter = nullptr;
  if (acc == O_RDONLY && !(pe->flags() & O_NONBLOCK) && p.writers_ == 0) counter = &p.w_counter_;
  if (acc == O_WRONLY && p.readers_ == 0) counter = &p.r_counter_;
  auto it = p.opening_.find(pid);
  if (!counter) {
    if (it != p.opening_.end()) p.opening_.erase(it);
    return SysResult::ok(0);
  }
  if (it == p.opening_.end()) it = p.opening_.emplace(pid, std::pair(end, *counter)).first;
  if (*counter != it->second.second) {
    p.opening_.erase(it);
    return SysResult::ok(0);
  }
  return SysResult::block(p.open_wait_);
}

// pipe_poll: the read end is readable with data, hung up once no writer is left; the
// write end is writable with room, in error once no reader is left.
unsigned PipeEnd::poll(WaitQueue** wq) {
  const Pipe& p = *pipe_;
  unsigned mask = 0;
  if (write_end_) {
    *wq = &pipe_->write_wait_;
    if (p.buf_.size() < p.capacity_) mask |= 0x4 | 0x100;
    if (p.readers_ == 0) mask |= 0x8;
  } else {
    *wq = &pipe_->read_wait_;
    if (!p.buf_.empty()) mask |= 0x1 | 0x40;
    if (p.writers_ == 0) mask |= 0x10;
  }
  return mask;
}

}  // namespace mmemu
