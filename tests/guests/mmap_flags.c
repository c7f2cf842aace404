/* mmap_flags: mmap arguments and flags.
 * - unknown PROT bits are ignored by mmap (unlike mprotect);
 * - errors: length 0, neither MAP_PRIVATE nor MAP_SHARED, unaligned
 *   MAP_FIXED address, unaligned file offset (EINVAL); bad fd (EBADF); MAP_SHARED+PROT_WRITE
 *   on a read-only file (EACCES), MAP_PRIVATE+PROT_WRITE on it is fine;
 * - a free hint address is honoured;
 * - MAP_FIXED_NOREPLACE over an existing mapping: EEXIST, the old contents untouched;
 *   over free space it maps exactly there;
 * - MAP_FIXED over an existing mapping replaces it (reads zero);
 * - MAP_POPULATE: all pages resident at once (mincore);
 * - MAP_GROWSDOWN: a touch below the mapping grows it (one page or several), but not into
 *   the stack guard gap above another mapping (SEGV_MAPERR there).
 * qemu-user 7.2 lets MAP_FIXED_NOREPLACE replace a mapping and never grows MAP_GROWSDOWN
 * mappings; it also rejects unknown PROT bits (EINVAL) and ignores MAP_POPULATE, so those
 * lines differ under qemu-aarch64. */
#include <fcntl.h>

#include "guest.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

int main(int argc, char** argv) {
  (void)argc;
  char* m = map_anon(4);
  expect_str("length 0", ptr_str(mmap(NULL, 0, RW, ANON, -1, 0)), "EINVAL");
  /* mmap, unlike mprotect, ignores PROT bits it does not know. */
  expect_str("unknown PROT bits", ptr_str(mmap(NULL, G_PAGE, 0x100 | PROT_READ, ANON, -1, 0)),
             "ok");
  expect_str("neither PRIVATE nor SHARED", ptr_str(mmap(NULL, G_PAGE, RW, MAP_ANONYMOUS, -1, 0)),
             "EINVAL");
  expect_str("unaligned MAP_FIXED address",
             ptr_str(mmap(m + 1, G_PAGE, RW, ANON | MAP_FIXED, -1, 0)), "EINVAL");
  expect_str("bad fd", ptr_str(mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, 1000, 0)), "EBADF");
  int fd = open(argv[0], O_RDONLY);
  if (fd < 0) fd = open("/proc/self/exe", O_RDONLY);
  CHECK(fd >= 0);
  expect_str("unaligned file offset", ptr_str(mmap(NULL, G_PAGE, PROT_READ, MAP_PRIVATE, fd, 100)),
             "EINVAL");
  expect_str("shared writable on a read-only file",
             ptr_str(mmap(NULL, G_PAGE, RW, MAP_SHARED, fd, 0)), "EACCES");
  expect_str("private writable on a read-only file",
             ptr_str(mmap(NULL, G_PAGE, RW, MAP_PRIVATE, fd, 0)), "ok");
  close(fd);

  /* Hints and FIXED_NOREPLACE inside a region we own. */
  char* area = mmap(NULL, 16 * G_PAGE, PROT_NONE, ANON, -1, 0);
  CHECK(area != MAP_FAILED);
  CHECK(munmap(area, 16 * G_PAGE) == 0);
  char* h = mmap(area + 4 * G_PAGE, 2 * G_PAGE, RW, ANON, -1, 0);
  expect_yes("free hint honoured", h == area + 4 * G_PAGE);
  h[0] = 'h';
  void* r = mmap(area + 5 * G_PAGE, 2 * G_PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
  expect_str("FIXED_NOREPLACE over a mapping", ptr_str(r), "EEXIST");
  expect_yes("old contents untouched", h[0] == 'h');
  r = mmap(area + 8 * G_PAGE, G_PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
  expect_yes("FIXED_NOREPLACE in free space maps there", r == area + 8 * G_PAGE);
  r = mmap(area + 4 * G_PAGE, G_PAGE, RW, ANON | MAP_FIXED, -1, 0);
  expect_yes("MAP_FIXED over a mapping maps there", r == area + 4 * G_PAGE);
  expect_yes("replaced page reads zero", h[0] == 0);

  char* pop = mmap(NULL, 4 * G_PAGE, RW, ANON | MAP_POPULATE, -1, 0);
  CHECK(pop != MAP_FAILED);
  expect_str("MAP_POPULATE resident", residency(pop, 4), "1111");
  char* lazy = map_anon(4);
  expect_str("without MAP_POPULATE", residency(lazy, 4), "0000");

  /* MAP_GROWSDOWN at the top of a 4 MiB hole (more than the 1 MiB stack guard gap). */
  char* hole = mmap(NULL, 1024 * G_PAGE, PROT_NONE, ANON, -1, 0);
  CHECK(hole != MAP_FAILED);
  CHECK(munmap(hole, 1024 * G_PAGE) == 0);
  char* gd = mmap(hole + 1022 * G_PAGE, 2 * G_PAGE, RW, ANON | MAP_GROWSDOWN, -1, 0);
  CHECK(gd != MAP_FAILED);
  expect_yes("GROWSDOWN placed at the hint", gd == hole + 1022 * G_PAGE);
  expect_str("page below before any touch", residency(gd - G_PAGE, 1), "ENOMEM");
  expect_str("touch one page below", probe_write(gd - 100, 1), "ok");
  expect_yes("mapping grew by one page",
             is_mapped(gd - G_PAGE, 1) && !is_mapped(gd - 2 * G_PAGE, 1));
  expect_str("touch 10 pages below", probe_write(gd - 10 * G_PAGE, 2), "ok");
  expect_yes("mapping grew to there", is_mapped(gd - 10 * G_PAGE, 10));
  expect_yes("earlier byte kept", (gd - 100)[0] == 1);
  /* Another mapping 4 pages below the grown start: growing is refused inside the gap. */
  char* low = mmap(gd - 14 * G_PAGE, G_PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0);
  expect_str("mapping 4 pages below the grown start", ptr_str(low), "ok");
  if (low == gd - 14 * G_PAGE)
    expect_str("touch below, inside the guard gap", probe_read(gd - 11 * G_PAGE), "SEGV_MAPERR");
  return g_finish();
}
