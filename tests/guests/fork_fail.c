/* fork_fail: the main demo guest. Builds a few dozen mappings of mixed kinds, asks mmemu to
 * dump its page tables ("before-fork"), then forks N times (argv[1], default 8).
 *
 * Mappings (each followed by a PROT_NONE guard page so they stay separate VMAs):
 *   8 private anonymous regions of 1..8 pages, written with a pattern;
 *   4 private anonymous regions of 2 pages, never touched before fork;
 *   4 shared anonymous regions of 1 page (one slot per fork, for the children to sign);
 *   4 anonymous regions written then made read-only;
 *   the executable itself mapped private read-only (whole file) and private writable (one
 *   page, written, so it holds a copied page).
 *
 * Each fork either succeeds — the child verifies everything it inherited, writes its private
 * copies (copy-on-write), signs its shared slot, checks that read-only memory still faults
 * on write, and exits 0 (or the number of the first failed check) — or fails with ENOMEM
 * (mmemu can inject that), in which case the parent says so and carries on.
 *
 * Output, designed for comparison: one line per fork, "fork K: ok" or "fork K: ENOMEM"
 * (or "fork K: child <status>" when a child did not exit 0), and otherwise only lines that
 * are the same whether or not any fork failed. Exit status 0 when the parent's memory is
 * intact and every fork either worked or failed with ENOMEM. Natively all forks succeed. */
#include <fcntl.h>

#include "guest.h"

#define NPRIV 8
#define NFRESH 4
#define NSHARED 4
#define NRO 4

static char* priv[NPRIV];
static char* fresh[NFRESH];
static char* shared[NSHARED];
static char* ro[NRO];
static char* exe_ro;
static size_t exe_pages;
static char* exe_rw;

/* n pages plus a PROT_NONE guard page after them. */
static char* map_guarded(size_t pages, int flags) {
  char* p = mmap(NULL, (pages + 1) * G_PAGE, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  CHECK(mprotect(p + pages * G_PAGE, G_PAGE, PROT_NONE) == 0);
  return p;
}

static int private_intact(void) {
  for (int i = 0; i < NPRIV; i++)
    if (!filled(priv[i], (size_t)(i + 1) * G_PAGE, 100u + (unsigned)i)) return 0;
  return 1;
}
static int fresh_zero(void) {
  for (int i = 0; i < NFRESH; i++)
    if (!all_zero(fresh[i], 2 * G_PAGE)) return 0;
  return 1;
}
static int ro_intact(void) {
  for (int i = 0; i < NRO; i++)
    if (!filled(ro[i], G_PAGE, 200u + (unsigned)i)) return 0;
  return 1;
}
static int exe_intact(void) {
  return memcmp(exe_ro, "\177ELF", 4) == 0 && memcmp(exe_rw, "MMEMU", 5) == 0 &&
         exe_rw[G_PAGE - 1] == exe_ro[G_PAGE - 1];
}

/* The shared page for fork k, slot k % NSHARED, byte k / NSHARED. */
static volatile char* slot(int k) {
  return (volatile char*)shared[k % NSHARED] + k / NSHARED;
}

static int child(int k) {
  if (!private_intact()) return 1;
  if (!fresh_zero()) return 2;
  if (!ro_intact()) return 3;
  if (!exe_intact()) return 4;
  for (int i = 0; i < NPRIV; i++)
    fill(priv[i], (size_t)(i + 1) * G_PAGE, 50u + (unsigned)k);
  for (int i = 0; i < NFRESH; i++)
    memset(fresh[i], k + 1, 2 * G_PAGE);
  memcpy(exe_rw, "CHILD", 5);
  for (int i = 0; i < NPRIV; i++)
    if (!filled(priv[i], (size_t)(i + 1) * G_PAGE, 50u + (unsigned)k)) return 5;
  if (strcmp(probe_write(ro[k % NRO], 1), "SEGV_ACCERR") != 0) return 6;
  if (strcmp(probe_write(exe_ro, 1), "SEGV_ACCERR") != 0) return 7;
  *slot(k) = (char)(k + 1);
  return 0;
}

int main(int argc, char** argv) {
  int nforks = argc > 1 ? atoi(argv[1]) : 8;
  CHECK(nforks > 0 && nforks <= 4 * (int)G_PAGE);

  for (int i = 0; i < NPRIV; i++) {
    priv[i] = map_guarded((size_t)i + 1, MAP_PRIVATE);
    fill(priv[i], (size_t)(i + 1) * G_PAGE, 100u + (unsigned)i);
  }
  for (int i = 0; i < NFRESH; i++)
    fresh[i] = map_guarded(2, MAP_PRIVATE);
  for (int i = 0; i < NSHARED; i++)
    shared[i] = map_guarded(1, MAP_SHARED);
  for (int i = 0; i < NRO; i++) {
    ro[i] = map_guarded(1, MAP_PRIVATE);
    fill(ro[i], G_PAGE, 200u + (unsigned)i);
    CHECK(mprotect(ro[i], G_PAGE, PROT_READ) == 0);
  }
  int fd = open(argv[0], O_RDONLY);
  if (fd < 0) fd = open("/proc/self/exe", O_RDONLY);
  CHECK(fd >= 0);
  off_t size = lseek(fd, 0, SEEK_END);
  CHECK(size > (off_t)G_PAGE);
  exe_pages = ((size_t)size + G_PAGE - 1) / G_PAGE;
  exe_ro = mmap(NULL, exe_pages * G_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  CHECK(exe_ro != MAP_FAILED);
  exe_rw = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(exe_rw != MAP_FAILED);
  memcpy(exe_rw, "MMEMU", 5);
  close(fd);
  say("mappings made: %d", 2 * (NPRIV + NFRESH + NSHARED + NRO) + 2);

  mmemu_dump("before-fork");

  int unexpected = 0;
  for (int k = 0; k < nforks; k++) {
    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      say("fork %d: %s", k, errno_name(e));
      if (e != ENOMEM) unexpected++;
      continue;
    }
    if (pid == 0) _exit(child(k));
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      say("fork %d: %s", k,
          *slot(k) == (char)(k + 1) ? "ok" : "ok but its shared write is missing");
    } else {
      say("fork %d: child %s", k, wstatus_str(st));
    }
  }
  say("forks attempted: %d", nforks);

  expect_yes("parent's private memory intact", private_intact());
  expect_yes("parent's untouched memory still zero", fresh_zero());
  expect_yes("parent's read-only memory intact", ro_intact());
  expect_yes("parent's file mappings intact", exe_intact());
  /* Every slot holds either 0 (its fork failed or its child died early) or the value its
   * child wrote; nothing else. */
  int slots_ok = 1;
  for (int k = 0; k < nforks; k++)
    if (*slot(k) != 0 && *slot(k) != (char)(k + 1)) slots_ok = 0;
  expect_yes("shared slots hold only what children wrote", slots_ok);
  for (int i = 0; i < NPRIV; i++)
    fill(priv[i], (size_t)(i + 1) * G_PAGE, 7u + (unsigned)i);
  int writable = 1;
  for (int i = 0; i < NPRIV; i++)
    if (!filled(priv[i], (size_t)(i + 1) * G_PAGE, 7u + (unsigned)i)) writable = 0;
  expect_yes("parent can still write its memory", writable);
  expect_long("forks failing other than with ENOMEM", unexpected, 0);
  mmemu_dump("end");
  return g_finish();
}
