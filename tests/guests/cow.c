/* cow: copy-on-write across fork.
 * - private anonymous pages written before fork: the child reads the parent's values,
 *   then parent and child each write the same pages and each sees only its own value;
 * - a page never touched before fork: the child's write does not show in the parent;
 * - a global (.data) and a .bss variable behave the same way;
 * - the parent writing after fork (child waits on a pipe) does not change the child's view;
 * - a read-only private page stays readable in the child and still faults on write;
 * - a MAP_SHARED|MAP_ANONYMOUS page *is* shared: each side sees the other's writes. */
#include "guest.h"

#define PAGES 4

int global_data = 1234;
int global_bss;

static void wait_byte(int fd) {
  char c;
  CHECK(read(fd, &c, 1) == 1);
}
static void send_byte(int fd) {
  CHECK(write(fd, "x", 1) == 1);
}

int main(void) {
  char* priv = map_anon(PAGES);
  char* fresh = map_anon(1); /* never touched before fork */
  char* ro = map_anon(1);
  char* shared = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(shared != MAP_FAILED);
  for (int i = 0; i < PAGES; i++)
    memset(priv + i * G_PAGE, 'P', G_PAGE);
  memset(ro, 'R', G_PAGE);
  CHECK(mprotect(ro, G_PAGE, PROT_READ) == 0);
  shared[0] = 'S';
  global_data = 1;
  global_bss = 2;

  int to_child[2], to_parent[2];
  CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);

  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    /* Child: reports through its exit code: 0 = all as Linux; n = check n failed. */
    int bad = 0;
    if (priv[0] != 'P' || priv[(PAGES - 1) * G_PAGE + 5] != 'P') bad = bad ? bad : 1;
    if (global_data != 1 || global_bss != 2) bad = bad ? bad : 2;
    if (ro[100] != 'R') bad = bad ? bad : 3;
    if (strcmp(probe_write(ro, 'x'), "SEGV_ACCERR") != 0) bad = bad ? bad : 4;
    for (int i = 0; i < PAGES; i++)
      memset(priv + i * G_PAGE, 'C', G_PAGE);
    fresh[0] = 'C';
    global_data = 3;
    global_bss = 4;
    shared[1] = 'c'; /* parent must see this */
    send_byte(to_parent[1]);
    wait_byte(to_child[0]); /* parent has written its own values now */
    for (int i = 0; i < PAGES; i++)
      if (priv[i * G_PAGE] != 'C' || priv[i * G_PAGE + G_PAGE - 1] != 'C') bad = bad ? bad : 5;
    if (fresh[0] != 'C') bad = bad ? bad : 6;
    if (global_data != 3 || global_bss != 4) bad = bad ? bad : 7;
    if (shared[2] != 'p') bad = bad ? bad : 8; /* the parent's write */
    _exit(bad);
  }

  wait_byte(to_parent[0]); /* child has written */
  int pok = 1;
  for (int i = 0; i < PAGES; i++)
    if (priv[i * G_PAGE] != 'P' || priv[i * G_PAGE + 17] != 'P') pok = 0;
  expect_yes("parent's private pages unchanged by child's writes", pok);
  expect_yes("parent's untouched page still zero", fresh[0] == 0);
  expect_yes("parent's globals unchanged", global_data == 1 && global_bss == 2);
  expect_yes("parent sees child's write to shared page", shared[1] == 'c');
  for (int i = 0; i < PAGES; i++)
    memset(priv + i * G_PAGE, 'Q', G_PAGE);
  global_data = 5;
  shared[2] = 'p';
  send_byte(to_child[1]);

  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child (0 = saw its own values and the parent's shared write)", wstatus_str(st),
             "exited 0");
  expect_yes("parent sees its own writes after child exit", priv[0] == 'Q' && global_data == 5);
  expect_yes("parent's read-only page intact", ro[0] == 'R');

  /* Repeat with the child exiting first, then the parent writing pages the child also
   * wrote: the pages the child had copied must not leak into the parent. */
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    memset(priv, 'D', PAGES * G_PAGE);
    _exit(priv[G_PAGE] == 'D' ? 0 : 1);
  }
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("second child", wstatus_str(st), "exited 0");
  expect_yes("parent still sees its values after second child",
             priv[0] == 'Q' && priv[G_PAGE] == 'Q');
  memset(priv, 'E', PAGES * G_PAGE);
  expect_yes("parent writes after child exit", priv[PAGES * G_PAGE - 1] == 'E');
  return g_finish();
}
