/* /proc/self/pagemap (and a child's): the flag bits of each kind of page (present, file or
 * shared-anon, exclusively mapped; soft-dirty and swap never set on a kernel without
 * CONFIG_MEM_SOFT_DIRTY and without swap), the PFN shown only to CAP_SYS_ADMIN, entries of
 * a range with a hole, and the file's errors. The PFN itself is never printed. */
#include "guest.h"

#include <sys/ioctl.h>

static int pm;
static void* volatile bad_buf = (void*)8;

static uint64_t entry_of(int fd, const void* p) {
  uint64_t e = 0;
  CHECK(pread(fd, &e, 8, (off_t)((uintptr_t)p / G_PAGE * 8)) == 8);
  return e;
}

/* The flag bits (63..55) as hex, and whether the PFN field is what this caller may see. */
static void show(const char* label, int fd, const void* p, int pfn_expected) {
  uint64_t e = entry_of(fd, p);
  uint64_t pfn = e & ((1ULL << 55) - 1);
  say("%s: flags 0x%03llx", label, (unsigned long long)(e >> 55));
  if (pfn_expected >= 0) {
    /* root (CAP_SYS_ADMIN) sees the frame number, anyone else 0 */
    int want_nonzero = pfn_expected && geteuid() == 0;
    expect_yes("  pfn as the caller may see it", (pfn != 0) == want_nonzero);
  }
}

static const char* rw_str(ssize_t r) {
  static char b[32];
  if (r < 0) return errno_name(errno);
  snprintf(b, sizeof b, "%zd", r);
  return b;
}

int main(void) {
  pm = open("/proc/self/pagemap", O_RDONLY);
  CHECK(pm >= 0);
  char* a = mmap(NULL, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(a != MAP_FAILED);
  show("anon untouched", pm, a, 0);
  volatile char c = a[G_PAGE];
  (void)c;
  show("anon read (zero page)", pm, a + G_PAGE, -1);
  a[2 * G_PAGE] = 1;
  show("anon written", pm, a + 2 * G_PAGE, 1);

  char* s = mmap(NULL, 2 * G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  s[0] = 1;
  show("shared anon written", pm, s, 1);
  c = s[G_PAGE];
  show("shared anon read", pm, s + G_PAGE, 1);

  int exe = open("/proc/self/exe", O_RDONLY);
  CHECK(exe >= 0);
  char* f = mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, exe, 0);
  CHECK(f != MAP_FAILED);
  show("file untouched", pm, f, 0);
  c = f[0];
  show("file read", pm, f, 1);
  char* fw = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, exe, 0);
  CHECK(fw != MAP_FAILED);
  c = fw[0];
  show("private file read", pm, fw, 1);
  fw[0] = 'x';
  show("private file written", pm, fw, 1);

  char* pn = mmap(NULL, G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(pn != MAP_FAILED);
  show("PROT_NONE untouched", pm, pn, 0);
  CHECK(mprotect(a + 2 * G_PAGE, G_PAGE, PROT_NONE) == 0);
  show("written, then PROT_NONE", pm, a + 2 * G_PAGE, 1);
  CHECK(mprotect(a + 2 * G_PAGE, G_PAGE, PROT_READ | PROT_WRITE) == 0);

  /* Four entries in one read, across a hole. */
  CHECK(munmap(a + 3 * G_PAGE, G_PAGE) == 0);
  uint64_t four[4];
  ssize_t r = pread(pm, four, sizeof four, (off_t)((uintptr_t)a / G_PAGE * 8));
  say("read 4 entries: %s", rw_str(r));
  for (int i = 0; i < 4; i++)
    say("  entry %d: flags 0x%03llx", i, (unsigned long long)(four[i] >> 55));

  /* A forked child shares the written page: not exclusive in either, until one writes. */
  int go[2], done[2];
  CHECK(pipe(go) == 0 && pipe(done) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    show("child: COW-shared page", pm, a + 2 * G_PAGE, 1);
    a[2 * G_PAGE] = 2;
    show("child: after its write", pm, a + 2 * G_PAGE, 1);
    CHECK(write(done[1], "x", 1) == 1);
    char b;
    CHECK(read(go[0], &b, 1) == 1);
    _exit(0);
  }
  char b;
  CHECK(read(done[0], &b, 1) == 1);
  show("parent: after the child's write", pm, a + 2 * G_PAGE, 1);
  show("parent: shared anon while the child lives", pm, s, 1);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
  int cpm = open(path, O_RDONLY);
  say("open the child's pagemap: %s", rc_str(cpm));
  if (cpm >= 0) {
    show("child's entry, read by the parent", cpm, a + 2 * G_PAGE, 1);
    show("child's untouched page", cpm, a, 0);
  }
  CHECK(write(go[1], "g", 1) == 1);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  say("child: %s", wstatus_str(st));
  if (cpm >= 0) {
    uint64_t e = 1;
    r = pread(cpm, &e, 8, (off_t)((uintptr_t)a / G_PAGE * 8));
    say("the reaped child's pagemap: %s", rw_str(r));
    close(cpm);
  }

  /* Errors and positions. */
  uint64_t buf[4];
  errno = 0;
  say("pread at offset 4: %s", rw_str(pread(pm, buf, 8, 4)));
  say("pread of 4 bytes: %s", rw_str(pread(pm, buf, 4, 0)));
  say("pread of 0 bytes: %s", rw_str(pread(pm, buf, 0, 0)));
  say("pread past the user half: %s",
      rw_str(pread(pm, buf, 8, (off_t)((1ULL << 48) / G_PAGE * 8))));
  say("pread where pos + count overflows: %s", rw_str(pread(pm, buf, 16, 0x7ffffffffffffff8LL)));
  say("pread at a negative offset: %s", rw_str(pread(pm, buf, 8, -8)));
  say("pread into a bad buffer: %s", rw_str(pread(pm, bad_buf, 8, 0)));
  say("lseek SEEK_END: %s", rc_str(lseek(pm, 0, SEEK_END)));
  say("lseek to 5: %lld", (long long)lseek(pm, 5, SEEK_SET));
  say("read at 5: %s", rw_str(read(pm, buf, 8)));
  off_t at = (off_t)((uintptr_t)a / G_PAGE * 8);
  CHECK(lseek(pm, at, SEEK_SET) == at);
  say("read 32 bytes: %s", rw_str(read(pm, buf, 32)));
  say("position moved by: %lld", (long long)(lseek(pm, 0, SEEK_CUR) - at));
  errno = 0;
  long neg = (long)lseek(pm, -16, SEEK_SET);
  say("lseek to -16: %ld %s", neg, errno ? errno_name(errno) : "");
  say("read at -16: %s", rw_str(read(pm, buf, 8)));
  say("write: %s", rw_str(write(pm, buf, 8)));
  void* m = mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, pm, 0);
  say("mmap: %s", ptr_str(m));
  say("ioctl 0x1234: %s", rc_str(ioctl(pm, 0x1234, 0)));
  int rw = open("/proc/self/pagemap", O_RDWR);
  say("open O_RDWR as %s: %s", geteuid() == 0 ? "root" : "user",
      geteuid() == 0 ? rc_str(rw) : "skipped");
  if (rw >= 0) say("write on O_RDWR: %s", rw_str(write(rw, buf, 8)));
  return g_finish();
}
