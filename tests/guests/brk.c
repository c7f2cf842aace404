/* brk: the program break.
 * - sbrk growth by whole pages: the new memory reads zero and keeps what is written;
 * - growing further keeps the old contents;
 * - shrinking: contents below the new break are kept, the pages past it are gone (a touch
 *   raises SIGSEGV with SEGV_MAPERR at that address);
 * - growing again over the shrunk range gives zero-filled pages, not the old data;
 * - the raw brk syscall: brk(0) answers the current break, a request below the start of the
 *   heap is refused by returning the unchanged break, an unaligned break is kept as asked
 *   (only the mapping is page-rounded).
 * No malloc here (glibc's malloc would move the break behind our back).
 * qemu-user 7.2 never unmaps heap pages when the break shrinks, so the SEGV_MAPERR lines
 * read "ok" under qemu-aarch64. */
#include "guest.h"

static uintptr_t sys_brk(uintptr_t addr) {
  return (uintptr_t)syscall(SYS_brk, addr);
}

int main(void) {
  uintptr_t start = sys_brk(0);
  CHECK(start != 0);
  /* Align the break up to a page so page-granular facts are exact. */
  uintptr_t base = (start + G_PAGE - 1) & ~(G_PAGE - 1);
  CHECK(sys_brk(base) == base);
  CHECK((uintptr_t)sbrk(0) == base);

  char* p = sbrk(4 * G_PAGE);
  CHECK(p != (void*)-1);
  expect_yes("sbrk returned the old break", (uintptr_t)p == base);
  expect_yes("break moved by 4 pages", (uintptr_t)sbrk(0) == base + 4 * G_PAGE);
  expect_yes("new heap reads zero", all_zero(p, 4 * G_PAGE));
  fill(p, 4 * G_PAGE, 1);

  char* q = sbrk(60 * G_PAGE);
  CHECK(q != (void*)-1);
  expect_yes("second growth contiguous", q == p + 4 * G_PAGE);
  fill(q, 60 * G_PAGE, 2);
  expect_yes("first block kept after growth", filled(p, 4 * G_PAGE, 1));
  expect_yes("second block holds its data", filled(q, 60 * G_PAGE, 2));

  /* Shrink by 62 pages: 2 pages remain. */
  CHECK(sbrk(-(intptr_t)(62 * G_PAGE)) != (void*)-1);
  expect_yes("break after shrink", (uintptr_t)sbrk(0) == base + 2 * G_PAGE);
  expect_yes("contents below the new break kept", filled(p, 2 * G_PAGE, 1));
  expect_str("read just past the shrunk break", probe_read(p + 2 * G_PAGE), "SEGV_MAPERR");
  expect_str("write far past the shrunk break", probe_write(p + 40 * G_PAGE + 9, 1), "SEGV_MAPERR");
  expect_str("last byte below the break", probe_write(p + 2 * G_PAGE - 1, 1), "ok");

  /* Grow over the released range again: fresh zero pages. */
  char* r = sbrk(8 * G_PAGE);
  CHECK(r == p + 2 * G_PAGE);
  expect_yes("regrown pages read zero", all_zero(r, 8 * G_PAGE));
  expect_yes("old contents still below", filled(p, 2 * G_PAGE - 1, 1));

  /* Raw syscall corners. */
  uintptr_t cur = sys_brk(0);
  expect_yes("brk(0) is the current break", cur == base + 10 * G_PAGE);
  expect_yes("brk below the heap start is refused (break unchanged)", sys_brk(G_PAGE * 16) == cur);
  uintptr_t odd = cur + 100;
  expect_yes("unaligned break accepted as asked", sys_brk(odd) == odd);
  expect_str("byte past the unaligned break, same page", probe_write((char*)odd + 5, 1), "ok");
  expect_str("next page past the unaligned break", probe_read((char*)cur + G_PAGE), "SEGV_MAPERR");
  expect_yes("shrink back to the aligned base", sys_brk(base) == base);
  expect_str("first heap page after full shrink", probe_read(p), "SEGV_MAPERR");
  return g_finish();
}
