// The descriptor-side file calls: read/write and their vector and positioned forms, pipes
// (blocking, EOF, SIGPIPE, atomicity, partial copies), lseek, dup*, fcntl, ioctl, fstat,
// close_range. Expected errnos were measured natively on this machine (Linux 6.18).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <array>

#include "emu/fs/pipe.hpp"
#include "emu/syscalls/abi.hpp"
#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

class SysFileTest : public SysTest {
 protected:
  // pipe2 into scratch+0; returns {read fd, write fd}.
  std::pair<int, int> make_pipe(std::uint64_t flags = 0) {
    EXPECT_EQ(call(Sys::pipe2, kScratch, flags), 0);
    return {get<std::int32_t>(kScratch), get<std::int32_t>(kScratch + 4)};
  }
  HostTree tree;
};

constexpr vaddr_t kBuf = SysTest::kScratch + 4096;

TEST_P(SysFileTest, ReadsAHostFileAndAdvances) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  ASSERT_EQ(fd, 0);  // the fixture's table starts empty
  EXPECT_EQ(call(Sys::read, fd, kBuf, 5), 5);
  EXPECT_EQ(bytes(kBuf, 5), "hello");
  EXPECT_EQ(call(Sys::read, fd, kBuf, 100), 8);
  EXPECT_EQ(bytes(kBuf, 8), ", world\n");
  EXPECT_EQ(call(Sys::read, fd, kBuf, 100), 0);  // end of file
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 13);
}

TEST_P(SysFileTest, ReadErrnosInLinuxOrder) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::read, 99, 0, 10), E(EBADF));
  EXPECT_EQ(call(Sys::read, -1, kBuf, 10), E(EBADF));
  EXPECT_EQ(call(Sys::read, fd, kBuf, ~0ULL), E(EFAULT));  // access_ok fails
  EXPECT_EQ(call(Sys::read, fd, (1ULL << 47) - 4096, 8192), E(EFAULT));
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 0);
  // A huge count inside the user range is clamped to MAX_RW_COUNT.
  EXPECT_EQ(call(Sys::read, fd, kBuf, 1ULL << 40), 13);
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_SET), 0);
  EXPECT_EQ(call(Sys::read, fd, 0, 10), E(EFAULT));  // nothing mapped at 0
  EXPECT_EQ(call(Sys::read, fd, 0, 0), 0);
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 0);     // the faulting read took nothing
  EXPECT_EQ(call(Sys::write, fd, kBuf, 1), E(EBADF));  // opened read-only
  EXPECT_EQ(call(Sys::write, fd, 0, 0), E(EBADF));
  // A read into a buffer that ends in a hole: the bytes before it, position advanced by them.
  ASSERT_TRUE(do_munmap(mm_(), kScratch + 8 * 4096, 4096));
  EXPECT_EQ(call(Sys::read, fd, kScratch + 8 * 4096 - 3, 10), 3);
  EXPECT_EQ(bytes(kScratch + 8 * 4096 - 3, 3), "hel");
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 3);
}

TEST_P(SysFileTest, LargeReadsCrossTheBounceBuffer) {
  // 3 pages + 100 bytes read in one call into a fresh mapping: every byte arrives.
  const int fd = static_cast<int>(open(tree.path("big.bin")));
  auto m =
      sys_mmap(mm_(), 0, 1 << 22, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 0);
  ASSERT_TRUE(m);
  EXPECT_EQ(call(Sys::read, fd, *m, 1 << 22), 3 * 4096 + 100);
  const std::string got = bytes(*m, 3 * 4096 + 100);
  for (std::size_t i = 0; i < got.size(); i += 997)
    ASSERT_EQ(got[i], static_cast<char>('a' + i % 26)) << i;
}

TEST_P(SysFileTest, PreadDoesNotMoveThePosition) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::pread64, fd, kBuf, 5, 7), 5);
  EXPECT_EQ(bytes(kBuf, 5), "world");
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 0);
  EXPECT_EQ(call(Sys::pread64, fd, kBuf, 5, 100), 0);
  EXPECT_EQ(call(Sys::pread64, fd, kBuf, 5, ~0ULL), E(EINVAL));
  EXPECT_EQ(call(Sys::pread64, 99, kBuf, 5, ~0ULL), E(EINVAL));  // the offset is checked first
  EXPECT_EQ(call(Sys::pwrite64, fd, kBuf, 5, 0), E(EBADF));
  auto [r, w] = make_pipe();
  EXPECT_EQ(call(Sys::pread64, r, kBuf, 1, 0), E(ESPIPE));
  EXPECT_EQ(call(Sys::pwrite64, w, kBuf, 1, 0), E(ESPIPE));
  EXPECT_EQ(call(Sys::pwrite64, r, kBuf, 1, 0), E(ESPIPE));
}

TEST_P(SysFileTest, LseekWhenceRules) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_END), 13);
  EXPECT_EQ(call(Sys::lseek, fd, -3, SEEK_CUR), 10);
  EXPECT_EQ(call(Sys::lseek, fd, -10, SEEK_SET), E(EINVAL));
  EXPECT_EQ(call(Sys::lseek, fd, 0, 9), E(EINVAL));
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_DATA), 0);
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_HOLE), 13);
  EXPECT_EQ(call(Sys::lseek, fd, 1 << 20, SEEK_DATA), E(ENXIO));
  EXPECT_EQ(call(Sys::lseek, fd, 100, SEEK_SET), 100);  // past the end is fine
  EXPECT_EQ(call(Sys::read, fd, kBuf, 10), 0);
  auto [r, w] = make_pipe();
  EXPECT_EQ(call(Sys::lseek, r, 0, SEEK_SET), E(ESPIPE));
  EXPECT_EQ(call(Sys::lseek, 77, 0, SEEK_SET), E(EBADF));
}

TEST_P(SysFileTest, PipeMovesBytesAndReportsEof) {
  auto [r, w] = make_pipe();
  EXPECT_EQ(r, 0);
  EXPECT_EQ(w, 1);
  str("abcdef", 4096);
  EXPECT_EQ(call(Sys::write, w, kBuf, 6), 6);
  EXPECT_EQ(call(Sys::ioctl, r, FIONREAD, kScratch + 64), 0);
  EXPECT_EQ(get<std::int32_t>(kScratch + 64), 6);
  EXPECT_EQ(call(Sys::read, r, kBuf + 100, 4), 4);
  EXPECT_EQ(bytes(kBuf + 100, 4), "abcd");
  EXPECT_EQ(call(Sys::read, r, kBuf + 100, 100), 2);
  // Empty with a writer: the read blocks (and is retried when woken).
  EXPECT_EQ(call(Sys::read, r, kBuf, 10), kBlocked);
  EXPECT_EQ(call(Sys::close, w), 0);
  EXPECT_EQ(call(Sys::read, r, kBuf, 10), 0);  // no writer left: end of file
  EXPECT_EQ(call(Sys::read, r, kBuf, 0), 0);
}

TEST_P(SysFileTest, PipeWrongEndIsEbadf) {
  auto [r, w] = make_pipe();
  EXPECT_EQ(call(Sys::read, w, kBuf, 1), E(EBADF));
  EXPECT_EQ(call(Sys::write, r, kBuf, 1), E(EBADF));
  EXPECT_EQ(call(Sys::fcntl, r, F_GETFL), O_RDONLY);
  EXPECT_EQ(call(Sys::fcntl, w, F_GETFL), O_WRONLY);
}

TEST_P(SysFileTest, PipeNonblockAndCloexecFlags) {
  auto [r, w] = make_pipe(O_NONBLOCK | O_CLOEXEC);
  EXPECT_EQ(call(Sys::fcntl, r, F_GETFL), O_NONBLOCK);
  EXPECT_EQ(call(Sys::fcntl, w, F_GETFL), O_WRONLY | O_NONBLOCK);
  EXPECT_EQ(call(Sys::fcntl, r, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(call(Sys::read, r, kBuf, 1), E(EAGAIN));
  EXPECT_EQ(call(Sys::pipe2, kScratch, 1), E(EINVAL));
  EXPECT_EQ(call(Sys::pipe2, 0, 0), E(EFAULT));
  EXPECT_EQ(p.fds->open_fds().size(), 2u);  // the failed pipe2 left no descriptor behind
  // O_DIRECT in the guest's own encoding is accepted (packet mode).
  EXPECT_EQ(call(Sys::pipe2, kScratch, o_direct()), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(call(Sys::fcntl, get<std::int32_t>(kScratch), F_GETFL)),
            o_direct());
  if (has(Sys::pipe)) {
    EXPECT_EQ(call(Sys::pipe, kScratch), 0);
  }
}

TEST_P(SysFileTest, WriteWithoutReaderRaisesSigpipe) {
  auto [r, w] = make_pipe();
  EXPECT_EQ(call(Sys::close, r), 0);
  EXPECT_EQ(call(Sys::write, w, kBuf, 3), E(EPIPE));
  EXPECT_TRUE(p.sig.is_pending(13));
  EXPECT_EQ(p.sig.info[12].code, 0);  // SI_USER
  EXPECT_EQ(p.sig.info[12].pid, p.pid);
}

TEST_P(SysFileTest, PipeWritesUpToPipeBufAreAtomic) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  auto m =
      sys_mmap(mm_(), 0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 0);
  ASSERT_TRUE(m);
  EXPECT_EQ(call(Sys::write, w, *m, 65536 - 100), 65536 - 100);
  EXPECT_EQ(call(Sys::write, w, *m, 200), E(EAGAIN));  // <= PIPE_BUF: all or nothing
  EXPECT_EQ(call(Sys::write, w, *m, 5000), 100);       // > PIPE_BUF: what fits
  EXPECT_EQ(call(Sys::write, w, *m, 5000), E(EAGAIN));
  EXPECT_EQ(call(Sys::fcntl, w, 1032 /*F_GETPIPE_SZ*/), 65536);
  EXPECT_EQ(call(Sys::fcntl, w, 1031 /*F_SETPIPE_SZ*/, 4096), E(EBUSY));
}

TEST_P(SysFileTest, BlockedLargeWriteResumesWhereItStopped) {
  auto [r, w] = make_pipe();
  auto m =
      sys_mmap(mm_(), 0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 0);
  ASSERT_TRUE(m);
  for (int i = 0; i < 4; ++i)
    fill(*m + static_cast<std::uint64_t>(i) * 65536, 65536, static_cast<std::uint8_t>(i + 1));
  // 128 KiB into a 64 KiB pipe: the first 64 KiB go in, then the writer blocks.
  const std::array<std::uint64_t, 6> args{static_cast<std::uint64_t>(w), *m, 131072, 0, 0, 0};
  EXPECT_EQ(raw(Sys::write, args).kind(), SysResult::Kind::Block);
  EXPECT_EQ(call(Sys::read, r, *m + 524288, 65536), 65536);
  EXPECT_EQ(get<std::uint8_t>(*m + 524288), 1);
  // Retried after the wake-up: only the second half is written now.
  SysResult again = raw(Sys::write, args, 1);
  ASSERT_TRUE(again.is_return());
  EXPECT_EQ(again.value(), 131072);
  EXPECT_EQ(call(Sys::read, r, *m + 524288, 65536), 65536);
  EXPECT_EQ(get<std::uint8_t>(*m + 524288), 2);
  EXPECT_EQ(call(Sys::ioctl, r, FIONREAD, kScratch + 64), 0);
  EXPECT_EQ(get<std::int32_t>(kScratch + 64), 0);
}

TEST_P(SysFileTest, FaultingPipeReadLeavesTheBytesInThePipe) {
  auto [r, w] = make_pipe();
  str("xyz", 4096);
  EXPECT_EQ(call(Sys::write, w, kBuf, 3), 3);
  EXPECT_EQ(call(Sys::read, r, 0, 3), E(EFAULT));
  EXPECT_EQ(call(Sys::read, r, kBuf + 64, 3), 3);
  EXPECT_EQ(bytes(kBuf + 64, 3), "xyz");
}

TEST_P(SysFileTest, ReadvAndWritevScatterAndGather) {
  auto [r, w] = make_pipe();
  str("hello ", 4096);
  str("world", 4096 + 32);
  const std::uint64_t iov[4] = {kBuf, 6, kBuf + 32, 5};
  put(kScratch + 256, iov);
  EXPECT_EQ(call(Sys::writev, w, kScratch + 256, 2), 11);
  const std::uint64_t riov[4] = {kBuf + 1024, 3, kBuf + 2048, 100};
  put(kScratch + 512, riov);
  EXPECT_EQ(call(Sys::readv, r, kScratch + 512, 2), 11);
  EXPECT_EQ(bytes(kBuf + 1024, 3), "hel");
  EXPECT_EQ(bytes(kBuf + 2048, 8), "lo world");
  EXPECT_EQ(call(Sys::writev, w, kScratch + 256, 0), 0);
  EXPECT_EQ(call(Sys::writev, w, kScratch + 256, 1025), E(EINVAL));
  EXPECT_EQ(call(Sys::writev, w, kScratch + 256, ~0ULL), E(EINVAL));
  const std::uint64_t neg[2] = {kBuf, ~0ULL};
  put(kScratch + 768, neg);
  EXPECT_EQ(call(Sys::writev, w, kScratch + 768, 1), E(EINVAL));
  EXPECT_EQ(call(Sys::readv, r, 0, 1), E(EFAULT));
  const std::uint64_t null_base[2] = {0, 5};
  put(kScratch + 768, null_base);
  EXPECT_EQ(call(Sys::writev, w, kScratch + 768, 1), E(EFAULT));
}

TEST_P(SysFileTest, PreadvReadsAtAnOffset) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  const std::uint64_t iov[4] = {kBuf, 2, kBuf + 16, 3};
  put(kScratch + 256, iov);
  EXPECT_EQ(call(Sys::preadv, fd, kScratch + 256, 2, 7, 0), 5);
  EXPECT_EQ(bytes(kBuf, 2), "wo");
  EXPECT_EQ(bytes(kBuf + 16, 3), "rld");
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 0);
  // preadv2 with offset -1 reads at (and moves) the position.
  EXPECT_EQ(call(Sys::preadv2, fd, kScratch + 256, 1, ~0ULL, 0, 0), 2);
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 2);
  EXPECT_EQ(call(Sys::preadv2, fd, kScratch + 256, 1, 0, 0, 0x100), E(EOPNOTSUPP));
}

TEST_P(SysFileTest, DupFamily) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::dup, fd), 1);
  EXPECT_EQ(call(Sys::read, 1, kBuf, 5), 5);
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_CUR), 5);  // one open file description
  EXPECT_EQ(call(Sys::dup3, fd, 40, O_CLOEXEC), 40);
  EXPECT_EQ(call(Sys::fcntl, 40, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(call(Sys::dup3, fd, fd, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::dup3, fd, 41, 1), E(EINVAL));
  EXPECT_EQ(call(Sys::dup3, 99, 41, 0), E(EBADF));
  EXPECT_EQ(call(Sys::dup3, fd, 5000, 0), E(EBADF));  // beyond RLIMIT_NOFILE (1024)
  if (has(Sys::dup2)) {
    EXPECT_EQ(call(Sys::dup2, fd, fd), fd);
    EXPECT_EQ(call(Sys::dup2, 99, 99), E(EBADF));
    EXPECT_EQ(call(Sys::dup2, 99, 50), E(EBADF));
    EXPECT_EQ(call(Sys::dup2, fd, -1), E(EBADF));
    EXPECT_EQ(call(Sys::dup2, fd, 40), 40);
    EXPECT_EQ(call(Sys::fcntl, 40, F_GETFD), 0);  // dup2 clears close-on-exec
  }
  EXPECT_EQ(call(Sys::close, 40), 0);
  EXPECT_EQ(call(Sys::close, 40), E(EBADF));
  EXPECT_EQ(call(Sys::close, -1), E(EBADF));
}

// select() looks only at fds below the size of the descriptor table (fdt->max_fds: 64 at
// first, 128 once fd 100 was installed), not below RLIMIT_NOFILE: a closed fd past the
// table is silently skipped, one inside it is EBADF. The fd_sets are read and written in
// whole longs, so bits past n in the last word come back cleared.
TEST_P(SysFileTest, SelectSkipsFdsPastTheDescriptorTable) {
  const vaddr_t set = kScratch + 256, ts = kScratch + 512;
  put(ts, std::array<std::int64_t, 2>{0, 0});  // pselect6 with a zero timeout
  auto select_one = [&](int fd, int n) {
    std::array<std::uint64_t, 4> bits{};
    bits[static_cast<std::size_t>(fd) / 64] = 1ULL << (fd % 64);
    put(set, bits);
    return call(Sys::pselect6, n, set, 0, 0, ts, 0);
  };
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(p.fds->table_size(), 64);
  EXPECT_EQ(select_one(70, 200), 0);         // past the 64-slot table
  EXPECT_EQ(select_one(63, 200), E(EBADF));  // inside it, not open
  EXPECT_EQ(select_one(fd, 1), 1);
  EXPECT_EQ(call(Sys::dup3, fd, 100, 0), 100);
  EXPECT_EQ(p.fds->table_size(), 128);
  EXPECT_EQ(select_one(70, 200), E(EBADF));
  EXPECT_EQ(select_one(150, 200), 0);
  EXPECT_EQ(select_one(100, 101), 1);
  EXPECT_EQ(call(Sys::close, 100), 0);
  EXPECT_EQ(p.fds->table_size(), 128);  // tables never shrink
  // Bits above n in the last long are cleared on the way out.
  put(set, std::array<std::uint64_t, 4>{0b1001, 0, 0, 0});
  EXPECT_EQ(call(Sys::pselect6, 1, set, 0, 0, ts, 0), 1);
  EXPECT_EQ(get<std::uint64_t>(set), 1u);
  EXPECT_EQ(call(Sys::dup3, fd, 300, 0), 300);
  EXPECT_EQ(p.fds->table_size(), 512);
}

// fork's dup_fd sizes the child's table for the parent's open fds, not its table.
TEST_P(SysFileTest, ForkSizesTheChildsDescriptorTableByItsOpenFds) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::dup3, fd, 200, 0), 200);
  EXPECT_EQ(FdTable::dup_fd(*p.fds).table_size(), 256);
  EXPECT_EQ(call(Sys::dup3, fd, 70, 0), 70);
  EXPECT_EQ(call(Sys::close, 200), 0);
  EXPECT_EQ(p.fds->table_size(), 256);
  EXPECT_EQ(FdTable::dup_fd(*p.fds).table_size(), 128);
  EXPECT_EQ(call(Sys::close, 70), 0);
  const FdTable child = FdTable::dup_fd(*p.fds);
  EXPECT_EQ(child.table_size(), 64);
  EXPECT_EQ(child.open_fds(), std::vector<int>{fd});
}

TEST_P(SysFileTest, FcntlCommands) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(static_cast<std::uint64_t>(call(Sys::fcntl, fd, F_GETFL)), o_largefile());
  EXPECT_EQ(call(Sys::fcntl, fd, F_DUPFD, 10), 10);
  EXPECT_EQ(call(Sys::fcntl, fd, F_DUPFD, 10), 11);
  EXPECT_EQ(call(Sys::fcntl, fd, F_DUPFD_CLOEXEC, 0), 1);
  EXPECT_EQ(call(Sys::fcntl, 1, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(call(Sys::fcntl, fd, F_DUPFD, 1024), E(EINVAL));
  EXPECT_EQ(call(Sys::fcntl, fd, F_DUPFD, ~0ULL), E(EINVAL));
  EXPECT_EQ(call(Sys::fcntl, fd, 9999), E(EINVAL));
  EXPECT_EQ(call(Sys::fcntl, fd, F_SETFD, 3), 0);
  EXPECT_EQ(call(Sys::fcntl, fd, F_GETFD), 1);
  // F_SETFL changes only O_APPEND, O_NONBLOCK, O_DIRECT, O_NOATIME, FASYNC.
  EXPECT_EQ(call(Sys::fcntl, fd, F_SETFL, O_APPEND | O_NONBLOCK | O_WRONLY), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(call(Sys::fcntl, fd, F_GETFL)),
            o_largefile() | O_APPEND | O_NONBLOCK);
  EXPECT_EQ(call(Sys::fcntl, 99, F_GETFL), E(EBADF));
  // Record locks: nobody else holds one; a write lock needs a writable descriptor.
  const std::int16_t wrlck = F_WRLCK, rdlck = F_RDLCK;
  put(kScratch + 128, wrlck);
  EXPECT_EQ(call(Sys::fcntl, fd, F_SETLK, kScratch + 128), E(EBADF));
  put(kScratch + 128, rdlck);
  EXPECT_EQ(call(Sys::fcntl, fd, F_SETLK, kScratch + 128), 0);
  EXPECT_EQ(call(Sys::fcntl, fd, F_GETLK, kScratch + 128), 0);
  EXPECT_EQ(get<std::int16_t>(kScratch + 128), F_UNLCK);
  EXPECT_EQ(call(Sys::fcntl, fd, 1032 /*F_GETPIPE_SZ*/), E(EBADF));
}

TEST_P(SysFileTest, FstatLaysOutTheGuestStruct) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  struct ::stat host;
  ASSERT_EQ(::stat(tree.path("hello.txt").c_str(), &host), 0);
  EXPECT_EQ(call(Sys::fstat, fd, kBuf), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 8), host.st_ino);
  EXPECT_EQ(get<std::int64_t>(kBuf + 48), 13);  // st_size
  if (arch() == Arch::X86_64) {
    EXPECT_EQ(get<std::uint64_t>(kBuf + 16), 1u);  // st_nlink (64-bit)
    EXPECT_EQ(get<std::uint32_t>(kBuf + 24), host.st_mode);
    EXPECT_EQ(get<std::int64_t>(kBuf + 56), host.st_blksize);
  } else {
    EXPECT_EQ(get<std::uint32_t>(kBuf + 16), host.st_mode);
    EXPECT_EQ(get<std::uint32_t>(kBuf + 20), 1u);  // st_nlink (32-bit)
    EXPECT_EQ(get<std::int32_t>(kBuf + 56), host.st_blksize);
  }
  EXPECT_EQ(get<std::int64_t>(kBuf + 88), host.st_mtim.tv_sec);
  EXPECT_EQ(call(Sys::fstat, 99, kBuf), E(EBADF));
  EXPECT_EQ(call(Sys::fstat, fd, 0), E(EFAULT));
  auto [r, w] = make_pipe();
  EXPECT_EQ(call(Sys::fstat, r, kBuf), 0);
  const std::uint32_t mode = get<std::uint32_t>(kBuf + (arch() == Arch::X86_64 ? 24 : 16));
  EXPECT_EQ(mode, S_IFIFO | 0600);
}

TEST_P(SysFileTest, IoctlAnswersEnottyUnlessTheFileKnowsTheRequest) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::ioctl, fd, 0x5401 /*TCGETS*/, kBuf), E(ENOTTY));
  EXPECT_EQ(call(Sys::ioctl, fd, FIONREAD, kBuf), 0);
  EXPECT_EQ(get<std::int32_t>(kBuf), 13);
  EXPECT_EQ(call(Sys::ioctl, fd, FIOCLEX), 0);
  EXPECT_EQ(call(Sys::fcntl, fd, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(call(Sys::ioctl, fd, FIONCLEX), 0);
  EXPECT_EQ(call(Sys::fcntl, fd, F_GETFD), 0);
  const std::int32_t one = 1;
  put(kBuf, one);
  EXPECT_EQ(call(Sys::ioctl, fd, FIONBIO, kBuf), 0);
  EXPECT_EQ(call(Sys::fcntl, fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  EXPECT_EQ(call(Sys::ioctl, 99, FIONREAD, kBuf), E(EBADF));
  // The request is an unsigned int: high bits are dropped.
  EXPECT_EQ(call(Sys::ioctl, fd, (1ULL << 32) | FIONREAD, kBuf), 0);
}

TEST_P(SysFileTest, CloseRange) {
  for (int i = 0; i < 6; ++i)
    ASSERT_EQ(open(tree.path("hello.txt")), i);
  EXPECT_EQ(call(Sys::close_range, 2, 3, 4 /*CLOSE_RANGE_CLOEXEC*/), 0);
  EXPECT_EQ(call(Sys::fcntl, 2, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(call(Sys::close_range, 3, ~0U, 0), 0);
  EXPECT_EQ(p.fds->open_fds(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(call(Sys::close_range, 3, 1, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::close_range, 0, 1, 1), E(EINVAL));
}

TEST_P(SysFileTest, FsyncOnlyForFilesAndDirectories) {
  const int fd = static_cast<int>(open(tree.path("hello.txt")));
  EXPECT_EQ(call(Sys::fsync, fd), 0);
  EXPECT_EQ(call(Sys::fdatasync, fd), 0);
  auto [r, w] = make_pipe();
  EXPECT_EQ(call(Sys::fsync, r), E(EINVAL));
  EXPECT_EQ(call(Sys::fsync, 99), E(EBADF));
}

TEST_P(SysFileTest, OpenFlagsTranslateBetweenAbis) {
  // The four bits whose values differ: each guest encoding maps to the host's and back.
  const std::uint64_t guest = o_directory() | o_nofollow() | o_largefile() | o_direct();
  const int host = oflags_from_guest(arch(), guest);
  EXPECT_EQ(host, kO_DIRECTORY | kO_NOFOLLOW | kO_LARGEFILE | kO_DIRECT);
  EXPECT_EQ(oflags_to_guest(arch(), host), guest);
  EXPECT_EQ(oflags_from_guest(arch(), O_CLOEXEC | O_APPEND | O_RDWR),
            O_CLOEXEC | O_APPEND | O_RDWR);
}

INSTANTIATE_SYS_ARCHES(SysFileTest);

}  // namespace
}  // namespace mmemu::test
