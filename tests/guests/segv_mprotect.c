/* segv_mprotect: permission faults.
 * - a write to a PROT_READ page: SIGSEGV, SEGV_ACCERR, si_addr = the byte written;
 *   the page still reads back its old contents;
 * - a read of a PROT_NONE page: SEGV_ACCERR; a write too;
 * - mprotect back to PROT_READ|PROT_WRITE: the write works, contents kept;
 * - mprotect of part of a mapping: only that part is affected;
 * - invalid mprotect calls: unaligned (EINVAL), unknown bits (EINVAL), hole (ENOMEM), and
 *   a range with a hole is still changed up to the hole. */
#include "guest.h"

int main(void) {
  char* p = map_anon(4);
  memset(p, 'a', 4 * G_PAGE);

  CHECK(mprotect(p, G_PAGE, PROT_READ) == 0);
  expect_str("write to PROT_READ page", probe_write(p + 77, 'x'), "SEGV_ACCERR");
  expect_str("read of PROT_READ page", probe_read(p + 77), "ok");
  expect_yes("PROT_READ page kept its contents", p[77] == 'a');

  CHECK(mprotect(p + G_PAGE, G_PAGE, PROT_NONE) == 0);
  expect_str("read of PROT_NONE page", probe_read(p + G_PAGE + 4095), "SEGV_ACCERR");
  expect_str("write to PROT_NONE page", probe_write(p + G_PAGE, 'x'), "SEGV_ACCERR");

  /* Pages 2 and 3 were not touched by either mprotect. */
  expect_str("write to untouched neighbour", probe_write(p + 2 * G_PAGE, 'b'), "ok");

  CHECK(mprotect(p, 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  expect_str("write after mprotect RW (was PROT_READ)", probe_write(p + 77, 'y'), "ok");
  expect_str("write after mprotect RW (was PROT_NONE)", probe_write(p + G_PAGE + 1, 'z'), "ok");
  expect_yes("contents kept through PROT_NONE", p[G_PAGE] == 'a' && p[G_PAGE + 1] == 'z');
  expect_yes("written values read back", p[77] == 'y' && p[2 * G_PAGE] == 'b');

  /* A never-touched page made read-only reads zero and rejects writes. */
  char* q = map_anon(1);
  CHECK(mprotect(q, G_PAGE, PROT_READ) == 0);
  expect_str("read of untouched PROT_READ page", probe_read(q), "ok");
  expect_yes("it reads zero", q[0] == 0);
  expect_str("write to untouched PROT_READ page", probe_write(q + 8, 1), "SEGV_ACCERR");

  /* Write-only is not expressible on x86 or arm64: PROT_WRITE alone still allows reads. */
  CHECK(mprotect(q, G_PAGE, PROT_WRITE) == 0);
  expect_str("write to PROT_WRITE page", probe_write(q + 8, 1), "ok");
  expect_str("read of PROT_WRITE page", probe_read(q + 8), "ok");

  expect_str("mprotect unaligned", rc_str(mprotect(p + 1, G_PAGE, PROT_READ)), "EINVAL");
  expect_str("mprotect unknown bits", rc_str(mprotect(p, G_PAGE, 0x100)), "EINVAL");
  CHECK(munmap(p + 3 * G_PAGE, G_PAGE) == 0);
  expect_str("mprotect over a hole", rc_str(mprotect(p + 2 * G_PAGE, 2 * G_PAGE, PROT_NONE)),
             "ENOMEM");
  /* Linux changes the mapped part before it finds the hole: that page is PROT_NONE now.
   * (Read, not written: qemu-user 7.2 loops forever on a write to such a page.) */
  expect_str("read of the page before the hole after that failure", probe_read(p + 2 * G_PAGE),
             "SEGV_ACCERR");
  expect_str("read of the page below it", probe_read(p + G_PAGE), "ok");
  return g_finish();
}
