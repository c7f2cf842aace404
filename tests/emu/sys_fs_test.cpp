// The name-side file calls: open/openat/creat with the read-only host tree (EROFS for any
// write, create or truncate), ENOENT/ENOTDIR/EISDIR/ELOOP/EEXIST as Linux orders them, the
// emulated /proc/PID and /dev names, stat/lstat/newfstatat/statx, readlink(at),
// access/faccessat(2), getcwd/chdir/fchdir, getdents64/getdents. Errnos measured natively.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <set>

#include <fmt/format.h>

#include "emu/fs/path_lookup.hpp"
#include "sys_test_util.hpp"
#include "vma/file.hpp"
#include "vma/proc_maps.hpp"

namespace mmemu::test {
namespace {

class SysFsTest : public SysTest {
 protected:
  std::uint32_t mode_at(vaddr_t st) {
    return get<std::uint32_t>(st + (arch() == Arch::X86_64 ? 24 : 16));
  }
  // Reads a whole descriptor through read(2) in chunks of n bytes.
  std::string slurp(int fd, std::uint64_t n = 100) {
    std::string out;
    for (;;) {
      const std::int64_t got = call(Sys::read, fd, kBuf, n);
      EXPECT_GE(got, 0);
      if (got <= 0) return out;
      out += bytes(kBuf, static_cast<std::size_t>(got));
    }
  }
  // getdents64 names from fd.
  std::set<std::string> names(int fd) {
    std::set<std::string> out;
    for (;;) {
      const std::int64_t n = call(Sys::getdents64, fd, kBuf, 4096);
      EXPECT_GE(n, 0);
      if (n <= 0) return out;
      const std::string b = bytes(kBuf, static_cast<std::size_t>(n));
      for (std::size_t off = 0; off < b.size();) {
        std::uint16_t reclen;
        std::memcpy(&reclen, b.data() + off + 16, 2);
        out.insert(std::string(b.data() + off + 19));
        off += reclen;
      }
    }
  }
  static constexpr vaddr_t kBuf = SysTest::kScratch + 4096;
  static constexpr std::uint64_t kAtFdcwd = static_cast<std::uint64_t>(-100);
  HostTree tree;
};

TEST_P(SysFsTest, OpenErrnosLikeLinux) {
  EXPECT_EQ(open(tree.path("nope")), E(ENOENT));
  EXPECT_EQ(open(tree.path("hello.txt/x")), E(ENOTDIR));
  EXPECT_EQ(open(tree.path("hello.txt/")), E(ENOTDIR));
  EXPECT_EQ(open(tree.path("sub"), O_WRONLY), E(EISDIR));
  EXPECT_EQ(open(tree.path("sub"), O_RDONLY | O_CREAT), E(EISDIR));
  EXPECT_EQ(open(tree.path("hello.txt"), o_directory()), E(ENOTDIR));
  EXPECT_EQ(open(tree.path("hello.txt"), O_CREAT | o_directory()), E(EINVAL));
  EXPECT_EQ(open(tree.path("hello.txt"), O_CREAT | O_EXCL), E(EEXIST));
  EXPECT_EQ(open(tree.path("link"), o_nofollow()), E(ELOOP));
  EXPECT_EQ(open(""), E(ENOENT));
  EXPECT_EQ(call(Sys::openat, kAtFdcwd, 0, 0, 0), E(EFAULT));
  EXPECT_EQ(call(Sys::openat, kAtFdcwd, 0x30000000, 0, 0), E(EFAULT));
  EXPECT_EQ(p.fds->open_fds().size(), 0u);
}

TEST_P(SysFsTest, HostFilesAreReadOnly) {
  EXPECT_EQ(open(tree.path("hello.txt"), O_WRONLY), E(EROFS));
  EXPECT_EQ(open(tree.path("hello.txt"), O_RDWR), E(EROFS));
  EXPECT_EQ(open(tree.path("hello.txt"), 3), E(EROFS));  // O_ACCMODE: needs write permission
  EXPECT_EQ(open(tree.path("hello.txt"), O_RDONLY | O_TRUNC), E(EROFS));
  EXPECT_EQ(open(tree.path("nodir/new"), O_WRONLY | O_CREAT), E(ENOENT));
  const std::uint64_t tmpfile = 0x400000 | o_directory();  // O_TMPFILE in the guest's encoding
  EXPECT_EQ(open(tree.path("sub"), tmpfile | O_RDONLY), E(EINVAL));
  EXPECT_EQ(open(tree.path("sub"), 0x400000 | O_RDWR), E(EINVAL));  // without O_DIRECTORY
  // The host file is untouched.
  std::ifstream in(tree.path("hello.txt"));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(s, "hello, world\n");
  EXPECT_FALSE(std::filesystem::exists(tree.path("new")));
  // Name changes fail as on a read-only mount; missing names keep their own errno.
  if (has(Sys::mkdir)) {
    EXPECT_EQ(call(Sys::mkdir, str(tree.path("d")), 0755), E(EROFS));
    EXPECT_EQ(call(Sys::mkdir, str(tree.path("sub")), 0755), E(EEXIST));
    EXPECT_EQ(call(Sys::unlink, str(tree.path("hello.txt"))), E(EROFS));
    EXPECT_EQ(call(Sys::unlink, str(tree.path("nope"))), E(ENOENT));
  }
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(tree.path("hello.txt")), 0), E(EROFS));
  EXPECT_EQ(call(Sys::mkdirat, kAtFdcwd, str(tree.path("d")), 0755), E(EROFS));
  EXPECT_TRUE(std::filesystem::exists(tree.path("hello.txt")));
}

// New files are made in emulated memory: the host never sees them, every lookup of the
// guest does, and their pages go back when the last name and reference do.
TEST_P(SysFsTest, CreatedFilesLiveInMemory) {
  fill(kScratch, kScratchSize, 0);  // the argument area's own pages first
  const std::int64_t live_pages = k.machine().live.live(AllocSite::Page);
  const std::string path = tree.path("new");
  auto stat_of = [&](const std::string& name) {
    SyscallContext c{k, p, Sys::newfstatat, 0, {}, 0};
    return stat_path(c, name, true);
  };
  p.fs.umask = 022;
  const std::int64_t fd = call(Sys::openat, kAtFdcwd, str(path), O_RDWR | O_CREAT | O_EXCL, 0666);
  ASSERT_EQ(fd, 0);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(call(Sys::write, fd, str("data", 1024), 4), 4);
  auto st = stat_of(path);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->mode, static_cast<std::uint32_t>(S_IFREG | 0644));
  EXPECT_EQ(st->size, 4);
  EXPECT_EQ(st->nlink, 1U);
  EXPECT_EQ(call(Sys::openat, kAtFdcwd, str(path), O_RDWR | O_CREAT | O_EXCL, 0666), E(EEXIST));
  const std::int64_t again = open(path);
  ASSERT_EQ(again, 1);
  EXPECT_EQ(slurp(static_cast<int>(again)), "data");
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live_pages + 1);
  // unlink: the name goes; the open descriptors keep the page.
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(path), 0x200 /*AT_REMOVEDIR*/), E(ENOTDIR));
  EXPECT_EQ(call(Sys::unlinkat, kAtFdcwd, str(path), 0), 0);
  EXPECT_FALSE(stat_of(path));
  EXPECT_EQ(call(Sys::pread64, fd, kScratch + 2048, 4, 0), 4);
  EXPECT_EQ(call(Sys::close, fd), 0);
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live_pages + 1);
  EXPECT_EQ(call(Sys::close, again), 0);
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live_pages);
  // A file left behind by name is freed with the run's file system at the end.
  const std::int64_t kept = call(Sys::openat, kAtFdcwd, str(path), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(kept, 0);
  EXPECT_EQ(call(Sys::write, kept, str("x", 1024), 1), 1);
  EXPECT_EQ(call(Sys::close, kept), 0);
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live_pages + 1);
  k.created_files().clear();
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live_pages);
  // O_TMPFILE: no name at all.
  const std::uint64_t tmpfile = 0x400000 | o_directory();
  const std::int64_t t = call(Sys::openat, kAtFdcwd, str(tree.path("sub")), tmpfile | O_RDWR, 0600);
  ASSERT_GE(t, 0);
  EXPECT_EQ(p.fds->get(static_cast<int>(t))->path(),
            tree.path("sub") + "/#" + std::to_string(p.fds->get(static_cast<int>(t))->stat()->ino) +
                " (deleted)");
  EXPECT_TRUE(k.created_files().empty());
}

// A write that cannot get a page fails with ENOMEM and leaves nothing behind.
TEST_P(SysFsTest, CreatedFileWriteFailsCleanlyWithoutAPage) {
  const std::int64_t fd = call(Sys::openat, kAtFdcwd, str(tree.path("f")), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  fill(kScratch, kScratchSize, 0);
  const std::int64_t live_pages = k.machine().live.live(AllocSite::Page);
  k.machine().inject.fail_nth(AllocSite::Page, 1);
  EXPECT_EQ(call(Sys::write, fd, str("abc", 1024), 3), E(ENOMEM));
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_END), 0);
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live_pages);
  EXPECT_EQ(call(Sys::write, fd, str("abc", 1024), 3), 3);
}

TEST_P(SysFsTest, OpenatRelativeToADirectoryDescriptor) {
  const std::int64_t d = open(tree.path("sub"), o_directory());
  ASSERT_EQ(d, 0);
  EXPECT_EQ(static_cast<std::uint64_t>(call(Sys::fcntl, d, 3 /*F_GETFL*/)),
            o_directory() | o_largefile());
  const std::int64_t f = call(Sys::openat, d, str("inner"), 0, 0);
  ASSERT_EQ(f, 1);
  EXPECT_EQ(slurp(static_cast<int>(f)), "x");
  const std::int64_t file = open(tree.path("hello.txt"));
  EXPECT_EQ(call(Sys::openat, file, str("x"), 0, 0), E(ENOTDIR));
  EXPECT_EQ(call(Sys::openat, 77, str("x"), 0, 0), E(EBADF));
  EXPECT_EQ(call(Sys::openat, 77, str(tree.path("hello.txt")), 0, 0), 3);  // absolute: fd unused
  EXPECT_EQ(call(Sys::read, d, kBuf, 10), E(EISDIR));
}

TEST_P(SysFsTest, ReadingAFileMatchesItsMapping) {
  // read(2) and mmap see the same bytes: the File the kernel caches per path.
  const std::int64_t fd = open(tree.path("big.bin"));
  auto a = call(Sys::mmap, 0, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
  ASSERT_GT(a, 0);
  EXPECT_EQ(call(Sys::pread64, fd, kBuf, 8, 4096), 8);
  EXPECT_EQ(bytes(static_cast<vaddr_t>(a), 8), bytes(kBuf, 8));
  const Vma* v = mm_().vma_lookup(static_cast<vaddr_t>(a));
  ASSERT_NE(v, nullptr);
  ASSERT_NE(v->vm_file, nullptr);
  char real[4096];
  ASSERT_NE(::realpath(tree.path("big.bin").c_str(), real), nullptr);
  EXPECT_EQ(v->vm_file->name(), real);
}

TEST_P(SysFsTest, StatFamily) {
  struct ::stat host;
  ASSERT_EQ(::stat(tree.path("hello.txt").c_str(), &host), 0);
  EXPECT_EQ(call(Sys::newfstatat, kAtFdcwd, str(tree.path("link")), kBuf, 0), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 8), host.st_ino);
  EXPECT_EQ(call(Sys::newfstatat, kAtFdcwd, str(tree.path("link")), kBuf, 0x100), 0);
  EXPECT_TRUE(S_ISLNK(mode_at(kBuf)));
  EXPECT_EQ(call(Sys::newfstatat, kAtFdcwd, str(tree.path("hello.txt")), kBuf, 0x2), E(EINVAL));
  EXPECT_EQ(call(Sys::newfstatat, kAtFdcwd, str(tree.path("nope")), kBuf, 0), E(ENOENT));
  const std::int64_t fd = open(tree.path("hello.txt"));
  EXPECT_EQ(call(Sys::newfstatat, fd, str(""), kBuf, 0), E(ENOENT));
  EXPECT_EQ(call(Sys::newfstatat, fd, str(""), kBuf, 0x1000), 0);  // AT_EMPTY_PATH
  EXPECT_EQ(get<std::int64_t>(kBuf + 48), 13);
  EXPECT_EQ(call(Sys::newfstatat, fd, 0, kBuf, 0x1000), 0);  // NULL path with AT_EMPTY_PATH
  if (has(Sys::stat)) {
    EXPECT_EQ(call(Sys::stat, str(tree.path("link")), kBuf), 0);
    EXPECT_TRUE(S_ISREG(mode_at(kBuf)));
    EXPECT_EQ(call(Sys::lstat, str(tree.path("link")), kBuf), 0);
    EXPECT_TRUE(S_ISLNK(mode_at(kBuf)));
    EXPECT_EQ(call(Sys::stat, str(tree.path("hello.txt")), 0), E(EFAULT));
  }
  // statx: same facts in its own layout.
  EXPECT_EQ(call(Sys::statx, kAtFdcwd, str(tree.path("hello.txt")), 0, 0x7ff, kBuf), 0);
  EXPECT_EQ(get<std::uint32_t>(kBuf) & 0x7ffU, 0x7ffU);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 40), 13u);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 32), host.st_ino);
  EXPECT_EQ(call(Sys::statx, kAtFdcwd, str(tree.path("hello.txt")), 0, 0x80000000U, kBuf),
            E(EINVAL));
  EXPECT_EQ(call(Sys::statx, kAtFdcwd, str(tree.path("hello.txt")), 0x6000, 0x7ff, kBuf),
            E(EINVAL));
}

TEST_P(SysFsTest, ReadlinkOfHostAndProcLinks) {
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(tree.path("link")), kBuf, 100), 9);
  EXPECT_EQ(bytes(kBuf, 9), "hello.txt");
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(tree.path("link")), kBuf, 3), 3);
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(tree.path("link")), kBuf, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(tree.path("hello.txt")), kBuf, 10), E(EINVAL));
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(tree.path("nope")), kBuf, 10), E(ENOENT));
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str(""), kBuf, 10), E(ENOENT));
  p.as->exe_path = "/usr/bin/guest";
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/exe"), kBuf, 100), 14);
  EXPECT_EQ(bytes(kBuf, 14), "/usr/bin/guest");
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self"), kBuf, 100), 4);
  EXPECT_EQ(bytes(kBuf, 4), "1000");
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/thread-self"), kBuf, 100), 14);
  EXPECT_EQ(bytes(kBuf, 14), "1000/task/1000");
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/maps"), kBuf, 10), E(EINVAL));
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/1000/cwd"), kBuf, 4096),
            static_cast<std::int64_t>(p.fs.cwd.size()));
  const std::int64_t fd = open(tree.path("hello.txt"));
  char real[4096];
  ASSERT_NE(::realpath(tree.path("hello.txt").c_str(), real), nullptr);
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/fd/" + std::to_string(fd)), kBuf, 4096),
            static_cast<std::int64_t>(std::strlen(real)));
  EXPECT_EQ(bytes(kBuf, std::strlen(real)), real);
  EXPECT_EQ(call(Sys::pipe2, kScratch, 0), 0);
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/fd/1"), kBuf, 4096), 17);
  EXPECT_EQ(bytes(kBuf, 6), "pipe:[");
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/fd/9"), kBuf, 4096), E(ENOENT));
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/4242/exe"), kBuf, 4096), E(ENOENT));
  if (has(Sys::readlink)) {
    EXPECT_EQ(call(Sys::readlink, str("/proc/self/exe"), kBuf, 100), 14);
    EXPECT_EQ(call(Sys::readlink, str("/proc/self/exe"), kBuf, 0), E(EINVAL));
  }
}

TEST_P(SysFsTest, ProcSelfMapsIsTheVmaLayer) {
  const std::int64_t fd = open("/proc/self/maps");
  ASSERT_GE(fd, 0);
  // Read in small pieces: the text is produced at the first read and then continued.
  const std::string text = slurp(static_cast<int>(fd), 7);
  EXPECT_EQ(text, proc_maps(mm_()));
  EXPECT_NE(text.find("10000000-10010000 rw-p 00000000 00:00 0 \n"), std::string::npos);
  // A new mapping shows up when reading starts again at 0.
  ASSERT_TRUE(sys_mmap(mm_(), 0x20000000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       nullptr, 0));
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_SET), 0);
  EXPECT_EQ(slurp(static_cast<int>(fd)), proc_maps(mm_()));
  EXPECT_EQ(call(Sys::lseek, fd, 0, SEEK_END), E(EINVAL));
  EXPECT_EQ(call(Sys::mmap, 0, 4096, PROT_READ, MAP_PRIVATE, fd, 0), E(ENODEV));
  EXPECT_EQ(call(Sys::fstat, fd, kBuf), 0);
  EXPECT_EQ(mode_at(kBuf), S_IFREG | 0444);
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/fd/0"), kBuf, 4096), 15);
  EXPECT_EQ(bytes(kBuf, 15), "/proc/1000/maps");
  // smaps and smaps_rollup come from the same module.
  const std::int64_t s = open("/proc/1000/smaps");
  EXPECT_EQ(slurp(static_cast<int>(s), 4096), proc_smaps(mm_()));
  const std::int64_t r = open("/proc/self/task/1000/smaps_rollup");
  EXPECT_EQ(slurp(static_cast<int>(r), 4096), proc_smaps_rollup(mm_()));
  // Writing needs the write bit or root's override, and then the file refuses the bytes.
  const std::int64_t w = open("/proc/self/maps", O_WRONLY);
  if (p.cred.euid == 0) {
    ASSERT_GE(w, 0);
    EXPECT_EQ(call(Sys::write, w, kBuf, 1), E(EINVAL));
  } else {
    EXPECT_EQ(w, E(EACCES));
  }
  EXPECT_EQ(open("/proc/self/maps", o_directory()), E(ENOTDIR));
  EXPECT_EQ(open("/proc/self/nonexistent"), E(ENOENT));
  EXPECT_EQ(open("/proc/self/exe", o_nofollow()), E(ELOOP));
}

TEST_P(SysFsTest, ProcMapsOfAnExitedAddressSpaceIsEmpty) {
  const std::int64_t fd = open("/proc/self/maps");
  std::shared_ptr<AddressSpace> keep = p.as;
  p.as = std::make_shared<AddressSpace>();  // like an execve: the old mm goes away
  keep.reset();
  EXPECT_EQ(call(Sys::read, fd, kBuf, 100), 0);
  p.as = nullptr;
}

TEST_P(SysFsTest, ProcSelfCmdlineReadsGuestMemory) {
  const std::string args = std::string("prog\0-x\0", 8);
  ASSERT_TRUE(copy_to_user(mm_(), kScratch + 60000, args.data(), args.size()));
  mm_().arg_start = kScratch + 60000;
  mm_().arg_end = kScratch + 60000 + args.size();
  EXPECT_EQ(slurp(static_cast<int>(open("/proc/self/cmdline"))), args);
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/proc/self/cmdline"), kBuf, 10), E(EINVAL));
}

TEST_P(SysFsTest, ProcDirectoriesList) {
  const std::int64_t d = open("/proc/self", o_directory());
  ASSERT_GE(d, 0);
  const auto n = names(static_cast<int>(d));
  for (const char* want : {".", "..", "maps", "smaps", "exe", "fd", "status", "cmdline"})
    EXPECT_TRUE(n.contains(want)) << want;
  EXPECT_EQ(open("/proc/4242/maps"), E(ENOENT));
}

TEST_P(SysFsTest, DevNodes) {
  const std::int64_t n = open("/dev/null", O_RDWR);
  ASSERT_GE(n, 0);
  EXPECT_EQ(call(Sys::read, n, kBuf, 16), 0);
  EXPECT_EQ(call(Sys::write, n, kBuf, 16), 16);
  EXPECT_EQ(call(Sys::lseek, n, 100, SEEK_SET), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(call(Sys::fcntl, n, 3)), o_largefile() | O_RDWR);
  EXPECT_EQ(call(Sys::fstat, n, kBuf), 0);
  EXPECT_EQ(mode_at(kBuf), S_IFCHR | 0666);
  const std::int64_t z = open("/dev/zero");
  fill(kBuf, 32, 0xee);
  EXPECT_EQ(call(Sys::read, z, kBuf, 32), 32);
  EXPECT_EQ(bytes(kBuf, 32), std::string(32, '\0'));
  const std::int64_t f = open("/dev/full", O_WRONLY);
  EXPECT_EQ(call(Sys::write, f, kBuf, 1), E(ENOSPC));
  EXPECT_EQ(open("/dev/null", o_directory()), E(ENOTDIR));
  // mmap of /dev/zero: anonymous memory, private or shared.
  const std::int64_t a = call(Sys::mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0);
  ASSERT_GT(a, 0);
  const Vma* v = mm_().vma_lookup(static_cast<vaddr_t>(a));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->vm_file, nullptr);
  const std::int64_t s = call(Sys::mmap, 0, 8192, PROT_READ, MAP_SHARED, z, 0);
  ASSERT_GT(s, 0);
  EXPECT_TRUE(mm_().vma_lookup(static_cast<vaddr_t>(s))->vm_file->shmem());
  EXPECT_EQ(call(Sys::mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0), E(EACCES));
  EXPECT_EQ(call(Sys::mmap, 0, 8192, PROT_READ, MAP_PRIVATE, n, 0), E(ENODEV));
  // /dev/urandom gives the run's deterministic bytes.
  const std::int64_t u = open("/dev/urandom");
  EXPECT_EQ(call(Sys::read, u, kBuf, 16), 16);
  EXPECT_NE(bytes(kBuf, 16), std::string(16, '\0'));
  // /dev/stdout is /proc/self/fd/1.
  EXPECT_EQ(call(Sys::readlinkat, kAtFdcwd, str("/dev/stdout"), kBuf, 100), 15);
  EXPECT_EQ(bytes(kBuf, 15), "/proc/self/fd/1");
}

TEST_P(SysFsTest, ReopenThroughProcSelfFd) {
  const std::int64_t fd = open(tree.path("hello.txt"));
  EXPECT_EQ(call(Sys::read, fd, kBuf, 5), 5);
  const std::int64_t again = open("/proc/self/fd/" + std::to_string(fd));
  ASSERT_GE(again, 0);
  // A new open file description: its own position.
  EXPECT_EQ(call(Sys::lseek, again, 0, SEEK_CUR), 0);
  EXPECT_EQ(call(Sys::read, again, kBuf, 5), 5);
  EXPECT_EQ(bytes(kBuf, 5), "hello");
}

TEST_P(SysFsTest, AccessChecks) {
  if (has(Sys::access)) {
    EXPECT_EQ(call(Sys::access, str(tree.path("hello.txt")), R_OK), 0);
    EXPECT_EQ(call(Sys::access, str(tree.path("hello.txt")), W_OK), E(EROFS));
    EXPECT_EQ(call(Sys::access, str(tree.path("hello.txt")), 8), E(EINVAL));
    EXPECT_EQ(call(Sys::access, str(tree.path("nope")), F_OK), E(ENOENT));
  }
  EXPECT_EQ(call(Sys::faccessat, kAtFdcwd, str(tree.path("hello.txt")), F_OK), 0);
  EXPECT_EQ(call(Sys::faccessat, kAtFdcwd, str(tree.path("hello.txt")), X_OK), E(EACCES));
  EXPECT_EQ(call(Sys::faccessat2, kAtFdcwd, str(tree.path("hello.txt")), R_OK, 0x4), E(EINVAL));
  EXPECT_EQ(call(Sys::faccessat2, kAtFdcwd, str(tree.path("link")), R_OK, 0x100), 0);
  EXPECT_EQ(call(Sys::faccessat, kAtFdcwd, str("/proc/self/maps"), R_OK), 0);
  EXPECT_EQ(call(Sys::faccessat, kAtFdcwd, str("/proc/self/maps"), X_OK), E(EACCES));
  EXPECT_EQ(call(Sys::faccessat, kAtFdcwd, str("/dev/null"), R_OK | W_OK), 0);
}

TEST_P(SysFsTest, CwdFollowsChdir) {
  EXPECT_EQ(call(Sys::chdir, str(tree.path("sub"))), 0);
  char real[4096];
  ASSERT_NE(::realpath(tree.path("sub").c_str(), real), nullptr);
  const auto len = static_cast<std::int64_t>(std::strlen(real) + 1);
  EXPECT_EQ(call(Sys::getcwd, kBuf, 4096), len);
  EXPECT_EQ(bytes(kBuf, static_cast<std::size_t>(len)), std::string(real) + '\0');
  EXPECT_EQ(call(Sys::getcwd, kBuf, 1), E(ERANGE));
  EXPECT_EQ(call(Sys::getcwd, kBuf, 0), E(ERANGE));
  EXPECT_EQ(call(Sys::getcwd, 0, 4096), E(EFAULT));
  // Relative opens resolve against the new cwd.
  const std::int64_t f = open("inner");
  ASSERT_GE(f, 0);
  EXPECT_EQ(slurp(static_cast<int>(f)), "x");
  EXPECT_EQ(call(Sys::chdir, str(tree.path("hello.txt"))), E(ENOTDIR));
  EXPECT_EQ(call(Sys::chdir, str(tree.path("nope"))), E(ENOENT));
  const std::int64_t d = open(tree.path(), o_directory());
  EXPECT_EQ(call(Sys::fchdir, d), 0);
  EXPECT_EQ(call(Sys::fchdir, f), E(ENOTDIR));
  EXPECT_EQ(call(Sys::fchdir, 77), E(EBADF));
  EXPECT_GE(open("hello.txt"), 0);
}

TEST_P(SysFsTest, GetdentsListsTheHostDirectory) {
  const std::int64_t d = open(tree.path(), o_directory());
  EXPECT_EQ(names(static_cast<int>(d)),
            (std::set<std::string>{".", "..", "hello.txt", "big.bin", "sub", "link"}));
  EXPECT_EQ(call(Sys::lseek, d, 0, SEEK_SET), 0);
  EXPECT_EQ(call(Sys::getdents64, d, kBuf, 10), E(EINVAL));  // too small for one record
  EXPECT_EQ(call(Sys::getdents64, d, 0, 4096), E(EFAULT));
  const std::int64_t f = open(tree.path("hello.txt"));
  EXPECT_EQ(call(Sys::getdents64, f, kBuf, 4096), E(ENOTDIR));
  EXPECT_EQ(call(Sys::getdents64, 99, kBuf, 4096), E(EBADF));
  if (has(Sys::getdents)) {
    // The old record: name at 18, d_type in the last byte.
    EXPECT_EQ(call(Sys::lseek, d, 0, SEEK_SET), 0);
    const std::int64_t n = call(Sys::getdents, d, kBuf, 4096);
    ASSERT_GT(n, 0);
    const std::uint16_t reclen = get<std::uint16_t>(kBuf + 16);
    const std::string first = bytes(kBuf + 18, 2);
    EXPECT_TRUE(first == std::string(".\0", 2) || first == "..") << first;
    EXPECT_EQ(get<std::uint8_t>(kBuf + reclen - 1), DT_DIR);
  }
}

INSTANTIATE_SYS_ARCHES(SysFsTest);

// Files that look the process up by pid each time they are read (comm, status, stat,
// statm, the fd directory) need a process the kernel knows: a spawned guest (not run).
class SpawnedProcTest : public ::testing::TestWithParam<Arch> {
 protected:
  SpawnedProcTest() : k(SysTest::options(), unicorn_cpu_factory()) {
    auto r = k.spawn(sys_guest_path(GetParam(), "hello"), {"hello", "arg1"}, {"E=1"});
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    if (r) p = *r;
    register_file_syscalls(table);
    register_mem_syscalls(table);
  }
  // The process never ran: it exits the way a guest would, which releases its mm and files.
  ~SpawnedProcTest() override {
    if (p) k.exit_process(*p, 0);
  }
  std::int64_t call(Sys s, std::array<std::uint64_t, 6> a) {
    SyscallContext ctx{k, *p, s, 0, a, 0};
    const SysResult r = table.find(s)(ctx);
    return r.is_return() ? r.value() : INT64_MIN;
  }
  vaddr_t scratch() {
    if (!buf) {
      auto r = sys_mmap(p->mm(), 0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        nullptr, 0);
      EXPECT_TRUE(r.has_value());
      buf = *r;
    }
    return buf;
  }
  std::int64_t open(const std::string& path, std::uint64_t flags = 0) {
    EXPECT_TRUE(copy_to_user(p->mm(), scratch(), path.c_str(), path.size() + 1));
    return call(Sys::openat, {static_cast<std::uint64_t>(-100), scratch(), flags, 0, 0, 0});
  }
  std::string slurp(std::int64_t fd) {
    std::string out;
    for (;;) {
      const std::int64_t n =
          call(Sys::read, {static_cast<std::uint64_t>(fd), scratch() + 4096, 4096, 0, 0, 0});
      if (n <= 0) return out;
      std::string b(static_cast<std::size_t>(n), '\0');
      EXPECT_TRUE(copy_from_user(p->mm(), b.data(), scratch() + 4096, b.size()));
      out += b;
    }
  }
  Kernel k;
  Process* p = nullptr;
  SyscallTable table;
  vaddr_t buf = 0;
};

TEST_P(SpawnedProcTest, CommStatusCmdlineAndFdDirectory) {
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(slurp(open("/proc/self/comm")), "hello\n");
  const std::string status = slurp(open("/proc/" + std::to_string(p->pid) + "/status"));
  EXPECT_EQ(status.substr(0, 12), "Name:\thello\n");
  EXPECT_NE(status.find(fmt::format("\nPid:\t{}\n", p->pid)), std::string::npos) << status;
  EXPECT_NE(status.find(fmt::format("\nVmSize:\t{:>8} kB\n", p->mm().total_vm * 4)),
            std::string::npos)
      << status;
  const std::string statm = slurp(open("/proc/self/statm"));
  EXPECT_EQ(statm.substr(0, statm.find(' ')), std::to_string(p->mm().total_vm));
  const std::string stat = slurp(open("/proc/self/stat"));
  EXPECT_EQ(stat.substr(0, stat.find(')') + 1), fmt::format("{} (hello)", p->pid));
  EXPECT_EQ(slurp(open("/proc/self/cmdline")), std::string("hello\0arg1\0", 11));
  EXPECT_EQ(slurp(open("/proc/self/environ")), std::string("E=1\0", 4));
  // The fd directory is listed when read: it includes the descriptor reading it.
  const std::int64_t d = open("/proc/self/fd");
  ASSERT_GE(d, 0);
  const std::int64_t n =
      call(Sys::getdents64, {static_cast<std::uint64_t>(d), scratch() + 8192, 4096, 0, 0, 0});
  ASSERT_GT(n, 0);
  std::string recs(static_cast<std::size_t>(n), '\0');
  ASSERT_TRUE(copy_from_user(p->mm(), recs.data(), scratch() + 8192, recs.size()));
  std::set<std::string> names;
  for (std::size_t off = 0; off < recs.size();) {
    std::uint16_t reclen;
    std::memcpy(&reclen, recs.data() + off + 16, 2);
    names.insert(std::string(recs.data() + off + 19));
    off += reclen;
  }
  std::set<std::string> want{".", ".."};
  for (int fd : p->fds->open_fds())
    want.insert(std::to_string(fd));
  EXPECT_EQ(names, want);
  EXPECT_TRUE(names.contains(std::to_string(d)));
  // /proc/self/exe opens the executable itself.
  const std::int64_t exe = open("/proc/self/exe");
  ASSERT_GE(exe, 0);
  const std::string head = slurp(exe).substr(0, 4);
  EXPECT_EQ(head,
            "\x7f"
            "ELF");
}

INSTANTIATE_TEST_SUITE_P(Arches, SpawnedProcTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_name);

}  // namespace
}  // namespace mmemu::test
