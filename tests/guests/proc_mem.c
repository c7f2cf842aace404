/* /proc/self/mem (and a child's): reads and writes at guest addresses through GUP with
 * FOLL_FORCE. A write into a read-only private mapping succeeds and breaks COW (the page
 * becomes an exclusive anonymous one, the file is untouched, the mapping stays read-only);
 * a read-only shared mapping refuses it (EIO); PROT_NONE and write-only pages can be read;
 * an unmapped start is EIO and a range running into a hole is short. Positions are
 * unsigned: lseek goes anywhere, reads there fail with EIO. */
#include "guest.h"

static int pm, mem;
static void* volatile bad_buf = (void*)8;

static uint64_t flags_of(const void* p) {
  uint64_t e = 0;
  CHECK(pread(pm, &e, 8, (off_t)((uintptr_t)p / G_PAGE * 8)) == 8);
  return e >> 55;
}
static uint64_t pfn_of(const void* p) {
  uint64_t e = 0;
  CHECK(pread(pm, &e, 8, (off_t)((uintptr_t)p / G_PAGE * 8)) == 8);
  return e & ((1ULL << 55) - 1);
}

static const char* rw_str(ssize_t r) {
  static char b[32];
  if (r < 0) return errno_name(errno);
  snprintf(b, sizeof b, "%zd", r);
  return b;
}
#define AT(p) ((off_t)(uintptr_t)(p))

int main(void) {
  pm = open("/proc/self/pagemap", O_RDONLY);
  CHECK(pm >= 0);
  mem = open("/proc/self/mem", O_RDWR);
  say("open /proc/self/mem O_RDWR: %s", rc_str(mem));
  CHECK(mem >= 0);
  static char buf[8192];
  memset(buf, 'B', sizeof buf);
  char* a = mmap(NULL, 3 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(a != MAP_FAILED);
  memset(a, 'a', 3 * G_PAGE);
  CHECK(munmap(a + 2 * G_PAGE, G_PAGE) == 0);

  say("pread 16 at a mapping: %s", rw_str(pread(mem, buf, 16, AT(a))));
  say("  bytes: %.4s", buf);
  say("pread 8192 running into a hole: %s", rw_str(pread(mem, buf, 8192, AT(a + G_PAGE))));
  say("pread 8192 from 100 bytes before a hole: %s",
      rw_str(pread(mem, buf, 8192, AT(a + 2 * G_PAGE - 100))));
  say("pread in a hole: %s", rw_str(pread(mem, buf, 16, AT(a + 2 * G_PAGE))));
  say("pread at 0: %s", rw_str(pread(mem, buf, 16, 0)));
  say("pread at a negative offset: %s", rw_str(pread(mem, buf, 16, -1)));
  say("pread at 0x7ffffffffffffff8: %s", rw_str(pread(mem, buf, 16, 0x7ffffffffffffff8LL)));
  say("pwrite in a hole: %s", rw_str(pwrite(mem, buf, 16, AT(a + 2 * G_PAGE))));
  memset(buf, 'W', sizeof buf);
  say("pwrite 8192 running into a hole: %s", rw_str(pwrite(mem, buf, 8192, AT(a + G_PAGE))));
  say("  written: %c%c, before: %c", a[G_PAGE], a[2 * G_PAGE - 1], a[G_PAGE - 1]);

  /* Read-only private anonymous memory: written in place (the page is exclusive). */
  char* ro = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(ro != MAP_FAILED);
  ro[0] = 'r';
  uint64_t ro_pfn = pfn_of(ro);
  CHECK(mprotect(ro, G_PAGE, PROT_READ) == 0);
  say("pwrite into read-only private anon: %s", rw_str(pwrite(mem, "W", 1, AT(ro))));
  say("  now %c, flags 0x%03llx, same frame: %s", ro[0], (unsigned long long)flags_of(ro),
      pfn_of(ro) == ro_pfn ? "yes" : "no");

  /* Read-only private file mapping (the executable): COW into an anonymous copy. */
  int exe = open("/proc/self/exe", O_RDONLY);
  CHECK(exe >= 0);
  char head[4];
  CHECK(pread(exe, head, 4, 0) == 4);
  char* fr = mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, exe, 0);
  CHECK(fr != MAP_FAILED);
  say("untouched file page: flags 0x%03llx", (unsigned long long)flags_of(fr));
  volatile char c = fr[1];
  (void)c;
  say("read file page: flags 0x%03llx", (unsigned long long)flags_of(fr));
  uint64_t before = pfn_of(fr);
  say("pwrite into read-only private file: %s", rw_str(pwrite(mem, "X", 1, AT(fr))));
  char now[4];
  CHECK(pread(exe, now, 4, 0) == 4);
  say("  mapping %c%c%c%c, file unchanged: %s, flags 0x%03llx, frame changed: %s", fr[0], fr[1],
      fr[2], fr[3], memcmp(now, head, 4) == 0 ? "yes" : "no", (unsigned long long)flags_of(fr),
      geteuid() != 0 || pfn_of(fr) != before ? "yes" : "no");
  /* The mapping stays read-only: a store still faults. */
  say("  store into it: %s", probe_write(fr, 'q'));
  CHECK(mprotect(fr, G_PAGE, PROT_READ | PROT_WRITE) == 0);
  uint64_t cow = pfn_of(fr);
  fr[1] = 'Y';
  say("  after mprotect(RW) and a store: %c%c, same frame: %s", fr[0], fr[1],
      pfn_of(fr) == cow ? "yes" : "no");
  /* Never touched: the forced write faults the copy in directly. */
  char* fr2 = mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, exe, 0);
  CHECK(fr2 != MAP_FAILED);
  say("pwrite into an untouched read-only private file page: %s",
      rw_str(pwrite(mem, "Z", 1, AT(fr2))));
  say("  %c%c%c%c, flags 0x%03llx", fr2[0], fr2[1], fr2[2], fr2[3],
      (unsigned long long)flags_of(fr2));

  /* Read-only shared mappings cannot be forced. */
  char* fs = mmap(NULL, G_PAGE, PROT_READ, MAP_SHARED, exe, 0);
  CHECK(fs != MAP_FAILED);
  say("pwrite into read-only shared file: %s", rw_str(pwrite(mem, "S", 1, AT(fs))));
  say("pread of it: %s", rw_str(pread(mem, buf, 4, AT(fs))));
  char* sa = mmap(NULL, G_PAGE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(sa != MAP_FAILED);
  say("pwrite into read-only shared anon: %s", rw_str(pwrite(mem, "S", 1, AT(sa))));
  char* sw = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(sw != MAP_FAILED);
  say("pwrite into writable shared anon: %s", rw_str(pwrite(mem, "Q", 1, AT(sw))));
  say("  reads %c, flags 0x%03llx", sw[0], (unsigned long long)flags_of(sw));

  /* PROT_NONE and write-only. */
  char* pn = mmap(NULL, G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(pn != MAP_FAILED);
  say("pread of untouched PROT_NONE: %s", rw_str(pread(mem, buf, 4, AT(pn))));
  say("  flags after 0x%03llx", (unsigned long long)flags_of(pn));
  say("pwrite into PROT_NONE: %s", rw_str(pwrite(mem, "N", 1, AT(pn))));
  say("  flags after 0x%03llx", (unsigned long long)flags_of(pn));
  CHECK(mprotect(pn, G_PAGE, PROT_READ) == 0);
  say("  reads %c", pn[0]);
  char* pn2 = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(pn2 != MAP_FAILED);
  pn2[0] = 'p';
  CHECK(mprotect(pn2, G_PAGE, PROT_NONE) == 0);
  buf[0] = 0;
  say("pread of a written PROT_NONE page: %s", rw_str(pread(mem, buf, 1, AT(pn2))));
  say("  byte %c", buf[0]);
  char* wo = mmap(NULL, G_PAGE, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(wo != MAP_FAILED);
  say("pread of write-only: %s", rw_str(pread(mem, buf, 1, AT(wo))));

  /* The position: read/write advance it, lseek goes anywhere. */
  say("lseek to the mapping: %s", lseek(mem, AT(a), SEEK_SET) == AT(a) ? "ok" : "wrong");
  say("read 4: %s", rw_str(read(mem, buf, 4)));
  say("moved by: %lld", (long long)(lseek(mem, 0, SEEK_CUR) - AT(a)));
  say("write 2: %s", rw_str(write(mem, "ZZ", 2)));
  say("  mapping: %.8s", a);
  say("lseek SEEK_END: %s", rc_str(lseek(mem, 0, SEEK_END)));
  errno = 0;
  long neg = (long)lseek(mem, -16, SEEK_SET);
  say("lseek to -16: %ld %s", neg, errno ? errno_name(errno) : "");
  say("read there: %s", rw_str(read(mem, buf, 4)));
  say("pread of 0 bytes: %s", rw_str(pread(mem, buf, 0, AT(a))));
  say("pread into a bad buffer: %s", rw_str(pread(mem, bad_buf, 4, AT(a))));
  say("pwrite from a bad buffer: %s", rw_str(pwrite(mem, bad_buf, 4, AT(a))));
  int mr = open("/proc/self/mem", O_RDONLY);
  CHECK(mr >= 0);
  say("pwrite on O_RDONLY: %s", rw_str(pwrite(mr, "x", 1, AT(a))));
  say("mmap: %s", ptr_str(mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, mem, 0)));

  /* A child's memory: written by the parent, COW separates them. */
  int go[2], done[2];
  CHECK(pipe(go) == 0 && pipe(done) == 0);
  a[0] = 'P';
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    CHECK(write(done[1], "x", 1) == 1);
    char b;
    CHECK(read(go[0], &b, 1) == 1);
    say("child sees: %c", a[0]);
    _exit(0);
  }
  char b;
  CHECK(read(done[0], &b, 1) == 1);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
  int cm = open(path, O_RDWR);
  say("open the child's mem: %s", rc_str(cm));
  if (cm >= 0) say("pwrite into the child: %s", rw_str(pwrite(cm, "C", 1, AT(a))));
  say("parent sees: %c", a[0]);
  CHECK(write(go[1], "g", 1) == 1);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  say("child: %s", wstatus_str(st));
  if (cm >= 0) say("pread of the reaped child: %s", rw_str(pread(cm, buf, 1, AT(a))));
  return g_finish();
}
