/* madv_dontneed: MADV_DONTNEED and MADV_FREE.
 * - private anonymous page written, MADV_DONTNEED: reads back 0 (and is no longer resident);
 * - shared anonymous page: MADV_DONTNEED keeps the data (it lives in the shared object);
 * - private file mapping written (copy made), MADV_DONTNEED: reads the file's bytes again;
 * - MADV_DONTNEED across a hole: ENOMEM, but both sides were zapped;
 * - MADV_DONTNEED on an mlocked range: EINVAL;
 * - after fork, the child's MADV_DONTNEED zeroes only the child's view;
 * - MADV_FREE on private anonymous memory, then a write: the written value stays;
 *   MADV_FREE on a shared or file mapping: EINVAL.
 * The file mapping is of the guest's own executable (argv[0], else /proc/self/exe).
 * qemu-user 7.2 answers 0 for MADV_DONTNEED across a hole without zapping anything, and 0
 * for MADV_FREE on shared and file mappings; those lines differ under qemu-aarch64. */
#include <fcntl.h>

#include "guest.h"

static int open_self(const char* argv0) {
  int fd = open(argv0, O_RDONLY);
  if (fd < 0) fd = open("/proc/self/exe", O_RDONLY);
  CHECK(fd >= 0);
  return fd;
}

int main(int argc, char** argv) {
  (void)argc;
  /* Private anonymous. */
  char* p = map_anon(2);
  memset(p, 0x5a, 2 * G_PAGE);
  expect_str("private pages resident before", residency(p, 2), "11");
  expect_str("MADV_DONTNEED private anon", rc_str(madvise(p, G_PAGE, MADV_DONTNEED)), "ok");
  expect_str("resident after", residency(p, 2), "01");
  expect_yes("dropped page reads zero", all_zero(p, G_PAGE));
  expect_yes("page after it kept", p[G_PAGE] == 0x5a && p[2 * G_PAGE - 1] == 0x5a);

  /* Shared anonymous: the data survives. */
  char* s = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  s[10] = 42;
  expect_str("MADV_DONTNEED shared anon", rc_str(madvise(s, G_PAGE, MADV_DONTNEED)), "ok");
  expect_yes("shared page keeps its data", s[10] == 42);

  /* Private file mapping: the private copy is dropped, the file shows through again. */
  int fd = open_self(argv[0]);
  char* f = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(f != MAP_FAILED);
  expect_yes("file mapping starts with the ELF magic", memcmp(f, "\177ELF", 4) == 0);
  memcpy(f, "XXXX", 4);
  expect_yes("private copy written", memcmp(f, "XXXX", 4) == 0);
  expect_str("MADV_DONTNEED private file", rc_str(madvise(f, G_PAGE, MADV_DONTNEED)), "ok");
  expect_yes("file contents back after DONTNEED", memcmp(f, "\177ELF", 4) == 0);

  /* Across a hole: ENOMEM, yet the mapped parts on both sides were zapped. */
  char* h = map_anon(3);
  memset(h, 1, 3 * G_PAGE);
  CHECK(munmap(h + G_PAGE, G_PAGE) == 0);
  expect_str("MADV_DONTNEED across a hole", rc_str(madvise(h, 3 * G_PAGE, MADV_DONTNEED)),
             "ENOMEM");
  expect_yes("page before the hole zeroed", all_zero(h, G_PAGE));
  expect_yes("page after the hole zeroed", all_zero(h + 2 * G_PAGE, G_PAGE));

  /* Locked pages cannot be dropped. */
  char* l = map_anon(1);
  l[0] = 3;
  CHECK(mlock(l, G_PAGE) == 0);
  expect_str("MADV_DONTNEED on mlocked page", rc_str(madvise(l, G_PAGE, MADV_DONTNEED)), "EINVAL");
  expect_yes("mlocked page kept", l[0] == 3);
  CHECK(munlock(l, G_PAGE) == 0);

  /* After fork: the child's DONTNEED affects only the child. */
  char* c = map_anon(1);
  c[0] = 9;
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (madvise(c, G_PAGE, MADV_DONTNEED) != 0) _exit(1);
    _exit(c[0] == 0 ? 0 : 2);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child zeroed its copy", wstatus_str(st), "exited 0");
  expect_yes("parent's copy kept", c[0] == 9);

  /* MADV_FREE: a write after it keeps the value. */
  char* fr = map_anon(2);
  memset(fr, 7, 2 * G_PAGE);
  expect_str("MADV_FREE private anon", rc_str(madvise(fr, 2 * G_PAGE, MADV_FREE)), "ok");
  fr[100] = 11;
  fr[G_PAGE + 100] = 12;
  expect_yes("values written after MADV_FREE kept", fr[100] == 11 && fr[G_PAGE + 100] == 12);
  /* Other bytes of a lazily freed page are either kept or zero (reclaim may drop it). */
  expect_yes("rest of the page kept or zero", fr[101] == 7 || fr[101] == 0);
  expect_str("MADV_FREE shared anon", rc_str(madvise(s, G_PAGE, MADV_FREE)), "EINVAL");
  expect_str("MADV_FREE private file", rc_str(madvise(f, G_PAGE, MADV_FREE)), "EINVAL");
  return g_finish();
}
