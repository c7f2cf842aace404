/* fs_links: the names a program makes besides regular files, and the attributes it sets:
 * symbolic links (lstat, readlink, following them), hard links (one inode, nlink counted,
 * unlink of one name), FIFOs (mkfifo; a blocking reader meets a writer, O_NONBLOCK rules,
 * O_RDWR), mknod of a regular file, utimensat/futimens/utimes/lutimes with UTIME_NOW and
 * UTIME_OMIT, chown clearing set-id bits, and what an unprivileged process may not do.
 * Everything lives in /tmp under a unique name
 * and is removed again; only facts that do not depend on the file system are printed. */
#include "guest.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>

static char base[128];

static const char* at(const char* suffix) {
  static char buf[4][160];
  static int i;
  char* b = buf[i++ & 3];
  snprintf(b, sizeof buf[0], "%s%s", base, suffix);
  return b;
}

static int dtype(const char* name) {
  DIR* d = opendir("/tmp");
  CHECK(d != NULL);
  int t = -1;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, name) == 0) t = e->d_type;
  closedir(d);
  return t;
}

int main(void) {
  umask(022);
  snprintf(base, sizeof base, "/tmp/mmemu-links-XXXXXX");
  int fd = mkstemp(base);
  CHECK(fd >= 0);
  CHECK(write(fd, "payload", 7) == 7);
  const char* name = strrchr(base, '/') + 1;
  struct stat st, st2;

  /* Symbolic links. */
  expect_str("symlink", rc_str(symlink(name, at(".l"))), "ok");
  expect_str("symlink again", rc_str(symlink(name, at(".l"))), "EEXIST");
  expect_str("symlink empty target", rc_str(symlink("", at(".e"))), "ENOENT");
  CHECK(lstat(at(".l"), &st) == 0);
  say("lstat: link %d mode %o size %ld", S_ISLNK(st.st_mode), st.st_mode & 07777, (long)st.st_size);
  expect_yes("lstat size is the target's length", st.st_size == (long)strlen(name));
  char buf[256] = {0};
  expect_long("readlink", readlink(at(".l"), buf, sizeof buf), (long)strlen(name));
  expect_yes("readlink gives the target", strcmp(buf, name) == 0);
  expect_str("readlink of a file", rc_str(readlink(base, buf, sizeof buf)), "EINVAL");
  CHECK(stat(at(".l"), &st) == 0 && fstat(fd, &st2) == 0);
  expect_yes("stat follows to the file", S_ISREG(st.st_mode) && st.st_ino == st2.st_ino);
  int lf = open(at(".l"), O_RDONLY);
  expect_yes("open through the link", lf >= 0);
  memset(buf, 0, sizeof buf);
  expect_long("read through the link", read(lf, buf, 7), 7);
  say("  bytes %s", buf);
  close(lf);
  expect_str("O_NOFOLLOW", rc_str(open(at(".l"), O_RDONLY | O_NOFOLLOW)), "ELOOP");
  say("readdir type of the link: %s", dtype(strrchr(at(".l"), '/') + 1) == DT_LNK ? "DT_LNK" : "?");
  expect_str("symlink dangling", rc_str(symlink("no-such-target", at(".d"))), "ok");
  expect_str("stat dangling", rc_str(stat(at(".d"), &st)), "ENOENT");
  expect_str("lstat dangling", rc_str(lstat(at(".d"), &st)), "ok");
  expect_str("rename link", rc_str(rename(at(".d"), at(".d2"))), "ok");
  expect_str("lstat old name", rc_str(lstat(at(".d"), &st)), "ENOENT");
  expect_str("unlink link", rc_str(unlink(at(".d2"))), "ok");

  /* Hard links. */
  expect_str("link", rc_str(link(base, at(".h"))), "ok");
  expect_str("link again", rc_str(link(base, at(".h"))), "EEXIST");
  expect_str("link a directory", rc_str(link("/tmp", at(".x"))), "EPERM");
  expect_str("linkat bad flags", rc_str(linkat(AT_FDCWD, base, AT_FDCWD, at(".x"), 1)), "EINVAL");
  CHECK(stat(at(".h"), &st) == 0 && fstat(fd, &st2) == 0);
  say("nlink after link: %lu %lu", (unsigned long)st.st_nlink, (unsigned long)st2.st_nlink);
  expect_yes("same inode", st.st_ino == st2.st_ino);
  expect_str("linkat follow",
             rc_str(linkat(AT_FDCWD, at(".l"), AT_FDCWD, at(".f"), AT_SYMLINK_FOLLOW)), "ok");
  CHECK(lstat(at(".f"), &st) == 0);
  say("followed link: regular %d nlink %lu", S_ISREG(st.st_mode), (unsigned long)st.st_nlink);
  expect_str("linkat no follow", rc_str(linkat(AT_FDCWD, at(".l"), AT_FDCWD, at(".n"), 0)), "ok");
  CHECK(lstat(at(".n"), &st) == 0);
  say("unfollowed link: symlink %d nlink %lu", S_ISLNK(st.st_mode), (unsigned long)st.st_nlink);
  CHECK(unlink(at(".n")) == 0 && unlink(at(".f")) == 0);
  expect_str("unlink first name", rc_str(unlink(base)), "ok");
  CHECK(stat(at(".h"), &st) == 0);
  say("nlink after unlink: %lu", (unsigned long)st.st_nlink);
  int hf = open(at(".h"), O_RDONLY);
  memset(buf, 0, sizeof buf);
  expect_long("read the second name", read(hf, buf, 7), 7);
  say("  bytes %s", buf);
  close(hf);
  expect_str("link back", rc_str(link(at(".h"), base)), "ok");
  CHECK(unlink(at(".h")) == 0);
  expect_str("symlink to a directory", rc_str(symlink("/tmp", at(".t"))), "ok");
  char through[200];
  snprintf(through, sizeof through, "%s/%s", at(".t"), name);
  int tf = open(through, O_RDONLY);
  expect_yes("open through the directory link", tf >= 0);
  memset(buf, 0, sizeof buf);
  expect_long("read", read(tf, buf, 7), 7);
  say("  bytes %s", buf);
  close(tf);
  CHECK(unlink(at(".t")) == 0);

  /* Times. */
  struct timespec ts[2] = {{1000000000, 5}, {1200000000, 7}};
  expect_str("utimensat", rc_str(utimensat(AT_FDCWD, base, ts, 0)), "ok");
  CHECK(stat(base, &st) == 0);
  say("times: a %ld.%ld m %ld.%ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
      (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  struct timespec omit[2] = {{0, UTIME_OMIT}, {1300000000, 9}};
  expect_str("futimens omit atime", rc_str(futimens(fd, omit)), "ok");
  CHECK(stat(base, &st) == 0);
  say("times: a %ld m %ld.%ld", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec,
      st.st_mtim.tv_nsec);
  struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
  expect_str("bad nsec", rc_str(utimensat(AT_FDCWD, base, bad, 0)), "EINVAL");
  struct timespec both_omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  expect_str("both omit, no file", rc_str(utimensat(AT_FDCWD, at(".none"), both_omit, 0)), "ok");
  expect_str("missing file", rc_str(utimensat(AT_FDCWD, at(".none"), NULL, 0)), "ENOENT");
  expect_str("bad flags", rc_str(utimensat(AT_FDCWD, base, NULL, 1)), "EINVAL");
  struct timeval tv[2] = {{1100000000, 3}, {1100000001, 4}};
  expect_str("utimes", rc_str(utimes(base, tv)), "ok");
  CHECK(stat(base, &st) == 0);
  say("utimes: a %ld.%ld m %ld.%ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
      (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  struct timeval badtv[2] = {{0, 1000000}, {0, 0}};
  expect_str("utimes bad usec", rc_str(utimes(base, badtv)), "EINVAL");
  expect_str("lutimes on the link", rc_str(lutimes(at(".l"), tv)), "ok");
  CHECK(lstat(at(".l"), &st) == 0);
  say("link mtime %ld", (long)st.st_mtim.tv_sec);
  expect_str("utimensat now", rc_str(utimensat(AT_FDCWD, base, NULL, 0)), "ok");
  CHECK(stat(base, &st) == 0);
  expect_yes("now is recent", st.st_mtim.tv_sec > 1600000000);

  /* Owners. */
  CHECK(chmod(base, 06755) == 0);
  expect_str("chown", rc_str(chown(base, 0, 0)), "ok");
  CHECK(stat(base, &st) == 0);
  say("mode after chown: %o", st.st_mode & 07777);
  CHECK(chmod(base, 02745) == 0);
  expect_str("chown -1 -1", rc_str(chown(base, -1, -1)), "ok");
  CHECK(stat(base, &st) == 0);
  say("mode after chown -1 -1: %o", st.st_mode & 07777);
  expect_str("fchown", rc_str(fchown(fd, 1, 2)), "ok");
  CHECK(stat(base, &st) == 0);
  say("owner after fchown: %u %u", st.st_uid, st.st_gid);
  CHECK(fchown(fd, 0, 0) == 0 && chmod(base, 0644) == 0);

  /* FIFOs. */
  expect_str("mkfifo", rc_str(mkfifo(at(".p"), 0666)), "ok");
  CHECK(stat(at(".p"), &st) == 0);
  say("fifo: fifo %d mode %o", S_ISFIFO(st.st_mode), st.st_mode & 07777);
  say("readdir type of the fifo: %s",
      dtype(strrchr(at(".p"), '/') + 1) == DT_FIFO ? "DT_FIFO" : "?");
  expect_str("writer without reader, O_NONBLOCK", rc_str(open(at(".p"), O_WRONLY | O_NONBLOCK)),
             "ENXIO");
  int nr = open(at(".p"), O_RDONLY | O_NONBLOCK);
  expect_yes("reader with O_NONBLOCK opens", nr >= 0);
  expect_long("it reads end of file", read(nr, buf, 4), 0);
  int nw = open(at(".p"), O_WRONLY | O_NONBLOCK);
  expect_yes("then a writer with O_NONBLOCK opens", nw >= 0);
  expect_long("write", write(nw, "abc", 3), 3);
  memset(buf, 0, sizeof buf);
  expect_long("read", read(nr, buf, sizeof buf), 3);
  say("  bytes %s", buf);
  close(nw);
  close(nr);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    int w = open(at(".p"), O_WRONLY);  // waits for the parent to open for reading
    if (w < 0 || write(w, "through fifo", 12) != 12) _exit(1);
    _exit(0);
  }
  int r = open(at(".p"), O_RDONLY);  // waits for the child to open for writing
  expect_yes("blocking reader opens", r >= 0);
  memset(buf, 0, sizeof buf);
  size_t got = 0;
  for (ssize_t n; (n = read(r, buf + got, sizeof buf - 1 - got)) > 0;)
    got += (size_t)n;
  say("read from the fifo: %s", buf);
  close(r);
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  say("writer exit: %d", WEXITSTATUS(status));
  int rw = open(at(".p"), O_RDWR);
  expect_yes("O_RDWR opens alone", rw >= 0);
  expect_long("write to itself", write(rw, "xy", 2), 2);
  expect_long("read from itself", read(rw, buf, 2), 2);
  close(rw);
  expect_str("mkfifo again", rc_str(mkfifo(at(".p"), 0600)), "EEXIST");
  expect_str("unlink fifo", rc_str(unlink(at(".p"))), "ok");

  /* mknod. */
  expect_str("mknod regular", rc_str(mknod(at(".r"), S_IFREG | 0640, 0)), "ok");
  CHECK(stat(at(".r"), &st) == 0);
  say("mknod regular: regular %d mode %o size %ld", S_ISREG(st.st_mode), st.st_mode & 07777,
      (long)st.st_size);
  expect_str("mknod directory", rc_str(mknod(at(".y"), S_IFDIR | 0755, 0)), "EPERM");
  expect_str("mknod bad type", rc_str(mknod(at(".y"), 0170000 | 0644, 0)), "EINVAL");

  /* An unprivileged process. */
  pid_t child2 = fork();
  CHECK(child2 >= 0);
  if (child2 == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    expect_str("nobody: explicit times", rc_str(utimensat(AT_FDCWD, base, ts, 0)), "EPERM");
    expect_str("nobody: now without write access", rc_str(utimensat(AT_FDCWD, base, NULL, 0)),
               "EACCES");
    struct timespec half[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    expect_str("nobody: now and omit", rc_str(utimensat(AT_FDCWD, base, half, 0)), "EPERM");
    expect_str("nobody: chown", rc_str(chown(base, 65534, -1)), "EPERM");
    expect_str("nobody: chgrp", rc_str(chown(base, -1, 65534)), "EPERM");
    expect_str("nobody: mknod char device", rc_str(mknod(at(".c"), S_IFCHR | 0600, makedev(1, 3))),
               "EPERM");
    _exit(g_finish());
  }
  int status2 = 0;
  CHECK(waitpid(child2, &status2, 0) == child2);
  say("unprivileged child exit: %d", WEXITSTATUS(status2));
  CHECK(chmod(at(".r"), 0666) == 0);
  child2 = fork();
  CHECK(child2 >= 0);
  if (child2 == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    expect_str("nobody: now with write access", rc_str(utimensat(AT_FDCWD, at(".r"), NULL, 0)),
               "ok");
    _exit(g_finish());
  }
  CHECK(waitpid(child2, &status2, 0) == child2);
  say("second child exit: %d", WEXITSTATUS(status2));

  CHECK(unlink(at(".r")) == 0 && unlink(at(".l")) == 0 && unlink(base) == 0);
  close(fd);
  return g_finish();
}
