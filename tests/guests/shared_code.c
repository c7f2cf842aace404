/* shared_code: code in a MAP_SHARED|MAP_ANONYMOUS page written by one process and run by
 * another (each with its own CPU and TLB over the same frame).
 * - RWX shared page: the parent runs the code, a forked child patches it through the
 *   shared mapping and exits, the parent runs it again after waitpid: the new code;
 * - the reverse: the child runs the code from its own R+X view (mprotected in the child),
 *   the parent patches it through its RW view while the child waits, the child runs
 *   again: the new code; many rounds, each patch a different function;
 * - a private mapping next to it is not affected by either side's patches. */
#include "guest.h"

static void put(int fd, long v) {
  CHECK(write(fd, &v, sizeof v) == (ssize_t)sizeof v);
}
static long get(int fd) {
  long v;
  CHECK(read(fd, &v, sizeof v) == (ssize_t)sizeof v);
  return v;
}

#define ROUNDS 20

int main(void) {
  char* code = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
  CHECK(code != MAP_FAILED);
  char* priv = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(priv != MAP_FAILED);
  g_emit_add(priv, 5);

  /* The child patches, the parent runs. */
  g_emit_add(code, 1000);
  expect_long("parent runs the shared code", g_call(code, 42), 1042);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int ok = g_call(code, 0) == 1000; /* the child runs it too before patching */
    g_emit_add(code, 2000);
    g_emit_add(priv, 6); /* its own copy */
    _exit(ok && g_call(code, 0) == 2000 ? 0 : 1);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child ran and patched", wstatus_str(st), "exited 0");
  expect_long("parent runs the child's patch", g_call(code, 42), 2042);
  expect_long("parent's private code unchanged", g_call(priv, 0), 5);

  /* The parent patches through RW, the child runs from its R+X view. */
  int to_child[2], to_parent[2];
  CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
  g_emit_add(code, 3000);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    CHECK(mprotect(code, G_PAGE, PROT_READ | PROT_EXEC) == 0);
    put(to_parent[1], g_call(code, 0));
    for (int i = 0; i < ROUNDS; i++) {
      get(to_child[0]); /* patched */
      put(to_parent[1], g_call(code, 1) + g_call(priv, 0));
    }
    _exit(0);
  }
  CHECK(mprotect(code, G_PAGE, PROT_READ | PROT_WRITE) == 0);
  expect_long("child runs the code", get(to_parent[0]), 3000);
  long sum = 0;
  int all = 1;
  for (int i = 0; i < ROUNDS; i++) {
    g_emit_add(code, 100 + (unsigned)i);
    put(to_child[1], i);
    long got = get(to_parent[0]);
    if (got != 101 + i + 5) all = 0;
    sum += got;
  }
  expect_yes("child ran each of the parent's patches", all);
  expect_long("sum of the child's results", sum, ROUNDS * 106 + ROUNDS * (ROUNDS - 1) / 2);
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child", wstatus_str(st), "exited 0");
  CHECK(mprotect(code, G_PAGE, PROT_READ | PROT_EXEC) == 0);
  expect_long("parent runs the last patch", g_call(code, 0), 100 + ROUNDS - 1);
  return g_finish();
}
