// AF_UNIX socks: queues, connections, release, poll, and the send/receive paths.
#include "emu/fs/unix_socket.hpp"

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
constexpr int kMsgOob = 0x1, kMsgPeek = 0x2, kMsgTrunc = 0x20, kMsgDontwait = 0x40,
              kMsgWaitall = 0x100, kMsgNosignal = 0x4000;
constexpr unsigned kPollIn = 0x1, kPollOut = 0x4, kPollErr = 0x8, kPollHup = 0x10,
                   kPollRdNorm = 0x40, kPollWrNorm = 0x100, kPollWrBand = 0x200,
                   kPollRdHup = 0x2000;
constexpr std::uint64_t kSockInoBase = 20000;

// send_sig(SIGPIPE, current, 0), as a pipe writer gets it.
void raise_sigpipe(SyscallContext& ctx) {
  SigInfo info;
  info.signo = kSigPipe;
  info.code = kSiUser;
  info.pid = ctx.proc.pid;
  info.uid = ctx.proc.cred.uid;
  ctx.kernel.send_signal(ctx.proc, info);
}

// SCM_CREDENTIALS' default: the sender's tgid and real ids.
UnixCred scm_cred(const SyscallContext& ctx) {
  return UnixCred{ctx.proc.pid, ctx.proc.cred.uid, ctx.proc.cred.gid};
}

// The bytes a blocked call of this pid already moved (0 on a first attempt).
std::uint64_t take_partial(UnixSock& sk, const SyscallContext& ctx) {
  const int pid = ctx.proc.pid;
  if (ctx.retry == 0) {
    sk.partial.erase(pid);
    return 0;
  }
  auto it = sk.partial.find(pid);
  if (it == sk.partial.end()) return 0;
  const std::uint64_t done = it->second;
  sk.partial.erase(it);
  return done;
}

// A message of n bytes from the source at `at`; nullopt when the source faulted.
std::optional<UnixSkb> make_skb(const UnixSock& from, const SyscallContext& ctx,
                                const SendSource& src, std::uint64_t at, std::size_t n,
                                const SendArgs& a) {
  UnixSkb skb;
  skb.data.resize(n);
  if (n && !src(at, skb.data.data(), n)) return std::nullopt;
  skb.cred = a.cred ? *a.cred : scm_cred(ctx);
  skb.from = from.addr();
  skb.truesize = n + UnixSock::kSkbOverhead;
  return skb;
}

void queue_skb(UnixSock& sk, UnixSock& to, UnixSkb skb) {
  skb.sender = sk.weak_from_this();
  sk.wmem += skb.truesize;
  to.rcvq.push_back(std::move(skb));
  to.wait.wake_all();
}

}  // namespace

// ---- UnixSock ----

UnixSock::~UnixSock() {
  release();
}

void UnixSock::release() {
  if (dead) return;
  dead = true;
  const bool lost_data = !rcvq.empty();
  if (peer) {
    if (type != kSockDgram) {
      peer->shutdown = kShutdownMask;
      if (lost_data || embryo) peer->err = ECONNRESET;
    }
    peer->wait.wake_all();
    peer.reset();
  }
  purge();
  // Unaccepted connections die with their listener: each client sees ECONNRESET.
  std::deque<std::shared_ptr<UnixSock>> pending = std::move(backlog);
  backlog.clear();
  for (auto& e : pending) {
    e->embryo = true;
    e->release();
  }
  wait.wake_all();
}

void UnixSock::dequeue_front() {
  UnixSkb skb = std::move(rcvq.front());
  rcvq.pop_front();
  if (auto s = skb.sender.lock()) {
    s->wmem -= std::min(s->wmem, skb.truesize);
    s->wait.wake_all();
  }
  // A datagram sender may wait for room in this queue.
  wait.wake_all();
}

void UnixSock::purge() {
  std::deque<UnixSkb> q = std::move(rcvq);
  rcvq.clear();
  for (UnixSkb& skb : q)
    if (auto s = skb.sender.lock()) {
      s->wmem -= std::min(s->wmem, skb.truesize);
      s->wait.wake_all();
    }
  // The passed descriptors go last: their release may reach back into this sock.
  q.clear();
}

// ---- UnixNames ----

std::shared_ptr<UnixSock> UnixNames::find_abstract(const std::string& name) const {
  auto it = abstract_.find(name);
  if (it == abstract_.end()) return nullptr;
  auto sk = it->second.lock();
  return sk && !sk->dead ? sk : nullptr;
}

std::shared_ptr<UnixSock> UnixNames::find_inode(const ShmemInode* inode) const {
  auto it = inodes_.find(inode);
  if (it == inodes_.end()) return nullptr;
  auto sk = it->second.lock();
  return sk && !sk->dead ? sk : nullptr;
}

void UnixNames::add_abstract(const std::string& name, const std::shared_ptr<UnixSock>& sk) {
  abstract_[name] = sk;
}

void UnixNames::add_inode(const ShmemInode* inode, const std::shared_ptr<UnixSock>& sk) {
  inodes_[inode] = sk;
}

// ---- helpers ----

SysResult sock_wait(SyscallContext& ctx, UnixSock& sk, WaitQueue& wq, std::uint64_t done,
                    std::uint64_t timeo_us) {
  const std::uint64_t now = host_monotonic_ns();
  if (timeo_us == UnixSock::kNoTimeout || timeo_us > (~0ULL - now) / 2000) {
    if (done) sk.partial[ctx.proc.pid] = done;
    return SysResult::block(wq);
  }
  const std::uint64_t deadline =
      ctx.retry && ctx.deadline_ns ? ctx.deadline_ns : now + timeo_us * 1000;
  if (now >= deadline) return done ? SysResult::ok(done) : SysResult::err(EAGAIN);
  if (done) sk.partial[ctx.proc.pid] = done;
  return SysResult::block_until(deadline, &wq, Restart::Never);
}

UnixCred current_cred(const SyscallContext& ctx) {
  return UnixCred{ctx.proc.pid, ctx.proc.cred.euid, ctx.proc.cred.egid};
}

std::shared_ptr<UnixSock> new_unix_sock(SyscallContext& ctx, int type) {
  ctx.kernel.stats().add("socket_inodes");
  return std::make_shared<UnixSock>(type, kSockInoBase + ctx.kernel.stats().get("socket_inodes"));
}

void unix_connect_pair(const std::shared_ptr<UnixSock>& a, const std::shared_ptr<UnixSock>& b,
                       const UnixCred& cred_a, const UnixCred& cred_b) {
  a->peer = b;
  b->peer = a;
  a->state = b->state = UnixSock::State::Connected;
  a->peercred = cred_b;
  b->peercred = cred_a;
  a->has_peercred = b->has_peercred = true;
}

// ---- UnixSocket ----

UnixSocket::~UnixSocket() {
  if (sk_) sk_->release();
}

std::string UnixSocket::path() const {
  return "socket:[" + std::to_string(sk_->ino) + "]";
}

bool UnixSocket::nonblock(int msg_flags) const {
  return (flags_ & O_NONBLOCK) || (msg_flags & kMsgDontwait);
}

Result<FileStat> UnixSocket::stat() const {
  FileStat s;
  s.dev = makedev(0, 9);  // sockfs, as the host numbers it
  s.ino = sk_->ino;
  s.mode = S_IFSOCK | 0777;
  s.nlink = 1;
  s.blksize = 4096;
  return s;
}

SysResult UnixSocket::read(SyscallContext& ctx, std::span<std::uint8_t> buf) {
  RecvOut out;
  auto sink = [&buf](const std::uint8_t* src, std::uint64_t at, std::uint64_t n) {
    std::copy_n(src, n, buf.begin() + static_cast<std::ptrdiff_t>(at));
    return n;
  };
  return recv(ctx, buf.size(), 0, sink, out);
}

SysResult UnixSocket::write(SyscallContext& ctx, std::span<const std::uint8_t> buf) {
  SendArgs a;
  auto src = [&buf](std::uint64_t at, std::uint8_t* dst, std::uint64_t n) {
    std::copy_n(buf.begin() + static_cast<std::ptrdiff_t>(at), n, dst);
    return true;
  };
  return send(ctx, buf.size(), src, a);
}

SysResult UnixSocket::ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) {
  // SIOCINQ (FIONREAD): unread bytes (all a connection's, a datagram socket's first message);
  // SIOCOUTQ (TIOCOUTQ): bytes sent and not yet read.
  const UnixSock& sk = *sk_;
  if (request == FIONREAD) {
    if (sk.state == UnixSock::State::Listening) return SysResult::err(EINVAL);
    std::uint64_t n = 0;
    if (sk.type != kSockDgram) {
      for (const UnixSkb& skb : sk.rcvq)
        n += skb.left();
    } else if (!sk.rcvq.empty()) {
      n = sk.rcvq.front().left();
    }
    return SysResult::from(ctx.write_obj(arg, static_cast<std::int32_t>(n)));
  }
  if (request == TIOCOUTQ) {
    if (sk.state == UnixSock::State::Listening) return SysResult::err(EINVAL);
    std::uint64_t n = 0;
    if (sk.peer)
      for (const UnixSkb& skb : sk.peer->rcvq)
        if (skb.sender.lock().get() == &sk) n += skb.left();
    return SysResult::from(ctx.write_obj(arg, static_cast<std::int32_t>(n)));
  }
  return SysResult::err(ENOTTY);
}

// unix_poll (stream, seqpacket) and unix_dgram_poll.
unsigned UnixSocket::poll(WaitQueue** wq) {
  const UnixSock& sk = *sk_;
  *wq = &sk_->wait;
  unsigned mask = 0;
  if (sk.err) mask |= kPollErr;
  if (sk.shutdown == kShutdownMask) mask |= kPollHup;
  if (sk.shutdown & kRcvShutdown) mask |= kPollRdHup | kPollIn | kPollRdNorm;
  if (!sk.rcvq.empty() || !sk.backlog.empty()) mask |= kPollIn | kPollRdNorm;
  const bool connection = sk.type != kSockDgram;
  if (connection && sk.state == UnixSock::State::Unconnected) mask |= kPollHup;
  bool writable = sk.writable();
  if (sk.type != kSockStream && writable && sk.peer && sk.peer->peer.get() != &sk &&
      sk.peer->recvq_full())
    writable = false;
  if (writable) mask |= kPollOut | kPollWrNorm | kPollWrBand;
  return mask;
}

SysResult UnixSocket::send(SyscallContext& ctx, std::uint64_t len, const SendSource& src,
                           SendArgs& a) {
  if (a.flags & kMsgOob) return SysResult::err(EOPNOTSUPP);
  if (sk_->type == kSockStream) return send_stream(ctx, len, src, a);
  return send_dgram(ctx, len, src, a);
}

// unix_stream_sendmsg: the bytes go in messages of at most half the send buffer, blocking
// while the send buffer is full; a peer that went (or shut reading) is EPIPE + SIGPIPE.
SysResult UnixSocket::send_stream(SyscallContext& ctx, std::uint64_t len, const SendSource& src,
                                  SendArgs& a) {
  UnixSock& sk = *sk_;
  std::uint64_t done = take_partial(sk, ctx);
  if (a.named) return SysResult::err(sk.state == UnixSock::State::Connected ? EISCONN : EOPNOTSUPP);
  if (sk.state != UnixSock::State::Connected || !sk.peer) return SysResult::err(ENOTCONN);
  auto pipe_err = [&]() {
    if (done) return SysResult::ok(done);
    if (!(a.flags & kMsgNosignal)) raise_sigpipe(ctx);
    return SysResult::err(EPIPE);
  };
  if (sk.shutdown & kSendShutdown) return pipe_err();
  bool fds_sent = done > 0;
  while (done < len) {
    UnixSock& other = *sk.peer;
    if (other.dead || (other.shutdown & kRcvShutdown)) return pipe_err();
    if (sk.wmem >= sk.sndbuf) {
      if (nonblock(a.flags)) return done ? SysResult::ok(done) : SysResult::err(EAGAIN);
      return sock_wait(ctx, sk, sk.wait, done, sk.sndtimeo_us);
    }
    const std::size_t n = std::min<std::uint64_t>(len - done, (sk.sndbuf >> 1) - 64);
    auto skb = make_skb(sk, ctx, src, done, n, a);
    if (!skb) return done ? SysResult::ok(done) : SysResult::err(EFAULT);
    if (!fds_sent) skb->fds = std::move(a.fds);
    fds_sent = true;
    queue_skb(sk, other, std::move(*skb));
    done += n;
  }
  return SysResult::ok(done);
}

// unix_dgram_sendmsg (and seqpacket's): one message, whole or not at all.
SysResult UnixSocket::send_dgram(SyscallContext& ctx, std::uint64_t len, const SendSource& src,
                                 SendArgs& a) {
  UnixSock& sk = *sk_;
  if (sk.type == kSockSeqpacket && sk.state != UnixSock::State::Connected)
    return SysResult::err(ENOTCONN);
  if (len > sk.sndbuf - 32) return SysResult::err(EMSGSIZE);
  // The message is allocated (sock_alloc_send_pskb) before the peer is looked at.
  if (sk.shutdown & kSendShutdown) return SysResult::err(EPIPE);
  if (sk.wmem >= sk.sndbuf) {
    if (nonblock(a.flags)) return SysResult::err(EAGAIN);
    return sock_wait(ctx, sk, sk.wait, 0, sk.sndtimeo_us);
  }
  std::shared_ptr<UnixSock> other = sk.type == kSockSeqpacket ? sk.peer : a.to;
  if (!other) other = sk.peer;
  if (!other) return SysResult::err(ENOTCONN);
  if (other->dead) {
    if (sk.type == kSockSeqpacket) return SysResult::err(EPIPE);
    if (sk.peer == other) {
      sk.peer.reset();
      sk.state = UnixSock::State::Unconnected;
    }
    return SysResult::err(ECONNREFUSED);
  }
  if (other->peer && other->peer.get() != &sk) return SysResult::err(EPERM);
  if (other->shutdown & kRcvShutdown) return SysResult::err(EPIPE);
  if (other->peer.get() != &sk && other->recvq_full()) {
    if (nonblock(a.flags)) return SysResult::err(EAGAIN);
    return sock_wait(ctx, sk, other->wait, 0, sk.sndtimeo_us);
  }
  auto skb = make_skb(sk, ctx, src, 0, len, a);
  if (!skb) return SysResult::err(EFAULT);
  skb->fds = std::move(a.fds);
  queue_skb(sk, *other, std::move(*skb));
  return SysResult::ok(len);
}

SysResult UnixSocket::recv(SyscallContext& ctx, std::uint64_t len, int flags, const RecvSink& sink,
                           RecvOut& out) {
  if (flags & kMsgOob) return SysResult::err(sk_->type == kSockStream ? EINVAL : EOPNOTSUPP);
  if (sk_->type == kSockStream) return recv_stream(ctx, len, flags, sink, out);
  return recv_dgram(ctx, len, flags, sink, out);
}

// unix_stream_read_generic: bytes from successive messages until len (MSG_WAITALL) or at
// least one byte; a message that carries descriptors ends the read, and with SO_PASSCRED
// messages from different senders are not merged.
SysResult UnixSocket::recv_stream(SyscallContext& ctx, std::uint64_t len, int flags,
                                  const RecvSink& sink, RecvOut& out) {
  UnixSock& sk = *sk_;
  std::uint64_t copied = take_partial(sk, ctx);
  if (sk.state != UnixSock::State::Connected) return SysResult::err(EINVAL);
  const bool peek = (flags & kMsgPeek) != 0;
  const std::uint64_t target =
      (flags & kMsgWaitall) ? len
                            : std::min<std::uint64_t>(static_cast<std::uint64_t>(sk.rcvlowat), len);
  if (len == 0) return SysResult::ok(0);
  std::size_t i = 0;  // MSG_PEEK walks the queue without taking from it
  bool have_cred = copied > 0;
  while (copied < len) {
    if (i >= sk.rcvq.size()) {
      if (copied >= target) break;
      if (sk.err) {
        if (copied) break;
        const int e = sk.err;
        sk.err = 0;
        return SysResult::err(e);
      }
      if (sk.shutdown & kRcvShutdown) break;
      if (nonblock(flags)) return copied ? SysResult::ok(copied) : SysResult::err(EAGAIN);
      return sock_wait(ctx, sk, sk.wait, copied, sk.rcvtimeo_us);
    }
    UnixSkb& skb = sk.rcvq[i];
    if (have_cred && sk.passcred && out.cred && *out.cred != skb.cred) break;
    if (!have_cred) {
      if (sk.passcred) out.cred = skb.cred;
      out.from = skb.from;
      have_cred = true;
    }
    const std::uint64_t chunk = std::min<std::uint64_t>(skb.left(), len - copied);
    const std::uint64_t c = sink(skb.data.data() + skb.off, copied, chunk);
    if (c == 0 && copied == 0) return SysResult::err(EFAULT);
    copied += c;
    const bool has_fds = !skb.fds.empty();
    if (peek) {
      if (has_fds) out.fds = skb.fds;
      if (c < chunk || has_fds) break;
      ++i;
      continue;
    }
    skb.off += c;
    if (has_fds) out.fds = std::move(skb.fds);
    if (skb.left() == 0) sk.dequeue_front();
    if (c < chunk || has_fds) break;
  }
  return SysResult::ok(copied);
}

// unix_dgram_recvmsg: one message; the rest of a longer one is dropped (MSG_TRUNC).
SysResult UnixSocket::recv_dgram(SyscallContext& ctx, std::uint64_t len, int flags,
                                 const RecvSink& sink, RecvOut& out) {
  UnixSock& sk = *sk_;
  if (sk.type == kSockSeqpacket && sk.state != UnixSock::State::Connected)
    return SysResult::err(ENOTCONN);
  if (sk.rcvq.empty()) {
    if (sk.err) {
      const int e = sk.err;
      sk.err = 0;
      return SysResult::err(e);
    }
    if (sk.shutdown & kRcvShutdown) return SysResult::ok(0);
    if (nonblock(flags)) return SysResult::err(EAGAIN);
    return sock_wait(ctx, sk, sk.wait, 0, sk.rcvtimeo_us);
  }
  UnixSkb& skb = sk.rcvq.front();
  const std::uint64_t size = skb.data.size();
  const std::uint64_t n = std::min(len, size);
  const std::uint64_t c = n ? sink(skb.data.data(), 0, n) : 0;
  out.copied = c;
  out.full_len = size;
  if (size > len) out.msg_flags |= kMsgTrunc;
  out.from = skb.from;
  if (sk.passcred) out.cred = skb.cred;
  const bool peek = (flags & kMsgPeek) != 0;
  if (peek) {
    out.fds = skb.fds;
  } else {
    out.fds = std::move(skb.fds);
    sk.dequeue_front();
  }
  if (c < n) return SysResult::err(EFAULT);
  return SysResult::ok((flags & kMsgTrunc) ? size : n);
}

}  // namespace mmemu
