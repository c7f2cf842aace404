/* madv_fork: madvise advice that changes what fork copies.
 * - MADV_WIPEONFORK on private anonymous memory: the child sees zeros, the parent keeps its
 *   data; on a shared mapping it is EINVAL; MADV_KEEPONFORK undoes it;
 * - MADV_DONTFORK: the range is absent in the child (SEGV_MAPERR), present in the parent;
 *   MADV_DOFORK undoes it.
 * The child prints its own lines (the parent waits before printing more, so the order is
 * fixed). qemu-user 7.2 ignores WIPEONFORK and DONTFORK (answers 0, copies everything), so
 * the child's lines differ under qemu-aarch64. */
#include "guest.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif

static void run_child(void (*body)(void)) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    body();
    _exit(g_finish());
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child", wstatus_str(st), "exited 0");
}

static char *wipe, *keep, *dontfork, *dofork;

static void child_one(void) {
  expect_yes("child: WIPEONFORK page reads zero", all_zero(wipe, 2 * G_PAGE));
  expect_yes("child: WIPEONFORK page writable", (wipe[5] = 1) == 1);
  expect_yes("child: KEEPONFORK page copied", keep[0] == 'k');
  expect_str("child: DONTFORK page", probe_read(dontfork), "SEGV_MAPERR");
  expect_yes("child: DOFORK page copied", dofork[0] == 'd');
}

static void child_two(void) {
  expect_yes("child: page inherited again after KEEPONFORK", wipe[0] == 'w');
  expect_str("child: page after DOFORK", probe_read(dontfork), "ok");
}

int main(void) {
  wipe = map_anon(2);
  keep = map_anon(1);
  dontfork = map_anon(1);
  dofork = map_anon(1);
  memset(wipe, 'w', 2 * G_PAGE);
  keep[0] = 'k';
  dontfork[0] = 'x';
  dofork[0] = 'd';
  char* sh = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(sh != MAP_FAILED);

  expect_str("MADV_WIPEONFORK private", rc_str(madvise(wipe, 2 * G_PAGE, MADV_WIPEONFORK)), "ok");
  expect_str("MADV_WIPEONFORK shared", rc_str(madvise(sh, G_PAGE, MADV_WIPEONFORK)), "EINVAL");
  expect_str("MADV_WIPEONFORK then KEEPONFORK", rc_str(madvise(keep, G_PAGE, MADV_WIPEONFORK)),
             "ok");
  CHECK(madvise(keep, G_PAGE, MADV_KEEPONFORK) == 0);
  expect_str("MADV_DONTFORK", rc_str(madvise(dontfork, G_PAGE, MADV_DONTFORK)), "ok");
  CHECK(madvise(dofork, G_PAGE, MADV_DONTFORK) == 0);
  expect_str("MADV_DOFORK", rc_str(madvise(dofork, G_PAGE, MADV_DOFORK)), "ok");

  run_child(child_one);
  expect_yes("parent keeps WIPEONFORK data", wipe[0] == 'w' && wipe[2 * G_PAGE - 1] == 'w');
  expect_yes("parent keeps DONTFORK data", dontfork[0] == 'x');

  CHECK(madvise(wipe, 2 * G_PAGE, MADV_KEEPONFORK) == 0);
  CHECK(madvise(dontfork, G_PAGE, MADV_DOFORK) == 0);
  run_child(child_two);
  return g_finish();
}
