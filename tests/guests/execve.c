/* execve: replacing the process image.
 * - execve of a missing file: ENOENT; of a directory: EACCES (the caller carries on);
 * - a forked child execs the `hello` guest (same directory as argv[0], or argv[1]); the
 *   parent prints its status after hello's own line;
 * - the process execs itself with "--after": the pid is the same, argv and envp arrive,
 *   a mapping made before exec is gone, a caught signal is reset to SIG_DFL, an ignored one
 *   stays ignored and the blocked mask is kept.
 * qemu-user runs the new image only through binfmt_misc; without it both execs fail with
 * ENOEXEC there. */
#include "guest.h"

#define HINT ((void*)0x100000000000UL) /* far from any default placement, both arches */

static void on_usr1(int sig) {
  (void)sig;
}

static int after_exec(int argc, char** argv) {
  say("after exec: argc %d, marker %s", argc, argc > 2 ? argv[2] : "(none)");
  CHECK(argc == 5);
  long pid = strtol(argv[3], NULL, 10);
  void* old = (void*)strtoul(argv[4], NULL, 16);
  expect_yes("same pid after exec", pid == getpid());
  const char* env = getenv("MMEMU_GUEST_ENV");
  expect_str("environment passed", env ? env : "(unset)", "passed");
  expect_yes("mapping made before exec is gone", !is_mapped(old, 1));
  struct sigaction sa;
  CHECK(sigaction(SIGUSR1, NULL, &sa) == 0);
  expect_yes("caught signal reset to SIG_DFL", sa.sa_handler == SIG_DFL);
  CHECK(sigaction(SIGUSR2, NULL, &sa) == 0);
  expect_yes("ignored signal still ignored", sa.sa_handler == SIG_IGN);
  sigset_t mask;
  CHECK(sigprocmask(SIG_BLOCK, NULL, &mask) == 0);
  expect_yes("blocked mask kept", sigismember(&mask, SIGUSR1) == 1);
  return g_finish();
}

int main(int argc, char** argv, char** envp) {
  (void)envp;
  if (argc > 1 && strcmp(argv[1], "--after") == 0) return after_exec(argc, argv);

  char hello[512];
  if (argc > 1) {
    snprintf(hello, sizeof hello, "%s", argv[1]);
  } else {
    const char* slash = strrchr(argv[0], '/');
    int dirlen = slash ? (int)(slash - argv[0]) : 1;
    snprintf(hello, sizeof hello, "%.*s/hello", dirlen, slash ? argv[0] : ".");
  }
  char dir[512];
  snprintf(dir, sizeof dir, "%s", hello);
  char* cut = strrchr(dir, '/');
  CHECK(cut != NULL);
  *cut = '\0';
  if (dir[0] == '\0') strcpy(dir, "/");

  say("before exec");
  char* noargs[] = {"x", NULL};
  char* noenv[] = {NULL};
  expect_str("execve of a missing file", rc_str(execve("/nonexistent/mmemu-guest", noargs, noenv)),
             "ENOENT");
  expect_str("execve of a directory", rc_str(execve(dir, noargs, noenv)), "EACCES");

  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    char* hargs[] = {hello, NULL};
    execve(hello, hargs, noenv);
    say("child: execve of hello failed: %s", errno_name(errno));
    _exit(127);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child that exec'd hello", wstatus_str(st), "exited 0");

  /* State that exec must drop or keep. */
  char* m = mmap(HINT, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED);
  m[0] = 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
  sa.sa_handler = SIG_IGN;
  CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);

  char pidstr[24], addr[24];
  snprintf(pidstr, sizeof pidstr, "%ld", (long)getpid());
  snprintf(addr, sizeof addr, "%lx", (unsigned long)(uintptr_t)m);
  char* args[] = {argv[0], "--after", "m4rk3r", pidstr, addr, NULL};
  char* env[] = {"MMEMU_GUEST_ENV=passed", NULL};
  say("exec self");
  execve(argv[0], args, env);
  say("exec self failed: %s", errno_name(errno));
  return 1;
}
