/* mlock_limit: RLIMIT_MEMLOCK and the mlock family, as an unprivileged process sees them.
 *
 * Privilege: CAP_IPC_LOCK bypasses RLIMIT_MEMLOCK, and the native reference run may be
 * root. So the guest first drops CAP_IPC_LOCK from its effective and permitted sets with
 * capget/capset when it holds it (a privileged run cannot produce the unprivileged facts
 * otherwise); if capget is not implemented (mmemu) the process is taken to be unprivileged,
 * which is what mmemu models. Nothing about the drop is printed, so native-as-root,
 * native-as-user and mmemu print the same lines. Only the soft limit is changed (lowering
 * and raising it up to the hard limit needs no privilege).
 *
 * Facts (Linux): mlock within the soft limit works and populates; beyond it ENOMEM;
 * re-locking already locked pages is not counted twice; with limit 0 mlock gives EPERM;
 * munlock needs no limit; mlock2(MLOCK_ONFAULT) locks without populating, touched pages
 * become resident; mlock2 with unknown flags EINVAL; mlockall(MCL_CURRENT) over the limit
 * ENOMEM; mlockall(MCL_FUTURE) makes later mmaps locked (populated), and an mmap beyond the
 * limit then fails with EAGAIN; mlockall with no CURRENT/FUTURE bit EINVAL; mlock over a
 * hole ENOMEM.
 * qemu-user 7.2 has no mlock2 (ENOSYS) and fails the MCL_FUTURE mmap with ENOMEM instead of
 * EAGAIN; those lines differ under qemu-aarch64. */
#include <linux/capability.h>
#include <sys/resource.h>

#include "guest.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define LIMIT_PAGES 16

static void drop_ipc_lock(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return; /* no capabilities modelled */
  const unsigned bit = 1u << CAP_IPC_LOCK;          /* CAP_IPC_LOCK is 14: word 0 */
  if (!(data[0].effective & bit) && !(data[0].permitted & bit)) return;
  data[0].effective &= ~bit;
  data[0].permitted &= ~bit;
  data[0].inheritable &= ~bit;
  CHECK(syscall(SYS_capset, &hdr, data) == 0);
}

static void set_soft_limit(rlim_t bytes) {
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
  CHECK(rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= bytes);
  rl.rlim_cur = bytes;
  CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
}

static long sys_mlock2(void* p, size_t len, unsigned flags) {
  return syscall(SYS_mlock2, p, len, flags);
}

int main(void) {
  drop_ipc_lock();
  set_soft_limit(LIMIT_PAGES * G_PAGE);

  char* a = map_anon(32);
  char* b = map_anon(32);
  expect_str("mlock 8 pages (limit 16)", rc_str(mlock(a, 8 * G_PAGE)), "ok");
  expect_str("mlock populated them", residency(a, 10), "1111111100");
  expect_str("mlock 8 more pages (total 16)", rc_str(mlock(b, 8 * G_PAGE)), "ok");
  expect_str("mlock 1 page beyond the limit", rc_str(mlock(b + 8 * G_PAGE, G_PAGE)), "ENOMEM");
  expect_str("not populated by the failed mlock", residency(b + 8 * G_PAGE, 1), "0");
  expect_str("mlock the locked 8 again", rc_str(mlock(a, 8 * G_PAGE)), "ok");
  expect_str("mlock 4 locked + 1 new page", rc_str(mlock(a + 4 * G_PAGE, 5 * G_PAGE)), "ENOMEM");
  expect_str("munlock 4 pages", rc_str(munlock(a, 4 * G_PAGE)), "ok");
  expect_str("mlock 4 other pages", rc_str(mlock(a + 8 * G_PAGE, 4 * G_PAGE)), "ok");
  expect_str("mlock unaligned start (rounded down)", rc_str(mlock(a + 100, G_PAGE - 100)),
             "ENOMEM");
  expect_str("munlock everything", rc_str(munlock(a, 32 * G_PAGE)), "ok");
  expect_str("munlock b", rc_str(munlock(b, 32 * G_PAGE)), "ok");
  expect_str("mlock unaligned start after unlock", rc_str(mlock(a + 100, G_PAGE - 100)), "ok");
  CHECK(munmap(b + 20 * G_PAGE, G_PAGE) == 0);
  expect_str("mlock over a hole", rc_str(mlock(b + 19 * G_PAGE, 3 * G_PAGE)), "ENOMEM");
  CHECK(munlockall() == 0);

  /* MLOCK_ONFAULT: locked but populated only as touched. */
  char* c = map_anon(8);
  expect_str("mlock2 MLOCK_ONFAULT", rc_str(sys_mlock2(c, 8 * G_PAGE, MLOCK_ONFAULT)), "ok");
  expect_str("nothing populated", residency(c, 8), "00000000");
  c[G_PAGE] = 1;
  c[5 * G_PAGE] = 1;
  expect_str("touched pages resident", residency(c, 8), "01000100");
  expect_str("mlock2 unknown flag", rc_str(sys_mlock2(c, G_PAGE, 2)), "EINVAL");
  expect_str("mlock2 flags 0", rc_str(sys_mlock2(c, 8 * G_PAGE, 0)), "ok");
  expect_str("mlock2 flags 0 populates", residency(c, 8), "11111111");
  CHECK(munlockall() == 0);

  /* Limit 0: mlock is refused outright. */
  set_soft_limit(0);
  expect_str("mlock with limit 0", rc_str(mlock(a, G_PAGE)), "EPERM");
  expect_str("mlock2 with limit 0", rc_str(sys_mlock2(a, G_PAGE, MLOCK_ONFAULT)), "EPERM");
  expect_str("mlockall with limit 0", rc_str(mlockall(MCL_CURRENT)), "EPERM");
  expect_str("munlock with limit 0", rc_str(munlock(a, G_PAGE)), "ok");
  set_soft_limit(LIMIT_PAGES * G_PAGE);

  /* mlockall. */
  expect_str("mlockall(MCL_CURRENT) over the limit", rc_str(mlockall(MCL_CURRENT)), "ENOMEM");
  expect_str("mlockall(0)", rc_str(mlockall(0)), "EINVAL");
  expect_str("mlockall(MCL_ONFAULT) alone", rc_str(mlockall(MCL_ONFAULT)), "EINVAL");
  expect_str("mlockall(MCL_FUTURE)", rc_str(mlockall(MCL_FUTURE)), "ok");
  void* big = mmap(NULL, 32 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  expect_str("mmap 32 pages under MCL_FUTURE", ptr_str(big), "EAGAIN");
  void* small = mmap(NULL, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  expect_str("mmap 4 pages under MCL_FUTURE", ptr_str(small), "ok");
  if (small != MAP_FAILED) expect_str("locked mmap populated", residency(small, 4), "1111");
  expect_str("munlockall", rc_str(munlockall()), "ok");
  big = mmap(NULL, 32 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  expect_str("mmap 32 pages after munlockall", ptr_str(big), "ok");
  if (big != MAP_FAILED) expect_str("not populated", residency(big, 4), "0000");
  return g_finish();
}
