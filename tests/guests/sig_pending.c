/* sig_pending: signals already pending when a call changes the mask are taken at once.
 * - sigsuspend: SIGCHLD blocked, a child exits, sigsuspend(empty) returns -1 EINTR at once
 *   after the handler ran (with the suspend mask + SIGCHLD blocked inside); the old mask
 *   is back afterwards (what zsh does before every command);
 * - a pending signal whose action is to ignore it (SIGURG by default) does not end
 *   sigsuspend, alone (an interval timer's SIGALRM does) or with a handled one above it
 *   (-1 EINTR, not a silent restart);
 * - ppoll and pselect6 with a mask: a pending signal the mask lets through gives -1 EINTR
 *   and runs the handler, the old mask comes back after it; with a descriptor ready they
 *   return it, the old mask is back at once and the signal stays pending, undelivered;
 * - rt_sigtimedwait: a pending signal of the set is returned at once and dequeued,
 *   standard signals first; standard signals coalesce, real-time ones queue with their
 *   values in order; a zero timeout with nothing pending is EAGAIN;
 * - rt_sigprocmask unblocking several pending signals: each gets a frame on top of the
 *   previous one, so the highest runs first (SIGTERM, SIGUSR2, SIGUSR1), each with the
 *   masks of the frames below; queued real-time instances run one after the other, or
 *   nested (last first) with SA_NODEFER;
 * - a signal raised inside a handler runs nested inside it. */
#include <poll.h>
#include <sys/select.h>
#include <sys/time.h>

#include "guest.h"

/* Volatile: handlers run inside calls the compiler sees as unable to touch statics. */
static volatile char trail[256];
static volatile int trail_n;

static void mark(const char* s) {
  while (*s && trail_n < (int)sizeof trail - 1)
    trail[trail_n++] = *s++;
  trail[trail_n] = 0;
}

static const char* trail_take(void) {
  static char out[256];
  for (unsigned i = 0; i < sizeof out; i++)
    out[i] = trail[i];
  trail_n = 0;
  trail[0] = 0;
  return out;
}

static char sig_letter(int s) {
  switch (s) {
    case SIGUSR1:
      return '1';
    case SIGUSR2:
      return '2';
    case SIGTERM:
      return 'T';
    case SIGCHLD:
      return 'C';
    case SIGALRM:
      return 'A';
    case SIGWINCH:
      return 'W';
    case SIGURG:
      return 'U';
    default:
      return '?';
  }
}

/* Records the signal and which of USR1, USR2, TERM, CHLD are blocked while it runs. */
static void on_sig(int s) {
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  char buf[16];
  int n = 0;
  buf[n++] = sig_letter(s);
  buf[n++] = '[';
  const int watch[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD};
  for (unsigned i = 0; i < 4; i++)
    if (sigismember(&cur, watch[i])) buf[n++] = sig_letter(watch[i]);
  buf[n++] = ']';
  buf[n] = 0;
  mark(buf);
}

static void on_rt(int s, siginfo_t* si, void* uc) {
  (void)uc;
  char buf[32];
  snprintf(buf, sizeof buf, "R%d:%d ", s - SIGRTMIN, si->si_value.sival_int);
  mark(buf);
}

static void on_nest_outer(int s) {
  (void)s;
  mark("1<");
  raise(SIGUSR2);
  mark("1>");
}

static void on_nest_inner(int s) {
  (void)s;
  mark("2");
}

static void handle(int s, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  CHECK(sigaction(s, &sa, NULL) == 0);
}

static void handle_rt(int s, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO | flags;
  CHECK(sigaction(s, &sa, NULL) == 0);
}

static sigset_t set_of(int a, int b, int c) {
  sigset_t s;
  sigemptyset(&s);
  if (a) sigaddset(&s, a);
  if (b) sigaddset(&s, b);
  if (c) sigaddset(&s, c);
  return s;
}

static const char* mask_now(void) {
  static char buf[16];
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  int n = 0;
  const int watch[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD, SIGURG, SIGWINCH};
  for (unsigned i = 0; i < 6; i++)
    if (sigismember(&cur, watch[i])) buf[n++] = sig_letter(watch[i]);
  buf[n] = 0;
  return n ? buf : "-";
}

static const char* pending_now(void) {
  static char buf[16];
  sigset_t p;
  sigpending(&p);
  int n = 0;
  const int watch[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD, SIGURG, SIGWINCH};
  for (unsigned i = 0; i < 6; i++)
    if (sigismember(&p, watch[i])) buf[n++] = sig_letter(watch[i]);
  buf[n] = 0;
  return n ? buf : "-";
}

static void restore_mask(void) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static void test_sigsuspend_child(void) {
  handle(SIGCHLD, on_sig);
  sigset_t chld = set_of(SIGCHLD, 0, 0), empty;
  sigemptyset(&empty);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(3);
  int st;
  /* Only a reaped-later child: waitid WNOWAIT waits for the exit without reaping. */
  siginfo_t si;
  CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
  say("sigsuspend chld pending: %s", pending_now());
  errno = 0;
  int r = sigsuspend(&empty);
  say("sigsuspend chld: %d %s handlers %s mask after %s", r, errno_name(errno), trail_take(),
      mask_now());
  CHECK(waitpid(pid, &st, 0) == pid);
  say("child status: %d", WEXITSTATUS(st));
  handle(SIGCHLD, SIG_DFL);
  restore_mask();
}

static void test_sigsuspend_ignored(void) {
  handle(SIGALRM, on_sig);
  handle(SIGWINCH, on_sig);
  sigset_t urg = set_of(SIGURG, SIGWINCH, 0), empty;
  sigemptyset(&empty);
  sigprocmask(SIG_BLOCK, &urg, NULL);
  raise(SIGURG);
  say("ignored pending: %s", pending_now());
  struct itimerval it = {{0, 0}, {0, 50000}};
  CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
  errno = 0;
  int r = sigsuspend(&empty);
  say("sigsuspend ignored: %d %s handlers %s pending after %s", r, errno_name(errno), trail_take(),
      pending_now());
  /* An ignored signal below a handled one: the handler's EINTR, no restart. */
  raise(SIGURG);
  raise(SIGWINCH);
  errno = 0;
  r = sigsuspend(&empty);
  say("sigsuspend ignored+handled: %d %s handlers %s mask after %s", r, errno_name(errno),
      trail_take(), mask_now());
  handle(SIGWINCH, SIG_DFL);
  handle(SIGALRM, SIG_DFL);
  restore_mask();
}

static void test_ppoll_pselect(void) {
  handle(SIGUSR1, on_sig);
  sigset_t usr1 = set_of(SIGUSR1, 0, 0), empty;
  sigemptyset(&empty);
  sigprocmask(SIG_BLOCK, &usr1, NULL);

  raise(SIGUSR1);
  errno = 0;
  int r = ppoll(NULL, 0, NULL, &empty);
  say("ppoll pending: %d %s handlers %s mask after %s", r, errno_name(errno), trail_take(),
      mask_now());

  raise(SIGUSR1);
  errno = 0;
  r = pselect(0, NULL, NULL, NULL, NULL, &empty);
  say("pselect pending: %d %s handlers %s mask after %s", r, errno_name(errno), trail_take(),
      mask_now());

  /* A ready descriptor wins: the call returns it, the signal stays pending. */
  int fds[2];
  CHECK(pipe(fds) == 0);
  CHECK(write(fds[1], "x", 1) == 1);
  raise(SIGUSR1);
  struct pollfd pfd = {fds[0], POLLIN, 0};
  struct timespec ts = {5, 0};
  errno = 0;
  r = ppoll(&pfd, 1, &ts, &empty);
  say("ppoll ready: %d revents %#x handlers %s mask after %s pending %s", r, pfd.revents,
      trail_take(), mask_now(), pending_now());
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(fds[0], &rd);
  ts.tv_sec = 5;
  ts.tv_nsec = 0;
  r = pselect(fds[0] + 1, &rd, NULL, NULL, &ts, &empty);
  say("pselect ready: %d isset %d handlers %s mask after %s pending %s", r, FD_ISSET(fds[0], &rd),
      trail_take(), mask_now(), pending_now());
  /* Nothing ready, zero timeout: 0, and the mask lets nothing run either. */
  char c;
  CHECK(read(fds[0], &c, 1) == 1);
  ts.tv_sec = 0;
  r = ppoll(&pfd, 1, &ts, &usr1);
  say("ppoll timeout: %d handlers %s pending %s", r, trail_take(), pending_now());
  sigprocmask(SIG_UNBLOCK, &usr1, NULL);
  say("unblocked: handlers %s", trail_take());
  close(fds[0]);
  close(fds[1]);
  handle(SIGUSR1, SIG_DFL);
  restore_mask();
}

static void test_sigtimedwait(void) {
  handle_rt(SIGRTMIN, 0);
  handle_rt(SIGRTMIN + 1, 0);
  handle(SIGUSR1, on_sig);
  sigset_t set = set_of(SIGUSR1, SIGRTMIN, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  struct timespec zero = {0, 0};
  errno = 0;
  int r = sigtimedwait(&set, NULL, &zero);
  say("sigtimedwait nothing: %d %s", r, errno_name(errno));
  union sigval v;
  for (int i = 1; i <= 3; i++) {
    v.sival_int = i;
    CHECK(sigqueue(getpid(), SIGRTMIN + 1, v) == 0);
  }
  v.sival_int = 9;
  CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
  raise(SIGUSR1);
  raise(SIGUSR1);
  for (;;) {
    siginfo_t si;
    r = sigtimedwait(&set, &si, &zero);
    if (r < 0) {
      say("sigtimedwait end: %s", errno_name(errno));
      break;
    }
    if (r == SIGUSR1)
      say("sigtimedwait: SIGUSR1 code %d", si.si_code);
    else
      say("sigtimedwait: SIGRTMIN+%d value %d code %d", r - SIGRTMIN, si.si_value.sival_int,
          si.si_code);
  }
  say("sigtimedwait handlers: %s pending %s", trail_take(), pending_now());
  /* A blocking wait with the signal already pending returns it at once. */
  raise(SIGUSR1);
  r = sigwaitinfo(&set, NULL);
  say("sigwaitinfo pending: %d pending after %s", r == SIGUSR1, pending_now());
  handle(SIGUSR1, SIG_DFL);
  restore_mask();
}

static void test_unblock_order(void) {
  handle(SIGUSR1, on_sig);
  handle(SIGUSR2, on_sig);
  handle(SIGTERM, on_sig);
  sigset_t s = set_of(SIGUSR1, SIGUSR2, SIGTERM);
  sigprocmask(SIG_BLOCK, &s, NULL);
  raise(SIGTERM);
  raise(SIGUSR1);
  raise(SIGUSR2);
  raise(SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  say("unblock order: %s mask after %s", trail_take(), mask_now());

  /* Queued real-time instances: one at a time (the signal is blocked in its handler)... */
  sigset_t rt = set_of(SIGRTMIN, 0, 0);
  handle_rt(SIGRTMIN, 0);
  sigprocmask(SIG_BLOCK, &rt, NULL);
  union sigval v;
  for (int i = 1; i <= 3; i++) {
    v.sival_int = i;
    CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
  }
  sigprocmask(SIG_UNBLOCK, &rt, NULL);
  say("rt unblock: %s", trail_take());
  /* ... or all frames at once with SA_NODEFER: the last queued runs first. */
  handle_rt(SIGRTMIN, SA_NODEFER);
  sigprocmask(SIG_BLOCK, &rt, NULL);
  for (int i = 1; i <= 3; i++) {
    v.sival_int = i;
    CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
  }
  sigprocmask(SIG_UNBLOCK, &rt, NULL);
  say("rt unblock nodefer: %s", trail_take());
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGRTMIN, &dfl, NULL);

  handle(SIGUSR1, on_nest_outer);
  handle(SIGUSR2, on_nest_inner);
  raise(SIGUSR1);
  say("nested: %s", trail_take());
  handle(SIGUSR1, SIG_DFL);
  handle(SIGUSR2, SIG_DFL);
  handle(SIGTERM, SIG_DFL);
  restore_mask();
}

int main(void) {
  test_sigsuspend_child();
  test_sigsuspend_ignored();
  test_ppoll_pselect();
  test_sigtimedwait();
  test_unblock_order();
  return g_expect_failures ? 1 : 0;
}
