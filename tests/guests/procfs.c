/* /proc as a process reads it: its own stat, status, statm, limits; a child's files in
 * each state (sleeping, stopped, zombie); the /proc listing; the system files (meminfo,
 * stat, uptime, loadavg, cpuinfo, mounts) against sysinfo; statfs of procfs and fstatfs of
 * a pipe and a memfd. Only facts that hold on any machine are printed. */
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <time.h>

#include "guest.h"

static char buf[1 << 16];

/* The whole of a file, NUL-terminated, in buf; its length or -1. */
static long slurp(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  long n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
    n += r;
  close(fd);
  buf[n] = 0;
  return n;
}

/* The value of "Name:" in buf (a status-like text), or NULL. */
static const char* field(const char* name) {
  static char val[256];
  size_t len = strlen(name);
  for (const char* l = buf; *l;) {
    if (strncmp(l, name, len) == 0 && l[len] == ':') {
      const char* v = l + len + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      size_t n = strcspn(v, "\n");
      if (n >= sizeof val) n = sizeof val - 1;
      memcpy(val, v, n);
      val[n] = 0;
      return val;
    }
    const char* nl = strchr(l, '\n');
    if (!nl) break;
    l = nl + 1;
  }
  return NULL;
}

static long kb_field(const char* name) {
  const char* v = field(name);
  return v ? atol(v) : -1;
}

/* Fields of a /proc/PID/stat text in buf: f[1] is the pid; comm is one field. */
static int stat_fields(char f[64][32]) {
  const char* close_paren = strrchr(buf, ')');
  if (!close_paren) return 0;
  int n = 2;
  strcpy(f[1], "pid");
  for (char* t = strtok((char*)close_paren + 1, " \n"); t && n < 64; t = strtok(NULL, " \n"))
    snprintf(f[++n], 32, "%s", t);
  return n;
}

static char child_state(pid_t pid) {
  char path[64], f[64][32];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (slurp(path) <= 0) return '?';
  if (stat_fields(f) < 3) return '?';
  return f[3][0];
}

static char wait_for_state(pid_t pid, char want) {
  char s = '?';
  for (int i = 0; i < 2000 && (s = child_state(pid)) != want; i++)
    usleep(1000);
  return s;
}

static void self_stat(void) {
  char f[64][32];
  CHECK(slurp("/proc/self/stat") > 0);
  int n = stat_fields(f);
  expect_long("stat fields", n, 52);
  char s[2] = {f[3][0], 0};
  expect_str("stat state", s, "R");
  expect_yes("stat ppid is getppid", atol(f[4]) == getppid());
  expect_yes("stat pgrp is getpgrp", atol(f[5]) == getpgrp());
  expect_yes("stat session is getsid", atol(f[6]) == getsid(0));
  expect_long("stat num_threads", atol(f[20]), 1);
  expect_long("stat exit_signal", atol(f[38]), 17);
  expect_yes("stat vsize > 0", atol(f[23]) > 0);
  expect_yes("stat rss > 0", atol(f[24]) > 0);
  long start = atol(f[22]);
  CHECK(slurp("/proc/uptime") > 0);
  expect_yes("stat starttime before now", start <= (long)(atof(buf) * 100) + 1);
}

static void self_status(void) {
  static const char* const skip[] = {"untag_mask", "x86_Thread_features",
                                     "x86_Thread_features_locked", NULL};
  CHECK(slurp("/proc/self/status") > 0);
  char names[2048] = "";
  for (char* l = buf; *l;) {
    char* nl = strchr(l, '\n');
    char* colon = strchr(l, ':');
    if (colon && (!nl || colon < nl)) {
      *colon = 0;
      int skipped = 0;
      for (int i = 0; skip[i]; i++)
        skipped |= strcmp(l, skip[i]) == 0;
      if (!skipped) {
        strcat(names, l);
        strcat(names, " ");
      }
      *colon = ':';
    }
    if (!nl) break;
    l = nl + 1;
  }
  say("status names: %s", names);
  CHECK(slurp("/proc/self/status") > 0);
  expect_str("status State", field("State"), "R (running)");
  expect_yes("status Pid", atol(field("Pid")) == getpid());
  expect_yes("status Tgid", atol(field("Tgid")) == getpid());
  expect_yes("status PPid", atol(field("PPid")) == getppid());
  expect_str("status Threads", field("Threads"), "1");
  expect_str("status SigBlk", field("SigBlk"), "0000000000000200");  /* SIGUSR1 */
  /* glibc's own signals 32 and 33 may come ignored from the runner: the standard ones. */
  char ign[32];
  snprintf(ign, sizeof ign, "%08llx", strtoull(field("SigIgn"), NULL, 16) & 0x7fffffffULL);
  expect_str("status SigIgn 1-31", ign, "00000800"); /* SIGUSR2 */
  expect_str("status SigCgt", field("SigCgt"), "0000000000004000");  /* SIGTERM */
  expect_str("status Umask", field("Umask"), "0027");
  expect_yes("status VmPTE > 0", kb_field("VmPTE") > 0);
  expect_yes("status VmRSS is RssAnon+RssFile+RssShmem",
             kb_field("VmRSS") == kb_field("RssAnon") + kb_field("RssFile") + kb_field("RssShmem"));

  long size0 = kb_field("VmSize"), rss0 = kb_field("RssAnon");
  char* p = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  CHECK(slurp("/proc/self/status") > 0);
  expect_long("VmSize grows by the mapping (kB)", kb_field("VmSize") - size0, 8192);
  for (long i = 0; i < (4 << 20); i += 4096)
    p[i] = 1;
  CHECK(slurp("/proc/self/status") > 0);
  expect_yes("RssAnon grows by the 4 MiB touched", kb_field("RssAnon") - rss0 >= 4096);
  long vmsize = kb_field("VmSize");
  CHECK(slurp("/proc/self/statm") > 0);
  long st[7];
  int n = sscanf(buf, "%ld %ld %ld %ld %ld %ld %ld", &st[0], &st[1], &st[2], &st[3], &st[4],
                 &st[5], &st[6]);
  expect_long("statm fields", n, 7);
  expect_yes("statm size is VmSize", st[0] * 4 == vmsize);
  munmap(p, 8 << 20);
}

static void self_limits(void) {
  struct rlimit rl = {100, 200};
  CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
  CHECK(slurp("/proc/self/limits") > 0);
  char* l = buf;
  char* nl = strchr(l, '\n');
  *nl = 0;
  expect_str("limits header", l,
             "Limit                     Soft Limit           Hard Limit           Units     ");
  char* nofile = strstr(nl + 1, "Max open files");
  CHECK(nofile);
  *strchr(nofile, '\n') = 0;
  expect_str("limits nofile", nofile,
             "Max open files            100                  200                  files     ");
}

static void child_states(void) {
  int ready[2], hold[2];
  CHECK(pipe(ready) == 0 && pipe(hold) == 0);
  pid_t c = fork();
  CHECK(c >= 0);
  if (c == 0) {
    char x;
    write(ready[1], "r", 1);
    read(hold[0], &x, 1);
    _exit(3);
  }
  char x;
  CHECK(read(ready[0], &x, 1) == 1);
  char s[2] = {wait_for_state(c, 'S'), 0};
  expect_str("child sleeping", s, "S");
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)c);
  char f[64][32];
  CHECK(slurp(path) > 0);
  stat_fields(f);
  expect_yes("child stat ppid", atol(f[4]) == getpid());
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)c);
  long clen = slurp(path);
  char child_cmd[256];
  memcpy(child_cmd, buf, (size_t)clen);
  long slen = slurp("/proc/self/cmdline");
  expect_yes("child cmdline is ours", clen > 0 && clen == slen && !memcmp(child_cmd, buf, (size_t)clen));
  snprintf(path, sizeof path, "/proc/%d/status", (int)c);
  CHECK(slurp(path) > 0);
  expect_str("child status State", field("State"), "S (sleeping)");

  /* The listing holds both of us, and every pid in it is a directory. */
  DIR* d = opendir("/proc");
  CHECK(d);
  int me = 0, child = 0, self = 0, meminfo = 0, bad = 0;
  struct dirent* e;
  while ((e = readdir(d))) {
    if (atoi(e->d_name) == getpid()) me = 1;
    if (atoi(e->d_name) == c) child = 1;
    if (!strcmp(e->d_name, "self")) self = 1;
    if (!strcmp(e->d_name, "meminfo")) meminfo = 1;
    if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
      char p2[300];
      struct stat st;
      snprintf(p2, sizeof p2, "/proc/%s", e->d_name);
      /* A host process may exit between readdir and stat (ENOENT). */
      if (stat(p2, &st) != 0 ? errno != ENOENT : !S_ISDIR(st.st_mode)) bad++;
    }
  }
  closedir(d);
  expect_yes("listing has us", me);
  expect_yes("listing has the child", child);
  expect_yes("listing has self", self);
  expect_yes("listing has meminfo", meminfo);
  expect_long("pid entries that are not directories", bad, 0);

  kill(c, SIGSTOP);
  s[0] = wait_for_state(c, 'T');
  expect_str("child stopped", s, "T");
  snprintf(path, sizeof path, "/proc/%d/status", (int)c);
  CHECK(slurp(path) > 0);
  expect_str("child status stopped", field("State"), "T (stopped)");
  kill(c, SIGCONT);
  write(hold[1], "g", 1);
  siginfo_t si;
  CHECK(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT) == 0);
  s[0] = child_state(c);
  expect_str("child zombie", s, "Z");
  snprintf(path, sizeof path, "/proc/%d/stat", (int)c);
  CHECK(slurp(path) > 0);
  int n = stat_fields(f);
  expect_long("zombie stat fields", n, 52);
  expect_long("zombie exit_code", atol(f[52]), 3 << 8);
  expect_long("zombie vsize", atol(f[23]), 0);
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)c);
  expect_long("zombie cmdline length", slurp(path), 0);
  snprintf(path, sizeof path, "/proc/%d/status", (int)c);
  CHECK(slurp(path) > 0);
  expect_str("zombie status State", field("State"), "Z (zombie)");
  expect_yes("zombie status has no VmSize", field("VmSize") == NULL);
  int st;
  CHECK(waitpid(c, &st, 0) == c);
  snprintf(path, sizeof path, "/proc/%d/stat", (int)c);
  expect_long("reaped child's stat", slurp(path), -1);
  expect_str("reaped child's errno", errno_name(errno), "ENOENT");
}

static void system_files(void) {
  struct sysinfo si;
  CHECK(sysinfo(&si) == 0);
  CHECK(slurp("/proc/meminfo") > 0);
  expect_yes("MemTotal is sysinfo totalram", (unsigned long)kb_field("MemTotal") ==
                                                 si.totalram * si.mem_unit / 1024);
  expect_yes("MemFree <= MemAvailable <= MemTotal",
             kb_field("MemFree") <= kb_field("MemAvailable") &&
                 kb_field("MemAvailable") <= kb_field("MemTotal"));
  char names[2048] = "";
  for (char* l = buf; *l;) {
    char* colon = strchr(l, ':');
    if (!colon) break;
    *colon = 0;
    strcat(names, l);
    strcat(names, " ");
    int last = !strcmp(l, "Hugetlb");
    *colon = ':';
    if (last) break;
    l = strchr(colon, '\n');
    if (!l) break;
    l++;
  }
  say("meminfo names: %s", names);

  CHECK(slurp("/proc/stat") > 0);
  char stat_names[512] = "";
  long btime = 0;
  for (char* l = buf; *l;) {
    size_t w = strcspn(l, " ");
    int cpun = !strncmp(l, "cpu", 3) && l[3] >= '0' && l[3] <= '9';
    if (!cpun) {
      strncat(stat_names, l, w);
      strcat(stat_names, " ");
    }
    if (!strncmp(l, "btime ", 6)) btime = atol(l + 6);
    char* nl = strchr(l, '\n');
    if (!nl) break;
    l = nl + 1;
  }
  say("stat lines: %s", stat_names);
  expect_yes("stat has cpu0", strstr(buf, "\ncpu0 ") != NULL);
  CHECK(slurp("/proc/uptime") > 0);
  double up = 0, idle = 0;
  expect_long("uptime fields", sscanf(buf, "%lf %lf", &up, &idle), 2);
  expect_yes("btime + uptime is now", labs(btime + (long)up - (long)time(NULL)) <= 2);
  expect_yes("sysinfo uptime is /proc/uptime", labs(si.uptime - (long)up) <= 2);
  CHECK(slurp("/proc/loadavg") > 0);
  double l1, l5, l15;
  int run, total, last;
  expect_long("loadavg fields", sscanf(buf, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &run, &total,
                                       &last),
              6);
  expect_yes("loadavg running <= total", run >= 1 && run <= total);
  CHECK(slurp("/proc/cpuinfo") > 0);
  expect_yes("cpuinfo starts with processor 0", !strncmp(buf, "processor\t: 0\n", 14));
  CHECK(slurp("/proc/mounts") > 0);
  expect_yes("mounts has procfs", strstr(buf, "proc /proc proc rw") != NULL);
  char target[64] = "";
  CHECK(readlink("/proc/mounts", target, sizeof target - 1) > 0);
  expect_str("/proc/mounts links to", target, "self/mounts");
}

static void statfs_checks(void) {
  struct statfs s;
  CHECK(statfs("/proc", &s) == 0);
  expect_long("statfs /proc type", (long)s.f_type, 0x9fa0);
  expect_long("statfs /proc blocks", (long)s.f_blocks, 0);
  CHECK(statfs("/proc/self/status", &s) == 0);
  expect_long("statfs /proc/self/status type", (long)s.f_type, 0x9fa0);
  int p[2];
  CHECK(pipe(p) == 0);
  CHECK(fstatfs(p[0], &s) == 0);
  expect_long("fstatfs pipe type", (long)s.f_type, 0x50495045);
  int m = (int)syscall(SYS_memfd_create, "x", 0);
  CHECK(m >= 0);
  CHECK(fstatfs(m, &s) == 0);
  expect_long("fstatfs memfd type", (long)s.f_type, 0x01021994);
  errno = 0;
  expect_long("statfs of a missing path", statfs("/nonexistent/x", &s), -1);
  expect_str("statfs errno", errno_name(errno), "ENOENT");
}

static void on_term(int sig) {
  (void)sig;
}

int main(void) {
  /* Whatever the runner ignored is inherited: start from the defaults. */
  for (int i = 1; i < 32; i++)
    if (i != SIGKILL && i != SIGSTOP) signal(i, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
  signal(SIGUSR2, SIG_IGN);
  signal(SIGTERM, on_term);
  umask(027);
  self_stat();
  self_status();
  self_limits();
  child_states();
  system_files();
  statfs_checks();
  return g_finish();
}
