/* tmpfile: a program that makes its own files, as test programs do with mkstemp and
 * O_TMPFILE: creating (mode under the umask, O_EXCL), writing and reading back, mapping the
 * file shared (stores reach read(2), write(2) reaches the mapping, msync), a child that
 * opens it again by name, rename, readdir listing it, truncate by name, chmod, unlink while
 * mapped (the name goes, the mapping and the descriptor keep the pages, maps says
 * "(deleted)"), and O_TMPFILE's unnamed file. Only facts that do not depend on the file
 * system under /tmp are printed (no block counts, devices or inode numbers). */
#include "guest.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static int listed(const char* dir, const char* name) {
  DIR* d = opendir(dir);
  CHECK(d != NULL);
  int found = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, name) == 0) found = e->d_type == DT_REG ? 1 : 2;
  closedir(d);
  return found;
}

int main(void) {
  umask(022);
  /* mkdtemp needs mkdir, which mmemu does not emulate: files go straight into /tmp. */
  const char* base = "/tmp";
  char path[128];
  snprintf(path, sizeof path, "%s/mmemu-guest-XXXXXX", base);
  int fd = mkstemp(path);
  expect_str("mkstemp", rc_str(fd), "ok");
  CHECK(fd >= 0);
  const char* name = strrchr(path, '/') + 1;
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  say("fstat: mode %o nlink %lu size %ld", st.st_mode, (unsigned long)st.st_nlink,
      (long)st.st_size);
  expect_str("O_CREAT|O_EXCL again", rc_str(open(path, O_RDWR | O_CREAT | O_EXCL, 0600)), "EEXIST");
  expect_yes("readdir lists it as a regular file", listed(base, name) == 1);

  expect_long("write", write(fd, "0123456789", 10), 10);
  char b[32] = {0};
  expect_long("pread", pread(fd, b, 4, 3), 4);
  say("  bytes %s", b);
  CHECK(ftruncate(fd, 2 * G_PAGE) == 0);
  char* m = mmap(0, 2 * G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(m != MAP_FAILED);
  say("shared mapping: %s", maps_entry(m, path));
  say("mapping sees the write: %.10s", m);
  m[G_PAGE] = 'M';
  expect_str("msync", rc_str(msync(m, 2 * G_PAGE, MS_SYNC)), "ok");
  CHECK(pread(fd, b, 1, G_PAGE) == 1);
  say("read sees the store: %c", b[0]);
  CHECK(pwrite(fd, "w", 1, 5) == 1);
  say("mapping sees pwrite: %c", m[5]);

  /* Another process opens it by name. */
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    int c = open(path, O_RDWR | O_APPEND);
    CHECK(c >= 0);
    CHECK(write(c, "+child", 6) == 6);
    CHECK(close(c) == 0);
    _exit(0);
  }
  int status;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(fstat(fd, &st) == 0);
  say("child %s; appended, size now %ld", wstatus_str(status), (long)st.st_size);
  CHECK(pread(fd, b, 6, 2 * G_PAGE) == 6);
  say("  appended bytes %.6s", b);

  /* By name: stat, access, chmod, truncate, rename. */
  struct stat ns;
  CHECK(stat(path, &ns) == 0);
  say("stat by name: same inode %s, size %ld", ns.st_ino == st.st_ino ? "yes" : "no",
      (long)ns.st_size);
  expect_str("access W_OK", rc_str(access(path, W_OK)), "ok");
  expect_str("chmod 0640", rc_str(chmod(path, 0640)), "ok");
  CHECK(fstat(fd, &st) == 0);
  say("mode after chmod: %o", st.st_mode);
  expect_str("fchmod 0600", rc_str(fchmod(fd, 0600)), "ok");
  expect_str("truncate by name", rc_str(truncate(path, G_PAGE + 1)), "ok");
  CHECK(fstat(fd, &st) == 0);
  say("size after truncate: %ld", (long)st.st_size);
  char moved[160];
  snprintf(moved, sizeof moved, "%s.moved", path);
  expect_str("rename", rc_str(rename(path, moved)), "ok");
  expect_str("old name after rename", rc_str(access(path, F_OK)), "ENOENT");
  expect_str("new name", rc_str(access(moved, F_OK)), "ok");
  say("mapping after rename: %s", maps_entry(m, path));
  char link[256], fdpath[64];
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
  ssize_t ln = readlink(fdpath, link, sizeof link - 1);
  CHECK(ln > 0);
  link[ln] = 0;
  say("fd link ends with .moved: %s", strstr(link, ".moved") ? "yes" : "no");

  /* creat truncates an existing file; a second name replaces by rename. */
  char other[160];
  snprintf(other, sizeof other, "%s.other", path);
  int o = creat(other, 0666);
  CHECK(o >= 0 && write(o, "abc", 3) == 3);
  CHECK(fstat(o, &st) == 0);
  say("creat: mode %o size %ld", st.st_mode, (long)st.st_size);
  close(o);
  o = creat(other, 0666);
  CHECK(o >= 0 && fstat(o, &st) == 0);
  say("creat again truncates: size %ld", (long)st.st_size);
  close(o);
  expect_str("rename over it", rc_str(rename(moved, other)), "ok");
  CHECK(stat(other, &ns) == 0);
  say("the target is the moved file: size %ld", (long)ns.st_size);

  /* unlink while open and mapped. */
  expect_str("unlink", rc_str(unlink(other)), "ok");
  expect_str("stat after unlink", rc_str(stat(other, &ns)), "ENOENT");
  expect_yes("readdir no longer lists it", listed(base, strrchr(other, '/') + 1) == 0);
  CHECK(fstat(fd, &st) == 0);
  say("fstat after unlink: nlink %lu size %ld", (unsigned long)st.st_nlink, (long)st.st_size);
  say("mapping after unlink: %s", maps_entry(m, path));
  m[0] = 'U';
  CHECK(pread(fd, b, 1, 0) == 1);
  say("mapping and descriptor still share the pages: %c", b[0]);
  expect_str("unlink again", rc_str(unlink(other)), "ENOENT");
  munmap(m, 2 * G_PAGE);
  close(fd);

  /* O_TMPFILE: a file with no name. */
  int t = open(base, O_TMPFILE | O_RDWR, 0600);
  expect_str("O_TMPFILE", rc_str(t), "ok");
  CHECK(t >= 0 && write(t, "tmp", 3) == 3 && fstat(t, &st) == 0);
  say("O_TMPFILE: mode %o nlink %lu size %ld", st.st_mode, (unsigned long)st.st_nlink,
      (long)st.st_size);
  ln = readlink((snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", t), fdpath), link,
                sizeof link - 1);
  CHECK(ln > 0);
  link[ln] = 0;
  say("O_TMPFILE link is deleted: %s", strstr(link, " (deleted)") ? "yes" : "no");
  close(t);
  expect_str("O_TMPFILE read-only", rc_str(open(base, O_TMPFILE | O_RDONLY, 0600)), "EINVAL");
  expect_str("O_CREAT in a missing directory",
             rc_str(open("/tmp/mmemu-no-such-dir/x", O_CREAT | O_RDWR, 0600)), "ENOENT");
  return g_finish();
}
