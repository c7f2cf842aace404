// AF_UNIX sockets (Linux's net/unix/af_unix.c) between guest processes: SOCK_STREAM,
// SOCK_DGRAM and SOCK_SEQPACKET, made by socketpair or socket + bind/listen/connect/accept.
// - A UnixSock is the kernel's struct sock: a receive queue of messages (sk_buffs carrying
//   bytes, passed descriptors and the sender's credentials), a peer, shutdown bits, a
//   pending error, send/receive buffer sizes, and for a listener the backlog of connected
//   but not yet accepted socks. A UnixSocket is the open file over one sock; fork shares it
//   like any OpenFile, and closing its last reference releases the sock (the peer sees EOF,
//   EPIPE, ECONNRESET or ECONNREFUSED as on Linux).
// - Blocking follows the pipe's model (emu/fs/pipe.hpp): a call that must wait returns
//   SysResult::block on a sock's single wait queue and is retried from the start when woken;
//   bytes a blocked stream writer or MSG_WAITALL reader already moved are remembered per pid
//   so the retry continues after them. A sock's queue is woken for everything poll may
//   report about it: data or a connection arriving, room coming back, the peer going.
//   SO_RCVTIMEO/SO_SNDTIMEO bound the waits (kept to the microsecond; Linux rounds them
//   to its timer tick).
// - Names live in mmemu's memory: a path name is a created file of type S_IFSOCK in the
//   kernel's CreatedFiles (unlink removes it, stat shows it, a second bind gets EADDRINUSE;
//   the host's file system is never written); abstract names ('\0' first) and autobind names
//   are in UnixNames. connect finds the listener through the name's inode, so a socket
//   whose name was unlinked is unreachable, as on Linux.
// - Sending a descriptor (SCM_RIGHTS) keeps its OpenFile alive in the message until it is
//   received or the receiving sock goes; a sock that ends up holding its own last reference
//   through its own queue is not collected (Linux's unix_gc is not modelled).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "emu/fs/fd.hpp"
#include "emu/fs/shmem_file.hpp"

namespace mmemu {

inline constexpr int kSockStream = 1, kSockDgram = 2, kSockSeqpacket = 5;
inline constexpr int kRcvShutdown = 1, kSendShutdown = 2, kShutdownMask = 3;

// struct ucred: what SO_PEERCRED and SCM_CREDENTIALS carry.
struct UnixCred {
  std::int32_t pid = 0;
  std::uint32_t uid = ~0U, gid = ~0U;
  bool operator==(const UnixCred&) const = default;
};

class UnixSock;

// One queued message (an sk_buff on a receive queue).
struct UnixSkb {
  std::vector<std::uint8_t> data;
  std::size_t off = 0;             // stream: bytes already read from data
  std::vector<OpenFileRef> fds;    // SCM_RIGHTS
  UnixCred cred;                   // the sender's (SCM_CREDENTIALS)
  std::string from;                // the sender's address bytes (sockaddr_un), "" if unnamed
  std::weak_ptr<UnixSock> sender;  // whose send buffer the message is charged to
  std::size_t truesize = 0;
  std::size_t left() const { return data.size() - off; }
};

class UnixSock : public std::enable_shared_from_this<UnixSock> {
 public:
  enum class State : std::uint8_t { Unconnected, Listening, Connected };
  static constexpr std::size_t kDefaultBuf = 212992;  // net.core.{w,r}mem_default
  static constexpr std::size_t kMaxBuf = 212992;      // net.core.{w,r}mem_max
  static constexpr std::size_t kMinSndbuf = 4608;     // SOCK_MIN_SNDBUF
  static constexpr std::size_t kMinRcvbuf = 2304;     // SOCK_MIN_RCVBUF
  static constexpr std::size_t kSkbOverhead = 768;    // an sk_buff's truesize beyond its data
  static constexpr std::size_t kMaxDgramQlen = 10;    // net.unix.max_dgram_qlen
  static constexpr int kSomaxconn = 4096;             // net.core.somaxconn

  UnixSock(int sock_type, std::uint64_t inode_nr) : type(sock_type), ino(inode_nr) {}
  ~UnixSock();

  // unix_release_sock: the last open file of the sock went. The peer of a connection learns
  // it (shutdown in both directions, ECONNRESET if unread data or an unaccepted connection
  // was lost), queued messages and unaccepted connections are dropped, waiters woken.
  void release();
  // Takes a message off the receive queue (or all of it): the sender gets its room back.
  void dequeue_front();
  void purge();
  // The address getsockname reports: the sockaddr_un bytes ("" when unbound: family only).
  const std::string& addr() const { return addr_; }
  bool bound() const { return bound_; }
  void set_addr(std::string a, ShmemInodeRef inode) {
    addr_ = std::move(a);
    inode_ = std::move(inode);
    bound_ = true;
  }
  const ShmemInodeRef& inode() const { return inode_; }
  bool recvq_full() const { return rcvq.size() > max_backlog; }
  // unix_writable: room in the send buffer (a quarter of it at most in flight).
  bool writable() const { return state != State::Listening && (wmem << 2) <= sndbuf; }

  const int type;
  const std::uint64_t ino;
  State state = State::Unconnected;
  bool dead = false;
  bool embryo = false;  // released while still in a listener's backlog
  std::shared_ptr<UnixSock> peer;
  std::deque<UnixSkb> rcvq;
  std::deque<std::shared_ptr<UnixSock>> backlog;  // a listener's unaccepted connections
  std::size_t max_backlog = kMaxDgramQlen;
  WaitQueue wait;
  int shutdown = 0;  // kRcvShutdown | kSendShutdown
  int err = 0;       // sk_err: SO_ERROR reads and clears it
  std::size_t sndbuf = kDefaultBuf, rcvbuf = kDefaultBuf;
  std::size_t wmem = 0;  // truesize of this sock's messages still queued at a receiver
  bool passcred = false;
  int reuseaddr = 0, keepalive = 0;
  std::map<int, int> flag_opts;  // SO_DEBUG, SO_BROADCAST, ...: kept, no effect on AF_UNIX
  int priority = 0;
  std::int32_t linger_onoff = 0, linger_secs = 0;  // SO_LINGER: close never waits here
  std::int32_t rcvlowat = 1;                       // SO_RCVLOWAT: a stream read's minimum
  // SO_RCVTIMEO / SO_SNDTIMEO in microseconds; kNoTimeout waits for ever.
  static constexpr std::uint64_t kNoTimeout = ~0ULL;
  std::uint64_t rcvtimeo_us = kNoTimeout, sndtimeo_us = kNoTimeout;
  UnixCred peercred;  // SO_PEERCRED: the peer's at connect/socketpair time
  bool has_peercred = false;
  std::map<int, std::uint64_t> partial;  // by pid: bytes a blocked call already moved

 private:
  std::string addr_;
  ShmemInodeRef inode_;  // a path name's inode (keeps it, as the kernel keeps the dentry)
  bool bound_ = false;
};

// The abstract name space and the sockets bound to path names, for one kernel.
class UnixNames {
 public:
  std::shared_ptr<UnixSock> find_abstract(const std::string& name) const;
  std::shared_ptr<UnixSock> find_inode(const ShmemInode* inode) const;
  void add_abstract(const std::string& name, const std::shared_ptr<UnixSock>& sk);
  void add_inode(const ShmemInode* inode, const std::shared_ptr<UnixSock>& sk);
  std::uint32_t next_autobind() { return autobind_++ & 0xfffff; }

 private:
  std::map<std::string, std::weak_ptr<UnixSock>> abstract_;
  std::map<const ShmemInode*, std::weak_ptr<UnixSock>> inodes_;
  std::uint32_t autobind_ = 0;
};

// Where a receive puts the bytes: copies n bytes at logical offset `at` of the caller's
// buffer and returns how many it could (fewer: the guest's buffer faulted).
using RecvSink =
    std::function<std::uint64_t(const std::uint8_t* src, std::uint64_t at, std::uint64_t n)>;

// Where a send takes the bytes: copies n bytes at logical offset `at` of the caller's
// buffer into dst; false when the guest's buffer faulted (the message is not sent).
using SendSource = std::function<bool(std::uint64_t at, std::uint8_t* dst, std::uint64_t n)>;

struct SendArgs {
  int flags = 0;                 // MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB, ...
  bool named = false;            // an address was given (a connection refuses it)
  std::shared_ptr<UnixSock> to;  // sendto's resolved destination (datagrams), or null
  std::vector<OpenFileRef> fds;  // SCM_RIGHTS
  std::optional<UnixCred> cred;  // explicit SCM_CREDENTIALS (already checked)
};

struct RecvOut {
  std::uint64_t copied = 0;      // bytes given to the sink
  std::uint64_t full_len = 0;    // a datagram's whole length (MSG_TRUNC)
  int msg_flags = 0;             // MSG_TRUNC
  std::string from;              // the sender's address bytes, "" if unnamed
  std::vector<OpenFileRef> fds;  // received SCM_RIGHTS
  std::optional<UnixCred> cred;  // SCM_CREDENTIALS when SO_PASSCRED is on
};

class UnixSocket final : public OpenFile {
 public:
  // flags: O_RDWR plus O_NONBLOCK from SOCK_NONBLOCK.
  UnixSocket(std::shared_ptr<UnixSock> sk, int flags) : OpenFile(flags), sk_(std::move(sk)) {}
  ~UnixSocket() override;

  std::string_view kind() const override { return "socket"; }
  std::string path() const override;  // "socket:[INO]"
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  Result<FileStat> stat() const override;
  SysResult ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) override;
  unsigned poll(WaitQueue** wq) override;

  UnixSock& sock() const { return *sk_; }
  const std::shared_ptr<UnixSock>& sock_ref() const { return sk_; }
  bool nonblock(int msg_flags) const;
  // Gives the sock back without releasing it (accept could not install the descriptor).
  std::shared_ptr<UnixSock> disown() { return std::exchange(sk_, nullptr); }

  // unix_stream_sendmsg / unix_dgram_sendmsg / unix_seqpacket_sendmsg: bytes sent, or the
  // errno (EPIPE after raising SIGPIPE unless MSG_NOSIGNAL, EAGAIN, ECONNREFUSED, ...), or
  // a block.
  // len bytes from src; a fault ends a stream send with the bytes sent so far (EFAULT if
  // none), and fails a datagram with EFAULT.
  SysResult send(SyscallContext& ctx, std::uint64_t len, const SendSource& src, SendArgs& args);
  // unix_stream_recvmsg / unix_dgram_recvmsg: up to len bytes into sink.
  SysResult recv(SyscallContext& ctx, std::uint64_t len, int flags, const RecvSink& sink,
                 RecvOut& out);

 private:
  SysResult send_stream(SyscallContext& ctx, std::uint64_t len, const SendSource& src, SendArgs& a);
  SysResult send_dgram(SyscallContext& ctx, std::uint64_t len, const SendSource& src, SendArgs& a);
  SysResult recv_stream(SyscallContext& ctx, std::uint64_t len, int flags, const RecvSink& sink,
                        RecvOut& out);
  SysResult recv_dgram(SyscallContext& ctx, std::uint64_t len, int flags, const RecvSink& sink,
                       RecvOut& out);

  std::shared_ptr<UnixSock> sk_;
};

// Sleeps on wq for a call that moved `done` bytes so far (kept for its retry). With a
// timeout (SO_RCVTIMEO/SO_SNDTIMEO, microseconds) the wait ends at its deadline: the retry
// then answers the bytes moved or EAGAIN, and a signal interrupts it with EINTR
// (sock_intr_errno); without one a handler with SA_RESTART restarts it.
SysResult sock_wait(SyscallContext& ctx, UnixSock& sk, WaitQueue& wq, std::uint64_t done,
                    std::uint64_t timeo_us);

// The credentials of the calling process (SO_PEERCRED, SCM_CREDENTIALS).
UnixCred current_cred(const SyscallContext& ctx);
// A new sock of `type` with a fresh sockfs inode number.
std::shared_ptr<UnixSock> new_unix_sock(SyscallContext& ctx, int type);
// Links two socks as a connected pair (socketpair, and connect with its accepted embryo).
void unix_connect_pair(const std::shared_ptr<UnixSock>& a, const std::shared_ptr<UnixSock>& b,
                       const UnixCred& cred_a, const UnixCred& cred_b);

}  // namespace mmemu
