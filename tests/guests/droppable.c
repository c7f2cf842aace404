/* droppable: MAP_DROPPABLE (Linux 6.11+, mapping type 0x08) as Linux 6.18 answers it.
 * - only as a private anonymous mapping type of its own: with MAP_PRIVATE or MAP_SHARED
 *   added, with a file, with MAP_LOCKED, MAP_GROWSDOWN or MAP_HUGETLB: EINVAL;
 * - smaps VmFlags "nr wf dd dp": not charged (VM_NORESERVE), wiped on fork, not dumped;
 * - mlock, mlock2(MLOCK_ONFAULT) and mlockall succeed without locking it;
 *   MADV_KEEPONFORK and MADV_DODUMP are refused (EINVAL);
 * - reclaim (MADV_PAGEOUT here) drops its pages even when dirty: they read back as zero;
 *   a private anonymous page written the same way stays (no swap);
 * - a child sees zeros (VM_WIPEONFORK). */
#include "mm_flags.h"

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

static const char* try_map(int flags, int fd) {
  void* p = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE, flags, fd, 0);
  const char* s = ptr_str(p);
  if (p != MAP_FAILED) munmap(p, G_PAGE);
  return s;
}

int main(void) {
  const size_t P = G_PAGE;
  expect_str("DROPPABLE|PRIVATE", try_map(MAP_DROPPABLE | MAP_PRIVATE | MAP_ANONYMOUS, -1),
             "EINVAL");
  expect_str("DROPPABLE|SHARED", try_map(MAP_DROPPABLE | MAP_SHARED | MAP_ANONYMOUS, -1), "EINVAL");
  expect_str("DROPPABLE|LOCKED", try_map(MAP_DROPPABLE | MAP_ANONYMOUS | MAP_LOCKED, -1), "EINVAL");
  expect_str("DROPPABLE|GROWSDOWN", try_map(MAP_DROPPABLE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1),
             "EINVAL");
  expect_str("DROPPABLE|HUGETLB", try_map(MAP_DROPPABLE | MAP_ANONYMOUS | MAP_HUGETLB, -1),
             "EINVAL");
  expect_str("DROPPABLE without MAP_ANONYMOUS, fd -1", try_map(MAP_DROPPABLE, -1), "EBADF");
  int fd = memfd_create("droppable", 0);
  CHECK(fd >= 0);
  CHECK(ftruncate(fd, (off_t)P) == 0);
  expect_str("DROPPABLE of a file", try_map(MAP_DROPPABLE, fd), "EINVAL");
  close(fd);

  char* d = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
  CHECK(d != MAP_FAILED);
  show_vmas("new droppable", d, 4);
  memset(d, 0x5a, 4 * P);
  show_vmas("written", d, 4);
  expect_str("mlock", rc_str(mlock(d, 4 * P)), "ok");
  expect_str("mlock2 MLOCK_ONFAULT", rc_str(syscall(SYS_mlock2, d, 4 * P, 1)), "ok");
  expect_str("mlockall MCL_CURRENT", rc_str(mlockall(MCL_CURRENT)), "ok");
  show_vmas("after mlock calls", d, 4);
  CHECK(munlockall() == 0);
  expect_str("MADV_KEEPONFORK", rc_str(madvise(d, P, MADV_KEEPONFORK)), "EINVAL");
  expect_str("MADV_DODUMP", rc_str(madvise(d, P, MADV_DODUMP)), "EINVAL");
  expect_str("MADV_DOFORK", rc_str(madvise(d, P, MADV_DOFORK)), "ok");

  char* a = map_anon(2);
  memset(a, 0x33, 2 * P);
  expect_str("resident before pageout", residency(d, 4), "1111");
  expect_str("MADV_PAGEOUT droppable pages 0-1", rc_str(madvise(d, 2 * P, MADV_PAGEOUT)), "ok");
  expect_str("resident after pageout", residency(d, 4), "0011");
  expect_yes("dropped pages read zero", d[0] == 0 && d[P] == 0 && d[P + 100] == 0);
  expect_yes("kept pages keep data", d[2 * P] == 0x5a && d[3 * P + 7] == 0x5a);
  expect_str("MADV_PAGEOUT private anon", rc_str(madvise(a, 2 * P, MADV_PAGEOUT)), "ok");
  expect_str("private anon resident after pageout", residency(a, 2), "11");
  expect_yes("private anon data kept", a[0] == 0x33 && a[P] == 0x33);
  show_vmas("after pageout", d, 4);

  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    expect_yes("child reads zero (wiped on fork)", d[2 * P] == 0 && d[3 * P] == 0);
    _exit(g_finish());
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child", wstatus_str(st), "exited 0");
  expect_yes("parent keeps data", d[2 * P] == 0x5a);
  return g_finish();
}
