/* sysv_shm: System V shared memory as test programs use it between a parent and its
 * children: shmget (IPC_PRIVATE and keys: ENOENT, EEXIST, EINVAL), shmat at a chosen or
 * kernel-chosen address (SHM_RND, SHM_REMAP, SHM_RDONLY with SIGSEGV on a store), a forked
 * child that inherits the attachment and writes through it, shm_nattch counting VMAs (an
 * mprotect split counts twice), shmdt rules, IPC_STAT/IPC_SET, and IPC_RMID while attached
 * (the key goes, the segment lives until its last detach). */
#include "guest.h"

#include <sys/ipc.h>
#include <sys/shm.h>

static long nattch(int id) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return -1;
  return (long)ds.shm_nattch;
}

int main(void) {
  expect_str("size 0", rc_str(shmget(IPC_PRIVATE, 0, 0600)), "EINVAL");
  int id = shmget(IPC_PRIVATE, 3 * G_PAGE + 100, IPC_CREAT | 0600);
  CHECK(id >= 0);
  struct shmid_ds ds;
  CHECK(shmctl(id, IPC_STAT, &ds) == 0);
  say("IPC_STAT: segsz %lu nattch %lu mode %o key %d cpid is me %s uid is mine %s",
      (unsigned long)ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_perm.mode,
      (int)ds.shm_perm.__key, ds.shm_cpid == getpid() ? "yes" : "no",
      ds.shm_perm.uid == geteuid() ? "yes" : "no");

  char* a = shmat(id, NULL, 0);
  CHECK(a != (void*)-1);
  say("attached: nattch %ld", nattch(id));
  say("maps: %s", maps_entry(a, NULL));
  say("fresh segment reads zero: %d", a[3 * G_PAGE + 99]);
  strcpy(a, "parent");
  CHECK(shmctl(id, IPC_STAT, &ds) == 0);
  say("lpid is me %s", ds.shm_lpid == getpid() ? "yes" : "no");

  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    say("child sees: %s, nattch %ld", a, nattch(id));
    strcpy(a + G_PAGE, "from the child");
    char* b = shmat(id, NULL, 0);
    say("child's second attach sees its store: %s, nattch %ld", b + G_PAGE, nattch(id));
    _exit(0);
  }
  int status;
  CHECK(waitpid(child, &status, 0) == child);
  say("child %s; parent sees: %s; nattch %ld", wstatus_str(status), a + G_PAGE, nattch(id));

  /* A split VMA counts twice. */
  CHECK(mprotect(a + G_PAGE, G_PAGE, PROT_READ) == 0);
  say("after an mprotect split: nattch %ld", nattch(id));
  expect_str("shmdt inside the attachment", rc_str(shmdt(a + G_PAGE)), "EINVAL");
  expect_str("shmdt unaligned", rc_str(shmdt(a + 1)), "EINVAL");
  expect_str("shmdt", rc_str(shmdt(a)), "ok");
  say("after shmdt: nattch %ld", nattch(id));
  say("maps after shmdt: %s", maps_entry(a, NULL));
  expect_str("shmdt again", rc_str(shmdt(a)), "EINVAL");

  /* Fixed addresses. */
  char* spot = mmap(NULL, 8 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(spot != MAP_FAILED);
  char* aligned = (char*)(((unsigned long)spot + 4 * G_PAGE - 1) & ~(4 * G_PAGE - 1));
  expect_str("shmat over a mapping",
             ptr_str(shmat(id, aligned, 0) == (void*)-1 ? MAP_FAILED : aligned), "EINVAL");
  char* r = shmat(id, aligned, SHM_REMAP);
  expect_yes("SHM_REMAP replaces it at that address", r == aligned);
  say("  and reads the segment: %s", r);
  CHECK(shmdt(r) == 0);
  expect_str("unaligned address",
             ptr_str(shmat(id, aligned + 1, 0) == (void*)-1 ? MAP_FAILED : aligned), "EINVAL");
  r = shmat(id, aligned + 1, SHM_RND);
  expect_yes("SHM_RND rounds down", r == aligned);
  CHECK(shmdt(r) == 0);
  expect_str("SHM_REMAP without an address",
             ptr_str(shmat(id, NULL, SHM_REMAP) == (void*)-1 ? MAP_FAILED : spot), "EINVAL");

  /* Read-only attachments. */
  char* ro = shmat(id, NULL, SHM_RDONLY);
  CHECK(ro != (void*)-1);
  say("read-only maps: %s", maps_entry(ro, NULL));
  say("read-only attach reads: %s", ro);
  say("store to a read-only attach: %s", probe_write(ro, 'x'));
  expect_str("mprotect it writable", rc_str(mprotect(ro, G_PAGE, PROT_READ | PROT_WRITE)),
             "EACCES");

  /* Keys. */
  const key_t key = (key_t)(0x6d6d0000 | (getpid() & 0xffff));
  expect_str("key without IPC_CREAT", rc_str(shmget(key, G_PAGE, 0600)), "ENOENT");
  int k = shmget(key, G_PAGE, IPC_CREAT | 0600);
  CHECK(k >= 0);
  expect_yes("same key, same id", shmget(key, G_PAGE, 0600) == k);
  expect_yes("smaller size is fine", shmget(key, 100, 0) == k);
  expect_str("larger size", rc_str(shmget(key, 2 * G_PAGE, 0600)), "EINVAL");
  expect_str("IPC_EXCL", rc_str(shmget(key, G_PAGE, IPC_CREAT | IPC_EXCL | 0600)), "EEXIST");
  CHECK(shmctl(k, IPC_STAT, &ds) == 0);
  say("key shows in IPC_STAT: %s", ds.shm_perm.__key == key ? "yes" : "no");
  ds.shm_perm.mode = 0640;
  expect_str("IPC_SET", rc_str(shmctl(k, IPC_SET, &ds)), "ok");
  CHECK(shmctl(k, IPC_STAT, &ds) == 0);
  say("mode after IPC_SET: %o", ds.shm_perm.mode);
  char* kp = shmat(k, NULL, 0);
  CHECK(kp != (void*)-1);
  /* IPC_RMID while attached: the key goes, the id works until the last detach. */
  expect_str("IPC_RMID", rc_str(shmctl(k, IPC_RMID, NULL)), "ok");
  CHECK(shmctl(k, IPC_STAT, &ds) == 0);
  say("after IPC_RMID: mode %o key %d nattch %lu", ds.shm_perm.mode, (int)ds.shm_perm.__key,
      (unsigned long)ds.shm_nattch);
  expect_str("the key is free again", rc_str(shmget(key, G_PAGE, 0600)), "ENOENT");
  char* again = shmat(k, NULL, 0);
  expect_yes("attach by id still works", again != (void*)-1);
  kp[0] = 'k';
  say("  both attachments share: %c", again[0]);
  CHECK(shmdt(kp) == 0 && shmdt(again) == 0);
  expect_str("IPC_STAT after the last detach", rc_str(shmctl(k, IPC_STAT, &ds)), "EINVAL");
  expect_str("shmat after the last detach",
             ptr_str(shmat(k, NULL, 0) == (void*)-1 ? MAP_FAILED : spot), "EINVAL");

  CHECK(shmdt(ro) == 0);
  expect_str("IPC_RMID of the private segment", rc_str(shmctl(id, IPC_RMID, NULL)), "ok");
  expect_str("IPC_STAT after", rc_str(shmctl(id, IPC_STAT, &ds)), "EINVAL");
  expect_str("shmctl of a bad id", rc_str(shmctl(-1, IPC_STAT, &ds)), "EINVAL");
  return g_finish();
}
