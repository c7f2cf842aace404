/* Shared helpers for mmemu guest programs (built static for x86_64 and arm64).
 *
 * Output rules: a guest's standard output is compared byte for byte between the host
 * kernel running the x86_64 build and mmemu running either build, so guests print only
 * address-independent, deterministic facts ("label: value" lines). All printing goes
 * straight to write(2) (no stdio buffer that a fork could duplicate).
 *
 * Exit status: 0 when every fact matched what Linux gives (expect_* helpers), 1 when an
 * expectation did not match (the differing line is on stdout, an explanation on stderr),
 * 2 when a CHECK failed (a precondition such as an mmap; "FAIL ..." on stdout). */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reserved mmemu system call: dump the page tables with a label. Arguments: label pointer,
 * label length. The host kernel answers -ENOSYS; mmemu answers 0. */
#define MMEMU_SYS_DUMP 0x6d6d

#define G_PAGE 4096UL

static int g_expect_failures;

static inline void g_write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static inline void g_vline(int fd, const char* fmt, va_list ap) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof buf - 2) n = (int)(sizeof buf - 2);
  buf[n++] = '\n';
  g_write_all(fd, buf, (size_t)n);
}

/* One line on stdout, newline appended, one write(2). */
__attribute__((format(printf, 1, 2))) static inline void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_vline(1, fmt, ap);
  va_end(ap);
}

/* One line on stderr (diagnostics that are not compared). */
__attribute__((format(printf, 1, 2))) static inline void note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_vline(2, fmt, ap);
  va_end(ap);
}

/* "ENOMEM", "EINVAL", ... ; "E<n>" for numbers glibc has no name for. */
static inline const char* errno_name(int e) {
  static char buf[24];
  const char* n = strerrorname_np(e);
  if (n) return n;
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

/* "SIGSEGV", ... */
static inline const char* sig_name(int s) {
  static char buf[24];
  const char* n = sigabbrev_np(s);
  if (n) {
    snprintf(buf, sizeof buf, "SIG%s", n);
  } else {
    snprintf(buf, sizeof buf, "signal %d", s);
  }
  return buf;
}

/* Result of a call that returns -1 and sets errno on failure: "ok" or the errno name. */
static inline const char* rc_str(long r) {
  return r == -1 ? errno_name(errno) : "ok";
}
static inline const char* ptr_str(const void* p) {
  return p == MAP_FAILED ? errno_name(errno) : "ok";
}

/* "exited 7" or "killed by SIGSEGV" (core-dump bit deliberately not shown). */
static inline const char* wstatus_str(int st) {
  static char buf[48];
  if (WIFEXITED(st)) {
    snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
  } else if (WIFSIGNALED(st)) {
    snprintf(buf, sizeof buf, "killed by %s", sig_name(WTERMSIG(st)));
  } else {
    snprintf(buf, sizeof buf, "status 0x%x", (unsigned)st);
  }
  return buf;
}

__attribute__((noreturn)) static inline void g_fail(const char* file, int line, const char* what) {
  int e = errno;
  say("FAIL %s:%d: %s (errno %s)", file, line, what, errno_name(e));
  _exit(2);
}

/* Fatal precondition: prints "FAIL file:line: cond (errno NAME)" and exits 2. */
#define CHECK(cond)                                 \
  do {                                              \
    if (!(cond)) g_fail(__FILE__, __LINE__, #cond); \
  } while (0)

/* Prints "label: got"; when got differs from what Linux gives, counts a failure and says so
 * on stderr. */
static inline void expect_str(const char* label, const char* got, const char* want) {
  say("%s: %s", label, got);
  if (strcmp(got, want) != 0) {
    g_expect_failures++;
    note("MISMATCH %s: got \"%s\", Linux gives \"%s\"", label, got, want);
  }
}

static inline void expect_long(const char* label, long got, long want) {
  say("%s: %ld", label, got);
  if (got != want) {
    g_expect_failures++;
    note("MISMATCH %s: got %ld, Linux gives %ld", label, got, want);
  }
}

/* Prints "label: yes|no", Linux gives "yes". */
static inline void expect_yes(const char* label, int cond) {
  expect_str(label, cond ? "yes" : "no", "yes");
}

/* End of main: 0 when every expectation held, 1 otherwise. */
static inline int g_finish(void) {
  if (g_expect_failures) {
    note("%d expectation(s) differ from Linux", g_expect_failures);
    return 1;
  }
  return 0;
}

/* Asks mmemu to dump its page tables. Harmless natively (-ENOSYS); errno is preserved. */
static inline long mmemu_dump(const char* label) {
  int saved = errno;
  long r = syscall(MMEMU_SYS_DUMP, label, strlen(label));
  errno = saved;
  return r;
}

/* ---- fault probes: touch an address, report the signal instead of dying ---- */

static sigjmp_buf g_probe_jmp;
static volatile sig_atomic_t g_probe_armed;
static volatile int g_probe_sig;
static volatile int g_probe_code;
static void* volatile g_probe_addr;

static inline void g_probe_handler(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  if (!g_probe_armed) {
    /* A fault outside a probe: die of it as if there were no handler. */
    signal(sig, SIG_DFL);
    return;
  }
  g_probe_armed = 0;
  g_probe_sig = sig;
  g_probe_code = si->si_code;
  g_probe_addr = si->si_addr;
  siglongjmp(g_probe_jmp, 1);
}

static inline void g_probe_install(void) {
  static int installed;
  if (installed) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = g_probe_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
  CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
  installed = 1;
}

static inline const char* g_probe_code_name(int sig, int code) {
  static char buf[40];
  if (sig == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR";
  if (sig == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR";
  if (sig == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR";
  if (sig == SIGBUS && code == BUS_ADRALN) return "BUS_ADRALN";
  snprintf(buf, sizeof buf, "%s code %d", sig_name(sig), code);
  return buf;
}

/* Reads (write=0) or writes `val` (write=1) one byte at p. Returns "ok", or the fault as
 * "SEGV_MAPERR"/"SEGV_ACCERR"/"BUS_ADRERR"; " wrong si_addr" is appended when the
 * reported address is not p. *out receives the byte read (or the value written). */
static inline const char* probe(void* p, int write, char val, char* out) {
  static char buf[64];
  g_probe_install();
  volatile char* vp = (volatile char*)p;
  if (sigsetjmp(g_probe_jmp, 1) == 0) {
    g_probe_armed = 1;
    char v;
    if (write) {
      *vp = val;
      v = val;
    } else {
      v = *vp;
    }
    g_probe_armed = 0;
    if (out) *out = v;
    return "ok";
  }
  const char* name = g_probe_code_name(g_probe_sig, g_probe_code);
  if (g_probe_addr != p) {
    snprintf(buf, sizeof buf, "%s wrong si_addr", name);
    return buf;
  }
  return name;
}

static inline const char* probe_read(void* p) {
  return probe(p, 0, 0, NULL);
}
static inline const char* probe_write(void* p, char v) {
  return probe(p, 1, v, NULL);
}

/* The whole of a (small) file into buf, NUL-terminated; CHECKs that it opens. */
static inline size_t g_read_file(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = 0;
  close(fd);
  return n;
}

/* The /proc/self/maps line of the mapping that starts at p, fields after the range:
 * "perms offset name" with the name's prefix `cut` removed (NULL: nothing cut), or
 * "not in maps". Device and inode are left out: they differ between machines. */
static inline const char* maps_entry(const void* p, const char* cut) {
  static char out[600];
  static char buf[1 << 16];
  g_read_file("/proc/self/maps", buf, sizeof buf);
  char want[32];
  snprintf(want, sizeof want, "%lx-", (unsigned long)p);
  for (char* line = buf; line && *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = 0;
    if (strncmp(line, want, strlen(want)) == 0) {
      char perms[8], name[512] = "";
      unsigned long off = 0;
      sscanf(line, "%*s %7s %lx %*s %*s %511[^\n]", perms, &off, name);
      const char* shown = name;
      if (cut && strncmp(name, cut, strlen(cut)) == 0) shown = name + strlen(cut);
      snprintf(out, sizeof out, "%s %lx %s", perms, off, shown);
      return out;
    }
    line = end ? end + 1 : NULL;
  }
  return "not in maps";
}

/* mincore residency of n pages as a string of '0'/'1', or the errno name. */
static inline const char* residency(void* p, size_t pages) {
  static char buf[256];
  unsigned char vec[255];
  if (pages > sizeof vec) pages = sizeof vec;
  if (mincore(p, pages * G_PAGE, vec) != 0) return errno_name(errno);
  for (size_t i = 0; i < pages; i++)
    buf[i] = (vec[i] & 1) ? '1' : '0';
  buf[pages] = '\0';
  return buf;
}

/* Anonymous private read-write mapping of n pages; CHECKed. */
static inline char* map_anon(size_t pages) {
  void* p = mmap(NULL, pages * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  return (char*)p;
}

/* True when [p, p+pages) is mapped (mincore answers ENOMEM for holes). */
static inline int is_mapped(void* p, size_t pages) {
  unsigned char vec[64];
  while (pages > 0) {
    size_t n = pages > 64 ? 64 : pages;
    if (mincore(p, n * G_PAGE, vec) != 0) return 0;
    p = (char*)p + n * G_PAGE;
    pages -= n;
  }
  return 1;
}

/* Fills a range with a pattern derived from seed; returns nothing. */
static inline void fill(void* p, size_t len, unsigned seed) {
  unsigned char* c = (unsigned char*)p;
  for (size_t i = 0; i < len; i++)
    c[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 12));
}

/* True when the range still holds fill(p, len, seed). */
static inline int filled(const void* p, size_t len, unsigned seed) {
  const unsigned char* c = (const unsigned char*)p;
  for (size_t i = 0; i < len; i++)
    if (c[i] != (unsigned char)(seed * 131u + i * 7u + (i >> 12))) return 0;
  return 1;
}

/* True when every byte of the range is zero. */
static inline int all_zero(const void* p, size_t len) {
  const unsigned char* c = (const unsigned char*)p;
  for (size_t i = 0; i < len; i++)
    if (c[i]) return 0;
  return 1;
}

/* Generated code, for the guests that run code they write (smc, shared_code, exec_reuse):
 * g_emit_add writes "return x + imm" (imm < 4096) for the running architecture at p and
 * returns its size; g_call calls the code at p. */
typedef long (*g_fn_t)(long);
static inline size_t g_emit_add(void* p, unsigned imm) {
#if defined(__x86_64__)
  unsigned char c[8] = {0x48, 0x8d, 0x87, 0, 0, 0, 0, 0xc3}; /* lea rax,[rdi+imm32]; ret */
  memcpy(c + 3, &imm, 4);
  memcpy(p, c, sizeof c);
  __builtin___clear_cache((char*)p, (char*)p + sizeof c);
  return sizeof c;
#elif defined(__aarch64__)
  uint32_t insn[2] = {0x91000000u | ((imm & 0xfffu) << 10), 0xd65f03c0u}; /* add; ret */
  memcpy(p, insn, sizeof insn);
  __builtin___clear_cache((char*)p, (char*)p + sizeof insn);
  return sizeof insn;
#else
#error "unsupported architecture"
#endif
}
static inline long g_call(void* p, long x) {
  g_fn_t f;
  memcpy(&f, &p, sizeof f);
  return f(x);
}
