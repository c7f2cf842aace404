// Socket and sendfile calls at the handler level: what the guest e2e runs cannot compare
// with the host (mmemu has no network: AF_INET/AF_INET6/AF_NETLINK are EAFNOSUPPORT), and
// the blocking mechanics (which queue a call sleeps on, a retried send or MSG_WAITALL
// receive continuing after the bytes it already moved, accept's EMFILE keeping the
// connection, a full backlog blocking connect, sendfile into a full pipe).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "emu/fs/unix_socket.hpp"
#include "emu/syscalls/abi.hpp"
#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

class SysSocketTest : public SysTest {
 protected:
  static constexpr vaddr_t kFds = SysTest::kScratch;          // int[2]
  static constexpr vaddr_t kBuf = SysTest::kScratch + 4096;   // data
  static constexpr vaddr_t kAux = SysTest::kScratch + 32768;  // addresses, lengths

  SysSocketTest() {
    register_socket_syscalls(table);
    register_sendfile_syscalls(table);
  }

  std::pair<int, int> pair(int type) {
    EXPECT_EQ(call(Sys::socketpair, AF_UNIX, type, 0, kFds), 0);
    const auto fds = get<std::array<std::int32_t, 2>>(kFds);
    return {fds[0], fds[1]};
  }
  UnixSock& sock(int fd) { return dynamic_cast<UnixSocket&>(*p.fds->get(fd)).sock(); }
  std::int64_t send(int fd, const std::string& data, int flags = 0) {
    EXPECT_TRUE(copy_to_user(mm_(), kBuf, data.data(), data.size()));
    return call(Sys::sendto, fd, kBuf, data.size(), flags, 0, 0);
  }
};

TEST_P(SysSocketTest, OnlyAfUnixExists) {
  for (int family : {AF_INET, AF_INET6, AF_NETLINK, AF_PACKET}) {
    EXPECT_EQ(call(Sys::socket, family, SOCK_STREAM, 0), E(EAFNOSUPPORT)) << family;
    EXPECT_EQ(call(Sys::socket, family, SOCK_DGRAM | SOCK_CLOEXEC, 0), E(EAFNOSUPPORT));
    EXPECT_EQ(call(Sys::socketpair, family, SOCK_STREAM, 0, kFds), E(EAFNOSUPPORT));
  }
  EXPECT_EQ(call(Sys::socket, 46 /*AF_MAX*/, SOCK_STREAM, 0), E(EAFNOSUPPORT));
  EXPECT_EQ(call(Sys::socket, AF_INET, SOCK_STREAM | 0x100, 0), E(EINVAL));  // flags first
  // SOCK_RAW on AF_UNIX is taken as SOCK_DGRAM, as unix_create does.
  const std::int64_t fd = call(Sys::socket, AF_UNIX, SOCK_RAW, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(sock(static_cast<int>(fd)).type, SOCK_DGRAM);
  EXPECT_EQ(call(Sys::socketpair, AF_UNIX, SOCK_STREAM, 0, 8), E(EFAULT));
  EXPECT_EQ(p.fds->open_fds().size(), 1u);  // the failed pair left no descriptor behind
  auto st = p.fds->get(static_cast<int>(fd))->stat();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->mode, S_IFSOCK | 0777u);
  EXPECT_EQ(p.fds->get(static_cast<int>(fd))->path(), "socket:[" + std::to_string(st->ino) + "]");
}

TEST_P(SysSocketTest, EmptyReceiveBlocksOnTheSocketsQueue) {
  auto [a, b] = pair(SOCK_STREAM);
  const std::array<std::uint64_t, 6> args{static_cast<std::uint64_t>(b), kBuf, 100, 0, 0, 0};
  SysResult r = raw(Sys::recvfrom, args);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_EQ(r.queue(), &sock(b).wait);
  EXPECT_EQ(r.restart(), Restart::IfSaRestart);
  EXPECT_EQ(send(a, "ping"), 4);
  r = raw(Sys::recvfrom, args, 1);
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), 4);
  EXPECT_EQ(bytes(kBuf, 4), "ping");
}

TEST_P(SysSocketTest, BlockedSendContinuesAfterWhatItQueued) {
  auto [a, b] = pair(SOCK_STREAM);
  put(kAux, std::int32_t{1});  // SO_SNDBUF 1: the minimum, 4608 bytes
  ASSERT_EQ(call(Sys::setsockopt, a, SOL_SOCKET, SO_SNDBUF, kAux, 4), 0);
  EXPECT_EQ(sock(a).sndbuf, UnixSock::kMinSndbuf);
  std::string data(20000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>('a' + i % 23);
  ASSERT_TRUE(copy_to_user(mm_(), kBuf, data.data(), data.size()));
  const std::array<std::uint64_t, 6> args{
      static_cast<std::uint64_t>(a), kBuf, data.size(), 0, 0, 0};
  std::string got;
  SysResult r = raw(Sys::sendto, args);
  unsigned retry = 0;
  while (r.kind() == SysResult::Kind::Block) {
    EXPECT_EQ(r.queue(), &sock(a).wait);
    // The reader drains what is queued; the writer is retried.
    const std::int64_t n = call(Sys::recvfrom, b, kBuf + 32768 - 4096, 4096, MSG_DONTWAIT, 0, 0);
    ASSERT_GT(n, 0);
    got += bytes(kBuf + 32768 - 4096, static_cast<std::size_t>(n));
    r = raw(Sys::sendto, args, ++retry);
  }
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), 20000);
  EXPECT_GT(retry, 1u);
  for (;;) {
    const std::int64_t n = call(Sys::recvfrom, b, kBuf + 32768 - 4096, 4096, MSG_DONTWAIT, 0, 0);
    if (n <= 0) {
      EXPECT_EQ(n, E(EAGAIN));
      break;
    }
    got += bytes(kBuf + 32768 - 4096, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, data);  // nothing twice, nothing lost
  EXPECT_EQ(sock(a).wmem, 0u);
}

TEST_P(SysSocketTest, WaitallReceiveKeepsWhatItHasAcrossRetries) {
  auto [a, b] = pair(SOCK_STREAM);
  EXPECT_EQ(send(a, "abc"), 3);
  const std::array<std::uint64_t, 6> args{
      static_cast<std::uint64_t>(b), kBuf + 8192, 6, MSG_WAITALL, 0, 0};
  SysResult r = raw(Sys::recvfrom, args);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_EQ(send(a, "def"), 3);
  r = raw(Sys::recvfrom, args, 1);
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), 6);
  EXPECT_EQ(bytes(kBuf + 8192, 6), "abcdef");
  // A peer that goes ends the wait with what arrived.
  EXPECT_EQ(send(a, "gh"), 2);
  EXPECT_EQ(raw(Sys::recvfrom, args).kind(), SysResult::Kind::Block);
  EXPECT_EQ(call(Sys::close, a), 0);
  r = raw(Sys::recvfrom, args, 1);
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), 2);
}

TEST_P(SysSocketTest, ReceiveTimeoutEndsTheWaitWithEagain) {
  auto [a, b] = pair(SOCK_STREAM);
  put(kAux, std::array<std::int64_t, 2>{0, 1000000});  // tv_usec out of range
  EXPECT_EQ(call(Sys::setsockopt, b, SOL_SOCKET, SO_RCVTIMEO, kAux, 16), E(EDOM));
  EXPECT_EQ(call(Sys::setsockopt, b, SOL_SOCKET, SO_RCVTIMEO, kAux, 8), E(EINVAL));
  put(kAux, std::array<std::int64_t, 2>{2, 500});
  ASSERT_EQ(call(Sys::setsockopt, b, SOL_SOCKET, SO_RCVTIMEO, kAux, 16), 0);
  put(kAux + 32, std::int32_t{16});
  ASSERT_EQ(call(Sys::getsockopt, b, SOL_SOCKET, SO_RCVTIMEO, kAux + 64, kAux + 32), 0);
  EXPECT_EQ((get<std::array<std::int64_t, 2>>(kAux + 64)), (std::array<std::int64_t, 2>{2, 500}));
  const std::array<std::uint64_t, 6> args{static_cast<std::uint64_t>(b), kBuf, 10, 0, 0, 0};
  SysResult r = raw(Sys::recvfrom, args);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_EQ(r.queue(), &sock(b).wait);
  EXPECT_GT(r.deadline_ns(), host_monotonic_ns());
  EXPECT_EQ(r.restart(), Restart::Never);  // sock_intr_errno: EINTR with a timeout
  // The retry after the deadline: nothing arrived, EAGAIN.
  SyscallContext late{k, p, Sys::recvfrom, *sys_number(arch(), Sys::recvfrom), args, 1, 1};
  const SysResult t = table.find(Sys::recvfrom)(late);
  ASSERT_TRUE(t.is_return());
  EXPECT_EQ(t.value(), E(EAGAIN));
  (void)a;
}

// A bound listener named by an abstract address.
TEST_P(SysSocketTest, ConnectWaitsForBacklogRoomAndAcceptKeepsItOnEmfile) {
  const std::int64_t l = call(Sys::socket, AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(l, 0);
  const std::string name("\x01\x00\0listener", 11);
  ASSERT_TRUE(copy_to_user(mm_(), kAux, name.data(), name.size()));
  ASSERT_EQ(call(Sys::bind, l, kAux, name.size()), 0);
  ASSERT_EQ(call(Sys::listen, l, 0), 0);
  const std::int64_t c1 = call(Sys::socket, AF_UNIX, SOCK_STREAM, 0);
  const std::int64_t c2 = call(Sys::socket, AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(call(Sys::connect, c1, kAux, name.size()), 0);
  const std::array<std::uint64_t, 6> args{
      static_cast<std::uint64_t>(c2), kAux, name.size(), 0, 0, 0};
  SysResult r = raw(Sys::connect, args);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_EQ(r.queue(), &sock(static_cast<int>(l)).wait);
  // No descriptor left: accept fails and the connection stays queued.
  const int max = p.fds->max_fds();
  p.fds->set_max_fds(static_cast<int>(p.fds->open_fds().back()) + 1);
  EXPECT_EQ(call(Sys::accept4, l, 0, 0, 0), E(EMFILE));
  EXPECT_EQ(sock(static_cast<int>(l)).backlog.size(), 1u);
  EXPECT_FALSE(sock(static_cast<int>(c1)).dead);
  p.fds->set_max_fds(max);
  put(kAux + 64, std::int32_t{64});
  const std::int64_t s1 = call(Sys::accept4, l, kAux + 128, kAux + 64, SOCK_NONBLOCK);
  ASSERT_GE(s1, 0);
  EXPECT_EQ(get<std::int32_t>(kAux + 64), 2);  // an unbound client: the family alone
  EXPECT_EQ(p.fds->get(static_cast<int>(s1))->flags() & O_NONBLOCK, O_NONBLOCK);
  // Room again: the blocked connect goes through on its retry.
  r = raw(Sys::connect, args, 1);
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), 0);
  EXPECT_EQ(send(static_cast<int>(c1), "x"), 1);
  EXPECT_EQ(call(Sys::recvfrom, s1, kBuf, 10, 0, 0, 0), 1);
  EXPECT_EQ(call(Sys::accept4, l, 0, 0, 0x1234), E(EINVAL));
}

TEST_P(SysSocketTest, ScmRightsInstallsAndCtruncDrops) {
  auto [a, b] = pair(SOCK_DGRAM);
  ASSERT_EQ(call(Sys::pipe2, kAux, 0), 0);
  const auto pp = get<std::array<std::int32_t, 2>>(kAux);
  // msghdr with one iovec and a control message carrying both pipe ends.
  put(kBuf, std::array<std::uint64_t, 2>{kBuf + 512, 1});  // iovec
  put(kBuf + 512, 'm');
  struct {
    std::uint64_t len;
    std::int32_t level, type;
    std::int32_t fds[2];
  } cm{16 + 8, SOL_SOCKET, SCM_RIGHTS, {pp[0], pp[1]}};
  put(kBuf + 256, cm);
  put(kBuf + 1024,
      std::array<std::uint64_t, 7>{0, 0, kBuf, 1, kBuf + 256, sizeof cm, 0});  // msghdr
  ASSERT_EQ(call(Sys::sendmsg, a, kBuf + 1024, 0), 1);
  ASSERT_EQ(call(Sys::sendmsg, a, kBuf + 1024, 0), 1);
  const std::size_t open_before = p.fds->open_fds().size();
  // Room for both descriptors, MSG_CMSG_CLOEXEC.
  put(kBuf + 1024, std::array<std::uint64_t, 7>{0, 0, kBuf, 1, kBuf + 2048, 32, 0});
  ASSERT_EQ(call(Sys::recvmsg, b, kBuf + 1024, MSG_CMSG_CLOEXEC), 1);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 1024 + 40), 24u);  // msg_controllen: CMSG_LEN(8)
  EXPECT_EQ(get<std::int32_t>(kBuf + 1024 + 48), 0);     // msg_flags
  const auto got = get<std::array<std::int32_t, 2>>(kBuf + 2048 + 16);
  EXPECT_EQ(p.fds->get(got[0]), p.fds->get(pp[0]));
  EXPECT_EQ(p.fds->get(got[1]), p.fds->get(pp[1]));
  EXPECT_TRUE(p.fds->cloexec(got[0]));
  EXPECT_EQ(p.fds->open_fds().size(), open_before + 2);
  // Room for one: the second is dropped and MSG_CTRUNC says so.
  put(kBuf + 1024, std::array<std::uint64_t, 7>{0, 0, kBuf, 1, kBuf + 2048, 20, 0});
  ASSERT_EQ(call(Sys::recvmsg, b, kBuf + 1024, 0), 1);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 1024 + 40), 20u);
  EXPECT_EQ(get<std::int32_t>(kBuf + 1024 + 48), MSG_CTRUNC);
  EXPECT_EQ(p.fds->open_fds().size(), open_before + 3);
  // Malformed control messages.
  cm.len = 8;
  put(kBuf + 256, cm);
  put(kBuf + 1024, std::array<std::uint64_t, 7>{0, 0, kBuf, 1, kBuf + 256, sizeof cm, 0});
  EXPECT_EQ(call(Sys::sendmsg, a, kBuf + 1024, 0), E(EINVAL));
  cm.len = 24;
  cm.type = 99;
  put(kBuf + 256, cm);
  EXPECT_EQ(call(Sys::sendmsg, a, kBuf + 1024, 0), E(EINVAL));
  put(kBuf + 1024, std::array<std::uint64_t, 7>{0, 0, kBuf, 1025, 0, 0, 0});
  EXPECT_EQ(call(Sys::sendmsg, a, kBuf + 1024, 0), E(EMSGSIZE));
}

TEST_P(SysSocketTest, PathNameIsASocketFileInMemory) {
  HostTree tree;
  const std::string path = tree.path("sock");
  std::string sa("\x01\x00", 2);
  sa += path;
  ASSERT_TRUE(copy_to_user(mm_(), kAux, sa.data(), sa.size()));
  const std::int64_t s = call(Sys::socket, AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_EQ(call(Sys::bind, s, kAux, sa.size()), 0);
  // The host's directory is untouched; the name is one of the created files.
  EXPECT_FALSE(std::filesystem::exists(path));
  auto inode = k.created_files().find(CreatedFiles::key_of(path));
  ASSERT_TRUE(inode);
  EXPECT_TRUE(S_ISSOCK(inode->st.mode));
  const std::int64_t c = call(Sys::socket, AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_EQ(call(Sys::connect, c, kAux, sa.size()), 0);
  EXPECT_EQ(send(static_cast<int>(c), "hi"), 2);
  // Unlinked, the name no longer reaches the socket.
  EXPECT_EQ(call(Sys::unlinkat, static_cast<std::uint64_t>(-100), str(path, 8192), 0), 0);
  const std::int64_t c2 = call(Sys::socket, AF_UNIX, SOCK_DGRAM, 0);
  EXPECT_EQ(call(Sys::connect, c2, kAux, sa.size()), E(ENOENT));
  // A name in a directory that does not exist.
  const std::string bad = std::string("\x01\x00", 2) + tree.path("nodir/sock");
  ASSERT_TRUE(copy_to_user(mm_(), kAux, bad.data(), bad.size()));
  EXPECT_EQ(call(Sys::bind, c2, kAux, bad.size()), E(ENOENT));
  EXPECT_EQ(call(Sys::bind, c2, kAux, 111), E(EINVAL));
}

TEST_P(SysSocketTest, SendfileIntoAFullPipeBlocksWithoutMoving) {
  HostTree tree;
  const std::int64_t f = open(tree.path("big.bin"));
  ASSERT_GE(f, 0);
  ASSERT_EQ(call(Sys::pipe2, kAux, 0), 0);
  const auto pp = get<std::array<std::int32_t, 2>>(kAux);
  ASSERT_EQ(call(Sys::fcntl, pp[1], 1031 /*F_SETPIPE_SZ*/, 4096), 4096);
  EXPECT_EQ(call(Sys::sendfile, pp[1], f, 0, 10000), 4096);  // what fits
  const std::array<std::uint64_t, 6> args{
      static_cast<std::uint64_t>(pp[1]), static_cast<std::uint64_t>(f), 0, 10000, 0, 0};
  SysResult r = raw(Sys::sendfile, args);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_EQ(p.fds->get(static_cast<int>(f))->pos(), 4096u);
  EXPECT_EQ(call(Sys::read, pp[0], kBuf, 4096), 4096);
  r = raw(Sys::sendfile, args, 1);
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), 4096);
  EXPECT_EQ(p.fds->get(static_cast<int>(f))->pos(), 8192u);
  // The pipe's O_NONBLOCK (the same value on both ABIs) makes a full pipe EAGAIN.
  ASSERT_EQ(call(Sys::fcntl, pp[1], F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(call(Sys::sendfile, pp[1], f, 0, 10), E(EAGAIN));
}

}  // namespace

INSTANTIATE_SYS_ARCHES(SysSocketTest);

}  // namespace mmemu::test
