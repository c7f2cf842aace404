/* lifecycle_extra: process and signal corners the other guests do not reach:
 * vfork, posix_spawn (clone with CLONE_VM|CLONE_VFORK), waitid with WNOWAIT, a SIGCHLD
 * handler, sigsuspend, sigaltstack with
 * SA_ONSTACK, nested handlers and SA_NODEFER. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  buf[n++] = '\n';
  write(1, buf, (size_t)n);
}

static const char* st(int s) {
  static char b[64];
  if (WIFEXITED(s))
    snprintf(b, sizeof b, "exited %d", WEXITSTATUS(s));
  else if (WIFSIGNALED(s))
    snprintf(b, sizeof b, "killed by %d", WTERMSIG(s));
  else
    snprintf(b, sizeof b, "0x%x", s);
  return b;
}

static volatile int chld_count, usr1_count, usr2_count, depth, max_depth;
static char trail[64];
static volatile int trail_len;
static char* volatile alt_lo;
static char* volatile alt_hi;
static volatile int on_alt, alt_flag;

static void on_chld(int s) {
  (void)s;
  chld_count++;
}
static void on_usr1(int s) {
  (void)s;
  usr1_count++;
}
static void add(char c) {
  if (trail_len < 63) trail[trail_len++] = c;
}
static void on_usr2_nested(int s) {
  (void)s;
  add('2');
}
static void on_usr1_nested(int s) {
  (void)s;
  add('a');
  raise(SIGUSR2);
  add('b');
}
static void on_nodefer(int s) {
  depth++;
  if (depth > max_depth) max_depth = depth;
  if (depth < 3) raise(s);
  depth--;
}
static void on_alt_handler(int s) {
  (void)s;
  char local;
  on_alt = &local >= alt_lo && &local < alt_hi;
  stack_t cur;
  sigaltstack(NULL, &cur);
  alt_flag = cur.ss_flags;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--spawned") == 0) {
    /* No output here: its order against the parent's would be up to the scheduler. */
    return argc == 3 && strcmp(argv[2], "x") == 0 ? 3 : 4;
  }
  /* vfork: the child runs in the parent's memory until it exits. */
  static volatile int shared_word = 1;
  pid_t p = vfork();
  if (p == 0) {
    shared_word = 42;
    _exit(5);
  }
  int s = 0;
  waitpid(p, &s, 0);
  say("vfork child: %s, wrote parent memory: %s", st(s), shared_word == 42 ? "yes" : "no");

  /* posix_spawn runs through clone(CLONE_VM|CLONE_VFORK) + execve. */
  char* sargv[] = {argv[0], "--spawned", "x", NULL};
  char* senv[] = {NULL};
  int r = posix_spawn(&p, argv[0], NULL, NULL, sargv, senv);
  say("posix_spawn: %s", r == 0 ? "ok" : strerror(r));
  if (r == 0) {
    waitpid(p, &s, 0);
    say("spawned child status: %s", st(s));
  }

  /* SIGCHLD handler and waitid with WNOWAIT. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_chld;
  sigaction(SIGCHLD, &sa, NULL);
  p = fork();
  if (p == 0) _exit(9);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  r = waitid(P_PID, (id_t)p, &si, WEXITED | WNOWAIT);
  say("waitid WNOWAIT: %d, code %s, status %d, pid matches %s", r,
      si.si_code == CLD_EXITED ? "CLD_EXITED" : "?", si.si_status, si.si_pid == p ? "yes" : "no");
  r = waitpid(p, &s, 0);
  say("then waitpid: %s, %s", r == p ? "same child" : "other", st(s));
  say("SIGCHLD handler calls: %d", chld_count);
  memset(&si, 0, sizeof si);
  r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
  say("waitid with no children: %s", r == -1 ? strerrorname_np(errno) : "ok");

  /* sigsuspend: SIGUSR1 blocked, a child sends it, sigsuspend with an empty mask. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t block, empty, now;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigemptyset(&empty);
  sigprocmask(SIG_BLOCK, &block, NULL);
  pid_t parent = getpid();
  p = fork();
  if (p == 0) {
    kill(parent, SIGUSR1);
    _exit(0);
  }
  r = sigsuspend(&empty);
  sigprocmask(SIG_BLOCK, NULL, &now);
  say("sigsuspend: %s, handler calls %d, mask restored %s", r == -1 ? strerrorname_np(errno) : "?",
      usr1_count, sigismember(&now, SIGUSR1) ? "yes" : "no");
  waitpid(p, &s, 0);
  sigprocmask(SIG_UNBLOCK, &block, NULL);

  /* Nested handlers: USR2 raised inside the USR1 handler runs at once. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1_nested;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_usr2_nested;
  sigaction(SIGUSR2, &sa, NULL);
  raise(SIGUSR1);
  trail[trail_len] = 0;
  say("nested handlers: %s", trail);

  /* SA_NODEFER: the handler re-raises its own signal and is re-entered. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_nodefer;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGUSR2, &sa, NULL);
  raise(SIGUSR2);
  say("SA_NODEFER depth: %d", max_depth);

  /* sigaltstack + SA_ONSTACK. */
  static char alt[64 * 1024];
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
  alt_lo = alt;
  alt_hi = alt + sizeof alt;
  say("sigaltstack: %s", sigaltstack(&ss, NULL) == 0 ? "ok" : strerrorname_np(errno));
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alt_handler;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  say("handler on the alternate stack: %s, ss_flags SS_ONSTACK: %s", on_alt ? "yes" : "no",
      (alt_flag & SS_ONSTACK) ? "yes" : "no");
  stack_t small = {.ss_sp = alt, .ss_size = 512, .ss_flags = 0};
  say("sigaltstack too small: %s", sigaltstack(&small, NULL) == 0 ? "ok" : strerrorname_np(errno));
  return 0;
}
