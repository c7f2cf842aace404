/* execve's lookup in the guest's own name space, and #! scripts (binfmt_script):
 * - /proc/self/exe runs the guest itself again (AT_EXECFN and comm as Linux gives them);
 * - files the guest wrote (a script whose interpreter is this program, a copy of this
 *   ELF) run; "#!" lines with blanks and an argument, five nested interpreters but not six
 *   (ELOOP), and the ENOEXEC/EACCES/ENOENT/ENOTDIR failures;
 * - execveat: a directory descriptor, AT_EMPTY_PATH on a memfd holding an ELF or a script
 *   (ENOENT when the descriptor is close-on-exec), AT_SYMLINK_NOFOLLOW (ELOOP), bad flags.
 * The child role ("show") prints its argv, AT_EXECFN, comm and /proc/self/exe with this
 * program's path shown as SELF, the scratch names as TMP/NAME and descriptors as N. */
#include "guest.h"

#include <sys/auxv.h>
#include <sys/stat.h>

static char g_self[256], g_tmp[128], g_name[64];

/* s with every SELF / TMP / NAME occurrence replaced (the masks come in the environment). */
static const char* masked(const char* s) {
  static char out[4][1024];
  static int slot;
  char* o = out[slot++ & 3];
  const char* self = getenv("SELF");
  const char* tmp = getenv("TMP");
  const char* name = getenv("NAME");
  size_t n = 0;
  while (*s && n < 1000) {
    if (self && *self && strncmp(s, self, strlen(self)) == 0) {
      n += (size_t)snprintf(o + n, 1024 - n, "SELF");
      s += strlen(self);
    } else if (tmp && *tmp && strncmp(s, tmp, strlen(tmp)) == 0) {
      n += (size_t)snprintf(o + n, 1024 - n, "TMP");
      s += strlen(tmp);
    } else if (strncmp(s, "/dev/fd/", 8) == 0 && s[8] >= '0' && s[8] <= '9') {
      /* Descriptor numbers depend on what the runner left open. */
      n += (size_t)snprintf(o + n, 1024 - n, "/dev/fd/N");
      for (s += 8; *s >= '0' && *s <= '9'; s++) {
      }
    } else if (name && *name && strncmp(s, name, strlen(name)) == 0) {
      n += (size_t)snprintf(o + n, 1024 - n, "NAME");
      s += strlen(name);
    } else {
      o[n++] = *s++;
    }
  }
  o[n] = '\0';
  return o;
}

static int show(int argc, char** argv) {
  char line[1024] = "", exe[512] = "", comm[32] = "";
  int n = 0;
  for (int i = 0; i < argc; i++)
    n += snprintf(line + n, sizeof line - (size_t)n, "[%s]", masked(argv[i]));
  say("  argv %s", line);
  say("  execfn %s", masked((const char*)getauxval(AT_EXECFN)));
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) exe[len] = '\0';
  say("  exe %s", masked(exe));
  g_read_file("/proc/self/comm", comm, sizeof comm);
  char* nl = strchr(comm, '\n');
  if (nl) *nl = '\0';
  /* The scratch names hold a pid and comm cuts them at 15 bytes: say whether comm is the
   * cut name of AT_EXECFN's last component rather than print it. */
  const char* execfn = (const char*)getauxval(AT_EXECFN);
  const char* base = strrchr(execfn, '/') ? strrchr(execfn, '/') + 1 : execfn;
  if (strlen(comm) == (strlen(base) < 15 ? strlen(base) : 15) && strncmp(comm, base, 15) == 0)
    say("  comm = basename of execfn");
  else
    say("  comm %s", masked(comm));
  return 0;
}

static char* g_env[4];

/* Runs fn in a child; prints how it failed to exec, or what the new image printed. */
static void run(const char* label, void (*fn)(const void*), const void* arg) {
  say("%s:", label);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    fn(arg);
    say("  exec failed: %s", errno_name(errno));
    _exit(0);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) say("  child %s", wstatus_str(st));
}

static void exec_path(const void* p) {
  char* args[] = {(char*)p, "a1", NULL};
  execve(p, args, g_env);
}

static void exec_self(const void* p) {
  (void)p;
  char* args[] = {"selfexe", "show", NULL};
  execve("/proc/self/exe", args, g_env);
}

static void exec_noargv(const void* p) {
  char* args[] = {NULL};
  execve(p, args, g_env);
}

struct at {
  int dirfd;
  const char* path;
  int flags;
};

static void exec_at(const void* p) {
  const struct at* a = p;
  char* args[] = {"at", "show", NULL};
  syscall(SYS_execveat, a->dirfd, a->path, args, g_env, a->flags);
}

static void write_file(const char* path, const void* data, size_t len, mode_t mode) {
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
  CHECK(fd >= 0);
  CHECK(write(fd, data, len) == (ssize_t)len);
  CHECK(fchmod(fd, mode) == 0);
  CHECK(close(fd) == 0);
}

static void write_text(const char* path, const char* text, mode_t mode) {
  write_file(path, text, strlen(text), mode);
}

static char* tmp_path(const char* suffix) {
  static char buf[8][256];
  static int slot;
  char* b = buf[slot++ & 7];
  snprintf(b, 256, "%s-%s", g_tmp, suffix);
  return b;
}

/* This program's bytes (from /proc/self/exe). */
static char* read_self(size_t* len) {
  int fd = open("/proc/self/exe", O_RDONLY);
  CHECK(fd >= 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  char* buf = malloc((size_t)st.st_size);
  CHECK(buf != NULL);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    CHECK(r > 0);
    got += (size_t)r;
  }
  close(fd);
  *len = got;
  return buf;
}

int main(int argc, char** argv) {
  if (argc > 1) return show(argc, argv);
  ssize_t len = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
  CHECK(len > 0 && len < 200);
  g_self[len] = '\0';
  snprintf(g_name, sizeof g_name, "mmemu-exec-%d", (int)getpid());
  snprintf(g_tmp, sizeof g_tmp, "/tmp/%s", g_name);
  static char e_self[600], e_tmp[160], e_name[80];
  snprintf(e_self, sizeof e_self, "SELF=%s", g_self);
  snprintf(e_tmp, sizeof e_tmp, "TMP=%s", g_tmp);
  snprintf(e_name, sizeof e_name, "NAME=%s", g_name);
  g_env[0] = e_self;
  g_env[1] = e_tmp;
  g_env[2] = e_name;
  setenv("SELF", g_self, 1);
  setenv("TMP", g_tmp, 1);
  setenv("NAME", g_name, 1);

  run("/proc/self/exe", exec_self, NULL);

  /* Scripts: s0 is run by this program, s1..s5 each by the one before. */
  char text[600];
  snprintf(text, sizeof text, "#!%s show\n", g_self);
  write_text(tmp_path("s0"), text, 0755);
  for (int i = 1; i <= 5; i++) {
    char name[8];
    snprintf(name, sizeof name, "s%d", i);
    char prev[8];
    snprintf(prev, sizeof prev, "s%d", i - 1);
    snprintf(text, sizeof text, "#!%s\n", tmp_path(prev));
    write_text(tmp_path(name), text, 0755);
  }
  run("script", exec_path, tmp_path("s0"));
  run("script run by a script", exec_path, tmp_path("s1"));
  run("five interpreters", exec_path, tmp_path("s4"));
  run("six interpreters", exec_path, tmp_path("s5"));
  run("script with no argv", exec_noargv, tmp_path("s0"));
  snprintf(text, sizeof text, "#! \t %s   show  x \t y  \t\nignored\n", g_self);
  write_text(tmp_path("blanks"), text, 0755);
  run("blanks and one argument", exec_path, tmp_path("blanks"));
  snprintf(text, sizeof text, "#!%s", g_self);
  write_text(tmp_path("nonl"), text, 0755);
  run("no newline", exec_path, tmp_path("nonl"));
  char longarg[400];
  /* The argument starts at byte 200 whatever the length of this program's path. */
  snprintf(longarg, sizeof longarg, "#!%s ", g_self);
  while (strlen(longarg) < 200)
    strcat(longarg, " ");
  strcat(longarg, "show ");
  while (strlen(longarg) < 300)
    strcat(longarg, "b");
  strcat(longarg, "\n");
  write_text(tmp_path("longarg"), longarg, 0755);
  run("argument cut at 255 bytes", exec_path, tmp_path("longarg"));
  char longname[400] = "#!/";
  while (strlen(longname) < 300)
    strcat(longname, "a");
  write_text(tmp_path("longname"), longname, 0755);
  run("interpreter name past 255 bytes", exec_path, tmp_path("longname"));
  write_text(tmp_path("bang"), "#!  \t\n", 0755);
  run("#! and blanks", exec_path, tmp_path("bang"));
  write_text(tmp_path("junk"), "echo hello\n", 0755);
  run("neither ELF nor #!", exec_path, tmp_path("junk"));
  write_text(tmp_path("empty"), "", 0755);
  run("empty file", exec_path, tmp_path("empty"));
  snprintf(text, sizeof text, "#!%s show\n", g_self);
  write_text(tmp_path("nox"), text, 0644);
  run("no x bit", exec_path, tmp_path("nox"));
  int busy = open(tmp_path("busy"), O_CREAT | O_TRUNC | O_WRONLY, 0755);
  CHECK(busy >= 0);
  CHECK(write(busy, text, strlen(text)) == (ssize_t)strlen(text));
  run("file open for writing", exec_path, tmp_path("busy"));
  CHECK(close(busy) == 0);
  run("the same file closed", exec_path, tmp_path("busy"));
  write_text(tmp_path("missing"), "#!/nonexistent/interp\n", 0755);
  run("missing interpreter", exec_path, tmp_path("missing"));
  write_text(tmp_path("dirinterp"), "#!/tmp\n", 0755);
  run("directory as interpreter", exec_path, tmp_path("dirinterp"));
  run("directory", exec_path, "/tmp");
  run("missing file", exec_path, tmp_path("nothing"));
  run("file as a directory", exec_path, "/proc/self/exe/x");

  /* A copy of this ELF, in a file and in a memfd. */
  size_t n = 0;
  char* elf = read_self(&n);
  write_file(tmp_path("copy"), elf, n, 0755);
  run("copied ELF", exec_path, tmp_path("copy"));
  int mfd = memfd_create("elf", 0);
  CHECK(mfd >= 0);
  CHECK(write(mfd, elf, n) == (ssize_t)n);
  free(elf);
  struct at a = {mfd, "", AT_EMPTY_PATH};
  run("memfd ELF (AT_EMPTY_PATH)", exec_at, &a);
  struct at nf = {mfd, "", 0};
  run("empty path without AT_EMPTY_PATH", exec_at, &nf);
  int sfd = memfd_create("script", 0);
  snprintf(text, sizeof text, "#!%s show\n", g_self);
  CHECK(write(sfd, text, strlen(text)) == (ssize_t)strlen(text));
  struct at sa = {sfd, "", AT_EMPTY_PATH};
  run("memfd script", exec_at, &sa);
  int cfd = memfd_create("cloexec", MFD_CLOEXEC);
  CHECK(write(cfd, text, strlen(text)) == (ssize_t)strlen(text));
  struct at ca = {cfd, "", AT_EMPTY_PATH};
  run("close-on-exec memfd script", exec_at, &ca);

  int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(dfd >= 0);
  char rel[128];
  snprintf(rel, sizeof rel, "%s-copy", g_name);
  struct at da = {dfd, rel, 0};
  run("directory descriptor", exec_at, &da);
  struct at la = {AT_FDCWD, "/proc/self/exe", AT_SYMLINK_NOFOLLOW};
  run("AT_SYMLINK_NOFOLLOW on a link", exec_at, &la);
  struct at ba = {AT_FDCWD, tmp_path("copy"), 0x2};
  run("unknown flag", exec_at, &ba);
  struct at fa = {mfd, "x", 0};
  run("relative to a file descriptor", exec_at, &fa);

  close(mfd);
  close(sfd);
  close(cfd);
  close(dfd);
  const char* names[] = {"s0",     "s1",   "s2",      "s3",        "s4",   "s5",
                         "blanks", "nonl", "longarg", "longname",  "bang", "junk",
                         "empty",  "nox",  "missing", "dirinterp", "copy", "busy"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    unlink(tmp_path(names[i]));
  return g_finish();
}
