/* PROCMAP_QUERY (Linux 6.11+) on an open /proc/self/maps: the VMA covering an address or,
 * with PROCMAP_QUERY_COVERING_OR_NEXT_VMA, the next one, filtered by permissions and file
 * backing; its flags, page size, offset, device, inode and name; and every argument check
 * (size bounds, a non-zero tail, unknown flags, buffer/size pairs, a short name buffer, bad
 * pointers, other ioctl numbers). Addresses are printed relative to a mapping. */
#include "guest.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct procmap_query {
  uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset,
      inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#define Q_COVERING_OR_NEXT 0x10
#define Q_FILE_BACKED 0x20

static int fd;
static char name[512];
static struct procmap_query last;

static int query(const char* what, const void* addr, uint64_t flags, uint32_t name_size,
                 const char* base) {
  struct procmap_query q;
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_flags = flags;
  q.query_addr = (uintptr_t)addr;
  memset(name, '#', sizeof name);
  q.vma_name_size = name_size;
  q.vma_name_addr = name_size ? (uintptr_t)name : 0;
  int r = ioctl(fd, PROCMAP_QUERY, &q);
  if (r != 0) {
    say("%s: %s", what, errno_name(errno));
    return r;
  }
  last = q;
  if (!base) {
    /* Where and how big depends on the architecture's layout: not printed. */
    say("%s: found", what);
    return 0;
  }
  say("%s: start %+lld len %llu flags 0x%llx page %llu offset %llu name_size %u", what,
      (long long)(q.vma_start - (uintptr_t)base), (unsigned long long)(q.vma_end - q.vma_start),
      (unsigned long long)q.vma_flags, (unsigned long long)q.vma_page_size,
      (unsigned long long)q.vma_offset, q.vma_name_size);
  return 0;
}

static const char* ioc(int r) {
  return r == 0 ? "ok" : errno_name(errno);
}

int main(void) {
  fd = open("/proc/self/maps", O_RDONLY);
  CHECK(fd >= 0);
  char* a = mmap(NULL, 5 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(a != MAP_FAILED);
  CHECK(munmap(a + G_PAGE, G_PAGE) == 0);
  CHECK(mprotect(a + 2 * G_PAGE, G_PAGE, PROT_READ | PROT_EXEC) == 0);
  CHECK(munmap(a + 4 * G_PAGE, G_PAGE) == 0);
  /* a: rw- | hole | r-x | rw- | hole */
  query("covering the first page", a, 0, 0, a);
  query("inside the first page", a + 100, 0, 0, a);
  query("in a hole", a + G_PAGE, 0, 0, a);
  query("in a hole, or next", a + G_PAGE, Q_COVERING_OR_NEXT, 0, a);
  query("the r-x page", a + 2 * G_PAGE + 5, 0, 0, a);
  query("writable, at the r-x page", a + 2 * G_PAGE, 0x2, 0, a);
  query("writable, at the r-x page, or next", a + 2 * G_PAGE, 0x2 | Q_COVERING_OR_NEXT, 0, a);
  query("executable", a + 2 * G_PAGE, 0x4, 0, a);
  query("shared, covering", a, 0x8, 0, a);
  query("anon with a name buffer", a, 0, 64, a);
  say("  name buffer untouched: %s", name[0] == '#' ? "yes" : "no");

  char* s = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  if (query("shared anon, shared only", s, 0x8 | 0x1 | 0x2, 0, s) == 0)
    say("  inode nonzero: %s", last.inode ? "yes" : "no");

  int hf = open("/etc/hostname", O_RDONLY);
  CHECK(hf >= 0);
  char* f = mmap(NULL, G_PAGE, PROT_READ, MAP_SHARED, hf, 0);
  CHECK(f != MAP_FAILED);
  struct stat st;
  CHECK(fstat(hf, &st) == 0);
  if (query("shared file", f, 0, 256, f) == 0) {
    say("  name: %s", name);
    say("  device and inode as fstat: %s", last.dev_major == major(st.st_dev) &&
                                                   last.dev_minor == minor(st.st_dev) &&
                                                   last.inode == st.st_ino
                                               ? "yes"
                                               : "no");
  }
  query("shared file, 4-byte name buffer", f, 0, 4, f);
  query("shared file, exact name buffer", f, 0, 14, f);
  say("  name: %s", name);

  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  CHECK(n > 0);
  exe[n] = 0;
  if (query("first file-backed VMA from 0", NULL, Q_FILE_BACKED | Q_COVERING_OR_NEXT, 256, NULL) ==
      0)
    say("  is the executable: %s, offset %llu, readable: %s", strcmp(name, exe) == 0 ? "yes" : "no",
        (unsigned long long)last.vma_offset, (last.vma_flags & 1) ? "yes" : "no");
  {
    struct procmap_query b;
    static unsigned char id[64];
    memset(&b, 0, sizeof b);
    b.size = sizeof b;
    b.query_flags = Q_FILE_BACKED | Q_COVERING_OR_NEXT;
    b.build_id_size = sizeof id;
    b.build_id_addr = (uintptr_t)id;
    int r = ioctl(fd, PROCMAP_QUERY, &b);
    say("the executable's build id: %s, size %u", ioc(r), b.build_id_size);
    b.build_id_size = 4;
    say("  into 4 bytes: %s", ioc(ioctl(fd, PROCMAP_QUERY, &b)));
    b.build_id_size = sizeof id;
    b.query_addr = (uintptr_t)f;
    b.query_flags = 0;
    r = ioctl(fd, PROCMAP_QUERY, &b);
    say("build id of /etc/hostname: %s, size %u", ioc(r), b.build_id_size);
  }
  query("first executable file-backed VMA", NULL, Q_FILE_BACKED | Q_COVERING_OR_NEXT | 0x4, 0,
        NULL);
  say("  readable and executable: %s", last.vma_flags == 0x5 ? "yes" : "no");
  int local = 0;
  if (query("a local variable", &local, 0, 64, NULL) == 0) say("  name: %s", name);
  void* brk_end = sbrk(0);
  if (query("the last heap byte", (char*)brk_end - 1, 0, 64, NULL) == 0) say("  name: %s", name);
  query("the last address, or next", (void*)-1, Q_COVERING_OR_NEXT, 0, NULL);

  /* Argument checks. */
  struct procmap_query q;
  memset(&q, 0, sizeof q);
  q.size = 16;
  say("size 16: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  q.size = 24;
  q.query_addr = (uintptr_t)a;
  int r = ioctl(fd, PROCMAP_QUERY, &q);
  say("size 24: %s, size left %llu, vma_start left: %s", ioc(r), (unsigned long long)q.size,
      q.vma_start == 0 ? "yes" : "no");
  static uint64_t big[1024];
  memcpy(big, &q, 24);
  big[0] = 4096;
  r = ioctl(fd, PROCMAP_QUERY, big);
  say("size 4096, zero tail: %s, vma_start relative %lld", ioc(r),
      (long long)(big[3] - (uintptr_t)a));
  big[0] = 4097;
  say("size 4097: %s", ioc(ioctl(fd, PROCMAP_QUERY, big)));
  big[0] = 200;
  big[150 / 8] = 1;
  say("size 200, non-zero tail: %s", ioc(ioctl(fd, PROCMAP_QUERY, big)));
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_addr = (uintptr_t)a;
  q.query_flags = 0x40;
  say("unknown flag 0x40: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  q.query_flags = 0;
  q.vma_name_size = 10;
  say("name size without address: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  q.vma_name_size = 0;
  q.vma_name_addr = (uintptr_t)name;
  say("name address without size: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  q.vma_name_addr = 0;
  q.build_id_size = 10;
  say("build id size without address: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  q.build_id_size = 0;
  q.vma_name_size = 100;
  q.vma_name_addr = 8;
  say("bad name address, unnamed VMA: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  q.query_addr = (uintptr_t)f;
  q.vma_name_size = 100;
  say("bad name address, file VMA: %s", ioc(ioctl(fd, PROCMAP_QUERY, &q)));
  void* volatile bad = (void*)8;
  say("bad argument pointer: %s", ioc(ioctl(fd, PROCMAP_QUERY, bad)));
  say("another ioctl number: %s", ioc(ioctl(fd, PROCMAP_QUERY + 1, &q)));
  say("PROCMAP_QUERY with a smaller size field: %s", ioc(ioctl(fd, _IOWR('f', 17, char[8]), &q)));
  int sm = open("/proc/self/smaps", O_RDONLY);
  CHECK(sm >= 0);
  say("on smaps: %s", ioc(ioctl(sm, PROCMAP_QUERY, &q)));

  /* A child's maps, queried after the child is gone. */
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(0);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  int cm = open(path, O_RDONLY);
  int wst;
  CHECK(waitpid(pid, &wst, 0) == pid);
  if (cm >= 0) {
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_addr = (uintptr_t)a;
    say("on a reaped child's maps: %s", ioc(ioctl(cm, PROCMAP_QUERY, &q)));
  }
  return g_finish();
}
