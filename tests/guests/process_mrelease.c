/* process_mrelease: reaping the memory of a child killed with SIGKILL (or a fatal SIGTERM)
 * before it is waited for, the errors (flags, a non-pidfd, a live child that is not dying,
 * an exited one), and process_madvise(MADV_COLD) on a child's memory first. */
#include "guest.h"

#include <sys/uio.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#define BIG (32UL << 20) /* a child's exit takes a while natively: the call meets it alive */

static int pidfd_open(pid_t pid, unsigned flags) {
  return (int)syscall(SYS_pidfd_open, pid, flags);
}
static long mrelease(int fd, unsigned flags) {
  return syscall(SYS_process_mrelease, fd, flags);
}
/* Right after a fatal signal: 0 while the victim is alive and dying (its memory is reaped)
 * or inside exit with its mm gone; ESRCH if it already became a zombie. Natively the last
 * happens when this process loses the CPU long enough, so both print the same: "released".
 * (mmemu's answer is exact: the victim has not run since the signal; see
 * tests/emu/sys_pidfd_test.cpp.) */
static const char* after_kill(long r) {
  return r == 0 || errno == ESRCH ? "released" : errno_name(errno);
}

/* A child with BIG bytes of its own dirty anonymous memory, waiting to be killed. */
static pid_t spawn_victim(char* mem, int* pfd) {
  int ready[2], hold[2];
  CHECK(pipe(ready) == 0 && pipe(hold) == 0);
  pid_t kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) {
    memset(mem, 7, BIG);
    CHECK(write(ready[1], "r", 1) == 1);
    /* Until killed, or until the parent is gone (end of file on hold: a failed CHECK there
     * must not leave this child waiting for ever). */
    close(hold[1]);
    char c;
    while (read(hold[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  char c;
  CHECK(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  close(ready[1]);
  close(hold[0]); /* hold[1] stays open in this process until it exits */
  *pfd = pidfd_open(kid, 0);
  CHECK(*pfd >= 0);
  return kid;
}

static const char* wait_str(int pfd) {
  static char buf[64];
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PIDFD, pfd, &si, WEXITED) != 0) return errno_name(errno);
  snprintf(buf, sizeof buf, "code %d status %s", si.si_code,
           si.si_code == CLD_EXITED ? "exit" : sig_name(si.si_status));
  return buf;
}

int main(void) {
  char* mem = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED);
  int pfd;
  pid_t kid = spawn_victim(mem, &pfd);
  (void)kid;
  int fds[2];
  CHECK(pipe(fds) == 0);
  expect_str("flags 1", rc_str(mrelease(pfd, 1)), "EINVAL");
  expect_str("not a pidfd", rc_str(mrelease(fds[0], 0)), "EBADF");
  expect_str("bad fd", rc_str(mrelease(999, 0)), "EBADF");
  expect_str("live, not dying", rc_str(mrelease(pfd, 0)), "EINVAL");
  struct iovec iov = {mem, BIG};
  expect_long("process_madvise child COLD",
              syscall(SYS_process_madvise, pfd, &iov, 1, MADV_COLD, 0), (long)BIG);
  expect_str("SIGKILL", rc_str(syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0)), "ok");
  expect_str("process_mrelease after SIGKILL", after_kill(mrelease(pfd, 0)), "released");
  expect_str("waitid", wait_str(pfd), "code 2 status SIGKILL");
  expect_str("process_mrelease reaped", rc_str(mrelease(pfd, 0)), "ESRCH");
  close(pfd);

  /* A fatal signal other than SIGKILL (default action: terminate) makes it dying too. */
  spawn_victim(mem, &pfd);
  expect_str("SIGTERM", rc_str(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0)), "ok");
  expect_str("process_mrelease after SIGTERM", after_kill(mrelease(pfd, 0)), "released");
  expect_str("waitid", wait_str(pfd), "code 2 status SIGTERM");
  close(pfd);

  /* An exited child not yet waited for: its task is gone for pidfd_get_task. */
  kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) _exit(0);
  pfd = pidfd_open(kid, 0);
  siginfo_t si;
  CHECK(waitid(P_PIDFD, pfd, &si, WEXITED | WNOWAIT) == 0);
  expect_str("process_mrelease zombie", rc_str(mrelease(pfd, 0)), "ESRCH");
  expect_str("waitid", wait_str(pfd), "code 1 status exit");
  return g_finish();
}
