/* vsyscall: the legacy x86-64 vsyscall page at 0xffffffffff600000. Linux's default mode
 * (vsyscall=xonly) maps nothing there: a call to one of the three entries (gettimeofday at
 * +0x0, time at +0x400, getcpu at +0x800) faults on the instruction fetch and the kernel
 * emulates the call and the `ret`; any other entry, a bad pointer argument, or a data access
 * to the page is SIGSEGV. In vsyscall=emulate mode the page is also readable, and holds
 * `mov $NR, %rax; syscall; ret` at each entry. The mode is read from /proc/self/maps.
 * x86-64 only: the arm64 build says so and exits 0. */
#include "guest.h"

#if defined(__x86_64__)
#include <sched.h>
#include <sys/time.h>
#include <time.h>

#define VSYSCALL 0xffffffffff600000UL

typedef long (*vsys_fn)(long, long, long);

static char maps_line[256];

/* "xonly" (--xp), "emulate" (r-xp) or "none" (no [vsyscall] line). */
static const char* vsyscall_mode(void) {
  static char buf[1 << 16];
  g_read_file("/proc/self/maps", buf, sizeof buf);
  char* l = strstr(buf, "[vsyscall]");
  if (!l) return "none";
  while (l > buf && l[-1] != '\n')
    --l;
  char* e = strchr(l, '\n');
  size_t n = e ? (size_t)(e - l) : strlen(l);
  if (n >= sizeof maps_line) n = sizeof maps_line - 1;
  memcpy(maps_line, l, n);
  maps_line[n] = 0;
  return strstr(maps_line, " r-xp ") ? "emulate" : "xonly";
}

/* Calls the vsyscall entry at VSYSCALL + off with three arguments. "ok" (and *ret), or the
 * signal, its code and where si_addr points ("si_addr 0", "si_addr the entry", "si_addr the
 * argument", "si_addr elsewhere"). */
static const char* call_entry(unsigned long off, long a, long b, long* ret) {
  static char buf[96];
  g_probe_install();
  if (sigsetjmp(g_probe_jmp, 1) == 0) {
    g_probe_armed = 1;
    const long r = ((vsys_fn)(VSYSCALL + off))(a, b, 0);
    g_probe_armed = 0;
    *ret = r;
    return "ok";
  }
  const char* where = g_probe_addr == NULL                         ? "si_addr 0"
                      : g_probe_addr == (void*)(VSYSCALL + off)     ? "si_addr the entry"
                      : g_probe_addr == (void*)a                    ? "si_addr the argument"
                                                                    : "si_addr elsewhere";
  snprintf(buf, sizeof buf, "%s, %s", g_probe_code_name(g_probe_sig, g_probe_code), where);
  return buf;
}

static long ret;

static const char* call_ok(unsigned long off, long a, long b) {
  return call_entry(off, a, b, &ret);
}

int main(void) {
  const char* mode = vsyscall_mode();
  const int none = strcmp(mode, "none") == 0;
  const int emulate = strcmp(mode, "emulate") == 0;
  say("vsyscall mode: %s", mode);
  if (!none) say("maps line: %s", maps_line);
  const char* entry_ok = none ? "SEGV_MAPERR, si_addr the entry" : "ok";

  /* gettimeofday: 0 and the time of day, within a second or two of time(2). */
  struct timeval tv = {0, 0};
  struct timezone tz = {1, 1};
  const time_t before = time(NULL);
  expect_str("gettimeofday entry", call_ok(0x000, (long)&tv, (long)&tz), entry_ok);
  if (!none) {
    expect_long("gettimeofday returns", ret, 0);
    expect_yes("gettimeofday gives the time",
               tv.tv_sec >= before && tv.tv_sec <= time(NULL) + 1 && tv.tv_usec < 1000000);
    expect_str("gettimeofday with NULL pointers", call_ok(0x000, 0, 0), "ok");
    expect_long("gettimeofday with NULL pointers returns", ret, 0);
  }

  /* time: the seconds, returned and stored. */
  long t = 0;
  expect_str("time entry", call_ok(0x400, (long)&t, 0), entry_ok);
  if (!none) {
    expect_yes("time returns what it stored", ret == t);
    expect_yes("time gives the time", t >= before && t <= time(NULL) + 1);
    expect_str("time with NULL", call_ok(0x400, 0, 0), "ok");
    expect_yes("time with NULL gives the time", ret >= before && ret <= time(NULL) + 1);
  }

  /* getcpu: 0, a CPU this process may run on, node 0. */
  unsigned cpu = ~0u, node = ~0u;
  expect_str("getcpu entry", call_ok(0x800, (long)&cpu, (long)&node), entry_ok);
  if (!none) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    expect_long("getcpu returns", ret, 0);
    expect_yes("getcpu gives an allowed cpu", cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set));
    expect_long("getcpu node", node, 0);
    expect_str("getcpu with NULL pointers", call_ok(0x800, 0, 0), "ok");
  }

  /* Not an entry: SIGSEGV from the kernel (SI_KERNEL, si_addr 0); none: a plain fault. */
  const char* bad_entry = none ? "SEGV_MAPERR, si_addr the entry" : "SIGSEGV code 128, si_addr 0";
  expect_str("call entry +0x10", call_ok(0x010, 0, 0), bad_entry);
  expect_str("call entry +0xc00", call_ok(0xc00, 0, 0), bad_entry);
  expect_str("call entry +0x401", call_ok(0x401, 0, 0), bad_entry);

  /* Pointer arguments: beyond user space fails the access_ok check (SEGV_MAPERR at the
   * pointer); an unmapped user address fails the copy (SIGSEGV from the kernel). */
  char* hole = mmap(NULL, G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(hole != MAP_FAILED);
  CHECK(munmap(hole, G_PAGE) == 0);
  if (!none) {
    expect_str("gettimeofday to a kernel address", call_ok(0x000, (long)0xffff888000000000UL, 0),
               "SEGV_MAPERR, si_addr the argument");
    expect_str("time to a kernel address", call_ok(0x400, (long)0xffff888000000000UL, 0),
               "SEGV_MAPERR, si_addr the argument");
    expect_str("getcpu to a kernel address", call_ok(0x800, (long)0xffff888000000000UL, 0),
               "SEGV_MAPERR, si_addr the argument");
    expect_str("gettimeofday to an unmapped page", call_ok(0x000, (long)hole, 0),
               "SIGSEGV code 128, si_addr 0");
    expect_str("time to an unmapped page", call_ok(0x400, (long)hole, 0),
               "SIGSEGV code 128, si_addr 0");
  }

  /* Data accesses: readable only in emulate mode; never writable. */
  char* page = (char*)VSYSCALL;
  expect_str("read the page", probe_read(page), emulate ? "ok" : "SEGV_MAPERR");
  if (emulate) {
    static const unsigned char want[] = {0x48, 0xc7, 0xc0, 0x60, 0, 0, 0, 0x0f, 0x05, 0xc3};
    expect_yes("the gettimeofday entry's code", memcmp(page, want, sizeof want) == 0);
    expect_yes("padding is int3", (unsigned char)page[0x10] == 0xcc);
  }
  expect_str("read the page at +0x800", probe_read(page + 0x800), emulate ? "ok" : "SEGV_MAPERR");
  expect_str("write the page", probe_write(page + 8, 1), "SEGV_MAPERR");
  /* System calls never read it: it lies beyond user space (access_ok). */
  int fds[2];
  CHECK(pipe(fds) == 0);
  expect_str("write(2) from the page", rc_str(write(fds[1], page, 16)), "EFAULT");
  return g_finish();
}

#else
int main(void) {
  say("vsyscall: x86-64 only");
  return 0;
}
#endif
