/* madv_populate: MADV_POPULATE_READ / MADV_POPULATE_WRITE (Linux 5.14+), checked with mincore.
 * Native results on this machine's kernel, printed by errno name:
 * - anonymous private, untouched: POPULATE_READ 0 (pages present, reading zero),
 *   POPULATE_WRITE 0 (pages present); contents zero either way;
 * - PROT_READ anonymous: READ 0, WRITE EINVAL; PROT_NONE: both EINVAL;
 * - a range with a hole: ENOMEM, pages before the hole populated, pages after it not;
 * - unknown advice: EINVAL; unaligned start: EINVAL; length 0: 0;
 * - file mapping past end of file: EFAULT (the access would raise SIGBUS);
 *   POPULATE_WRITE on a read-only private file mapping: EINVAL;
 * - shared anonymous: POPULATE_WRITE 0.
 * qemu-user 7.2 ignores every MADV_POPULATE_* (answers 0, populates nothing) and accepts
 * unknown advice values, so under qemu-aarch64 several lines differ; mmemu must match the
 * native lines. */
#include <fcntl.h>

#include "guest.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

static const char* adv(void* p, size_t pages, int advice) {
  return rc_str(madvise(p, pages * G_PAGE, advice));
}

int main(int argc, char** argv) {
  (void)argc;
  char* r = map_anon(8);
  expect_str("untouched anon resident", residency(r, 8), "00000000");
  expect_str("POPULATE_READ anon", adv(r, 8, MADV_POPULATE_READ), "ok");
  expect_str("resident after POPULATE_READ", residency(r, 8), "11111111");
  expect_yes("reads zero", all_zero(r, 8 * G_PAGE));
  r[3 * G_PAGE] = 1; /* a write after POPULATE_READ still works */
  expect_yes("write after POPULATE_READ", r[3 * G_PAGE] == 1 && r[2 * G_PAGE] == 0);

  char* w = map_anon(8);
  expect_str("POPULATE_WRITE anon", adv(w + 2 * G_PAGE, 4, MADV_POPULATE_WRITE), "ok");
  expect_str("resident after POPULATE_WRITE", residency(w, 8), "00111100");
  expect_yes("populated pages read zero", all_zero(w, 8 * G_PAGE));

  char* ro = mmap(NULL, 2 * G_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(ro != MAP_FAILED);
  expect_str("POPULATE_READ read-only anon", adv(ro, 2, MADV_POPULATE_READ), "ok");
  expect_str("POPULATE_WRITE read-only anon", adv(ro, 2, MADV_POPULATE_WRITE), "EINVAL");
  char* no = mmap(NULL, 2 * G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(no != MAP_FAILED);
  expect_str("POPULATE_READ PROT_NONE", adv(no, 2, MADV_POPULATE_READ), "EINVAL");
  expect_str("POPULATE_WRITE PROT_NONE", adv(no, 2, MADV_POPULATE_WRITE), "EINVAL");

  /* A hole: fails with ENOMEM after populating what lies before it. */
  char* h = map_anon(6);
  CHECK(munmap(h + 2 * G_PAGE, G_PAGE) == 0);
  expect_str("POPULATE_WRITE across a hole", adv(h, 6, MADV_POPULATE_WRITE), "ENOMEM");
  expect_str("before the hole", residency(h, 2), "11");
  expect_str("after the hole", residency(h + 3 * G_PAGE, 3), "000");
  expect_str("POPULATE_READ on the hole alone", adv(h + 2 * G_PAGE, 1, MADV_POPULATE_READ),
             "ENOMEM");

  expect_str("unknown advice 999", adv(r, 1, 999), "EINVAL");
  expect_str("unaligned start", rc_str(madvise(r + 1, G_PAGE, MADV_POPULATE_READ)), "EINVAL");
  expect_str("length 0", rc_str(madvise(r, 0, MADV_POPULATE_WRITE)), "ok");

  /* File mapping of the guest's own executable, longer than the file. */
  int fd = open(argv[0], O_RDONLY);
  if (fd < 0) fd = open("/proc/self/exe", O_RDONLY);
  CHECK(fd >= 0);
  off_t size = lseek(fd, 0, SEEK_END);
  CHECK(size > 0);
  size_t pages = ((size_t)size + G_PAGE - 1) / G_PAGE;
  char* f = mmap(NULL, (pages + 2) * G_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  CHECK(f != MAP_FAILED);
  expect_str("POPULATE_READ file inside the file", adv(f, pages, MADV_POPULATE_READ), "ok");
  expect_str("POPULATE_READ file past end of file", adv(f + pages * G_PAGE, 1, MADV_POPULATE_READ),
             "EFAULT");
  expect_str("POPULATE_WRITE read-only private file", adv(f, 1, MADV_POPULATE_WRITE), "EINVAL");
  char* fw = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(fw != MAP_FAILED);
  expect_str("POPULATE_WRITE writable private file", adv(fw, 1, MADV_POPULATE_WRITE), "ok");
  expect_yes("private copy still holds the file bytes", memcmp(fw, "\177ELF", 4) == 0);

  char* s = mmap(NULL, 2 * G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  expect_str("POPULATE_WRITE shared anon", adv(s, 2, MADV_POPULATE_WRITE), "ok");
  expect_str("shared anon resident", residency(s, 2), "11");
  return g_finish();
}
