/* maps: /proc/self/maps as the process changes its address space.
 * Printed, address-free:
 * - "special NAME: yes|no" for [heap], [stack], [vdso], [vvar], [vsyscall], and a line
 *   "special other NAME" for any other bracketed name. These depend on the runner (mmemu
 *   has no vDSO; arm64 has no [vsyscall]; newer kernels add [vvar_vclock]; qemu-user shows
 *   none of [heap]/[vdso]/[vvar]) — a test compares them with its list of exceptions.
 * - "baseline ..." lines: mappings of the executable by permission string. They depend on
 *   the architecture's ELF layout (x86_64 and arm64 static binaries have different
 *   segments), so they compare only between runs of the same build.
 * - the main facts: inside a 16-page region reserved by the guest, after each
 *   mmap/mprotect/munmap step, the region's layout as page ranges relative to its start
 *   ("2-7 rw-p") and the change in the total number of mappings. These follow from
 *   Linux's split and merge rules and must match everywhere.
 * The region's first and last pages stay PROT_NONE so nothing inside can merge with an
 * outside neighbour. */
#include <fcntl.h>

#include "guest.h"

#define REGION 16

struct map {
  uintptr_t start, end;
  char perms[5];
  char name[256];
};

static struct map maps[512];
static int nmaps;
static int baseline_count;
static char* region;
static char exe_path[512];

static void read_maps(void) {
  static char buf[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY);
  CHECK(fd >= 0);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    CHECK(n >= 0);
    if (n == 0) break;
    len += (size_t)n;
    CHECK(len < sizeof buf - 1);
  }
  close(fd);
  buf[len] = '\0';
  nmaps = 0;
  char* line = buf;
  while (*line) {
    char* nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    struct map* m = &maps[nmaps];
    unsigned long s, e;
    char perms[8] = {0};
    int off = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &s, &e, perms, &off) >= 3) {
      CHECK(nmaps < (int)(sizeof maps / sizeof maps[0]));
      m->start = s;
      m->end = e;
      memcpy(m->perms, perms, 4);
      m->perms[4] = '\0';
      const char* name = line + off;
      while (*name == ' ')
        name++;
      snprintf(m->name, sizeof m->name, "%s", name);
      nmaps++;
    }
    if (!nl) break;
    line = nl + 1;
  }
}

static int has_name(const char* name) {
  for (int i = 0; i < nmaps; i++)
    if (strcmp(maps[i].name, name) == 0) return 1;
  return 0;
}

static int is_exe(const char* name) {
  return exe_path[0] && strcmp(name, exe_path) == 0;
}

/* Prints the region's layout and the change in the number of mappings. */
static void show(const char* step, int want_delta, const char* want_layout) {
  read_maps();
  char layout[512] = "";
  size_t used = 0;
  uintptr_t rs = (uintptr_t)region, re = rs + REGION * G_PAGE;
  for (int i = 0; i < nmaps; i++) {
    if (maps[i].end <= rs || maps[i].start >= re) continue;
    uintptr_t s = maps[i].start < rs ? rs : maps[i].start;
    uintptr_t e = maps[i].end > re ? re : maps[i].end;
    const char* name = maps[i].name[0] == '\0' ? "" : is_exe(maps[i].name) ? " exe" : " other";
    used += (size_t)snprintf(layout + used, sizeof layout - used, "%s%lu-%lu %s%s",
                             used ? " | " : "", (unsigned long)((s - rs) / G_PAGE),
                             (unsigned long)((e - rs) / G_PAGE), maps[i].perms, name);
    if (used >= sizeof layout) break;
  }
  if (used == 0) snprintf(layout, sizeof layout, "(nothing)");
  char label[128];
  snprintf(label, sizeof label, "%s: layout", step);
  expect_str(label, layout, want_layout);
  snprintf(label, sizeof label, "%s: mappings added", step);
  expect_long(label, nmaps - baseline_count, want_delta);
}

static char* at(int page) {
  return region + page * G_PAGE;
}

int main(int argc, char** argv) {
  (void)argc;
  ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
  if (n > 0) {
    exe_path[n] = '\0';
  } else if (!realpath(argv[0], exe_path)) {
    exe_path[0] = '\0';
  }

  read_maps();
  baseline_count = nmaps;
  static const char* const specials[] = {"[heap]", "[stack]", "[vdso]", "[vvar]", "[vsyscall]"};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
    say("special %s: %s", specials[i], has_name(specials[i]) ? "yes" : "no");
  for (int i = 0; i < nmaps; i++) {
    const char* nm = maps[i].name;
    int known = 0;
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++)
      known |= strcmp(nm, specials[k]) == 0;
    if (nm[0] == '[' && !known) say("special other %s", nm);
  }
  static const char* const perm_kinds[] = {"r--p", "r-xp", "rw-p", "---p", "rwxp"};
  char exe_counts[128] = "";
  size_t used = 0;
  for (size_t k = 0; k < sizeof perm_kinds / sizeof perm_kinds[0]; k++) {
    int c = 0;
    for (int i = 0; i < nmaps; i++)
      c += is_exe(maps[i].name) && !strcmp(maps[i].perms, perm_kinds[k]);
    if (c)
      used +=
          (size_t)snprintf(exe_counts + used, sizeof exe_counts - used, " %s %d", perm_kinds[k], c);
  }
  say("baseline executable mappings:%s", exe_counts);

  region = mmap(NULL, REGION * G_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(region != MAP_FAILED);
  show("reserve 16 pages PROT_NONE", 1, "0-16 ---p");

  CHECK(mprotect(at(2), 3 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  show("mprotect 2-5 rw", 3, "0-2 ---p | 2-5 rw-p | 5-16 ---p");

  CHECK(mprotect(at(5), 2 * G_PAGE, PROT_READ | PROT_WRITE) == 0);
  show("mprotect 5-7 rw (merges)", 3, "0-2 ---p | 2-7 rw-p | 7-16 ---p");

  at(2)[0] = 1; /* give the VMA an anon_vma before splitting it */
  at(3)[0] = 1;
  CHECK(munmap(at(3), G_PAGE) == 0);
  show("munmap 3-4", 4, "0-2 ---p | 2-3 rw-p | 4-7 rw-p | 7-16 ---p");

  char* p =
      mmap(at(3), G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(p == at(3));
  show("mmap fixed 3-4 rw (merges both sides)", 3, "0-2 ---p | 2-7 rw-p | 7-16 ---p");
  expect_yes("page 2 kept, page 3 fresh", at(2)[0] == 1 && at(3)[0] == 0);

  CHECK(mprotect(at(2), 5 * G_PAGE, PROT_READ) == 0);
  show("mprotect 2-7 r", 3, "0-2 ---p | 2-7 r--p | 7-16 ---p");

  CHECK(mprotect(at(2), 5 * G_PAGE, PROT_NONE) == 0);
  /* Pages 2-7 were made writable, so they carry VM_ACCOUNT (kept when the write permission
   * goes away) and the never-writable neighbours do not: no merge. */
  show("mprotect 2-7 none (accounted, does not merge)", 3, "0-2 ---p | 2-7 ---p | 7-16 ---p");

  int fd = open(exe_path[0] ? exe_path : argv[0], O_RDONLY);
  CHECK(fd >= 0);
  p = mmap(at(9), 2 * G_PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  CHECK(p == at(9));
  close(fd);
  show("map 2 pages of the executable at 9-11", 5,
       "0-2 ---p | 2-7 ---p | 7-9 ---p | 9-11 r--p exe | 11-16 ---p");

  CHECK(munmap(at(10), 6 * G_PAGE) == 0);
  show("munmap 10-16", 4, "0-2 ---p | 2-7 ---p | 7-9 ---p | 9-10 r--p exe");

  CHECK(munmap(region, REGION * G_PAGE) == 0);
  show("munmap the region", 0, "(nothing)");
  return g_finish();
}
