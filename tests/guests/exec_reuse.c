/* exec_reuse: frames freed by one image reused by the next, with code in them.
 * The first image writes a function into an anonymous page and runs it, then many times:
 * maps a fresh code page, writes a different function there, runs it, unmaps it (its
 * frame goes back), and forks a child that execs this program again ("--image N", the
 * path from /proc/self/exe). Each image N builds its own functions in fresh pages, runs
 * them over a buffer and prints a checksum of what they computed; an image also execs
 * itself once more in the same process ("--image N --again"), so an exec replaces an
 * image that ran generated code. The output is the same on every run and natively. */
#include "guest.h"

/* Maps a page, puts "x + imm" in it (g_emit_add), runs it over `n` values; returns the checksum. */
static unsigned long run_generated(unsigned imm, int n, int keep_mapped) {
  char* p = mmap(NULL, 4 * G_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  memset(p + G_PAGE, 0xab, 3 * G_PAGE); /* data pages too: more frames to reuse */
  g_emit_add(p, imm);
  CHECK(mprotect(p, G_PAGE, PROT_READ | PROT_EXEC) == 0);
  unsigned long sum = 0;
  for (int i = 0; i < n; i++)
    sum = sum * 31 + (unsigned long)g_call(p, i) + (unsigned char)p[G_PAGE + i];
  if (!keep_mapped) CHECK(munmap(p, 4 * G_PAGE) == 0);
  return sum;
}

#define IMAGES 12

static char self[4096];

static void find_self(const char* argv0) {
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
  } else {
    snprintf(self, sizeof self, "%s", argv0);
  }
}

static int image(int n, int again) {
  unsigned long a = run_generated(100 + (unsigned)n, 500, 0);
  unsigned long b = run_generated(200 + (unsigned)n, 300, 1);
  say("image %d%s: checksum %lx %lx", n, again ? " (exec'd again)" : "", a, b);
  if (!again && n % 3 == 0) {
    /* Replace this image, which ran generated code, by another one in the same process. */
    char num[16];
    snprintf(num, sizeof num, "%d", n);
    char* args[] = {self, "--image", num, "--again", NULL};
    execv(self, args);
    say("FAIL exec again: %s", errno_name(errno));
    return 2;
  }
  return n % 5;
}

int main(int argc, char** argv) {
  find_self(argv[0]);
  if (argc >= 3 && strcmp(argv[1], "--image") == 0)
    return image(atoi(argv[2]), argc >= 4 && strcmp(argv[3], "--again") == 0);

  say("first image: checksum %lx", run_generated(7, 1000, 0));
  unsigned long total = 0;
  for (int n = 0; n < IMAGES; n++) {
    total = total * 7 + run_generated(300 + (unsigned)n, 200, 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      char num[16];
      snprintf(num, sizeof num, "%d", n);
      char* args[] = {self, "--image", num, NULL};
      execv(self, args);
      say("FAIL exec: %s", errno_name(errno));
      _exit(2);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    char want[32];
    snprintf(want, sizeof want, "exited %d", n % 5);
    expect_str("image status", wstatus_str(st), want);
  }
  say("first image again: checksum %lx", total);
  return g_finish();
}
