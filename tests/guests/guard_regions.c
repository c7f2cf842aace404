/* guard_regions: MADV_GUARD_INSTALL / MADV_GUARD_REMOVE (Linux 6.13+). A guard page is a
 * marker in the page tables, not a VMA: the mapping stays one VMA, touching a guard page is
 * SIGSEGV with SEGV_MAPERR (SEGV_ACCERR only when the VMA itself forbids the access),
 * MADV_DONTNEED and MADV_FREE leave markers in place, MADV_GUARD_REMOVE clears them and the
 * page comes back empty (private anonymous: zero; shared or file-backed: the file's data),
 * fork copies them (not into a MADV_WIPEONFORK range), mremap moves them, munmap and
 * MAP_FIXED drop them, mprotect keeps them; MADV_POPULATE_* stop at them with EFAULT, mlock
 * with ENOMEM after populating what comes before; GUP users (read(2), write(2)) get EFAULT;
 * locked and unaligned ranges are EINVAL, holes ENOMEM after the rest was guarded. */
#include "guest.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

static const char* guard(void* p, size_t pages) {
  return rc_str(madvise(p, pages * G_PAGE, MADV_GUARD_INSTALL));
}
static const char* unguard(void* p, size_t pages) {
  return rc_str(madvise(p, pages * G_PAGE, MADV_GUARD_REMOVE));
}

/* The /proc/self/maps VMA holding p, as "perms, N pages, starts at +K pages from base". */
static const char* vma_of(const void* base, const void* p) {
  static char out[128];
  static char buf[1 << 16];
  g_read_file("/proc/self/maps", buf, sizeof buf);
  for (char* line = buf; line && *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = 0;
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= (unsigned long)p &&
        (unsigned long)p < hi) {
      long off = ((long)lo - (long)(unsigned long)base) / (long)G_PAGE;
      snprintf(out, sizeof out, "%s, %lu pages, at %+ld pages", perms, (hi - lo) / G_PAGE, off);
      return out;
    }
    line = end ? end + 1 : NULL;
  }
  return "not in maps";
}

/* Which of n pages fault on a read: '.' readable, 'M' SEGV_MAPERR, 'A' SEGV_ACCERR. */
static const char* faults(char* p, size_t n) {
  static char buf[80];
  for (size_t i = 0; i < n && i < sizeof buf - 1; i++) {
    const char* r = probe_read(p + i * G_PAGE);
    buf[i] = strcmp(r, "ok") == 0            ? '.'
             : strcmp(r, "SEGV_MAPERR") == 0 ? 'M'
             : strcmp(r, "SEGV_ACCERR") == 0 ? 'A'
                                             : '?';
  }
  buf[n] = 0;
  return buf;
}

/* Bits 55-63 of the page's /proc/self/pagemap entry (the frame number left out): a guard
 * marker reads as swapped (bit 62) and guard region (bit 58), a present page as bit 63. */
static unsigned long pagemap_flags(const void* p) {
  int fd = open("/proc/self/pagemap", O_RDONLY);
  CHECK(fd >= 0);
  unsigned long e = 0;
  CHECK(pread(fd, &e, sizeof e, (off_t)((unsigned long)p / G_PAGE * sizeof e)) == sizeof e);
  close(fd);
  return e >> 55;
}

static void basics(void) {
  char* p = map_anon(10);
  memset(p, 'x', 10 * G_PAGE);
  expect_str("install pages 2-3", guard(p + 2 * G_PAGE, 2), "ok");
  mmemu_dump("guards installed"); /* mmemu run --dump-pgtables guest: the markers */
  expect_str("still one VMA", vma_of(p, p + 5 * G_PAGE), "rw-p, 10 pages, at +0 pages");
  expect_str("read of a guard page", probe_read(p + 2 * G_PAGE), "SEGV_MAPERR");
  expect_str("write into a guard page", probe_write(p + 3 * G_PAGE + 100, 1), "SEGV_MAPERR");
  expect_str("reads page by page", faults(p, 10), "..MM......");
  expect_str("resident", residency(p, 10), "1100111111");
  expect_yes("pagemap: guard page swapped + guard", pagemap_flags(p + 2 * G_PAGE) == 0x88);
  expect_yes("pagemap: its neighbour present", (pagemap_flags(p + 4 * G_PAGE) & 0x100) != 0);
  expect_yes("neighbours kept their data", p[G_PAGE - 1] == 'x' && p[4 * G_PAGE] == 'x');
  expect_str("install again (already guarded)", guard(p + 2 * G_PAGE, 3), "ok");
  expect_str("page 4 was zapped", faults(p, 10), "..MMM.....");
  expect_str("MADV_DONTNEED over all", rc_str(madvise(p, 10 * G_PAGE, MADV_DONTNEED)), "ok");
  expect_str("after DONTNEED", faults(p, 10), "..MMM.....");
  expect_str("MADV_FREE over all", rc_str(madvise(p, 10 * G_PAGE, MADV_FREE)), "ok");
  expect_str("after FREE", faults(p, 10), "..MMM.....");
  p[5 * G_PAGE] = 'y';
  expect_str("remove page 2 only", unguard(p + 2 * G_PAGE, 1), "ok");
  expect_str("after remove", faults(p, 10), "...MM.....");
  expect_yes("page 2 reads zero", all_zero(p + 2 * G_PAGE, G_PAGE));
  expect_str("remove over everything", unguard(p, 10), "ok");
  expect_str("after remove all", faults(p, 10), "..........");
  expect_yes("page 5 kept its data", p[5 * G_PAGE] == 'y');
  expect_str("still one VMA at the end", vma_of(p, p), "rw-p, 10 pages, at +0 pages");

  /* A guard over written data: the data is gone for good. */
  char* q = map_anon(2);
  fill(q, G_PAGE, 3);
  fill(q + G_PAGE, G_PAGE, 4);
  expect_str("install over written data", guard(q, 1), "ok");
  expect_str("remove it", unguard(q, 1), "ok");
  expect_yes("guarded page reads zero", all_zero(q, G_PAGE));
  expect_yes("its neighbour kept its data", filled(q + G_PAGE, G_PAGE, 4));
  CHECK(munmap(p, 10 * G_PAGE) == 0);
  CHECK(munmap(q, 2 * G_PAGE) == 0);
}

static void protections(void) {
  char* p = map_anon(4);
  expect_str("install page 0", guard(p, 1), "ok");
  CHECK(mprotect(p, 4 * G_PAGE, PROT_NONE) == 0);
  expect_str("PROT_NONE: VMA refuses first", faults(p, 4), "AAAA");
  CHECK(mprotect(p, 4 * G_PAGE, PROT_READ) == 0);
  expect_str("read-only: read of the guard", probe_read(p), "SEGV_MAPERR");
  expect_str("read-only: write to the guard", probe_write(p, 1), "SEGV_ACCERR");
  CHECK(mprotect(p, 4 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  expect_str("mprotect kept the marker", faults(p, 4), "M...");
  CHECK(munmap(p, 4 * G_PAGE) == 0);
}

static void errors(void) {
  char* p = map_anon(6);
  expect_str("unaligned start", rc_str(madvise(p + 1, G_PAGE, MADV_GUARD_INSTALL)), "EINVAL");
  expect_str("length 0", rc_str(madvise(p, 0, MADV_GUARD_INSTALL)), "ok");
  CHECK(munmap(p + 2 * G_PAGE, G_PAGE) == 0);
  expect_str("over a hole", guard(p, 6), "ENOMEM");
  expect_str("both sides of the hole guarded", faults(p, 2), "MM");
  expect_str("above the hole", faults(p + 3 * G_PAGE, 3), "MMM");
  expect_str("remove over the hole", unguard(p, 6), "ENOMEM");
  expect_str("all removed", faults(p, 2), "..");
  CHECK(munmap(p, 6 * G_PAGE) == 0);

  char* l = mmap(NULL, 2 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
                 -1, 0);
  CHECK(l != MAP_FAILED);
  expect_str("install in a MAP_LOCKED mapping", guard(l, 1), "EINVAL");
  CHECK(munmap(l, 2 * G_PAGE) == 0);
}

static void populate_and_mlock(void) {
  char* p = map_anon(6);
  expect_str("install page 3", guard(p + 3 * G_PAGE, 1), "ok");
  expect_str("MADV_POPULATE_READ", rc_str(madvise(p, 6 * G_PAGE, MADV_POPULATE_READ)), "EFAULT");
  expect_str("MADV_POPULATE_WRITE", rc_str(madvise(p, 6 * G_PAGE, MADV_POPULATE_WRITE)), "EFAULT");
  expect_str("populated up to the guard", residency(p, 6), "111000");
  expect_str("populate only the guard", rc_str(madvise(p + 3 * G_PAGE, G_PAGE, MADV_POPULATE_READ)),
             "EFAULT");
  CHECK(madvise(p, 6 * G_PAGE, MADV_DONTNEED) == 0);
  expect_str("mlock over the guard", rc_str(mlock(p, 6 * G_PAGE)), "ENOMEM");
  expect_str("mlock populated up to the guard", residency(p, 6), "111000");
  expect_str("the VMA is locked anyway: install", guard(p + 4 * G_PAGE, 1), "EINVAL");
  expect_str("remove in the locked VMA", unguard(p + 3 * G_PAGE, 1), "ok");
  expect_str("readable again", probe_read(p + 3 * G_PAGE), "ok");
  CHECK(munlock(p, 6 * G_PAGE) == 0);
  expect_str("install after munlock", guard(p + 3 * G_PAGE, 1), "ok");
  expect_str("mlock2 MLOCK_ONFAULT", rc_str(syscall(SYS_mlock2, p, 6 * G_PAGE, MLOCK_ONFAULT)),
             "ok");
  expect_str("still guarded", probe_read(p + 3 * G_PAGE), "SEGV_MAPERR");
  CHECK(munlock(p, 6 * G_PAGE) == 0);
  CHECK(munmap(p, 6 * G_PAGE) == 0);
}

static void user_copies(void) {
  char* p = map_anon(2);
  expect_str("install page 1", guard(p + G_PAGE, 1), "ok");
  int fd = open("/proc/self/maps", O_RDONLY);
  CHECK(fd >= 0);
  expect_str("read(2) into the guard", rc_str(read(fd, p + G_PAGE, 8)), "EFAULT");
  close(fd);
  int pfd[2];
  CHECK(pipe(pfd) == 0);
  expect_str("write(2) from the guard", rc_str(write(pfd[1], p + G_PAGE, 8)), "EFAULT");
  close(pfd[0]);
  close(pfd[1]);
  CHECK(munmap(p, 2 * G_PAGE) == 0);
}

static void shared_and_file(void) {
  char* s = mmap(NULL, 2 * G_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  s[0] = 'a';
  expect_str("install in shared anonymous", guard(s, 1), "ok");
  expect_str("shared guard", probe_read(s), "SEGV_MAPERR");
  expect_str("remove it", unguard(s, 1), "ok");
  expect_str("shared page keeps its data", s[0] == 'a' ? "a" : "lost", "a");
  CHECK(munmap(s, 2 * G_PAGE) == 0);

  int fd = memfd_create("guard", 0);
  CHECK(fd >= 0);
  CHECK(ftruncate(fd, 2 * G_PAGE) == 0);
  CHECK(pwrite(fd, "f", 1, 0) == 1);
  char* f = mmap(NULL, 2 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(f != MAP_FAILED);
  f[0] = 'p'; /* a private copy */
  expect_str("install in a private file mapping", guard(f, 1), "ok");
  expect_str("file guard", probe_read(f), "SEGV_MAPERR");
  expect_str("remove it", unguard(f, 1), "ok");
  expect_str("private copy dropped, file data back",
             f[0] == 'f'   ? "f"
             : f[0] == 'p' ? "p"
                           : "?",
             "f");
  CHECK(munmap(f, 2 * G_PAGE) == 0);
  close(fd);
}

static void fork_mremap_munmap(void) {
  char* p = map_anon(4);
  memset(p, 'z', 4 * G_PAGE);
  expect_str("install page 1", guard(p + G_PAGE, 1), "ok");
  pid_t c = fork();
  CHECK(c >= 0);
  if (c == 0) {
    say("child: %s", faults(p, 4));
    say("child: remove %s", unguard(p + G_PAGE, 1));
    say("child after remove: %s", faults(p, 4));
    _exit(0);
  }
  int st;
  CHECK(waitpid(c, &st, 0) == c);
  expect_str("child", wstatus_str(st), "exited 0");
  expect_str("parent still guarded", faults(p, 4), ".M..");

  /* A range that is not written yet (no page at all) still copies its markers. */
  char* e = map_anon(2);
  expect_str("install in an untouched mapping", guard(e, 1), "ok");
  c = fork();
  CHECK(c >= 0);
  if (c == 0) {
    say("child, untouched mapping: %s", faults(e, 2));
    _exit(0);
  }
  CHECK(waitpid(c, &st, 0) == c);

  char* w = map_anon(2);
  expect_str("install in a wipe-on-fork range", guard(w, 1), "ok");
  CHECK(madvise(w, 2 * G_PAGE, MADV_WIPEONFORK) == 0);
  c = fork();
  CHECK(c >= 0);
  if (c == 0) {
    say("child, wipe-on-fork: %s", faults(w, 2));
    _exit(0);
  }
  CHECK(waitpid(c, &st, 0) == c);
  expect_str("parent, wipe-on-fork", faults(w, 2), "M.");

  /* mremap moves the markers with the pages. */
  char* dst = mmap(NULL, 8 * G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(dst != MAP_FAILED);
  char* m = mremap(p, 4 * G_PAGE, 8 * G_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  CHECK(m == dst);
  expect_str("mremap moved", m != p ? "yes" : "no", "yes");
  expect_str("after mremap", faults(m, 8), ".M......");
  expect_yes("data moved too", m[0] == 'z' && m[2 * G_PAGE] == 'z');
  char* back =
      mmap(p, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(back == p);
  expect_str("old place, mapped again", faults(p, 4), "....");

  /* munmap and MAP_FIXED drop markers. */
  expect_str("install page 0 of the moved range", guard(m, 1), "ok");
  CHECK(munmap(m, G_PAGE) == 0);
  char* again =
      mmap(m, G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(again == m);
  expect_str("after munmap and mmap", faults(m, 3), ".M.");
  char* fixed = mmap(m + G_PAGE, G_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(fixed == m + G_PAGE);
  expect_str("after MAP_FIXED over the guard", faults(m, 3), "...");
  CHECK(munmap(m, 8 * G_PAGE) == 0);
  CHECK(munmap(p, 4 * G_PAGE) == 0);
}

int main(void) {
  basics();
  protections();
  errors();
  populate_and_mlock();
  user_copies();
  shared_and_file();
  fork_mremap_munmap();
  return g_finish();
}
