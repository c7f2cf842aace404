// System calls: sockets (socket, socketpair, bind, listen, connect, accept, accept4,
// getsockname, getpeername, shutdown, sendto, recvfrom, sendmsg, recvmsg, setsockopt,
// getsockopt). Only AF_UNIX exists (emu/fs/unix_socket.hpp): mmemu has no network, and
// every other address family answers EAFNOSUPPORT, what a kernel built without it says
// (glibc and most programs treat it as "no such protocol here" and fall back or report it).
// Arguments are checked in the order Linux checks them, so each failure has Linux's errno.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "emu/fs/path_lookup.hpp"
#include "emu/fs/unix_socket.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

namespace {

constexpr int kAfUnspec = 0, kAfUnix = 1, kAfMax = 46;
constexpr int kSockRaw = 3, kSockTypeMask = 0xf;
constexpr int kSockNonblock = 0x800, kSockCloexec = 0x80000;  // both ABIs
constexpr int kSolSocket = 1;
constexpr int kSoDebug = 1, kSoDontroute = 5, kSoBroadcast = 6, kSoOobinline = 10, kSoNoCheck = 11,
              kSoPriority = 12, kSoLinger = 13, kSoReuseport = 15, kSoRcvlowat = 18,
              kSoSndlowat = 19;
constexpr int kSoReuseaddr = 2, kSoType = 3, kSoError = 4, kSoSndbuf = 7, kSoRcvbuf = 8,
              kSoKeepalive = 9, kSoPasscred = 16, kSoPeercred = 17, kSoAcceptconn = 30,
              kSoRcvtimeoOld = 20, kSoSndtimeoOld = 21, kSoProtocol = 38, kSoDomain = 39,
              kSoRcvtimeoNew = 66, kSoSndtimeoNew = 67;
constexpr int kScmRights = 1, kScmCredentials = 2;
constexpr int kScmMaxFd = 253;
constexpr int kMsgCtrunc = 0x8, kMsgTrunc = 0x20, kMsgDontwait = 0x40, kMsgCmsgCloexec = 0x40000000;
constexpr std::uint64_t kSockaddrStorage = 128;
constexpr std::size_t kSunPathOff = 2, kSockaddrUnSize = 110;
constexpr std::uint64_t kCmsgHdr = 16;
constexpr std::uint64_t kOptmemMax =
    131072;  // net.core.optmem_max  // cmsg_len (size_t), cmsg_level, cmsg_type

SysResult err(int e) {
  return SysResult::err(e);
}
SysResult err(const Errno& e) {
  return SysResult::err(e.code);
}

std::uint64_t cmsg_align(std::uint64_t n) {
  return (n + 7) & ~7ULL;
}

// sockfd_lookup: EBADF for a closed descriptor, ENOTSOCK for anything but a socket.
Result<std::shared_ptr<UnixSocket>> sock_file(const SyscallContext& ctx, int fd) {
  auto f = fd_file(ctx, fd);
  if (!f) return std::unexpected(f.error());
  auto s = std::dynamic_pointer_cast<UnixSocket>(*f);
  if (!s) return fail(ENOTSOCK);
  return s;
}

UnixNames& names(SyscallContext& ctx) {
  auto& n = ctx.kernel.unix_names();
  if (!n) n = std::make_shared<UnixNames>();
  return *n;
}

// move_addr_to_kernel: EINVAL beyond a sockaddr_storage, EFAULT.
Result<std::string> read_sockaddr(const SyscallContext& ctx, vaddr_t addr, std::uint64_t len) {
  const auto n = static_cast<std::int32_t>(len);
  if (n < 0 || static_cast<std::uint64_t>(n) > kSockaddrStorage) return fail(EINVAL);
  std::string s(static_cast<std::size_t>(n), '\0');
  if (n && !ctx.read(addr, s.data(), s.size())) return fail(EFAULT);
  return s;
}

int sa_family(const std::string& sa) {
  if (sa.size() < 2) return -1;
  return static_cast<std::uint8_t>(sa[0]) | (static_cast<std::uint8_t>(sa[1]) << 8);
}

// unix_validate_addr.
Result<void> validate_unix_addr(const std::string& sa) {
  if (sa.size() <= kSunPathOff || sa.size() > kSockaddrUnSize) return fail(EINVAL);
  if (sa_family(sa) != kAfUnix) return fail(EINVAL);
  return {};
}

bool abstract_name(const std::string& sa) {
  return sa[kSunPathOff] == '\0';
}

// A pathname address's path (sun_path up to its NUL).
std::string sun_path(const std::string& sa) {
  const std::string rest = sa.substr(kSunPathOff);
  return rest.substr(0, rest.find('\0'));
}

// move_addr_to_user: min(*ulen, klen) bytes of the address, then klen in *ulen.
Result<void> write_sockaddr(const SyscallContext& ctx, const std::string& k, vaddr_t uaddr,
                            vaddr_t ulen) {
  auto len = ctx.read_obj<std::int32_t>(ulen);
  if (!len) return fail(EFAULT);
  if (*len < 0) return fail(EINVAL);
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(*len), k.size());
  if (n && !ctx.write(uaddr, k.data(), n)) return fail(EFAULT);
  return ctx.write_obj(ulen, static_cast<std::int32_t>(k.size()));
}

// What getsockname/getpeername report for a sock: its name, or the family alone.
std::string sock_name(const UnixSock& sk) {
  if (sk.bound()) return sk.addr();
  return std::string("\x01\x00", 2);
}

// unix_find_other: the sock bound to an address. A path must exist (its lookup errno) and
// be a socket someone is bound to (else ECONNREFUSED); the types must match (EPROTOTYPE).
Result<std::shared_ptr<UnixSock>> find_other(SyscallContext& ctx, const std::string& sa, int type) {
  std::shared_ptr<UnixSock> other;
  if (abstract_name(sa)) {
    other = names(ctx).find_abstract(sa);
  } else {
    auto abs = resolve_at(ctx, kAtFdcwd, sun_path(sa));
    if (!abs) return std::unexpected(abs.error());
    auto inode = ctx.kernel.created_files().find(CreatedFiles::key_of(normalize_path(*abs)));
    if (!inode) {
      auto st = stat_path(ctx, *abs, true);
      if (!st) return std::unexpected(st.error());
      return fail(ECONNREFUSED);
    }
    if (S_ISSOCK(inode->st.mode)) other = names(ctx).find_inode(inode.get());
  }
  if (!other) return fail(ECONNREFUSED);
  if (other->type != type) return fail(EPROTOTYPE);
  return other;
}

// ---- socket, socketpair ----

// __sys_socket's checks and unix_create: the type (SOCK_RAW is taken as SOCK_DGRAM) and
// the open flags.
Result<int> socket_type(std::uint64_t domain, std::uint64_t type_arg, std::uint64_t protocol,
                        int* oflags) {
  const int type = static_cast<int>(type_arg);
  if (type & ~(kSockTypeMask | kSockNonblock | kSockCloexec)) return fail(EINVAL);
  const int d = static_cast<int>(domain);
  if (d < 0 || d >= kAfMax) return fail(EAFNOSUPPORT);
  if (d != kAfUnix) return fail(EAFNOSUPPORT);
  const int proto = static_cast<int>(protocol);
  if (proto != 0 && proto != kAfUnix) return fail(EPROTONOSUPPORT);
  int t = type & kSockTypeMask;
  if (t == kSockRaw) t = kSockDgram;
  if (t != kSockStream && t != kSockDgram && t != kSockSeqpacket) return fail(ESOCKTNOSUPPORT);
  *oflags =
      O_RDWR | ((type & kSockNonblock) ? O_NONBLOCK : 0) | ((type & kSockCloexec) ? O_CLOEXEC : 0);
  return t;
}

SysResult sys_socket(SyscallContext& ctx) {
  int oflags = 0;
  auto t = socket_type(ctx.arg(0), ctx.arg(1), ctx.arg(2), &oflags);
  if (!t) return err(t.error());
  auto file = std::make_shared<UnixSocket>(new_unix_sock(ctx, *t), oflags & ~O_CLOEXEC);
  return SysResult::from(ctx.proc.fds->install(file, (oflags & O_CLOEXEC) != 0));
}

SysResult sys_socketpair(SyscallContext& ctx) {
  int oflags = 0;
  auto t = socket_type(ctx.arg(0), ctx.arg(1), ctx.arg(2), &oflags);
  if (!t) return err(t.error());
  auto a = new_unix_sock(ctx, *t);
  auto b = new_unix_sock(ctx, *t);
  const UnixCred me = current_cred(ctx);
  unix_connect_pair(a, b, me, me);
  const bool cloexec = (oflags & O_CLOEXEC) != 0;
  FdTable& fds = *ctx.proc.fds;
  auto fa = fds.install(std::make_shared<UnixSocket>(a, oflags & ~O_CLOEXEC), cloexec);
  if (!fa) return err(fa.error());
  auto fb = fds.install(std::make_shared<UnixSocket>(b, oflags & ~O_CLOEXEC), cloexec);
  if (!fb) {
    (void)fds.close(*fa);
    return err(fb.error());
  }
  const std::int32_t out[2] = {*fa, *fb};
  if (!ctx.write(ctx.arg(3), out, sizeof out)) {
    (void)fds.close(*fa);
    (void)fds.close(*fb);
    return err(EFAULT);
  }
  return SysResult::ok(0);
}

// ---- bind, listen, connect, accept ----

// unix_autobind: an abstract name of five hex digits.
SysResult autobind(SyscallContext& ctx, UnixSocket& s) {
  UnixSock& sk = s.sock();
  if (sk.bound()) return SysResult::ok(0);
  UnixNames& n = names(ctx);
  for (int tries = 0; tries < 0x100000; ++tries) {
    std::string sa("\x01\x00\x00", 3);
    sa += fmt::format("{:05x}", n.next_autobind());
    if (n.find_abstract(sa)) continue;
    sk.set_addr(sa, nullptr);
    n.add_abstract(sa, s.sock_ref());
    return SysResult::ok(0);
  }
  return err(ENOSPC);
}

// A socket with SO_PASSCRED gets a name when it connects or sends a datagram, so that its
// peer can tell who sent what.
void autobind_passcred(SyscallContext& ctx, UnixSocket& s) {
  if (s.sock().passcred && !s.sock().bound()) (void)autobind(ctx, s);
}

// unix_bind_bsd: the name is made as a socket inode among the created files (EADDRINUSE if
// the name exists, the parent directory's lookup and permission errors otherwise).
SysResult bind_path(SyscallContext& ctx, UnixSocket& s, const std::string& sa) {
  UnixSock& sk = s.sock();
  const std::string path = sun_path(sa);
  auto abs = resolve_at(ctx, kAtFdcwd, path);
  if (!abs) return err(abs.error());
  const std::string norm = normalize_path(*abs);
  if (stat_path(ctx, norm, false)) return err(EADDRINUSE);
  const std::string parent = parent_dir(norm);
  struct ::stat pst;
  if (::stat(parent.c_str(), &pst) != 0) return err(errno);
  if (!S_ISDIR(pst.st_mode)) return err(ENOTDIR);
  if (::access(parent.c_str(), W_OK | X_OK) != 0) return err(errno);
  if (sk.bound()) return err(EINVAL);
  const std::string key = CreatedFiles::key_of(norm);
  File* file = File::create_shmem_file(ctx.kernel.machine(), key, kSealSeal,
                                       (major(pst.st_dev) << 8) | (minor(pst.st_dev) & 0xff));
  FileStat st = new_shmem_stat(S_IFSOCK | (0777 & ~ctx.proc.fs.umask), ctx.proc.cred.euid,
                               ctx.proc.cred.egid, 1);
  st.dev = pst.st_dev;
  auto inode = std::make_shared<ShmemInode>(file, st, key);
  ctx.kernel.created_files().add(key, inode);
  names(ctx).add_inode(inode.get(), s.sock_ref());
  // The address keeps the path as given, NUL-terminated (unix_mkname_bsd).
  std::string kept = sa.substr(0, kSunPathOff) + path;
  kept.push_back('\0');
  sk.set_addr(kept, std::move(inode));
  return SysResult::ok(0);
}

SysResult sys_bind(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  auto sa = read_sockaddr(ctx, ctx.arg(1), ctx.arg(2));
  if (!sa) return err(sa.error());
  if (sa->size() == kSunPathOff && sa_family(*sa) == kAfUnix) return autobind(ctx, **s);
  if (auto v = validate_unix_addr(*sa); !v) return err(v.error());
  if (!abstract_name(*sa)) return bind_path(ctx, **s, *sa);
  UnixSock& sk = (*s)->sock();
  if (sk.bound()) return err(EINVAL);
  if (names(ctx).find_abstract(*sa)) return err(EADDRINUSE);
  sk.set_addr(*sa, nullptr);
  names(ctx).add_abstract(*sa, (*s)->sock_ref());
  return SysResult::ok(0);
}

SysResult sys_listen(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  UnixSock& sk = (*s)->sock();
  if (sk.type == kSockDgram) return err(EOPNOTSUPP);
  if (!sk.bound()) return err(EINVAL);
  if (sk.state == UnixSock::State::Connected) return err(EINVAL);
  auto backlog = static_cast<std::uint32_t>(ctx.arg_int(1));
  backlog = std::min<std::uint32_t>(backlog, UnixSock::kSomaxconn);
  if (backlog > sk.max_backlog) sk.wait.wake_all();  // connects waiting for room
  sk.max_backlog = backlog;
  sk.state = UnixSock::State::Listening;
  sk.peercred = current_cred(ctx);
  sk.has_peercred = true;
  return SysResult::ok(0);
}

// unix_stream_connect: a new sock (the embryo accept will return) is connected to the
// caller at once and queued on the listener; a full backlog waits (EAGAIN if nonblocking).
SysResult stream_connect(SyscallContext& ctx, UnixSocket& s, const std::string& sa) {
  UnixSock& sk = s.sock();
  if (auto v = validate_unix_addr(sa); !v) return err(v.error());
  autobind_passcred(ctx, s);
  auto other = find_other(ctx, sa, sk.type);
  if (!other) return err(other.error());
  UnixSock& l = **other;
  if (l.state != UnixSock::State::Listening || (l.shutdown & kRcvShutdown))
    return err(ECONNREFUSED);
  if (l.backlog.size() > l.max_backlog) {
    if (s.nonblock(0)) return err(EAGAIN);
    return sock_wait(ctx, sk, l.wait, 0, sk.sndtimeo_us);
  }
  if (sk.state == UnixSock::State::Connected) return err(EISCONN);
  if (sk.state != UnixSock::State::Unconnected) return err(EINVAL);
  auto embryo = new_unix_sock(ctx, sk.type);
  if (l.bound()) embryo->set_addr(l.addr(), nullptr);
  embryo->passcred = l.passcred;  // unix_sock_inherit_flags at accept
  unix_connect_pair(s.sock_ref(), embryo, current_cred(ctx), l.peercred);
  l.backlog.push_back(std::move(embryo));
  l.wait.wake_all();
  return SysResult::ok(0);
}

SysResult sys_connect(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  auto sa = read_sockaddr(ctx, ctx.arg(1), ctx.arg(2));
  if (!sa) return err(sa.error());
  UnixSock& sk = (*s)->sock();
  if (sk.type != kSockDgram) return stream_connect(ctx, **s, *sa);
  // unix_dgram_connect: AF_UNSPEC dissolves the association.
  if (sa->size() < 2) return err(EINVAL);
  if (sa_family(*sa) == kAfUnspec) {
    sk.peer.reset();
    sk.state = UnixSock::State::Unconnected;
    return SysResult::ok(0);
  }
  if (auto v = validate_unix_addr(*sa); !v) return err(v.error());
  autobind_passcred(ctx, **s);
  auto other = find_other(ctx, *sa, sk.type);
  if (!other) return err(other.error());
  if ((*other)->peer && (*other)->peer.get() != &sk) return err(EPERM);
  sk.peer = *other;
  sk.state = UnixSock::State::Connected;
  return SysResult::ok(0);
}

SysResult do_accept(SyscallContext& ctx, int fd, vaddr_t uaddr, vaddr_t ulen, int flags) {
  if (flags & ~(kSockNonblock | kSockCloexec)) return err(EINVAL);
  auto s = sock_file(ctx, fd);
  if (!s) return err(s.error());
  UnixSock& sk = (*s)->sock();
  if (sk.type == kSockDgram) return err(EOPNOTSUPP);
  if (sk.state != UnixSock::State::Listening) return err(EINVAL);
  if (sk.backlog.empty()) {
    if ((*s)->nonblock(0)) return err(EAGAIN);
    return sock_wait(ctx, sk, sk.wait, 0, sk.rcvtimeo_us);
  }
  std::shared_ptr<UnixSock> conn = sk.backlog.front();
  auto file =
      std::make_shared<UnixSocket>(conn, O_RDWR | ((flags & kSockNonblock) ? O_NONBLOCK : 0));
  // The descriptor comes first: without one the connection stays queued (EMFILE).
  auto nfd = ctx.proc.fds->install(file, (flags & kSockCloexec) != 0);
  if (!nfd) {
    (void)file->disown();
    return err(nfd.error());
  }
  sk.backlog.pop_front();
  sk.wait.wake_all();  // a connect waiting for room in the backlog
  if (uaddr) {
    const std::string peer = conn->peer ? sock_name(*conn->peer) : std::string("\x01\x00", 2);
    if (auto w = write_sockaddr(ctx, peer, uaddr, ulen); !w) {
      (void)ctx.proc.fds->close(*nfd);
      return err(w.error());
    }
  }
  return SysResult::ok(static_cast<std::uint64_t>(*nfd));
}

SysResult sys_accept(SyscallContext& ctx) {
  return do_accept(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2), 0);
}
SysResult sys_accept4(SyscallContext& ctx) {
  return do_accept(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2), ctx.arg_int(3));
}

SysResult sys_getsockname(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  return SysResult::from(write_sockaddr(ctx, sock_name((*s)->sock()), ctx.arg(1), ctx.arg(2)));
}

SysResult sys_getpeername(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  const UnixSock& sk = (*s)->sock();
  if (sk.state != UnixSock::State::Connected || !sk.peer) return err(ENOTCONN);
  return SysResult::from(write_sockaddr(ctx, sock_name(*sk.peer), ctx.arg(1), ctx.arg(2)));
}

// unix_shutdown: a connection's peer gets the mirror image (our SHUT_WR is its read EOF).
SysResult sys_shutdown(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  const int how = ctx.arg_int(1);
  if (how < 0 || how > 2) return err(EINVAL);
  const int mode = how + 1;
  UnixSock& sk = (*s)->sock();
  sk.shutdown |= mode;
  sk.wait.wake_all();
  if (sk.peer && sk.type != kSockDgram) {
    int peer_mode = 0;
    if (mode & kRcvShutdown) peer_mode |= kSendShutdown;
    if (mode & kSendShutdown) peer_mode |= kRcvShutdown;
    sk.peer->shutdown |= peer_mode;
    sk.peer->wait.wake_all();
  }
  return SysResult::ok(0);
}

// ---- data ----

// copy_msghdr_from_user: EMSGSIZE past UIO_MAXIOV, then import_iovec's checks.
Result<Segments> read_iovec(const SyscallContext& ctx, vaddr_t iov, std::uint64_t cnt) {
  if (cnt > kUioMaxIov) return fail(EMSGSIZE);
  return import_iovec(ctx, iov, cnt);
}

// The guest's segments as a send's source, copied message by message (no buffer of the
// whole length: a stream send may be up to 2 GiB).
SendSource gather_source(const SyscallContext& ctx, const Segments& s) {
  return [&ctx, &s](std::uint64_t at, std::uint8_t* dst, std::uint64_t n) {
    return walk_segments(s, at, n, [&](vaddr_t src, std::uint64_t off, std::uint64_t k) {
             return copy_in_partial(ctx, dst + off, src, k);
           }) == n;
  };
}

RecvSink scatter_sink(const SyscallContext& ctx, const Segments& s) {
  return [&ctx, &s](const std::uint8_t* src, std::uint64_t at, std::uint64_t n) {
    return scatter(ctx, s, at, src, n);
  };
}

// The destination of a send with an address: for datagrams the bound sock it names.
Result<void> resolve_dest(SyscallContext& ctx, UnixSocket& s, const std::string& sa, SendArgs& a) {
  if (sa.empty()) return {};
  a.named = true;
  if (s.sock().type != kSockDgram) return {};
  if (auto v = validate_unix_addr(sa); !v) return v;
  autobind_passcred(ctx, s);
  auto other = find_other(ctx, sa, kSockDgram);
  if (!other) return std::unexpected(other.error());
  a.to = *other;
  return {};
}

SysResult sys_sendto(SyscallContext& ctx) {
  const vaddr_t buf = ctx.arg(1);
  const std::uint64_t len = std::min(ctx.arg(2), kMaxRwCount);
  if (!access_ok(ctx.arch(), buf, len)) return err(EFAULT);
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  SendArgs a;
  a.flags = ctx.arg_int(3);
  if (ctx.arg(4)) {
    auto sa = read_sockaddr(ctx, ctx.arg(4), ctx.arg(5));
    if (!sa) return err(sa.error());
    if (auto r = resolve_dest(ctx, **s, *sa, a); !r) return err(r.error());
  }
  Segments seg;
  seg.seg.emplace_back(buf, len);
  seg.total = len;
  return (*s)->send(ctx, len, gather_source(ctx, seg), a);
}

SysResult sys_recvfrom(SyscallContext& ctx) {
  const vaddr_t buf = ctx.arg(1);
  const std::uint64_t len = std::min(ctx.arg(2), kMaxRwCount);
  if (!access_ok(ctx.arch(), buf, len)) return err(EFAULT);
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  Segments seg;
  seg.seg.emplace_back(buf, len);
  seg.total = len;
  RecvOut out;
  const SysResult r = (*s)->recv(ctx, len, ctx.arg_int(3), scatter_sink(ctx, seg), out);
  if (!r.is_return() || r.is_error()) return r;
  if (ctx.arg(4))
    if (auto w = write_sockaddr(ctx, out.from, ctx.arg(4), ctx.arg(5)); !w) return err(w.error());
  return r;
}

// struct user_msghdr, the same on both 64-bit ABIs.
struct GuestMsghdr {
  std::uint64_t name;
  std::uint32_t namelen, pad0;
  std::uint64_t iov, iovlen, control, controllen;
  std::int32_t flags, pad1;
};
static_assert(sizeof(GuestMsghdr) == 56);

// __scm_send: SCM_RIGHTS descriptors and checked SCM_CREDENTIALS from the control buffer.
Result<void> parse_cmsgs(SyscallContext& ctx, const GuestMsghdr& m, SendArgs& a) {
  if (m.controllen == 0) return {};
  if (m.controllen > kOptmemMax) return fail(ENOBUFS);  // sock_kmalloc's limit
  std::vector<std::uint8_t> c(m.controllen);
  if (!ctx.read(m.control, c.data(), c.size())) return fail(EFAULT);
  std::uint64_t off = 0;
  while (c.size() - off >= kCmsgHdr) {
    std::uint64_t len = 0;
    std::int32_t level = 0, type = 0;
    std::memcpy(&len, c.data() + off, 8);
    std::memcpy(&level, c.data() + off + 8, 4);
    std::memcpy(&type, c.data() + off + 12, 4);
    if (len < kCmsgHdr || len > c.size() - off) return fail(EINVAL);
    if (level == kSolSocket) {
      const std::uint8_t* data = c.data() + off + kCmsgHdr;
      const std::uint64_t dlen = len - kCmsgHdr;
      if (type == kScmRights) {
        const std::uint64_t n = dlen / 4;
        if (a.fds.size() + n > kScmMaxFd) return fail(EINVAL);
        for (std::uint64_t i = 0; i < n; ++i) {
          std::int32_t fd = 0;
          std::memcpy(&fd, data + i * 4, 4);
          OpenFileRef f = ctx.proc.fds->get(fd);
          if (!f) return fail(EBADF);
          a.fds.push_back(std::move(f));
        }
      } else if (type == kScmCredentials) {
        if (dlen != 12) return fail(EINVAL);
        UnixCred cr;
        std::memcpy(&cr.pid, data, 4);
        std::memcpy(&cr.uid, data + 4, 4);
        std::memcpy(&cr.gid, data + 8, 4);
        const Credentials& me = ctx.proc.cred;
        const bool root = me.euid == 0;
        if (!root && cr.pid != ctx.proc.pid) return fail(EPERM);
        if (!root && cr.uid != me.uid && cr.uid != me.euid) return fail(EPERM);
        if (!root && cr.gid != me.gid && cr.gid != me.egid) return fail(EPERM);
        a.cred = cr;
      } else {
        return fail(EINVAL);
      }
    }
    off += cmsg_align(len);
    if (off > c.size()) break;
  }
  return {};
}

SysResult sys_sendmsg(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  auto m = ctx.read_obj<GuestMsghdr>(ctx.arg(1));
  if (!m) return err(EFAULT);
  if (static_cast<std::int32_t>(m->namelen) < 0 || m->namelen > kSockaddrStorage)
    return err(EINVAL);
  auto seg = read_iovec(ctx, m->iov, m->iovlen);
  if (!seg) return err(seg.error());
  SendArgs a;
  a.flags = ctx.arg_int(2);
  if (auto r = parse_cmsgs(ctx, *m, a); !r) return err(r.error());
  if (m->name && m->namelen) {
    auto sa = read_sockaddr(ctx, m->name, m->namelen);
    if (!sa) return err(sa.error());
    if (auto r = resolve_dest(ctx, **s, *sa, a); !r) return err(r.error());
  }
  return (*s)->send(ctx, seg->total, gather_source(ctx, *seg), a);
}

// put_cmsg / scm_detach_fds: the received credentials and descriptors as control messages;
// what does not fit sets MSG_CTRUNC (descriptors that do not fit are closed).
struct CmsgWriter {
  const SyscallContext& ctx;
  vaddr_t at;
  std::uint64_t left;
  int flags = 0;
  std::uint64_t used = 0;

  Result<void> put(int type, const void* data, std::uint64_t len) {
    if (left < kCmsgHdr) {
      flags |= kMsgCtrunc;
      return {};
    }
    std::uint64_t cmlen = kCmsgHdr + len;
    if (left < cmlen) {
      flags |= kMsgCtrunc;
      cmlen = left;
    }
    std::vector<std::uint8_t> b(cmlen);
    const std::uint64_t full = kCmsgHdr + len;
    const std::int32_t level = kSolSocket;
    std::memcpy(b.data(), &full, 8);
    std::memcpy(b.data() + 8, &level, 4);
    std::memcpy(b.data() + 12, &type, 4);
    std::memcpy(b.data() + kCmsgHdr, data, cmlen - kCmsgHdr);
    if (!ctx.write(at, b.data(), b.size())) return fail(EFAULT);
    const std::uint64_t adv = std::min(cmsg_align(full), left);
    at += adv;
    left -= adv;
    used += adv;
    return {};
  }
};

SysResult sys_recvmsg(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  const vaddr_t mp = ctx.arg(1);
  auto m = ctx.read_obj<GuestMsghdr>(mp);
  if (!m) return err(EFAULT);
  if (static_cast<std::int32_t>(m->namelen) < 0) return err(EINVAL);
  auto seg = read_iovec(ctx, m->iov, m->iovlen);
  if (!seg) return err(seg.error());
  const int flags = ctx.arg_int(2);
  RecvOut out;
  const SysResult r =
      (*s)->recv(ctx, seg->total, flags & ~kMsgCmsgCloexec, scatter_sink(ctx, *seg), out);
  if (!r.is_return() || r.is_error()) return r;
  if (m->name) {
    const std::size_t n = std::min<std::size_t>(m->namelen, out.from.size());
    if (n && !ctx.write(m->name, out.from.data(), n)) return err(EFAULT);
    const auto klen = static_cast<std::uint32_t>(out.from.size());
    if (!ctx.write_obj(mp + 8, klen)) return err(EFAULT);
  }
  CmsgWriter w{ctx, m->control, m->control ? m->controllen : 0};
  if (out.cred) {
    const std::int32_t cr[3] = {out.cred->pid, static_cast<std::int32_t>(out.cred->uid),
                                static_cast<std::int32_t>(out.cred->gid)};
    if (auto p = w.put(kScmCredentials, cr, sizeof cr); !p) return err(p.error());
  }
  if (!out.fds.empty()) {
    const std::uint64_t fdmax = w.left > kCmsgHdr ? (w.left - kCmsgHdr) / 4 : 0;
    std::vector<std::int32_t> got;
    const bool cloexec = (flags & kMsgCmsgCloexec) != 0;
    for (std::size_t i = 0; i < out.fds.size() && got.size() < fdmax; ++i) {
      auto fd = ctx.proc.fds->install(out.fds[i], cloexec);
      if (!fd) break;
      got.push_back(*fd);
    }
    if (!got.empty())
      if (auto p = w.put(kScmRights, got.data(), got.size() * 4); !p) return err(p.error());
    if (got.size() < out.fds.size()) w.flags |= kMsgCtrunc;
  }
  const std::uint64_t controllen = m->control ? w.used : 0;
  const std::int32_t mflags = out.msg_flags | w.flags;
  if (!ctx.write_obj(mp + 40, controllen) || !ctx.write_obj(mp + 48, mflags)) return err(EFAULT);
  return r;
}

// ---- options ----

struct Linger {
  std::int32_t onoff, linger;
};

SysResult sys_getsockopt(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  const int level = ctx.arg_int(1), name = ctx.arg_int(2);
  const vaddr_t optval = ctx.arg(3), optlen = ctx.arg(4);
  if (level != kSolSocket) return err(EOPNOTSUPP);
  auto len = ctx.read_obj<std::int32_t>(optlen);
  if (!len) return err(EFAULT);
  if (*len < 0) return err(EINVAL);
  UnixSock& sk = (*s)->sock();
  if (name == kSoRcvtimeoOld || name == kSoSndtimeoOld || name == kSoRcvtimeoNew ||
      name == kSoSndtimeoNew) {
    // struct timeval (64-bit fields on both ABIs); {0, 0} when there is no timeout.
    const bool rcv = name == kSoRcvtimeoOld || name == kSoRcvtimeoNew;
    const std::uint64_t us = rcv ? sk.rcvtimeo_us : sk.sndtimeo_us;
    std::int64_t tv[2] = {0, 0};
    if (us != UnixSock::kNoTimeout) {
      tv[0] = static_cast<std::int64_t>(us / 1000000);
      tv[1] = static_cast<std::int64_t>(us % 1000000);
    }
    const auto n = std::min<std::int32_t>(*len, sizeof tv);
    if (n && !ctx.write(optval, tv, static_cast<std::size_t>(n))) return err(EFAULT);
    return SysResult::from(ctx.write_obj(optlen, n));
  }
  std::int32_t v = 0;
  switch (name) {
    case kSoLinger: {
      const std::int32_t lg[2] = {sk.linger_onoff, sk.linger_secs};
      const auto n = std::min<std::int32_t>(*len, sizeof lg);
      if (n && !ctx.write(optval, lg, static_cast<std::size_t>(n))) return err(EFAULT);
      return SysResult::from(ctx.write_obj(optlen, n));
    }
    case kSoDebug:
    case kSoDontroute:
    case kSoBroadcast:
    case kSoOobinline:
    case kSoNoCheck:
    case kSoReuseport:
      v = sk.flag_opts.contains(name) ? sk.flag_opts.at(name) : 0;
      break;
    case kSoPriority:
      v = sk.priority;
      break;
    case kSoRcvlowat:
      v = sk.rcvlowat;
      break;
    case kSoSndlowat:
      v = 1;
      break;
    case kSoType:
      v = sk.type;
      break;
    case kSoError:
      v = sk.err;
      sk.err = 0;
      break;
    case kSoSndbuf:
      v = static_cast<std::int32_t>(sk.sndbuf);
      break;
    case kSoRcvbuf:
      v = static_cast<std::int32_t>(sk.rcvbuf);
      break;
    case kSoPasscred:
      v = sk.passcred;
      break;
    case kSoReuseaddr:
      v = sk.reuseaddr;
      break;
    case kSoKeepalive:
      v = sk.keepalive;
      break;
    case kSoAcceptconn:
      v = sk.state == UnixSock::State::Listening;
      break;
    case kSoDomain:
      v = kAfUnix;
      break;
    case kSoProtocol:
      v = 0;
      break;
    case kSoPeercred: {
      UnixCred c;
      if (sk.has_peercred) c = sk.peercred;
      const std::int32_t cr[3] = {c.pid, static_cast<std::int32_t>(c.uid),
                                  static_cast<std::int32_t>(c.gid)};
      const auto n = std::min<std::int32_t>(*len, sizeof cr);
      if (n && !ctx.write(optval, cr, static_cast<std::size_t>(n))) return err(EFAULT);
      return SysResult::from(ctx.write_obj(optlen, n));
    }
    default:
      return err(ENOPROTOOPT);
  }
  const auto n = std::min<std::int32_t>(*len, sizeof v);
  if (n && !ctx.write(optval, &v, static_cast<std::size_t>(n))) return err(EFAULT);
  return SysResult::from(ctx.write_obj(optlen, n));
}

SysResult sys_setsockopt(SyscallContext& ctx) {
  auto s = sock_file(ctx, ctx.arg_int(0));
  if (!s) return err(s.error());
  const int level = ctx.arg_int(1), name = ctx.arg_int(2);
  const vaddr_t optval = ctx.arg(3);
  const auto optlen = static_cast<std::int32_t>(ctx.arg(4));
  if (level != kSolSocket) return err(EOPNOTSUPP);
  UnixSock& sk = (*s)->sock();
  if (name == kSoRcvtimeoOld || name == kSoSndtimeoOld || name == kSoRcvtimeoNew ||
      name == kSoSndtimeoNew) {
    // sock_set_timeout: {0, 0} waits for ever, a negative time does not wait at all.
    std::int64_t tv[2];
    if (optlen < static_cast<std::int32_t>(sizeof tv)) return err(EINVAL);
    if (!ctx.read(optval, tv, sizeof tv)) return err(EFAULT);
    if (tv[1] < 0 || tv[1] >= 1000000) return err(EDOM);
    std::uint64_t us = UnixSock::kNoTimeout;
    if (tv[0] < 0) {
      us = 0;
    } else if (tv[0] || tv[1]) {
      us = static_cast<std::uint64_t>(tv[0]) * 1000000 + static_cast<std::uint64_t>(tv[1]);
      us = std::min(us, UnixSock::kNoTimeout - 1);
    }
    (name == kSoRcvtimeoOld || name == kSoRcvtimeoNew ? sk.rcvtimeo_us : sk.sndtimeo_us) = us;
    return SysResult::ok(0);
  }
  if (name == kSoLinger) {
    std::int32_t lg[2];
    if (optlen < static_cast<std::int32_t>(sizeof lg)) return err(EINVAL);
    if (!ctx.read(optval, lg, sizeof lg)) return err(EFAULT);
    sk.linger_onoff = lg[0] != 0;
    sk.linger_secs = lg[0] ? lg[1] : sk.linger_secs;
    return SysResult::ok(0);
  }
  if (optlen < static_cast<std::int32_t>(sizeof(std::int32_t))) return err(EINVAL);
  auto v = ctx.read_obj<std::int32_t>(optval);
  if (!v) return err(EFAULT);
  const bool admin = ctx.proc.cred.euid == 0;  // CAP_NET_ADMIN
  switch (name) {
    case kSoDebug:
      if (*v && !admin) return err(EACCES);
      [[fallthrough]];
    case kSoDontroute:
    case kSoBroadcast:
    case kSoOobinline:
    case kSoNoCheck:
    case kSoReuseport:
      sk.flag_opts[name] = *v != 0;
      return SysResult::ok(0);
    case kSoPriority:
      if ((*v < 0 || *v > 6) && !admin) return err(EPERM);
      sk.priority = *v;
      return SysResult::ok(0);
    case kSoRcvlowat:
      sk.rcvlowat = *v < 0 ? 0x7fffffff : std::max(*v, 1);
      return SysResult::ok(0);
    case kSoSndlowat:
      return err(ENOPROTOOPT);
    default:
      break;
  }
  const auto uv = static_cast<std::uint32_t>(*v);
  switch (name) {
    case kSoSndbuf:
      // sk_setsockopt doubles the request (for the kernel's overhead) within the limits.
      sk.sndbuf = std::max<std::size_t>(std::min<std::size_t>(uv, UnixSock::kMaxBuf) * 2,
                                        UnixSock::kMinSndbuf);
      sk.wait.wake_all();
      return SysResult::ok(0);
    case kSoRcvbuf:
      sk.rcvbuf = std::max<std::size_t>(std::min<std::size_t>(uv, UnixSock::kMaxBuf) * 2,
                                        UnixSock::kMinRcvbuf);
      return SysResult::ok(0);
    case kSoPasscred:
      sk.passcred = *v != 0;
      return SysResult::ok(0);
    case kSoReuseaddr:
      sk.reuseaddr = *v != 0;
      return SysResult::ok(0);
    case kSoKeepalive:
      sk.keepalive = *v != 0;
      return SysResult::ok(0);
    default:
      return err(ENOPROTOOPT);
  }
}

}  // namespace

void register_socket_syscalls(SyscallTable& t) {
  t.add(Sys::socket, sys_socket);
  t.add(Sys::socketpair, sys_socketpair);
  t.add(Sys::bind, sys_bind);
  t.add(Sys::listen, sys_listen);
  t.add(Sys::connect, sys_connect);
  t.add(Sys::accept, sys_accept);
  t.add(Sys::accept4, sys_accept4);
  t.add(Sys::getsockname, sys_getsockname);
  t.add(Sys::getpeername, sys_getpeername);
  t.add(Sys::shutdown, sys_shutdown);
  t.add(Sys::sendto, sys_sendto);
  t.add(Sys::recvfrom, sys_recvfrom);
  t.add(Sys::sendmsg, sys_sendmsg);
  t.add(Sys::recvmsg, sys_recvmsg);
  t.add(Sys::getsockopt, sys_getsockopt);
  t.add(Sys::setsockopt, sys_setsockopt);
}

}  // namespace mmemu
