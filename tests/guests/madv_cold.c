/* madv_cold: MADV_COLD (20) and MADV_PAGEOUT (21) without swap, as Linux 6.18 answers them.
 * - COLD only deactivates: every page stays resident with its data;
 * - PAGEOUT reclaims at once, but a written private anonymous page cannot go anywhere
 *   without swap: it stays; a MADV_FREE'd page still clean is dropped (reads zero), one
 *   written again after MADV_FREE stays; shared anonymous (shmem) pages stay; the zero page
 *   is left alone;
 * - errors: an mlocked range is EINVAL for both; a hole in the range is ENOMEM (the mapped
 *   parts are still advised); an unaligned start is EINVAL; a sealed read-only range may be
 *   advised (neither discards). */
#include "guest.h"

int main(void) {
  const size_t P = G_PAGE;
  char* a = map_anon(4);
  memset(a, 7, 4 * P);
  expect_str("MADV_COLD", rc_str(madvise(a, 4 * P, MADV_COLD)), "ok");
  expect_str("resident after COLD", residency(a, 4), "1111");
  expect_str("MADV_PAGEOUT", rc_str(madvise(a, 4 * P, MADV_PAGEOUT)), "ok");
  expect_str("resident after PAGEOUT (no swap)", residency(a, 4), "1111");
  expect_yes("data kept", a[0] == 7 && a[3 * P] == 7);

  expect_str("MADV_FREE pages 2-3", rc_str(madvise(a + 2 * P, 2 * P, MADV_FREE)), "ok");
  a[3 * P] = 9; /* written again: no longer lazily freeable */
  expect_str("MADV_PAGEOUT after MADV_FREE", rc_str(madvise(a, 4 * P, MADV_PAGEOUT)), "ok");
  expect_str("resident", residency(a, 4), "1101");
  expect_str("values",
             a[0] == 7 && a[P] == 7 && a[2 * P] == 0 && a[3 * P] == 9 ? "7 7 0 9" : "other",
             "7 7 0 9");

  char* s = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  memset(s, 1, 2 * P);
  expect_str("MADV_PAGEOUT shared anon", rc_str(madvise(s, 2 * P, MADV_PAGEOUT)), "ok");
  expect_str("shared resident", residency(s, 2), "11");

  char* z = map_anon(2);
  volatile char c = z[0]; /* maps the zero page */
  (void)c;
  expect_str("MADV_PAGEOUT zero page", rc_str(madvise(z, 2 * P, MADV_PAGEOUT)), "ok");
  expect_str("zero page resident", residency(z, 2), "10");

  char* l = map_anon(2);
  CHECK(mlock(l, 2 * P) == 0);
  expect_str("MADV_COLD mlocked", rc_str(madvise(l, 2 * P, MADV_COLD)), "EINVAL");
  expect_str("MADV_PAGEOUT mlocked", rc_str(madvise(l, 2 * P, MADV_PAGEOUT)), "EINVAL");
  expect_str("MADV_COLD unaligned", rc_str(madvise(a + 1, P, MADV_COLD)), "EINVAL");

  CHECK(munmap(a + P, P) == 0);
  expect_str("MADV_COLD over a hole", rc_str(madvise(a, 3 * P, MADV_COLD)), "ENOMEM");
  expect_str("MADV_PAGEOUT over a hole", rc_str(madvise(a, 3 * P, MADV_PAGEOUT)), "ENOMEM");
  expect_str("resident around the hole", residency(a + 2 * P, 2), "11");

  char* r = mmap(NULL, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(r != MAP_FAILED);
  CHECK(syscall(462, r, P, 0) == 0);
  expect_str("MADV_COLD read-only sealed", rc_str(madvise(r, P, MADV_COLD)), "ok");
  expect_str("MADV_PAGEOUT read-only sealed", rc_str(madvise(r, P, MADV_PAGEOUT)), "ok");
  return g_finish();
}
