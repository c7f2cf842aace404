/* mseal: sealing a range (Linux 6.10+, syscall 462 on both ABIs) as Linux 6.18 answers it.
 * - argument errors (flags, alignment, wrap: EINVAL; a hole or a range past the mapping:
 *   ENOMEM, nothing sealed); sealing splits the VMA and smaps shows "sl";
 * - munmap, mprotect (even to the same protection), MAP_FIXED over, mremap (same size,
 *   shrink, expand, move, or onto a sealed target) of a sealed VMA: EPERM, nothing changed;
 *   munmap over an unsealed and a sealed VMA unmaps nothing; mprotect over them changes the
 *   unsealed one first (6.13+ checks per VMA) and then fails;
 * - madvise: the discarding advice is refused only on read-only anonymous sealed memory;
 *   writable sealed memory may still be discarded; mlock is allowed;
 * - the seal survives fork (the child cannot unmap either) and sealing again is a no-op;
 *   sealing over a sealed and an unsealed VMA leaves one sealed VMA;
 * - mremap moving an unsealed and a sealed VMA together (MREMAP_FIXED, same length) moves
 *   the first and then fails with EPERM. */
#include "mm_flags.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static long sys_mseal(void* p, size_t len, unsigned long flags) {
  return syscall(462, p, len, flags);
}

int main(void) {
  char* b = map_anon(16);
  const size_t P = G_PAGE;
  memset(b, 0x11, 16 * P);

  expect_str("mseal flags=1", rc_str(sys_mseal(b, P, 1)), "EINVAL");
  expect_str("mseal unaligned", rc_str(sys_mseal(b + 1, P, 0)), "EINVAL");
  expect_str("mseal len 0", rc_str(sys_mseal(b, 0, 0)), "ok");
  expect_str("mseal len -100", rc_str(sys_mseal(b, (size_t)-100, 0)), "EINVAL");
  expect_str("mseal wrapping", rc_str(sys_mseal(b, (size_t)0 - (size_t)b, 0)), "EINVAL");
  CHECK(munmap(b + 12 * P, P) == 0);
  expect_str("mseal over a hole", rc_str(sys_mseal(b + 10 * P, 4 * P, 0)), "ENOMEM");
  CHECK(munmap(b + 15 * P, P) == 0);
  expect_str("mseal past the end", rc_str(sys_mseal(b + 13 * P, 3 * P, 0)), "ENOMEM");
  show_vmas("after failed mseals", b, 16);

  expect_str("mseal pages 2-3 (len rounded up)", rc_str(sys_mseal(b + 2 * P, 2 * P - 100, 0)),
             "ok");
  show_vmas("sealed 2-3", b, 12);
  expect_str("mseal again", rc_str(sys_mseal(b + 2 * P, P, 0)), "ok");

  expect_str("munmap sealed", rc_str(munmap(b + 2 * P, P)), "EPERM");
  expect_str("munmap unsealed+sealed", rc_str(munmap(b, 3 * P)), "EPERM");
  expect_str("munmap sealed+unsealed", rc_str(munmap(b + 3 * P, 3 * P)), "EPERM");
  expect_yes("all still mapped", is_mapped(b, 12));
  expect_yes("data kept", b[0] == 0x11 && b[2 * P] == 0x11 && b[5 * P] == 0x11);

  expect_str("mprotect sealed same prot", rc_str(mprotect(b + 2 * P, P, PROT_READ | PROT_WRITE)),
             "EPERM");
  expect_str("mprotect sealed+unsealed", rc_str(mprotect(b + 3 * P, 2 * P, PROT_READ)), "EPERM");
  expect_str("mprotect unsealed+sealed", rc_str(mprotect(b, 3 * P, PROT_READ)), "EPERM");
  show_vmas("after mprotects", b, 12);

  expect_str("mmap MAP_FIXED over sealed",
             ptr_str(mmap(b + 2 * P, P, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)),
             "EPERM");
  expect_str("mmap MAP_FIXED over unsealed+sealed",
             ptr_str(mmap(b + P, 2 * P, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)),
             "EPERM");
  expect_str("mremap sealed same size", ptr_str(mremap(b + 2 * P, 2 * P, 2 * P, 0)), "EPERM");
  expect_str("mremap sealed shrink", ptr_str(mremap(b + 2 * P, 2 * P, P, 0)), "EPERM");
  expect_str("mremap sealed expand", ptr_str(mremap(b + 2 * P, 2 * P, 3 * P, MREMAP_MAYMOVE)),
             "EPERM");
  expect_str("mremap sealed move",
             ptr_str(mremap(b + 2 * P, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, b + 8 * P)),
             "EPERM");
  expect_str("mremap onto sealed",
             ptr_str(mremap(b + 6 * P, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, b + 2 * P)), "EPERM");
  expect_str("mremap sealed bad flags", ptr_str(mremap(b + 2 * P, P, P, 0x100)), "EINVAL");
  show_vmas("after mmap/mremap", b, 12);

  expect_str("mlock sealed", rc_str(mlock(b + 2 * P, P)), "ok");
  expect_str("munlock sealed", rc_str(munlock(b + 2 * P, P)), "ok");
  expect_str("MADV_DONTNEED writable sealed", rc_str(madvise(b + 2 * P, P, MADV_DONTNEED)), "ok");
  expect_yes("zeroed", b[2 * P] == 0);

  /* Read-only anonymous, sealed: the discarding advice is refused. */
  char* r = mmap(NULL, 4 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(r != MAP_FAILED);
  expect_str("mseal read-only", rc_str(sys_mseal(r, 4 * P, 0)), "ok");
  static const struct {
    int advice;
    const char* name;
    const char* ro;
  } advs[] = {
      {MADV_DONTNEED, "MADV_DONTNEED", "EPERM"},
      {MADV_FREE, "MADV_FREE", "EPERM"},
      {MADV_DONTNEED_LOCKED, "MADV_DONTNEED_LOCKED", "EPERM"},
      {MADV_REMOVE, "MADV_REMOVE", "EPERM"},
      {MADV_DONTFORK, "MADV_DONTFORK", "EPERM"},
      {MADV_WIPEONFORK, "MADV_WIPEONFORK", "EPERM"},
      {MADV_DOFORK, "MADV_DOFORK", "ok"},
      {MADV_KEEPONFORK, "MADV_KEEPONFORK", "ok"},
      {MADV_COLD, "MADV_COLD", "ok"},
      {MADV_PAGEOUT, "MADV_PAGEOUT", "ok"},
      {MADV_WILLNEED, "MADV_WILLNEED", "ok"},
      {MADV_NORMAL, "MADV_NORMAL", "ok"},
      {MADV_RANDOM, "MADV_RANDOM", "ok"},
      {MADV_DONTDUMP, "MADV_DONTDUMP", "ok"},
  };
  for (size_t i = 0; i < sizeof advs / sizeof advs[0]; i++) {
    char label[64];
    snprintf(label, sizeof label, "%s read-only sealed", advs[i].name);
    expect_str(label, rc_str(madvise(r, P, advs[i].advice)), advs[i].ro);
  }
  expect_str("MADV_WIPEONFORK writable sealed", rc_str(madvise(b + 2 * P, P, MADV_WIPEONFORK)),
             "ok");
  show_vmas("read-only sealed after madvise", r, 4);

  /* Sealing over a sealed and an unsealed VMA: one sealed VMA. */
  char* m = map_anon(4);
  CHECK(sys_mseal(m + 2 * P, 2 * P, 0) == 0);
  expect_str("mseal unsealed+sealed", rc_str(sys_mseal(m, 4 * P, 0)), "ok");
  show_vmas("merged", m, 4);

  /* mremap moving several VMAs at once (6.17+): the unsealed one moves, then the sealed one
   * fails the call. */
  char* t = mmap(NULL, 64 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(t != MAP_FAILED);
  CHECK(munmap(t + 8 * P, 8 * P) == 0);
  CHECK(mmap(t + 8 * P, 4 * P, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1,
             0) == t + 8 * P);
  CHECK(mprotect(t + 10 * P, 2 * P, PROT_READ) == 0);
  t[8 * P] = 1;
  CHECK(sys_mseal(t + 10 * P, 2 * P, 0) == 0);
  expect_str("mremap move unsealed+sealed",
             ptr_str(mremap(t + 8 * P, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, t + 40 * P)),
             "EPERM");
  expect_yes("first VMA moved", t[40 * P] == 1);
  show_vmas("after the multi-VMA move", t, 64);

  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    expect_str("child munmap sealed", rc_str(munmap(b + 3 * P, P)), "EPERM");
    expect_str("child mprotect sealed", rc_str(mprotect(r, P, PROT_NONE)), "EPERM");
    show_vmas("child", m, 4);
    _exit(g_finish());
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child", wstatus_str(st), "exited 0");
  expect_str("munmap unsealed part", rc_str(munmap(b + 5 * P, P)), "ok");
  return g_finish();
}
