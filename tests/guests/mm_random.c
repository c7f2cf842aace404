/* mm_random: a deterministic random walk over the memory calls (mmap anonymous and memfd,
 * private and shared, munmap, mprotect, mremap in every mode, madvise, mlock/munlock,
 * touches, forks that write) inside a 64-page area fenced by PROT_NONE guards, printing
 * each call's result and, every few steps, the area's layout (relative page numbers,
 * permissions, kind) and mincore residency. The same seeds run natively and under mmemu
 * must print the same: any difference is mmemu departing from Linux. Execute-only memory
 * is left out (x86-64 makes it unreadable through protection keys, arm64 may not). */
#include "guest.h"

#include <fcntl.h>

#define NP 64
#define GUARD 16

static uint64_t s;
static uint64_t rnd(void) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}
static char* base;

static int prot_of(void) {
  int p = (int)(rnd() % 8);
  return p == PROT_EXEC ? PROT_READ | PROT_EXEC : p;
}

static void layout(void) {
  static char buf[1 << 16];
  g_read_file("/proc/self/maps", buf, sizeof buf);
  for (char* line = buf; line && *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = 0;
    unsigned long a, b;
    char perms[8], name[256] = "";
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255[^\n]", &a, &b, perms, name) >= 3 &&
        a >= (unsigned long)base && b <= (unsigned long)base + NP * G_PAGE)
      say("  %lu-%lu %s %s", (a - (unsigned long)base) / G_PAGE, (b - (unsigned long)base) / G_PAGE,
          perms,
          strstr(name, "memfd") ? "memfd"
          : name[0]             ? "shmem"
                                : "anon");
    line = end ? end + 1 : NULL;
  }
  unsigned char v[NP];
  if (mincore(base, NP * G_PAGE, v) == 0) {
    char res[NP + 1];
    for (int i = 0; i < NP; i++)
      res[i] = (char)('0' + (v[i] & 1));
    res[NP] = 0;
    say("  resident %s", res);
  } else {
    say("  mincore %s", errno_name(errno));
  }
}

static void walk_seed(int fd, uint64_t seed, int steps) {
  s = seed * 2654435761ULL + 1;
  say("== seed %lu", (unsigned long)seed);
  CHECK(munmap(base, NP * G_PAGE) == 0);
  for (int i = 0; i < steps; i++) {
    unsigned long a = rnd() % NP, len = 1 + rnd() % 12;
    if (a + len > NP) len = NP - a;
    char* p = base + a * G_PAGE;
    const unsigned long L = len * G_PAGE;
    switch (rnd() % 12) {
      case 0:
      case 1: {
        const int prot = prot_of();
        const int shared = rnd() % 3 == 0;
        const int anon = rnd() % 3 != 0;
        const long off = anon ? 0 : (long)((rnd() % 8) * G_PAGE);
        void* r = mmap(p, L, prot,
                       MAP_FIXED | (shared ? MAP_SHARED : MAP_PRIVATE) | (anon ? MAP_ANONYMOUS : 0),
                       anon ? -1 : fd, off);
        say("mmap %lu+%lu prot %d %s %s -> %s", a, len, prot, shared ? "shared" : "private",
            anon ? "anon" : "memfd", r == MAP_FAILED ? errno_name(errno) : "ok");
        break;
      }
      case 2:
        say("munmap %lu+%lu -> %s", a, len, rc_str(munmap(p, L)));
        break;
      case 3:
      case 4: {
        const int prot = prot_of();
        say("mprotect %lu+%lu %d -> %s", a, len, prot, rc_str(mprotect(p, L, prot)));
        break;
      }
      case 5: {
        static const int adv[] = {MADV_DONTNEED,   MADV_FREE,          MADV_NORMAL,
                                  MADV_RANDOM,     MADV_WILLNEED,      MADV_DONTFORK,
                                  MADV_DOFORK,     MADV_REMOVE,        MADV_COLD,
                                  MADV_PAGEOUT,    MADV_POPULATE_READ, MADV_POPULATE_WRITE,
                                  MADV_WIPEONFORK, MADV_KEEPONFORK,    MADV_DONTNEED_LOCKED};
        const int k = adv[rnd() % (sizeof adv / sizeof adv[0])];
        say("madvise %lu+%lu %d -> %s", a, len, k, rc_str(madvise(p, L, k)));
        break;
      }
      case 6: {
        unsigned long nl = 1 + rnd() % 12, to = rnd() % NP;
        int fl = (int)(rnd() % 4);
        if (fl & 2) fl |= MREMAP_MAYMOVE;
        if (to + nl > NP) nl = NP - to;
        void* r = mremap(p, L, nl * G_PAGE, fl, base + to * G_PAGE);
        const char* where = r == MAP_FAILED           ? errno_name(errno)
                            : r == p                  ? "in place"
                            : r == base + to * G_PAGE ? "at the target"
                            : ((char*)r >= base && (char*)r < base + NP * G_PAGE) ? "inside"
                                                                                  : "outside";
        say("mremap %lu+%lu -> %lu pages, target %lu, flags %d -> %s", a, len, nl, to, fl, where);
        if (r != MAP_FAILED && ((char*)r < base || (char*)r >= base + NP * G_PAGE))
          munmap(r, nl * G_PAGE);
        break;
      }
      case 7:
      case 8: {
        char* q = p + rnd() % L;
        const int w = (int)(rnd() & 1);
        say("%s %lu -> %s", w ? "write" : "read", a + (unsigned long)(q - p) / G_PAGE,
            w ? probe_write(q, 'W') : probe_read(q));
        break;
      }
      case 9:
        say("mlock %lu+%lu -> %s", a, len, rc_str(mlock(p, L)));
        break;
      case 10:
        say("munlock %lu+%lu -> %s", a, len, rc_str(munlock(p, L)));
        break;
      case 11: {
        char* q = p + rnd() % L;
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) _exit(strcmp(probe_write(q, 'C'), "ok") == 0 ? 0 : 1);
        int st;
        CHECK(waitpid(c, &st, 0) == c);
        say("fork, child writes %lu -> %s", a + (unsigned long)(q - p) / G_PAGE, wstatus_str(st));
        break;
      }
    }
    if (i % 6 == 5) layout();
  }
  layout();
  /* Clean up to an empty area for the next seed. */
  CHECK(mmap(base, NP * G_PAGE, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == base);
  CHECK(munlock(base, NP * G_PAGE) == 0);
}

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? atoi(argv[1]) : 12;
  const int steps = argc > 2 ? atoi(argv[2]) : 60;
  /* The area with 16-page PROT_NONE fences on both sides, so growing and moving meet the
   * same neighbours natively and under mmemu. */
  char* all = mmap(NULL, (NP + 2 * GUARD) * G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(all != MAP_FAILED);
  base = all + GUARD * G_PAGE;
  int fd = memfd_create("mm_random", 0);
  CHECK(fd >= 0 && ftruncate(fd, 16 * G_PAGE) == 0);
  for (int i = 0; i < 16; i++)
    CHECK(pwrite(fd, "abcdefghijklmnop" + i, 1, (off_t)(i * G_PAGE)) == 1);
  for (int seed = 1; seed <= seeds; seed++)
    walk_seed(fd, (uint64_t)seed, steps);
  return g_finish();
}
