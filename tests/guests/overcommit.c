/* overcommit: Linux's default heuristic (vm.overcommit_memory = 0, OVERCOMMIT_GUESS) refuses
 * one request of more pages than RAM + swap with ENOMEM, wherever memory is committed:
 * - mmap of private writable memory (also through malloc), unless MAP_NORESERVE;
 * - mmap of shared anonymous memory (shmem), unless MAP_NORESERVE;
 * - brk growth;
 * - mprotect making a read-only private mapping writable;
 * - mremap growing an accounted mapping;
 * - fork, for each accounted VMA of the parent (a VMA merged from two pieces that each fit
 *   may itself not fit).
 * 64 TiB is far beyond any machine's RAM + swap and fits both user address spaces (x86_64
 * 128 TiB, arm64 256 TiB), so the lines do not depend on the host. The fork case finds the
 * limit by probing mmap, so it does not depend on it either. */
#include "guest.h"

#define TIB (1UL << 40)
#define GIB (1UL << 30)
#define MIB (1UL << 20)
#define HUGE_LEN (64 * TIB)

static void* map(size_t len, int prot, int flags) {
  return mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
}

/* The result of a mapping attempt; unmaps it when it worked. */
static const char* try_map(size_t len, int prot, int flags) {
  void* p = mmap(NULL, len, prot, MAP_ANONYMOUS | flags, -1, 0);
  if (p == MAP_FAILED) return errno_name(errno);
  CHECK(munmap(p, len) == 0);
  return "ok";
}

/* The largest private writable mapping (in MiB) the kernel accepts: RAM + swap, rounded. */
static size_t commit_limit_mib(void) {
  size_t lo = 1;              /* accepted */
  size_t hi = HUGE_LEN / MIB; /* refused */
  CHECK(strcmp(try_map(lo * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE), "ok") == 0);
  CHECK(strcmp(try_map(hi * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE), "ENOMEM") == 0);
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(try_map(mid * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE), "ok") == 0)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

static void fork_case(void) {
  /* Two accounted halves that each fit merge into one VMA that does not. */
  size_t half = commit_limit_mib() * 3 / 4 * MIB;
  char* p = map(2 * half, PROT_READ, 0); /* read-only: nothing charged yet */
  CHECK(p != MAP_FAILED);
  expect_str("mprotect first half rw", rc_str(mprotect(p, half, PROT_READ | PROT_WRITE)), "ok");
  expect_str("mprotect second half rw", rc_str(mprotect(p + half, half, PROT_READ | PROT_WRITE)),
             "ok");
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  if (pid > 0) CHECK(waitpid(pid, NULL, 0) == pid);
  expect_str("fork with a VMA over the limit", pid < 0 ? errno_name(errno) : "ok", "ENOMEM");
  CHECK(munmap(p, 2 * half) == 0);
  int st = 0;
  pid = fork();
  if (pid == 0) _exit(0);
  CHECK(pid > 0);
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("fork after unmapping it", wstatus_str(st), "exited 0");
}

int main(void) {
  errno = 0;
  void* m = malloc(HUGE_LEN);
  expect_str("malloc 64 TiB", m ? "ok" : errno_name(errno), "ENOMEM");
  free(m);
  m = malloc(64 * MIB);
  expect_str("malloc 64 MiB", m ? "ok" : errno_name(errno), "ok");
  free(m);

  const int rw = PROT_READ | PROT_WRITE;
  expect_str("mmap 64 TiB private", try_map(HUGE_LEN, rw, MAP_PRIVATE), "ENOMEM");
  expect_str("mmap 64 TiB private noreserve", try_map(HUGE_LEN, rw, MAP_PRIVATE | MAP_NORESERVE),
             "ok");
  expect_str("mmap 64 TiB private read-only", try_map(HUGE_LEN, PROT_READ, MAP_PRIVATE), "ok");
  expect_str("mmap 64 TiB shared", try_map(HUGE_LEN, rw, MAP_SHARED), "ENOMEM");
  expect_str("mmap 64 TiB shared read-only", try_map(HUGE_LEN, PROT_READ, MAP_SHARED), "ENOMEM");
  expect_str("mmap 64 TiB shared noreserve", try_map(HUGE_LEN, rw, MAP_SHARED | MAP_NORESERVE),
             "ok");

  /* mprotect: the whole range is refused and stays read-only; one page is fine. */
  char* ro = map(HUGE_LEN, PROT_READ, 0);
  CHECK(ro != MAP_FAILED);
  expect_str("mprotect 64 TiB read-only to rw", rc_str(mprotect(ro, HUGE_LEN, rw)), "ENOMEM");
  expect_str("mprotect one page of it to rw", rc_str(mprotect(ro, G_PAGE, rw)), "ok");
  ro[0] = 1;
  expect_long("written byte", ro[0], 1);
  CHECK(munmap(ro, HUGE_LEN) == 0);
  char* nr = map(HUGE_LEN, PROT_READ, MAP_NORESERVE);
  CHECK(nr != MAP_FAILED);
  expect_str("mprotect 64 TiB noreserve to rw", rc_str(mprotect(nr, HUGE_LEN, rw)), "ok");
  CHECK(munmap(nr, HUGE_LEN) == 0);

  /* brk: the break stays where it was. */
  char* cur = sbrk(0);
  expect_str("brk +64 TiB", rc_str(brk(cur + HUGE_LEN)), "ENOMEM");
  expect_yes("break unchanged", sbrk(0) == cur);
  expect_str("brk +1 MiB", rc_str(brk(cur + MIB)), "ok");
  expect_str("brk back", rc_str(brk(cur)), "ok");

  /* mremap: an accounted mapping may not grow past the limit; a NORESERVE one may. */
  char* g = map(GIB, rw, 0);
  CHECK(g != MAP_FAILED);
  g[0] = 7;
  void* r = mremap(g, GIB, HUGE_LEN, MREMAP_MAYMOVE);
  expect_str("mremap 1 GiB to 64 TiB", ptr_str(r), "ENOMEM");
  expect_long("byte still there", g[0], 7);
  CHECK(munmap(g, GIB) == 0);
  g = map(GIB, rw, MAP_NORESERVE);
  CHECK(g != MAP_FAILED);
  r = mremap(g, GIB, HUGE_LEN, MREMAP_MAYMOVE);
  expect_str("mremap 1 GiB noreserve to 64 TiB", ptr_str(r), "ok");
  CHECK(munmap(r == MAP_FAILED ? g : r, r == MAP_FAILED ? GIB : HUGE_LEN) == 0);

  fork_case();
  return g_finish();
}
