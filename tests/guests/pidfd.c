/* pidfds: pidfd_open, fstat/readlink of a pidfd, poll (readable once the process exited,
 * POLLHUP once reaped), waitid(P_PIDFD) with and without PIDFD_NONBLOCK, pidfd_send_signal
 * (SI_USER to a child, the siginfo rules), pidfd_getfd of a child's pipe end written
 * through, process_madvise on itself and on a child, and the errors of each. */
#include "guest.h"

#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/uio.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#define PIDFD_NONBLOCK O_NONBLOCK

static int pidfd_open(pid_t pid, unsigned flags) {
  return (int)syscall(SYS_pidfd_open, pid, flags);
}
static long send_sig(int fd, int sig, siginfo_t* info, unsigned flags) {
  return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static long getfd(int fd, int target, unsigned flags) {
  return syscall(SYS_pidfd_getfd, fd, target, flags);
}
static long pmadvise(int fd, const struct iovec* iov, size_t n, int advice, unsigned flags) {
  return syscall(SYS_process_madvise, fd, iov, n, advice, flags);
}
static const char* rev(int fd, short events, int timeout) {
  static char buf[48];
  struct pollfd p = {fd, events, 0};
  int n = poll(&p, 1, timeout);
  snprintf(buf, sizeof buf, "%d revents %#x", n, (unsigned)p.revents);
  return buf;
}
static const char* si_str(long r, const siginfo_t* si, pid_t child) {
  static char buf[96];
  if (r == -1) return errno_name(errno);
  snprintf(buf, sizeof buf, "signo %d code %d status %d pid %s", si->si_signo, si->si_code,
           si->si_status,
           si->si_pid == 0       ? "0"
           : si->si_pid == child ? "child"
                                 : "other");
  return buf;
}

int main(void) {
  /* --- pidfd_open and the file --- */
  int self = pidfd_open(getpid(), 0);
  CHECK(self >= 0);
  struct stat st;
  CHECK(fstat(self, &st) == 0);
  char want[32], got[64];
  snprintf(got, sizeof got, "%#o", (unsigned)st.st_mode);
  expect_str("fstat mode", got, "0700");
  snprintf(want, sizeof want, "/proc/self/fd/%d", self);
  ssize_t n = readlink(want, got, sizeof got - 1);
  got[n > 0 ? n : 0] = 0;
  expect_str("readlink", got, "anon_inode:[pidfd]");
  expect_long("F_GETFD", fcntl(self, F_GETFD), FD_CLOEXEC);
  expect_long("F_GETFL", fcntl(self, F_GETFL), O_RDWR);
  int nb = pidfd_open(getpid(), PIDFD_NONBLOCK);
  expect_long("F_GETFL nonblock", fcntl(nb, F_GETFL), O_RDWR | O_NONBLOCK);
  char c;
  expect_str("read", rc_str(read(self, &c, 1)), "EINVAL");
  expect_str("lseek", rc_str(lseek(self, 0, SEEK_SET)), "ESPIPE");
  expect_str("pidfd_open flags 1", rc_str(pidfd_open(getpid(), 1)), "EINVAL");
  expect_str("pidfd_open pid 0", rc_str(pidfd_open(0, 0)), "EINVAL");
  expect_str("pidfd_open pid -1", rc_str(pidfd_open(-1, 0)), "EINVAL");
  expect_str("poll self", rev(self, POLLIN, 0), "0 revents 0");
  siginfo_t si;
  expect_str("waitid self", rc_str(waitid(P_PIDFD, self, &si, WEXITED | WNOHANG)), "ECHILD");

  /* --- a child that gets a pipe end through pidfd_getfd, then a signal --- */
  int sync[2], ack[2];
  CHECK(pipe(sync) == 0 && pipe(ack) == 0);
  pid_t kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) {
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(sync[1], &p[1], sizeof p[1]) == sizeof p[1]);
    char buf[16] = {0};
    ssize_t r = read(p[0], buf, sizeof buf - 1);
    say("child read %zd: %s", r, buf);
    CHECK(write(ack[1], "k", 1) == 1);
    /* Until killed, or until the parent is gone (end of file: a failed CHECK there must not
     * leave this child waiting for ever). */
    close(sync[1]);
    while (read(sync[0], buf, 1) > 0) {
    }
    _exit(0);
  }
  int wfd;
  CHECK(read(sync[0], &wfd, sizeof wfd) == sizeof wfd);
  int pfd = pidfd_open(kid, 0);
  int pnb = pidfd_open(kid, PIDFD_NONBLOCK);
  CHECK(pfd >= 0 && pnb >= 0);
  expect_str("poll running", rev(pfd, POLLIN | POLLOUT | POLLPRI, 0), "0 revents 0");
  memset(&si, 0x55, sizeof si);
  expect_str("waitid WNOHANG running",
             si_str(waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG), &si, kid),
             "signo 0 code 0 status 0 pid 0");
  expect_str("waitid nonblock running", rc_str(waitid(P_PIDFD, pnb, &si, WEXITED)), "EAGAIN");
  expect_str("waitid nonblock WNOHANG", rc_str(waitid(P_PIDFD, pnb, &si, WEXITED | WNOHANG)), "ok");
  expect_str("waitid pipe", rc_str(waitid(P_PIDFD, sync[0], &si, WEXITED)), "EBADF");
  expect_str("waitid bad fd", rc_str(waitid(P_PIDFD, 999, &si, WEXITED)), "EBADF");
  expect_str("waitid fd -1", rc_str(waitid(P_PIDFD, -1, &si, WEXITED)), "EINVAL");

  expect_str("getfd flags", rc_str(getfd(pfd, wfd, 1)), "EINVAL");
  expect_str("getfd bad target fd", rc_str(getfd(pfd, 999, 0)), "EBADF");
  expect_str("getfd not a pidfd", rc_str(getfd(sync[0], wfd, 0)), "EBADF");
  int g = (int)getfd(pfd, wfd, 0);
  expect_str("getfd", rc_str(g), "ok");
  expect_long("getfd F_GETFD", fcntl(g, F_GETFD), FD_CLOEXEC);
  long w = write(g, "hello", 5);
  close(g);
  CHECK(read(ack[0], &c, 1) == 1); /* the child printed what it read */
  expect_long("write through it", w, 5);

  expect_str("send sig 65", rc_str(send_sig(pfd, 65, NULL, 0)), "EINVAL");
  expect_str("send flags 8", rc_str(send_sig(pfd, 0, NULL, 8)), "EINVAL");
  expect_str("send two flags", rc_str(send_sig(pfd, 0, NULL, 3)), "EINVAL");
  expect_str("send not a pidfd", rc_str(send_sig(sync[0], 0, NULL, 0)), "EBADF");
  expect_str("send bad fd", rc_str(send_sig(999, 0, NULL, 0)), "EBADF");
  expect_str("send bad info", rc_str(send_sig(pfd, SIGUSR1, (siginfo_t*)8, 0)), "EFAULT");
  siginfo_t in;
  memset(&in, 0, sizeof in);
  in.si_signo = SIGUSR1;
  in.si_code = SI_QUEUE;
  expect_str("send info other signo", rc_str(send_sig(pfd, SIGUSR2, &in, 0)), "EINVAL");
  in.si_code = SI_USER;
  expect_str("send info SI_USER", rc_str(send_sig(pfd, SIGUSR1, &in, 0)), "EPERM");
  expect_str("send 0", rc_str(send_sig(pfd, 0, NULL, 0)), "ok");

  /* process_madvise on the child: the advice another process may get */
  char* m = mmap(NULL, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED);
  memset(m, 1, 4 * G_PAGE);
  struct iovec iov[2] = {{m, G_PAGE}, {m + 2 * G_PAGE, 2 * G_PAGE}};
  struct iovec far[1] = {{(void*)0x10000, G_PAGE}};
  expect_str("process_madvise child unmapped COLD", rc_str(pmadvise(pfd, far, 1, MADV_COLD, 0)),
             "ENOMEM");
  expect_str("process_madvise child DONTNEED", rc_str(pmadvise(pfd, far, 1, MADV_DONTNEED, 0)),
             "EINVAL");
  expect_long("process_madvise self COLD", pmadvise(self, iov, 2, MADV_COLD, 0), 3 * G_PAGE);
  expect_long("process_madvise self DONTNEED", pmadvise(self, iov, 2, MADV_DONTNEED, 0),
              3 * G_PAGE);
  expect_long("after DONTNEED reads", m[0], 0);
  expect_str("process_madvise flags", rc_str(pmadvise(self, iov, 2, MADV_COLD, 1)), "EINVAL");
  expect_str("process_madvise vlen 1025", rc_str(pmadvise(self, iov, 1025, MADV_COLD, 0)),
             "EINVAL");
  expect_str("process_madvise bad iovec", rc_str(pmadvise(self, (void*)8, 2, MADV_COLD, 0)),
             "EFAULT");
  expect_str("process_madvise bad fd", rc_str(pmadvise(999, iov, 2, MADV_COLD, 0)), "EBADF");
  expect_long("process_madvise vlen 0", pmadvise(self, iov, 0, MADV_COLD, 0), 0);
  struct iovec part[2] = {{m, G_PAGE}, {(void*)0x10, G_PAGE}};
  expect_long("process_madvise partial", pmadvise(self, part, 2, MADV_COLD, 0), G_PAGE);
  expect_str("process_madvise first bad", rc_str(pmadvise(self, part + 1, 1, MADV_COLD, 0)),
             "EINVAL");
  expect_str("process_madvise bad advice", rc_str(pmadvise(self, iov, 2, 100, 0)), "EINVAL");

  expect_str("send SIGTERM", rc_str(send_sig(pfd, SIGTERM, NULL, 0)), "ok");
  expect_str("poll until exit", rev(pfd, POLLIN, -1), "1 revents 0x1");
  memset(&si, 0, sizeof si);
  expect_str("waitid WNOWAIT", si_str(waitid(P_PIDFD, pfd, &si, WEXITED | WNOWAIT), &si, kid),
             "signo 17 code 2 status 15 pid child");
  expect_str("getfd zombie", rc_str(getfd(pfd, 0, 0)), "ESRCH");
  expect_str("send zombie", rc_str(send_sig(pfd, 0, NULL, 0)), "ok");
  expect_str("process_madvise zombie", rc_str(pmadvise(pfd, iov, 2, MADV_COLD, 0)), "ESRCH");
  expect_str("poll zombie", rev(pfd, POLLIN | POLLRDNORM | POLLOUT, 0), "1 revents 0x41");
  memset(&si, 0, sizeof si);
  expect_str("waitid", si_str(waitid(P_PIDFD, pfd, &si, WEXITED), &si, kid),
             "signo 17 code 2 status 15 pid child");
  expect_str("poll reaped", rev(pfd, POLLIN | POLLOUT, 0), "1 revents 0x11");
  expect_str("poll reaped no events", rev(pfd, 0, 0), "1 revents 0x10");
  expect_str("send reaped", rc_str(send_sig(pfd, 0, NULL, 0)), "ESRCH");
  expect_str("waitid reaped", rc_str(waitid(P_PIDFD, pfd, &si, WEXITED)), "ECHILD");
  expect_str("getfd reaped", rc_str(getfd(pfd, 0, 0)), "ESRCH");
  expect_str("pidfd_open reaped", rc_str(pidfd_open(kid, 0)), "ESRCH");

  /* --- an exit status through a nonblocking pidfd, waited for with poll --- */
  kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) _exit(5);
  pnb = pidfd_open(kid, PIDFD_NONBLOCK);
  expect_str("poll exit", rev(pnb, POLLIN, -1), "1 revents 0x1");
  expect_str("pidfd_open zombie", rc_str(pidfd_open(kid, 0)), "ok");
  memset(&si, 0, sizeof si);
  expect_str("waitid nonblock exited", si_str(waitid(P_PIDFD, pnb, &si, WEXITED), &si, kid),
             "signo 17 code 1 status 5 pid child");
  expect_str("close", rc_str(close(pnb)), "ok");

  /* --- clone(CLONE_PIDFD): the pidfd's number in parent_tid --- */
  int cpfd = -1;
  long cr = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &cpfd, 0, 0);
  CHECK(cr >= 0);
  if (cr == 0) _exit(9);
  kid = (pid_t)cr;
  expect_yes("clone CLONE_PIDFD gives a close-on-exec pidfd",
             cpfd >= 0 && fcntl(cpfd, F_GETFD) == FD_CLOEXEC);
  snprintf(want, sizeof want, "/proc/self/fd/%d", cpfd);
  n = readlink(want, got, sizeof got - 1);
  got[n > 0 ? n : 0] = 0;
  expect_str("clone pidfd readlink", got, "anon_inode:[pidfd]");
  memset(&si, 0, sizeof si);
  expect_str("clone pidfd waitid", si_str(waitid(P_PIDFD, cpfd, &si, WEXITED), &si, kid),
             "signo 17 code 1 status 9 pid child");
  int unused = -1;
  expect_str(
      "clone CLONE_PIDFD|CLONE_PARENT_SETTID",
      rc_str(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &unused, 0, 0)),
      "EINVAL");
  expect_str("clone CLONE_PIDFD bad pointer",
             rc_str(syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, (int*)8, 0, 0)), "EFAULT");
  expect_str("no child left", rc_str(waitpid(-1, NULL, WNOHANG)), "ECHILD");
  return g_finish();
}
