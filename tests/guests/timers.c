/* timers: alarm, setitimer/getitimer (REAL, VIRTUAL, PROF), interrupted sleeps, the
 * sigwait family and poll/ppoll/select, as a test program with a timeout or an event loop
 * uses them. Only facts that do not depend on timing are printed (no remaining times
 * beyond whole-second bounds).
 *
 * Facts (Linux): pause() returns -1 EINTR once SIGALRM's handler ran; alarm returns the
 * seconds left of the previous alarm (rounded, never 0 while armed); nanosleep interrupted
 * by a handled signal gives EINTR with the time left in *rem; an ITIMER_REAL with an
 * interval keeps firing; ITIMER_VIRTUAL/PROF fire while the process computes; a bad
 * `which` or tv_usec is EINVAL; sigwaitinfo takes a blocked pending signal with its
 * siginfo; sigtimedwait times out with EAGAIN and is interrupted by another handled signal
 * with EINTR, leaving the mask as it was; poll reports pipe readiness, POLLHUP after the
 * last writer closes, POLLERR on a write end without readers, POLLNVAL for a closed fd;
 * select times out with 0 and gives EBADF for a closed fd. */
#include "guest.h"

#include <poll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>

static volatile int hits;
static void on_sig(int sig) {
  (void)sig;
  hits++;
}

int main(void) {
  signal(SIGALRM, on_sig);
  alarm(1);
  int r = pause();
  expect_str("pause after alarm", r == -1 ? errno_name(errno) : "returned", "EINTR");
  expect_long("alarm handler ran", hits, 1);
  expect_long("alarm(0) with none armed", alarm(0), 0);
  alarm(3);
  expect_long("alarm(0) after alarm(3)", alarm(0), 3);

  struct timespec req = {5, 0}, rem = {0, 0};
  alarm(1);
  r = nanosleep(&req, &rem);
  expect_str("nanosleep interrupted", r == -1 ? errno_name(errno) : "ok", "EINTR");
  expect_yes("nanosleep rem between 3 and 4 s", rem.tv_sec >= 3 && rem.tv_sec <= 4);

  struct itimerval it = {{0, 20000}, {0, 20000}}, old;
  CHECK(setitimer(ITIMER_REAL, &it, 0) == 0);
  hits = 0;
  while (hits < 3)
    pause();
  CHECK(getitimer(ITIMER_REAL, &old) == 0);
  expect_long("getitimer interval usec", old.it_interval.tv_usec, 20000);
  memset(&it, 0, sizeof it);
  CHECK(setitimer(ITIMER_REAL, &it, &old) == 0);
  expect_yes("old value within the interval",
             old.it_value.tv_sec == 0 && old.it_value.tv_usec <= 20000);
  CHECK(getitimer(ITIMER_REAL, &old) == 0);
  expect_yes("disarmed", old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
  expect_str("setitimer which 5", rc_str(setitimer(5, &it, 0)), "EINVAL");
  it.it_value.tv_usec = 1000000;
  expect_str("setitimer usec 1000000", rc_str(setitimer(ITIMER_REAL, &it, 0)), "EINVAL");

  volatile unsigned long spin = 0;
  struct itimerval cpu = {{0, 0}, {0, 10000}};
  signal(SIGVTALRM, on_sig);
  hits = 0;
  CHECK(setitimer(ITIMER_VIRTUAL, &cpu, 0) == 0);
  while (!hits)
    spin++;
  expect_long("SIGVTALRM while computing", hits, 1);
  signal(SIGPROF, on_sig);
  hits = 0;
  CHECK(setitimer(ITIMER_PROF, &cpu, 0) == 0);
  while (!hits)
    spin++;
  expect_long("SIGPROF while computing", hits, 1);

  sigset_t set, mask;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, 0);
  kill(getpid(), SIGUSR1);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  r = sigwaitinfo(&set, &si);
  expect_str("sigwaitinfo", r == SIGUSR1 ? "SIGUSR1" : "other", "SIGUSR1");
  expect_long("sigwaitinfo si_code", si.si_code, SI_USER);
  expect_yes("sigwaitinfo si_pid is ours", si.si_pid == getpid());
  struct timespec ts = {0, 20000000};
  r = sigtimedwait(&set, &si, &ts);
  expect_str("sigtimedwait nothing pending", r == -1 ? errno_name(errno) : "got one", "EAGAIN");
  ts.tv_nsec = 1000000000;
  r = sigtimedwait(&set, &si, &ts);
  expect_str("sigtimedwait bad timeout", r == -1 ? errno_name(errno) : "got one", "EINVAL");
  struct itimerval once = {{0, 0}, {0, 20000}};
  CHECK(setitimer(ITIMER_REAL, &once, 0) == 0);
  ts.tv_sec = 5;
  ts.tv_nsec = 0;
  r = sigtimedwait(&set, &si, &ts);
  expect_str("sigtimedwait interrupted", r == -1 ? errno_name(errno) : "got one", "EINTR");
  sigprocmask(SIG_SETMASK, 0, &mask);
  expect_yes("SIGUSR1 still blocked", sigismember(&mask, SIGUSR1) == 1);

  int p[2];
  CHECK(pipe(p) == 0);
  struct pollfd f[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {77, POLLIN, 0}};
  r = poll(f, 3, 0);
  say("poll empty pipe: %d in=%#x out=%#x closed=%#x", r, f[0].revents, f[1].revents, f[2].revents);
  r = poll(f, 1, 20);
  say("poll timeout: %d", r);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    usleep(20000);
    CHECK(write(p[1], "x", 1) == 1);
    _exit(0);
  }
  r = poll(f, 1, -1);
  say("poll woken by the child's write: %d in=%#x", r, f[0].revents);
  CHECK(waitpid(child, 0, 0) == child);
  close(p[1]);
  r = poll(f, 1, -1);
  say("poll after last writer closed: %d in=%#x", r, f[0].revents);
  int q[2];
  CHECK(pipe(q) == 0);
  close(q[0]);
  struct pollfd w = {q[1], POLLOUT, 0};
  r = poll(&w, 1, 0);
  say("poll write end without readers: %d revents=%#x", r, w.revents);
  CHECK(pipe(q) == 0);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(q[0], &rs);
  struct timeval tv = {0, 20000};
  r = select(q[0] + 1, &rs, 0, 0, &tv);
  say("select timeout: %d set=%d", r, FD_ISSET(q[0], &rs));
  CHECK(write(q[1], "y", 1) == 1);
  FD_SET(q[0], &rs);
  r = select(q[0] + 1, &rs, 0, 0, 0);
  say("select ready: %d set=%d", r, FD_ISSET(q[0], &rs));
  /* A closed fd inside the descriptor table (fds past fdt->max_fds, which depends on what
   * the parent had open, are skipped silently and so are not a portable fact). */
  int gone = dup(q[1]);
  CHECK(gone > 0 && gone < 60);
  close(gone);
  FD_ZERO(&rs);
  FD_SET(gone, &rs);
  expect_str("select closed fd", rc_str(select(gone + 1, &rs, 0, 0, &tv)), "EBADF");
  alarm(1);
  r = poll(0, 0, -1);
  expect_str("poll with no fds until a signal", r == -1 ? errno_name(errno) : "ok", "EINTR");
  ts.tv_sec = 0;
  ts.tv_nsec = 10000000;
  expect_long("ppoll with no fds sleeps then returns", ppoll(0, 0, &ts, 0), 0);
  return g_finish();
}
