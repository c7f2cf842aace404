/* signals: rt_sigaction, delivery, masks and sigreturn.
 * - a handler installed with sigaction runs for raise() and for kill(getpid()) and
 *   execution resumes where it was (rt_sigreturn restores the interrupted state: locals
 *   kept in registers across the signal survive);
 * - SA_SIGINFO: si_signo, si_code (SI_USER for kill, SI_TKILL for raise), si_pid = self;
 * - inside a handler the signal itself and sa_mask are blocked; after it returns the old
 *   mask is back;
 * - sigprocmask block: a sent signal stays pending (sigpending), is delivered exactly once
 *   when unblocked;
 * - SA_RESETHAND: the second signal gets the default action (a child dies of it);
 * - SIG_IGN: an ignored signal does nothing;
 * - SIGSEGV with no handler kills a child: the parent sees WTERMSIG 11 (SIGSEGV);
 * - SIGKILL/SIGSTOP cannot be caught (sigaction EINVAL);
 * - a SIGSEGV handler that mprotects the page writable and returns: the faulting write is
 *   retried and succeeds. */
#include "guest.h"

static volatile int usr1_count, usr2_count, info_ok, mask_ok;
static volatile int last_code;

static void on_usr1(int sig) {
  (void)sig;
  usr1_count++;
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  /* SIGUSR1 itself and SIGUSR2 (sa_mask) are blocked while the handler runs. */
  mask_ok = sigismember(&cur, SIGUSR1) == 1 && sigismember(&cur, SIGUSR2) == 1;
}

static void on_usr2_info(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  usr2_count++;
  last_code = si->si_code;
  info_ok = sig == SIGUSR2 && si->si_signo == SIGUSR2 && si->si_pid == getpid();
}

static char* volatile fix_page;
static volatile int fix_count;

static void on_segv_fix(int sig, siginfo_t* si, void* uc) {
  (void)sig;
  (void)uc;
  fix_count++;
  if (si->si_addr != fix_page + 8 || si->si_code != SEGV_ACCERR || fix_count > 1) _exit(9);
  mprotect(fix_page, G_PAGE, PROT_READ | PROT_WRITE);
}

static const char* code_name(int c) {
  return c == SI_USER ? "SI_USER" : c == SI_TKILL ? "SI_TKILL" : c == SI_QUEUE ? "SI_QUEUE" : "?";
}

/* Keeps values live in registers across a signal; sigreturn must restore them. */
__attribute__((noinline)) static long busy_with_signal(long a, long b) {
  long x = a * 3, y = b * 5, z = a + b;
  raise(SIGUSR1);
  return x + y + z;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

  long r = busy_with_signal(7, 11);
  expect_long("handler ran for raise", usr1_count, 1);
  expect_yes("registers restored by sigreturn", r == 7 * 3 + 11 * 5 + 18);
  expect_yes("signal and sa_mask blocked inside the handler", mask_ok);
  sigset_t cur;
  CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0);
  expect_yes("mask restored after the handler",
             !sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGUSR2));

  CHECK(kill(getpid(), SIGUSR1) == 0);
  expect_long("handler ran for kill", usr1_count, 2);

  struct sigaction si;
  memset(&si, 0, sizeof si);
  si.sa_sigaction = on_usr2_info;
  si.sa_flags = SA_SIGINFO;
  sigemptyset(&si.sa_mask);
  CHECK(sigaction(SIGUSR2, &si, NULL) == 0);
  CHECK(kill(getpid(), SIGUSR2) == 0);
  expect_str("kill si_code", code_name(last_code), "SI_USER");
  expect_yes("siginfo signo and pid", info_ok);
  raise(SIGUSR2);
  expect_str("raise si_code", code_name(last_code), "SI_TKILL");

  /* Blocked: pending, then delivered once on unblock. */
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);
  CHECK(kill(getpid(), SIGUSR1) == 0);
  CHECK(kill(getpid(), SIGUSR1) == 0); /* standard signals do not queue */
  expect_long("not delivered while blocked", usr1_count, 2);
  sigset_t pend;
  CHECK(sigpending(&pend) == 0);
  expect_yes("pending while blocked", sigismember(&pend, SIGUSR1) == 1);
  CHECK(sigprocmask(SIG_UNBLOCK, &block, NULL) == 0);
  expect_long("delivered once on unblock", usr1_count, 3);
  CHECK(sigpending(&pend) == 0);
  expect_yes("no longer pending", sigismember(&pend, SIGUSR1) == 0);

  /* Ignored. */
  signal(SIGUSR1, SIG_IGN);
  CHECK(kill(getpid(), SIGUSR1) == 0);
  expect_long("ignored signal did nothing", usr1_count, 3);

  /* SIGKILL and SIGSTOP cannot be caught. */
  expect_str("sigaction SIGKILL", rc_str(sigaction(SIGKILL, &sa, NULL)), "EINVAL");
  expect_str("sigaction SIGSTOP", rc_str(sigaction(SIGSTOP, &sa, NULL)), "EINVAL");

  /* SA_RESETHAND: first delivery runs the handler, the second takes the default action. */
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    struct sigaction rs;
    memset(&rs, 0, sizeof rs);
    rs.sa_handler = on_usr1;
    rs.sa_flags = SA_RESETHAND;
    sigemptyset(&rs.sa_mask);
    sigaction(SIGUSR1, &rs, NULL);
    kill(getpid(), SIGUSR1);
    if (usr1_count != 4) _exit(1);
    kill(getpid(), SIGUSR1);
    _exit(2);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("SA_RESETHAND child", wstatus_str(st), "killed by SIGUSR1");

  /* SIGSEGV with the default action. */
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL);
    char* p = map_anon(1);
    CHECK(munmap(p, G_PAGE) == 0);
    *(volatile char*)p = 1;
    _exit(3);
  }
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_yes("segfaulting child WIFSIGNALED", WIFSIGNALED(st));
  expect_long("segfaulting child WTERMSIG", WIFSIGNALED(st) ? WTERMSIG(st) : 0, SIGSEGV);

  /* A SIGSEGV handler that fixes the protection and returns: the write is retried. */
  fix_page = map_anon(1);
  CHECK(mprotect(fix_page, G_PAGE, PROT_READ) == 0);
  struct sigaction fs;
  memset(&fs, 0, sizeof fs);
  fs.sa_sigaction = on_segv_fix;
  fs.sa_flags = SA_SIGINFO;
  sigemptyset(&fs.sa_mask);
  CHECK(sigaction(SIGSEGV, &fs, NULL) == 0);
  *(volatile char*)(fix_page + 8) = 5;
  expect_long("SIGSEGV handler calls", fix_count, 1);
  expect_yes("write retried after the handler fixed the protection", fix_page[8] == 5);
  return g_finish();
}
