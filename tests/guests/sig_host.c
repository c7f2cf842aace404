/* sig_host: the guest side of host signal forwarding (tests/emu/host_signal_test.cpp sends
 * SIGINT to mmemu, or types ^C on its terminal). Without arguments (the native comparison
 * of every guest) it checks what it can alone: a SIGINT it raises itself reaches its
 * handler with SI_TKILL. With a mode it prints "ready" once its SIGINT handler is in place,
 * then waits for the signal:
 *   spin   a busy loop; exits 5 after printing the siginfo (si_code, si_pid, si_uid)
 *   read   a read of standard input (no SA_RESTART): prints its result, exits 5
 *   sleep  a 20 s nanosleep: prints its result, exits 5
 *   count  a busy loop printing "got N" for each signal, never exiting
 *   ignore a busy loop with SIGINT ignored
 *   block  a busy loop with SIGINT blocked */
#include <time.h>

#include "guest.h"

static volatile sig_atomic_t got;
static volatile int code, sender, sender_uid;

static void on_int(int s, siginfo_t* si, void* uc) {
  (void)s;
  (void)uc;
  code = si->si_code;
  sender = si->si_pid;
  sender_uid = (int)si->si_uid;
  got++;
}

static void report(void) {
  say("SIGINT code %d pid %s uid %d", code,
      sender == getpid() ? "self"
      : sender           ? "other"
                         : "0",
      sender_uid);
}

int main(int argc, char** argv) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_int;
  sa.sa_flags = SA_SIGINFO;
  CHECK(sigaction(SIGINT, &sa, NULL) == 0);
  const char* mode = argc > 1 ? argv[1] : "";
  if (!*mode) {
    raise(SIGINT);
    report();
    return code == SI_TKILL && got == 1 ? 0 : 1;
  }
  if (!strcmp(mode, "ignore")) signal(SIGINT, SIG_IGN);
  if (!strcmp(mode, "block")) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
  }
  say("ready");
  if (!strcmp(mode, "ignore") || !strcmp(mode, "block"))
    for (;;) {
    }
  if (!strcmp(mode, "spin")) {
    while (!got) {
    }
    report();
    return 5;
  }
  if (!strcmp(mode, "read")) {
    char c;
    errno = 0;
    const ssize_t n = read(0, &c, 1);
    say("read: %zd %s", n, errno_name(errno));
    report();
    return 5;
  }
  if (!strcmp(mode, "sleep")) {
    struct timespec ts = {20, 0};
    errno = 0;
    const int r = nanosleep(&ts, NULL);
    say("nanosleep: %d %s", r, errno_name(errno));
    report();
    return 5;
  }
  if (!strcmp(mode, "count")) {
    int seen = 0;
    for (;;) {
      if (got != seen) {
        seen = got;
        say("got %d", seen);
      }
    }
  }
  say("unknown mode %s", mode);
  return 2;
}
