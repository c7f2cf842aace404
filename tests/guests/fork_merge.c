/* fork_merge: which new or changed anonymous ranges merge with a neighbour inherited over
 * fork. A child's copy of a VMA the parent had written to is linked to the parent's
 * anon_vma as well as its own (its anon_vma_chain is not singular), and Linux (6.16 on:
 * is_mergeable_anon_vma checks the target for uncowed parents) refuses to let a range
 * without an anon_vma join it, so the child gets a VMA of its own; an inherited VMA that was
 * never written has no anon_vma and merges as usual; the parent's own VMA still merges. The
 * other way round, a written inherited VMA that mremap grows up to a never-written
 * neighbour takes it over (only the source of the pages is checked for parents, and the
 * growth has none: vma_merge_extend's middle is NULL). brk follows the first rule: a child
 * that grows a heap its parent wrote gets a second [heap] VMA.
 * Printed: the layout of part of a 24-page region as page ranges relative to its start,
 * from /proc/self/maps, after each step (the child's lines come before the parent's later
 * ones). PROT_NONE guard pages keep the areas apart:
 *   0 ---  1-3 A (written)  3-5 hole  5 ---  6-8 B (never written)  8-10 hole  10 ---
 *   11-13 C (written, the parent's control)  13-15 hole  15 ---
 *   16-18 D (written)  18-20 hole  20-22 E (never written)  22-24 --- */
#include "guest.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define REGION 24

static char* region;

static char* at(int page) {
  return region + page * G_PAGE;
}

/* The mappings in pages [from, to) of the region as "first-end perms" page ranges,
 * " | "-separated. */
static const char* layout(int from, int to) {
  static char buf[1 << 16];
  static char out[512];
  g_read_file("/proc/self/maps", buf, sizeof buf);
  const uintptr_t rs = (uintptr_t)region, lo = (uintptr_t)at(from), hi = (uintptr_t)at(to);
  size_t used = 0;
  out[0] = '\0';
  for (char* line = buf; line && *line;) {
    char* nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    unsigned long s, e;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && e > lo && s < hi) {
      if (s < lo) s = lo;
      if (e > hi) e = hi;
      used += (size_t)snprintf(out + used, sizeof out - used, "%s%lu-%lu %s", used ? " | " : "",
                               (s - rs) / G_PAGE, (e - rs) / G_PAGE, perms);
      if (used >= sizeof out) break;
    }
    line = nl ? nl + 1 : NULL;
  }
  return out;
}

/* The number of [heap] lines in /proc/self/maps. */
static long heap_vmas(void) {
  static char buf[1 << 16];
  g_read_file("/proc/self/maps", buf, sizeof buf);
  long n = 0;
  for (char* p = buf; (p = strstr(p, "[heap]")) != NULL; p++)
    n++;
  return n;
}

/* mmap with MAP_FIXED_NOREPLACE of `pages` read-write pages at page `page`. */
static void map_rw(int page, int pages) {
  char* p = mmap(at(page), (size_t)pages * G_PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK(p == at(page));
}

static void child(void) {
  map_rw(3, 2);
  expect_str("child: mmap 3-5 after inherited written A", layout(0, 6),
             "0-1 ---p | 1-3 rw-p | 3-5 rw-p | 5-6 ---p");
  map_rw(8, 2);
  expect_str("child: mmap 8-10 after inherited unwritten B", layout(5, 11),
             "5-6 ---p | 6-10 rw-p | 10-11 ---p");
  /* An existing range without an anon_vma next to A: mprotect back to A's flags does not
   * merge either. */
  CHECK(mprotect(at(3), 2 * G_PAGE, PROT_READ) == 0);
  CHECK(mprotect(at(3), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  expect_str("child: mprotect 3-5 r then rw", layout(0, 6),
             "0-1 ---p | 1-3 rw-p | 3-5 rw-p | 5-6 ---p");
  at(3)[0] = 3;
  expect_yes("child: A and the new range hold their data", at(1)[0] == 1 && at(3)[0] == 3);
  /* mremap grows D in place up to E. */
  expect_str("child: mremap D 2 to 4 pages", ptr_str(mremap(at(16), 2 * G_PAGE, 4 * G_PAGE, 0)),
             "ok");
  expect_str("child: D grown into unwritten E", layout(15, 24),
             "15-16 ---p | 16-22 rw-p | 22-24 ---p");
  expect_yes("child: D holds its data", at(16)[0] == 16 && at(20)[0] == 0);
  CHECK(sbrk(4 * G_PAGE) != (void*)-1);
  expect_long("child: [heap] VMAs after sbrk", heap_vmas(), 2);
}

int main(void) {
  region = mmap(NULL, REGION * G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(region != MAP_FAILED);
  CHECK(munmap(at(3), 2 * G_PAGE) == 0);
  CHECK(munmap(at(8), 2 * G_PAGE) == 0);
  CHECK(munmap(at(13), 2 * G_PAGE) == 0);
  CHECK(munmap(at(18), 2 * G_PAGE) == 0);
  CHECK(mprotect(at(1), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  CHECK(mprotect(at(6), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  CHECK(mprotect(at(11), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  CHECK(mprotect(at(16), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  CHECK(mprotect(at(20), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  at(1)[0] = 1;
  at(11)[0] = 11;
  at(16)[0] = 16;
  char* heap = sbrk(4 * G_PAGE);
  CHECK(heap != (void*)-1);
  memset(heap, 1, 4 * G_PAGE);
  expect_long("parent: [heap] VMAs after sbrk and a write", heap_vmas(), 1);
  expect_str("parent: areas", layout(0, REGION),
             "0-1 ---p | 1-3 rw-p | 5-6 ---p | 6-8 rw-p | 10-11 ---p | 11-13 rw-p | 15-16 ---p | "
             "16-18 rw-p | 20-22 rw-p | 22-24 ---p");
  map_rw(13, 2);
  expect_str("parent: mmap 13-15 after its own written C", layout(10, 16),
             "10-11 ---p | 11-15 rw-p | 15-16 ---p");

  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    child();
    _exit(g_finish());
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child", wstatus_str(st), "exited 0");

  /* The parent's A is its own (a singular chain): a range next to it merges. */
  map_rw(3, 2);
  expect_str("parent: mmap 3-5 after A once the child is gone", layout(0, REGION),
             "0-1 ---p | 1-5 rw-p | 5-6 ---p | 6-8 rw-p | 10-11 ---p | 11-15 rw-p | 15-16 ---p | "
             "16-18 rw-p | 20-22 rw-p | 22-24 ---p");
  CHECK(sbrk(4 * G_PAGE) != (void*)-1);
  expect_long("parent: [heap] VMAs after another sbrk", heap_vmas(), 1);
  return g_finish();
}
