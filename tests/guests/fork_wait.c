/* fork_wait: fork children with distinct exit codes and reap each with waitpid in fork
 * order; children killed by signals (SIGKILL sent by the parent, SIGABRT raised by the
 * child itself) are seen as WIFSIGNALED with the right WTERMSIG; wait for a child that is
 * not ours fails with ECHILD; getppid in the child is the parent's pid. */
#include "guest.h"

#define NCHILD 5

/* Blocks in read(2) on a pipe nobody writes to (pipes are in mmemu's syscall set). */
static void block_forever(int fd) {
  char c;
  for (;;)
    read(fd, &c, 1);
}

int main(void) {
  int pfd[2];
  CHECK(pipe(pfd) == 0);
  static const int codes[NCHILD] = {0, 1, 7, 42, 255};
  pid_t pids[NCHILD];
  pid_t self = getpid();

  for (int i = 0; i < NCHILD; i++) {
    pid_t p = fork();
    CHECK(p >= 0);
    if (p == 0) _exit(getppid() == self ? codes[i] : 100);
    pids[i] = p;
  }
  /* Reaped in fork order regardless of the order they finished in. */
  for (int i = 0; i < NCHILD; i++) {
    int st = 0;
    CHECK(waitpid(pids[i], &st, 0) == pids[i]);
    char label[32], want[32];
    snprintf(label, sizeof label, "child %d", i);
    snprintf(want, sizeof want, "exited %d", codes[i]);
    expect_str(label, wstatus_str(st), want);
  }

  /* Killed by the parent while blocked in read(). */
  pid_t k = fork();
  CHECK(k >= 0);
  if (k == 0) block_forever(pfd[0]);
  CHECK(kill(k, SIGKILL) == 0);
  int st = 0;
  CHECK(waitpid(k, &st, 0) == k);
  expect_yes("killed child WIFSIGNALED", WIFSIGNALED(st));
  expect_str("killed child", wstatus_str(st), "killed by SIGKILL");

  /* Kills itself. */
  pid_t a = fork();
  CHECK(a >= 0);
  if (a == 0) {
    signal(SIGABRT, SIG_DFL);
    kill(getpid(), SIGABRT);
    _exit(99);
  }
  CHECK(waitpid(a, &st, 0) == a);
  expect_str("self-killed child", wstatus_str(st), "killed by SIGABRT");

  /* wait(-1) picks whichever child is ready; with none left it is ECHILD. */
  pid_t b = fork();
  CHECK(b >= 0);
  if (b == 0) _exit(3);
  pid_t got = waitpid(-1, &st, 0);
  expect_yes("waitpid(-1) returned the child", got == b);
  expect_str("waitpid(-1) status", wstatus_str(st), "exited 3");
  expect_str("waitpid with no children", rc_str(waitpid(-1, &st, 0)), "ECHILD");
  expect_str("WNOHANG with no children", rc_str(waitpid(-1, &st, WNOHANG)), "ECHILD");

  /* WNOHANG on a live child answers 0. */
  pid_t c = fork();
  CHECK(c >= 0);
  if (c == 0) block_forever(pfd[0]);
  expect_long("WNOHANG on a running child", waitpid(c, &st, WNOHANG), 0);
  CHECK(kill(c, SIGTERM) == 0);
  CHECK(waitpid(c, &st, 0) == c);
  expect_str("terminated child", wstatus_str(st), "killed by SIGTERM");
  return g_finish();
}
