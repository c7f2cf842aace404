/* Helpers for the mseal, droppable and madv_cold guests: the VMAs of a range as
 * /proc/self/smaps shows them, relative to the range's start (address-independent). */
#pragma once

#include "guest.h"

/* One line per VMA inside [base, base + pages): "+start-+end perms [VmFlags] Rss=NkB".
 * Printed with say() under `label`. */
static inline void show_vmas(const char* label, const void* base, size_t pages) {
  static char buf[1 << 18];
  g_read_file("/proc/self/smaps", buf, sizeof buf);
  const unsigned long lo = (unsigned long)base, hi = lo + pages * G_PAGE;
  unsigned long s = 0, e = 0;
  char perms[8] = "";
  long rss = -1;
  int in = 0;
  say("%s:", label);
  for (char* line = buf; line && *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = 0;
    unsigned long a, b;
    char p[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, p) == 3 && strchr(line, ':') > strchr(line, ' ')) {
      in = a >= lo && b <= hi;
      s = a;
      e = b;
      strcpy(perms, p);
    } else if (in && strncmp(line, "Rss:", 4) == 0) {
      sscanf(line + 4, "%ld", &rss);
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      char* f = line + 8;
      while (*f == ' ')
        f++;
      size_t n = strlen(f);
      while (n && f[n - 1] == ' ')
        f[--n] = 0;
      say("  +%lx-+%lx %s [%s] Rss=%ldkB", (s - lo) / G_PAGE, (e - lo) / G_PAGE, perms, f, rss);
    }
    line = end ? end + 1 : NULL;
  }
}
