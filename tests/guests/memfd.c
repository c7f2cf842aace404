/* memfd: memfd_create gives a shmem file whose page cache is the only copy of its bytes:
 * write(2) shows through a MAP_SHARED mapping and stores through the mapping show in
 * read(2), a MAP_PRIVATE mapping copies on write, a forked child shares the file and the
 * shared pages, ftruncate shrinks (unmapping the tail: SIGBUS past the end, zeros after
 * the end inside the last page) and grows (holes read as zeros, SEEK_DATA/SEEK_HOLE find
 * them), and seals forbid what they name (F_SEAL_WRITE is EBUSY while a writable shared
 * mapping exists, then write/mmap are EPERM). Also the errors of memfd_create itself,
 * fstat's view (mode, nlink, size, blocks) and the names in /proc/self/fd and maps. */
#include "guest.h"

#include <fcntl.h>
#include <sys/stat.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x8U
#define MFD_EXEC 0x10U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x20
#endif

/* Reads *p: "value N", or the fault probe() reports. */
static void peek(const char* what, char* p) {
  char v = 0;
  const char* r = probe(p, 0, 0, &v);
  if (strcmp(r, "ok") == 0) {
    say("%s: value %d", what, v);
  } else {
    say("%s: %s", what, r);
  }
}

static long fsize(int fd) {
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  return (long)st.st_size;
}
static long fblocks(int fd) {
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  return (long)st.st_blocks;
}

int main(void) {
  /* memfd_create's own errors. */
  expect_str("unknown flag", rc_str(memfd_create("x", 0x100)), "EINVAL");
  expect_str("MFD_EXEC with MFD_NOEXEC_SEAL", rc_str(memfd_create("x", MFD_EXEC | MFD_NOEXEC_SEAL)),
             "EINVAL");
  expect_str("name at a bad pointer", rc_str(memfd_create((const char*)8, 0)), "EFAULT");
  char name[300];
  memset(name, 'n', sizeof name);
  name[249] = 0;
  int longest = memfd_create(name, 0);
  expect_str("249-byte name", rc_str(longest), "ok");
  close(longest);
  name[249] = 'n';
  name[250] = 0;
  expect_str("250-byte name", rc_str(memfd_create(name, 0)), "EINVAL");

  int fd = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  CHECK(fd >= 0);
  /* The kernel's O_LARGEFILE (glibc's is 0 on 64-bit), whose value differs by arch. */
#ifdef __aarch64__
  const int k_largefile = 0x20000;
#else
  const int k_largefile = 0x8000;
#endif
  expect_yes("F_GETFL is O_RDWR|O_LARGEFILE", fcntl(fd, F_GETFL) == (O_RDWR | k_largefile));
  say("close-on-exec: %d", fcntl(fd, F_GETFD));
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  say("fstat: mode %o nlink %lu size %ld blocks %ld", st.st_mode, (unsigned long)st.st_nlink,
      (long)st.st_size, (long)st.st_blocks);
  char path[64], link[256];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t ln = readlink(path, link, sizeof link - 1);
  CHECK(ln > 0);
  link[ln] = 0;
  say("readlink: %s", link);

  /* write/read and the position. */
  expect_long("write", write(fd, "hello", 5), 5);
  expect_long("position", lseek(fd, 0, SEEK_CUR), 5);
  say("size %ld blocks %ld", fsize(fd), fblocks(fd));
  char b[16] = {0};
  expect_long("pread", pread(fd, b, sizeof b, 1), 4);
  say("pread bytes: %s", b);
  expect_long("read at the end", read(fd, b, 4), 0);
  expect_long("pwrite past the end", pwrite(fd, "!", 1, 3 * G_PAGE), 1);
  say("size %ld blocks %ld", fsize(fd), fblocks(fd));
  expect_long("SEEK_DATA from 0", lseek(fd, 0, SEEK_DATA), 0);
  expect_long("SEEK_HOLE from 0", lseek(fd, 0, SEEK_HOLE), (long)G_PAGE);
  expect_long("SEEK_DATA from 2 pages", lseek(fd, 2 * G_PAGE, SEEK_DATA), 3 * (long)G_PAGE);
  expect_long("SEEK_HOLE in the last page", lseek(fd, 3 * G_PAGE, SEEK_HOLE), 3 * (long)G_PAGE + 1);
  expect_str("SEEK_DATA at the end", rc_str(lseek(fd, 3 * G_PAGE + 1, SEEK_DATA)), "ENXIO");
  memset(b, 'x', sizeof b);
  expect_long("pread of a hole", pread(fd, b, 4, G_PAGE), 4);
  say("hole bytes: %d %d %d %d", b[0], b[1], b[2], b[3]);

  /* Shared and private mappings over the same pages. */
  char* sh = mmap(0, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(sh != MAP_FAILED);
  char* pr = mmap(0, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(pr != MAP_FAILED);
  say("shared mapping: %s", maps_entry(sh, NULL));
  say("private mapping: %s", maps_entry(pr, NULL));
  say("shared sees written bytes: %.5s", sh);
  sh[G_PAGE] = 'S';
  CHECK(pread(fd, b, 1, G_PAGE) == 1);
  say("read sees a store through the shared mapping: %c", b[0]);
  say("private sees the shared store: %c", pr[G_PAGE]);
  pr[0] = 'P';
  CHECK(pread(fd, b, 1, 0) == 1);
  say("private store stays private: file %c, private %c, shared %c", b[0], pr[0], sh[0]);
  CHECK(pwrite(fd, "W", 1, 0) == 1);
  say("after pwrite: shared %c, private (copied) %c", sh[0], pr[0]);
  say("blocks after the shared store: %ld", fblocks(fd));

  /* A child shares the file and the shared pages. */
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    sh[2 * G_PAGE] = 'C';
    CHECK(write(fd, "child", 5) == 5);
    _exit(0);
  }
  int status;
  CHECK(waitpid(child, &status, 0) == child);
  say("child: %s, its store %c, its write moved the shared position to %ld", wstatus_str(status),
      sh[2 * G_PAGE], (long)lseek(fd, 0, SEEK_CUR));

  /* Truncation: the tail is unmapped (SIGBUS past EOF), the last page's tail zeroed. */
  sh[100] = 'T';
  pr[3 * G_PAGE] = 'p'; /* a private copy of the last page */
  expect_str("ftruncate to 100", rc_str(ftruncate(fd, 100)), "ok");
  say("size %ld blocks %ld", fsize(fd), fblocks(fd));
  peek("shared byte 99", sh + 99);
  peek("shared byte 100 (zeroed tail)", sh + 100);
  peek("shared page 1", sh + G_PAGE);
  peek("private page 3 (its copy is gone too)", pr + 3 * G_PAGE);
  peek("private page 0 (a copy inside the file)", pr);
  expect_str("ftruncate grows", rc_str(ftruncate(fd, 2 * G_PAGE)), "ok");
  peek("shared page 1 after growing (a new zero page)", sh + G_PAGE);
  say("size %ld blocks %ld", fsize(fd), fblocks(fd));
  expect_str("ftruncate negative", rc_str(ftruncate(fd, -1)), "EINVAL");
  int pp[2];
  CHECK(pipe(pp) == 0);
  expect_str("ftruncate of a pipe", rc_str(ftruncate(pp[1], 0)), "EINVAL");
  close(pp[0]);
  close(pp[1]);
  munmap(pr, 4 * G_PAGE);

  /* A read-only open of the same file through /proc/self/fd. */
  int rofd = open(path, O_RDONLY);
  expect_str("reopen read-only through /proc/self/fd", rc_str(rofd), "ok");
  struct stat pst;
  CHECK(stat(path, &pst) == 0 && fstat(fd, &st) == 0);
  say("stat through the link: same inode %s, size %ld, mode %o",
      pst.st_ino == st.st_ino ? "yes" : "no", (long)pst.st_size, pst.st_mode);
  memset(b, 0, sizeof b);
  expect_long("read through it", read(rofd, b, 3), 3);
  say("  bytes %c%c%c, own position %ld", b[0], b[1], b[2], (long)lseek(rofd, 0, SEEK_CUR));
  expect_str("shared writable mmap of the read-only open",
             ptr_str(mmap(0, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rofd, 0)), "EACCES");
  expect_str("write to it", rc_str(write(rofd, "x", 1)), "EBADF");
  expect_str("ftruncate through it", rc_str(ftruncate(rofd, 0)), "EINVAL");
  expect_str("F_ADD_SEALS through it", rc_str(fcntl(rofd, F_ADD_SEALS, F_SEAL_GROW)), "EPERM");
  close(rofd);

  /* Seals. */
  expect_long("F_GET_SEALS", fcntl(fd, F_GET_SEALS), 0);
  expect_str("F_SEAL_WRITE with a writable shared mapping",
             rc_str(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)), "EBUSY");
  munmap(sh, 4 * G_PAGE);
  char* ro = mmap(0, G_PAGE, PROT_READ, MAP_SHARED, fd, 0);
  CHECK(ro != MAP_FAILED);
  expect_str("F_SEAL_WRITE with a read-only shared mapping",
             rc_str(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)), "EBUSY");
  munmap(ro, G_PAGE);
  expect_str("F_SEAL_WRITE", rc_str(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)), "ok");
  expect_str("write when sealed", rc_str(write(fd, "x", 1)), "EPERM");
  expect_str("pwrite when sealed", rc_str(pwrite(fd, "x", 1, 0)), "EPERM");
  expect_str("shared writable mmap when sealed",
             ptr_str(mmap(0, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)), "EPERM");
  ro = mmap(0, G_PAGE, PROT_READ, MAP_SHARED, fd, 0);
  expect_str("shared read-only mmap when sealed", ptr_str(ro), "ok");
  expect_str("mprotect it writable", rc_str(mprotect(ro, G_PAGE, PROT_READ | PROT_WRITE)),
             "EACCES");
  char* cow = mmap(0, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  expect_str("private writable mmap when sealed", ptr_str(cow), "ok");
  cow[0] = 'c';
  say("private copy written: %c, file unchanged: %c", cow[0], ro[0]);
  expect_str("ftruncate when write-sealed", rc_str(ftruncate(fd, 3 * G_PAGE)), "ok");
  expect_str("F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL",
             rc_str(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)), "ok");
  expect_long("F_GET_SEALS", fcntl(fd, F_GET_SEALS),
              F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  expect_str("shrink when sealed", rc_str(ftruncate(fd, G_PAGE)), "EPERM");
  expect_str("grow when sealed", rc_str(ftruncate(fd, 4 * G_PAGE)), "EPERM");
  expect_str("same size when sealed", rc_str(ftruncate(fd, 3 * G_PAGE)), "ok");
  expect_str("another seal after F_SEAL_SEAL", rc_str(fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC)),
             "EPERM");
  expect_str("unknown seal bit", rc_str(fcntl(fd, F_ADD_SEALS, 0x1000)), "EINVAL");
  munmap(ro, G_PAGE);
  munmap(cow, G_PAGE);
  close(fd);

  /* Sealing not allowed, grow seal, exec seals. */
  int ns = memfd_create("nosealing", 0);
  CHECK(ns >= 0);
  expect_long("F_GET_SEALS without MFD_ALLOW_SEALING", fcntl(ns, F_GET_SEALS), F_SEAL_SEAL);
  expect_str("F_ADD_SEALS without MFD_ALLOW_SEALING", rc_str(fcntl(ns, F_ADD_SEALS, F_SEAL_GROW)),
             "EPERM");
  close(ns);
  int g = memfd_create("grow", MFD_ALLOW_SEALING);
  CHECK(g >= 0 && write(g, "abc", 3) == 3);
  CHECK(fcntl(g, F_ADD_SEALS, F_SEAL_GROW) == 0);
  expect_str("write across the end under F_SEAL_GROW", rc_str(pwrite(g, "xyz", 3, 1)), "EPERM");
  say("  size %ld", fsize(g));
  expect_long("write inside under F_SEAL_GROW", pwrite(g, "xy", 2, 1), 2);
  close(g);
  int nx = memfd_create("noexec", MFD_NOEXEC_SEAL);
  CHECK(nx >= 0 && fstat(nx, &st) == 0);
  say("MFD_NOEXEC_SEAL: mode %o seals %#x", st.st_mode, fcntl(nx, F_GET_SEALS));
  close(nx);
  int ex = memfd_create("exec", MFD_EXEC | MFD_ALLOW_SEALING);
  CHECK(ex >= 0);
  expect_str("F_SEAL_EXEC on an executable memfd", rc_str(fcntl(ex, F_ADD_SEALS, F_SEAL_EXEC)),
             "ok");
  say("  seals now %#x", fcntl(ex, F_GET_SEALS));
  close(ex);
  expect_str("F_GET_SEALS on a pipe", rc_str(fcntl(1, F_GET_SEALS)), "EINVAL");
  return g_finish();
}
