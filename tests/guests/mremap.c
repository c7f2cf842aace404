/* mremap: resizing and moving mappings.
 * - grow in place when the pages after the mapping are free (same address, contents kept);
 * - grow without MREMAP_MAYMOVE when the next page is taken: ENOMEM, nothing changes;
 * - MREMAP_MAYMOVE moves the mapping, contents kept, the old range becomes unmapped;
 * - MREMAP_FIXED moves to a chosen address, replacing what was there;
 * - MREMAP_DONTUNMAP moves the pages and leaves the old range mapped, reading zero;
 * - a written mapping moved back next to an unwritten neighbour merges with it, and its page
 *   stays reachable (a child's write after fork copies it; the parent keeps its data);
 * - shrink: the tail is unmapped, the head kept;
 * - invalid calls print their errno: EINVAL (unaligned, zero length, FIXED without MAYMOVE,
 *   unknown flag, overlapping FIXED ranges, DONTUNMAP with a size change), EFAULT (old
 *   range not mapped or spanning a hole), ENOMEM (no room to grow in place).
 * qemu-user 7.2 answers ENOMEM instead of EINVAL for a new length of 0. */
#include "guest.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static void* do_mremap(void* old, size_t old_pages, size_t new_pages, int flags, void* to) {
  return mremap(old, old_pages * G_PAGE, new_pages * G_PAGE, flags, to);
}

/* Reserves n pages of address space (PROT_NONE) so tests control what lies next to what. */
static char* reserve(size_t n) {
  void* p = mmap(NULL, n * G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  return p;
}
static char* map_at(char* at, size_t n) {
  void* p =
      mmap(at, n * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(p == at);
  return p;
}

int main(void) {
  /* Grow in place: 2 pages followed by 6 free ones. */
  char* area = reserve(8);
  CHECK(munmap(area, 8 * G_PAGE) == 0);
  char* a = map_at(area, 2);
  fill(a, 2 * G_PAGE, 1);
  void* r = do_mremap(a, 2, 5, 0, NULL);
  expect_str("grow in place", ptr_str(r), "ok");
  expect_yes("grown in place at the same address", r == a);
  expect_yes("contents kept after growing", filled(a, 2 * G_PAGE, 1));
  expect_yes("new tail reads zero", all_zero(a + 2 * G_PAGE, 3 * G_PAGE));

  /* Blocked: page 5 is taken by another mapping. */
  map_at(area + 5 * G_PAGE, 1);
  expect_str("grow past a neighbour without MAYMOVE", ptr_str(do_mremap(a, 5, 7, 0, NULL)),
             "ENOMEM");
  expect_yes("still mapped as 5 pages", is_mapped(a, 5));

  /* MAYMOVE: moves, keeps contents, frees the old range. */
  fill(a, 5 * G_PAGE, 2);
  char* m = do_mremap(a, 5, 16, MREMAP_MAYMOVE, NULL);
  expect_str("grow with MAYMOVE", ptr_str(m), "ok");
  expect_yes("moved", m != a);
  expect_yes("contents kept after the move", filled(m, 5 * G_PAGE, 2));
  expect_yes("grown part reads zero", all_zero(m + 5 * G_PAGE, 11 * G_PAGE));
  expect_str("old address after the move", probe_read(a), "SEGV_MAPERR");
  expect_str("neighbour of the old range", probe_write(area + 5 * G_PAGE, 1), "ok");

  /* FIXED: onto a chosen address that currently holds another mapping. */
  char* target = reserve(4);
  char* f = do_mremap(m, 4, 4, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  expect_str("MREMAP_FIXED", ptr_str(f), "ok");
  expect_yes("landed at the requested address", f == target);
  expect_yes("contents kept after the fixed move", filled(f, 4 * G_PAGE, 2));
  expect_str("write at the new place (placeholder replaced)", probe_write(f + 1, 2), "ok");
  expect_str("old head after the fixed move", probe_read(m), "SEGV_MAPERR");
  expect_str("old tail (not moved) still there", probe_read(m + 4 * G_PAGE), "ok");

  /* DONTUNMAP: pages move, the old range stays mapped and reads zero. */
  char* d = map_anon(3);
  fill(d, 3 * G_PAGE, 3);
  char* dn = do_mremap(d, 3, 3, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
  expect_str("MREMAP_DONTUNMAP", ptr_str(dn), "ok");
  expect_yes("new range holds the contents", dn != MAP_FAILED && filled(dn, 3 * G_PAGE, 3));
  expect_str("old range still mapped", probe_read(d + G_PAGE), "ok");
  expect_yes("old range reads zero", all_zero(d, 3 * G_PAGE));
  expect_str("DONTUNMAP with a size change",
             ptr_str(do_mremap(dn, 3, 4, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL)), "EINVAL");
  expect_str("DONTUNMAP without MAYMOVE", ptr_str(do_mremap(dn, 3, 3, MREMAP_DONTUNMAP, NULL)),
             "EINVAL");

  /* Moved next to an unwritten neighbour whose page offset lines up: one mapping. */
  char* g = reserve(8);
  CHECK(munmap(g + G_PAGE, 6 * G_PAGE) == 0);
  CHECK(mmap(g + G_PAGE, G_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        g + G_PAGE);
  char* x = map_at(g + 2 * G_PAGE, 1);
  x[0] = 'x';
  CHECK(do_mremap(x, 1, 1, MREMAP_MAYMOVE | MREMAP_FIXED, g + 5 * G_PAGE) == g + 5 * G_PAGE);
  CHECK(munmap(g + G_PAGE, G_PAGE) == 0);
  map_at(g + G_PAGE, 1);
  expect_str("move back next to an unwritten neighbour",
             ptr_str(do_mremap(g + 5 * G_PAGE, 1, 1, MREMAP_MAYMOVE | MREMAP_FIXED, x)), "ok");
  expect_str("merged with it (no mapping starts at the moved page)", maps_entry(x, NULL),
             "not in maps");
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    x[0] = 'c';
    _exit(x[0] == 'c' ? 0 : 1);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child writing the moved page", wstatus_str(st), "exited 0");
  expect_yes("parent keeps the moved page's data", x[0] == 'x');

  /* Shrink. */
  char* s = map_anon(6);
  fill(s, 6 * G_PAGE, 4);
  void* sr = do_mremap(s, 6, 2, 0, NULL);
  expect_yes("shrink keeps the address", sr == s);
  expect_yes("head kept after shrink", filled(s, 2 * G_PAGE, 4));
  expect_str("tail after shrink", probe_read(s + 2 * G_PAGE), "SEGV_MAPERR");
  expect_str("last page of the old tail", probe_read(s + 5 * G_PAGE), "SEGV_MAPERR");

  /* Invalid calls. */
  expect_str("unaligned old address", ptr_str(mremap(s + 1, G_PAGE, 2 * G_PAGE, MREMAP_MAYMOVE)),
             "EINVAL");
  expect_str("new length 0", ptr_str(mremap(s, G_PAGE, 0, MREMAP_MAYMOVE)), "EINVAL");
  expect_str("FIXED without MAYMOVE", ptr_str(do_mremap(s, 1, 1, MREMAP_FIXED, target)), "EINVAL");
  expect_str("unknown flag", ptr_str(do_mremap(s, 1, 1, 0x80, NULL)), "EINVAL");
  expect_str("FIXED onto an overlapping range",
             ptr_str(do_mremap(s, 2, 2, MREMAP_MAYMOVE | MREMAP_FIXED, s + G_PAGE)), "EINVAL");
  expect_str("old range not mapped", ptr_str(do_mremap(s + 2 * G_PAGE, 1, 2, MREMAP_MAYMOVE, NULL)),
             "EFAULT");
  char* h = map_anon(3);
  CHECK(munmap(h + G_PAGE, G_PAGE) == 0);
  expect_str("old range spanning a hole", ptr_str(do_mremap(h, 3, 4, MREMAP_MAYMOVE, NULL)),
             "EFAULT");
  expect_str("grow in place into the hole's neighbour", ptr_str(do_mremap(h, 1, 3, 0, NULL)),
             "ENOMEM");
  expect_str("grow in place into the hole only", ptr_str(do_mremap(h, 1, 2, 0, NULL)), "ok");
  return g_finish();
}
