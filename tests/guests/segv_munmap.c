/* segv_munmap: touching memory after munmap raises SIGSEGV with si_code SEGV_MAPERR and
 * si_addr the exact byte touched; an SA_SIGINFO handler escapes with siglongjmp and the
 * program carries on. Covers a whole-mapping munmap, a hole punched in the middle of a
 * mapping (neighbours stay usable), reads and writes, and the page after a mapping end. */
#include "guest.h"

static sigjmp_buf jb;
static volatile int seen_sig, seen_code;
static void* volatile seen_addr;
static volatile int handler_calls;

static void on_segv(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  handler_calls++;
  seen_sig = sig;
  seen_code = si->si_code;
  seen_addr = si->si_addr;
  siglongjmp(jb, 1);
}

/* Reads (or writes) *p once; reports what the handler saw. */
static void touch(const char* what, volatile char* p, int write) {
  seen_sig = 0;
  seen_code = 0;
  seen_addr = NULL;
  if (sigsetjmp(jb, 1) == 0) {
    if (write) {
      *p = 1;
    } else {
      (void)*p;
    }
    say("%s: no fault", what);
    return;
  }
  say("%s: %s, %s, si_addr is the touched byte: %s", what, sig_name(seen_sig),
      seen_code == SEGV_MAPERR   ? "SEGV_MAPERR"
      : seen_code == SEGV_ACCERR ? "SEGV_ACCERR"
                                 : "other si_code",
      seen_addr == (void*)p ? "yes" : "no");
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);

  /* Whole mapping unmapped after use. */
  char* a = map_anon(2);
  memset(a, 7, 2 * G_PAGE);
  CHECK(munmap(a, 2 * G_PAGE) == 0);
  touch("read after munmap", a + 123, 0);
  touch("write after munmap", a + G_PAGE + 5, 1);

  /* A hole in the middle of a mapping: only the hole faults. */
  char* b = map_anon(5);
  memset(b, 9, 5 * G_PAGE);
  CHECK(munmap(b + 2 * G_PAGE, G_PAGE) == 0);
  touch("read in the hole", b + 2 * G_PAGE + 4000, 0);
  touch("write just below the hole", b + 2 * G_PAGE - 1, 1);
  touch("write just above the hole", b + 3 * G_PAGE, 1);
  expect_yes("neighbours kept their contents", b[0] == 9 && b[4 * G_PAGE + 1] == 9);

  /* munmap of an already unmapped range is not an error. */
  expect_str("munmap of the hole again", rc_str(munmap(b + 2 * G_PAGE, G_PAGE)), "ok");
  expect_str("munmap unaligned address", rc_str(munmap(b + 1, G_PAGE)), "EINVAL");
  expect_str("munmap length 0", rc_str(munmap(b, 0)), "EINVAL");

  /* A mapping re-created over the hole is fresh zeroed memory. */
  char* c = mmap(b + 2 * G_PAGE, G_PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(c == b + 2 * G_PAGE);
  expect_yes("refilled hole reads zero", all_zero(c, G_PAGE));
  touch("read in the refilled hole", c + 10, 0);

  expect_long("handler calls", handler_calls, 3);
  return g_finish();
}
