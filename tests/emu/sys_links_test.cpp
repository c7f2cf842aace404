// The calls that make names besides regular files and change attributes, on the files
// guests create in memory: symlink(at), link(at), mknod(at) (FIFOs whose openers wait for
// each other, regular files, EPERM for devices), utimensat/utimes/utime, the chown family,
// with Linux's permission rules for an unprivileged caller and EROFS for the host's files.
// Errnos measured natively (tests/guests/fs_links.c compares the same with Linux).
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "emu/fs/path_lookup.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/syscalls/abi.hpp"
#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

constexpr std::uint64_t kAtFdcwd = static_cast<std::uint64_t>(-100);
constexpr std::int64_t kUtimeNow = (1LL << 30) - 1, kUtimeOmit = (1LL << 30) - 2;

class SysLinksTest : public SysTest {
 protected:
  SysLinksTest() { p.fs.umask = 022; }
  Result<FileStat> stat_of(const std::string& name, bool follow = true) {
    SyscallContext c{k, p, Sys::newfstatat, 0, {}, 0};
    return stat_path(c, name, follow);
  }
  // A new file in memory (as the current credentials), closed again.
  void create(const std::string& path, std::uint32_t mode) {
    const std::int64_t fd =
        call(Sys::openat, kAtFdcwd, str(path), O_WRONLY | O_CREAT | O_EXCL, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(call(Sys::close, fd), 0);
  }
  // utimensat(AT_FDCWD, path, times, flags) with times at kTimes (0: NULL).
  std::int64_t utimens(const std::string& path, std::int64_t a_sec, std::int64_t a_nsec,
                       std::int64_t m_sec, std::int64_t m_nsec, bool null_times = false) {
    put(kTimes, GuestTimespec{a_sec, a_nsec});
    put(kTimes + 16, GuestTimespec{m_sec, m_nsec});
    return call(Sys::utimensat, kAtFdcwd, str(path), null_times ? 0 : kTimes, 0);
  }
  std::int64_t chown(const std::string& path, std::uint32_t uid, std::uint32_t gid) {
    return call(Sys::fchownat, kAtFdcwd, str(path), uid, gid, 0);
  }
  void become(std::uint32_t id) {
    p.cred = initial_cred(id, id);
    p.cred.groups.clear();
  }
  static constexpr vaddr_t kTimes = SysTest::kScratch + 8192;
  static constexpr std::uint32_t kNobody = 65534, kNone = 0xffffffffU;
  HostTree tree;
};

TEST_P(SysLinksTest, TimesOfCreatedFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create files as root";
  become(0);
  const std::string f = tree.path("f");
  create(f, 0644);
  EXPECT_EQ(utimens(f, 1000000000, 5, 1200000000, 7), 0);
  auto st = stat_of(f);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->atime_sec, 1000000000);
  EXPECT_EQ(st->atime_nsec, 5);
  EXPECT_EQ(st->mtime_sec, 1200000000);
  EXPECT_EQ(st->mtime_nsec, 7);
  EXPECT_GT(st->ctime_sec, 1600000000);
  EXPECT_EQ(utimens(f, 0, kUtimeOmit, 1300000000, 0), 0);
  EXPECT_EQ(stat_of(f)->atime_sec, 1000000000);
  EXPECT_EQ(stat_of(f)->mtime_sec, 1300000000);
  EXPECT_EQ(utimens(f, 0, 1000000000, 0, 0), E(EINVAL));
  EXPECT_EQ(utimens(f, 0, -1, 0, 0), E(EINVAL));
  // Both omitted: nothing to do, not even a lookup.
  EXPECT_EQ(utimens(tree.path("nope"), 0, kUtimeOmit, 0, kUtimeOmit), 0);
  EXPECT_EQ(utimens(tree.path("nope"), 0, 0, 0, 0), E(ENOENT));
  // The host's files are on a read-only mount; a bad nsec is checked first.
  EXPECT_EQ(utimens(tree.path("hello.txt"), 0, 0, 0, 0), E(EROFS));
  EXPECT_EQ(utimens(tree.path("hello.txt"), 0, 0, 0, 0, true), E(EROFS));
  EXPECT_EQ(utimens(tree.path("hello.txt"), 0, 1000000000, 0, 0), E(EINVAL));
  // The fd form (path NULL): no flags allowed; NULL with AT_FDCWD is a bad address.
  const std::int64_t fd = open(f);
  ASSERT_GE(fd, 0);
  put(kTimes, GuestTimespec{5, 0});
  put(kTimes + 16, GuestTimespec{6, 0});
  EXPECT_EQ(call(Sys::utimensat, fd, 0, kTimes, 0x100), E(EINVAL));
  EXPECT_EQ(call(Sys::utimensat, fd, 0, kTimes, 0), 0);
  EXPECT_EQ(stat_of(f)->mtime_sec, 6);
  EXPECT_EQ(call(Sys::utimensat, kAtFdcwd, 0, kTimes, 0), E(EFAULT));
  EXPECT_EQ(call(Sys::utimensat, kAtFdcwd, str(f), kTimes, 0x1), E(EINVAL));
  if (has(Sys::utimes)) {
    put(kTimes, GuestTimespec{7, 999999});
    put(kTimes + 16, GuestTimespec{8, 1});
    EXPECT_EQ(call(Sys::utimes, str(f), kTimes), 0);
    EXPECT_EQ(stat_of(f)->atime_nsec, 999999000);
    EXPECT_EQ(stat_of(f)->mtime_sec, 8);
    put(kTimes, GuestTimespec{7, 1000000});
    EXPECT_EQ(call(Sys::utimes, str(f), kTimes), E(EINVAL));
    put(kTimes, GuestTimespec{11, 12});  // struct utimbuf: seconds only
    EXPECT_EQ(call(Sys::utime, str(f), kTimes), 0);
    EXPECT_EQ(stat_of(f)->atime_sec, 11);
    EXPECT_EQ(stat_of(f)->mtime_sec, 12);
    EXPECT_EQ(stat_of(f)->mtime_nsec, 0);
    put(kTimes, GuestTimespec{13, 0});
    put(kTimes + 16, GuestTimespec{14, 0});
    EXPECT_EQ(call(Sys::futimesat, fd, 0, kTimes), 0);
    EXPECT_EQ(stat_of(f)->mtime_sec, 14);
  }
  // Somebody else: explicit times (or any times but "now" for both) need the owner; "now"
  // needs write access.
  become(kNobody);
  EXPECT_EQ(utimens(f, 1, 0, 1, 0), E(EPERM));
  EXPECT_EQ(utimens(f, 0, kUtimeNow, 0, kUtimeOmit), E(EPERM));
  EXPECT_EQ(utimens(f, 0, 0, 0, 0, true), E(EACCES));
  EXPECT_EQ(utimens(f, 0, kUtimeNow, 0, kUtimeNow), E(EACCES));
  become(0);
  EXPECT_EQ(call(Sys::fchmodat, kAtFdcwd, str(f), 0666), 0);
  become(kNobody);
  EXPECT_EQ(utimens(f, 0, 0, 0, 0, true), 0);
  EXPECT_EQ(utimens(f, 1, 0, 1, 0), E(EPERM));
}

TEST_P(SysLinksTest, OwnersOfCreatedFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create files as root";
  become(0);
  const std::string f = tree.path("f");
  create(f, 06755);
  EXPECT_EQ(call(Sys::fchmodat, kAtFdcwd, str(f), 06755), 0);
  // root: any owner; the set-user-ID bit goes, set-group-ID with group execute too.
  EXPECT_EQ(chown(f, kNobody, kNobody), 0);
  auto st = stat_of(f);
  EXPECT_EQ(st->uid, kNobody);
  EXPECT_EQ(st->gid, kNobody);
  EXPECT_EQ(st->mode, static_cast<std::uint32_t>(S_IFREG | 0755));
  EXPECT_EQ(chown(tree.path("hello.txt"), 0, 0), E(EROFS));
  EXPECT_EQ(chown(tree.path("nope"), 0, 0), E(ENOENT));
  EXPECT_EQ(call(Sys::fchownat, kAtFdcwd, str(f), 0, 0, 0x2), E(EINVAL));
  // The owner, unprivileged: the group may become one of its own, the owner stays.
  become(kNobody);
  EXPECT_EQ(call(Sys::fchmodat, kAtFdcwd, str(f), 02745), 0);
  EXPECT_EQ(chown(f, kNone, kNone), 0);
  EXPECT_EQ(stat_of(f)->mode, static_cast<std::uint32_t>(S_IFREG | 02745));
  EXPECT_EQ(chown(f, kNobody, kNobody), 0);
  EXPECT_EQ(chown(f, 0, kNone), E(EPERM));
  EXPECT_EQ(chown(f, kNone, 0), E(EPERM));
  EXPECT_EQ(call(Sys::fchmodat, kAtFdcwd, str(f), 04755), 0);
  EXPECT_EQ(chown(f, kNone, kNone), 0);
  EXPECT_EQ(stat_of(f)->mode, static_cast<std::uint32_t>(S_IFREG | 0755));
  // Not the owner: no change at all.
  become(1234);
  EXPECT_EQ(chown(f, kNone, 1234), E(EPERM));
  EXPECT_EQ(chown(f, 1234, kNone), E(EPERM));
  const std::int64_t fd = open(f);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(call(Sys::fchown, fd, 1234, kNone), E(EPERM));
  become(0);
  EXPECT_EQ(call(Sys::fchown, fd, 1, 2), 0);
  EXPECT_EQ(stat_of(f)->uid, 1U);
  EXPECT_EQ(stat_of(f)->gid, 2U);
}

TEST_P(SysLinksTest, SymbolicAndHardLinks) {
  const std::string f = tree.path("f"), l = tree.path("l"), h = tree.path("h");
  create(f, 0644);
  EXPECT_EQ(call(Sys::symlinkat, str("f"), kAtFdcwd, str(l, 1024)), 0);
  EXPECT_FALSE(std::filesystem::exists(l));  // the host never sees it
  EXPECT_EQ(call(Sys::symlinkat, str("f"), kAtFdcwd, str(l, 1024)), E(EEXIST));
  EXPECT_EQ(call(Sys::symlinkat, str(""), kAtFdcwd, str(tree.path("e"), 1024)), E(ENOENT));
  EXPECT_EQ(call(Sys::symlinkat, str("x"), kAtFdcwd, str(tree.path("nodir/e"), 1024)), E(ENOENT));
  EXPECT_EQ(call(Sys::symlinkat, str("x"), kAtFdcwd, str(tree.path("hello.txt/e"), 1024)),
            E(ENOTDIR));
  auto ls = stat_of(l, false);
  ASSERT_TRUE(ls);
  EXPECT_EQ(ls->mode, static_cast<std::uint32_t>(S_IFLNK | 0777));
  EXPECT_EQ(ls->size, 1);
  EXPECT_EQ(stat_of(l)->ino, stat_of(f)->ino);
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(l), kScratch + 4096, 100), 1);
  EXPECT_EQ(bytes(kScratch + 4096, 1), "f");
  // Hard links: one inode, nlink counts the names.
  EXPECT_EQ(call(Sys::linkat, kAtFdcwd, str(f), kAtFdcwd, str(h, 1024), 0), 0);
  EXPECT_EQ(stat_of(f)->nlink, 2U);
  EXPECT_EQ(stat_of(h)->ino, stat_of(f)->ino);
  EXPECT_EQ(call(Sys::linkat, kAtFdcwd, str(f), kAtFdcwd, str(h, 1024), 0), E(EEXIST));
  EXPECT_EQ(call(Sys::linkat, kAtFdcwd, str(f), kAtFdcwd, str(h, 1024), 0x100), E(EINVAL));
  EXPECT_EQ(call(Sys::linkat, kAtFdcwd, str(tree.path("hello.txt")), kAtFdcwd,
                 str(tree.path("x"), 1024), 0),
            E(EROFS));
  EXPECT_EQ(
      call(Sys::linkat, kAtFdcwd, str(tree.path("sub")), kAtFdcwd, str(tree.path("x"), 1024), 0),
      E(EPERM));
  EXPECT_EQ(
      call(Sys::linkat, kAtFdcwd, str(tree.path("nope")), kAtFdcwd, str(tree.path("x"), 1024), 0),
      E(ENOENT));
  // An open file shows a remaining name once its own goes.
  const std::int64_t fd = open(f, O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(f), 0), 0);
  EXPECT_EQ(stat_of(h)->nlink, 1U);
  EXPECT_EQ(p.fds->get(static_cast<int>(fd))->path(), h);
  EXPECT_EQ(stat_of(l).error().code, ENOENT);  // dangling now
  // AT_EMPTY_PATH links the descriptor's file.
  EXPECT_EQ(call(Sys::linkat, fd, str(""), kAtFdcwd, str(f, 1024), 0x1000), 0);
  EXPECT_EQ(stat_of(l)->nlink, 2U);
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(h), 0), 0);
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(f), 0), 0);
  EXPECT_EQ(p.fds->get(static_cast<int>(fd))->path(), f + " (deleted)");
  EXPECT_EQ(call(Sys::linkat, fd, str(""), kAtFdcwd, str(f, 1024), 0x1000), E(ENOENT));
  // A link to a directory leads into it, and a link loop ends in ELOOP.
  EXPECT_EQ(call(Sys::symlinkat, str("sub"), kAtFdcwd, str(tree.path("d"), 1024)), 0);
  const std::int64_t in = open(tree.path("d/inner"));
  ASSERT_GE(in, 0);
  EXPECT_EQ(call(Sys::read, in, kScratch + 4096, 10), 1);
  EXPECT_EQ(stat_of(tree.path("d/nope")).error().code, ENOENT);
  EXPECT_EQ(call(Sys::symlinkat, str("loop/x"), kAtFdcwd, str(tree.path("loop"), 1024)), 0);
  EXPECT_EQ(stat_of(tree.path("loop/y")).error().code, ELOOP);
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(tree.path("loop")), 0), 0);
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(tree.path("d")), 0), 0);
  // A link renamed and removed.
  EXPECT_EQ(call(Sys::renameat, kAtFdcwd, str(l), kAtFdcwd, str(tree.path("l2"), 1024)), 0);
  EXPECT_FALSE(stat_of(l, false));
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(tree.path("l2")), 0), 0);
  EXPECT_TRUE(k.created_files().empty());
}

TEST_P(SysLinksTest, FifoOpenersWaitForEachOther) {
  const std::string f = tree.path("p");
  EXPECT_EQ(call(Sys::mknodat, kAtFdcwd, str(f), S_IFIFO | 0666, 0), 0);
  EXPECT_EQ(call(Sys::mknodat, kAtFdcwd, str(f), S_IFIFO | 0666, 0), E(EEXIST));
  EXPECT_EQ(stat_of(f)->mode, static_cast<std::uint32_t>(S_IFIFO | 0644));
  EXPECT_EQ(call(Sys::mknodat, kAtFdcwd, str(tree.path("c")), S_IFCHR | 0600, 0x103), E(EPERM));
  EXPECT_EQ(call(Sys::mknodat, kAtFdcwd, str(tree.path("d")), S_IFDIR | 0700, 0), E(EPERM));
  EXPECT_EQ(call(Sys::mknodat, kAtFdcwd, str(tree.path("d")), 0170000, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::mknodat, kAtFdcwd, str(tree.path("r")), 0640, 0), 0);
  EXPECT_EQ(stat_of(tree.path("r"))->mode, static_cast<std::uint32_t>(S_IFREG | 0640));
  EXPECT_EQ(open(f, O_WRONLY | O_NONBLOCK), E(ENXIO));
  // A blocking reader waits, counted as a reader: a writer (another process) then opens at
  // once, and the reader's retried open completes with the same end.
  Process q(k, 1001, 1, GetParam());
  q.as = p.as;
  q.fds = std::make_unique<FdTable>();
  q.cred = p.cred;
  q.fs = p.fs;
  const std::array<std::uint64_t, 6> rd{kAtFdcwd, str(f), O_RDONLY, 0, 0, 0};
  EXPECT_FALSE(raw(Sys::openat, rd).is_return());
  SyscallContext qc{k, q, Sys::openat, 0, {kAtFdcwd, str(f, 1024), O_WRONLY, 0, 0, 0}, 0};
  SysResult qw = table.find(Sys::openat)(qc);
  ASSERT_TRUE(qw.is_return());
  ASSERT_GE(qw.value(), 0);
  SysResult r = raw(Sys::openat, rd, 1);
  ASSERT_TRUE(r.is_return());
  ASSERT_GE(r.value(), 0);
  // The writer's end, shared into this process for the test.
  const std::int64_t w = p.fds->install(q.fds->get(static_cast<int>(qw.value())), false).value();
  q.fds.reset();
  EXPECT_EQ(call(Sys::write, w, str("hey", 1024), 3), 3);
  EXPECT_EQ(call(Sys::read, r.value(), kScratch + 4096, 10), 3);
  EXPECT_EQ(bytes(kScratch + 4096, 3), "hey");
  EXPECT_EQ(call(Sys::close, w), 0);
  EXPECT_EQ(call(Sys::read, r.value(), kScratch + 4096, 10), 0);
  EXPECT_EQ(call(Sys::close, r.value()), 0);
  // O_RDWR and a non-blocking reader never wait.
  const std::int64_t nr = open(f, O_RDONLY | O_NONBLOCK);
  EXPECT_GE(nr, 0);
  const std::int64_t both = open(f, O_RDWR);
  EXPECT_GE(both, 0);
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(f), 0), 0);
  EXPECT_EQ(stat_of(f).error().code, ENOENT);
}

INSTANTIATE_SYS_ARCHES(SysLinksTest);

}  // namespace
}  // namespace mmemu::test
