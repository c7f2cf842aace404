/* fork_loop: 1,000 sequential fork + exit + wait cycles (argv[1] overrides the count).
 * Each child writes its index into a private page it shares copy-on-write with the parent
 * and exits with index % 256; the parent checks every status, prints the count and the sum
 * of the exit codes, and that its own page never changed. */
#include "guest.h"

int main(int argc, char** argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
  CHECK(n > 0);
  char* page = map_anon(1);
  memset(page, 0x11, G_PAGE);

  long sum = 0, ok = 0, expected_sum = 0;
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      page[i % G_PAGE] = (char)i;
      _exit((int)(i % 256));
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == i % 256) ok++;
    if (WIFEXITED(st)) sum += WEXITSTATUS(st);
    expected_sum += i % 256;
  }
  expect_long("children", n, n);
  expect_long("children with the right exit code", ok, n);
  expect_long("sum of exit codes", sum, expected_sum);
  int st;
  expect_str("no child left", rc_str(waitpid(-1, &st, WNOHANG)), "ECHILD");
  expect_yes("parent page unchanged", page[0] == 0x11 && page[G_PAGE - 1] == 0x11);
  return g_finish();
}
