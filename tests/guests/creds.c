/* creds: user and group ids, supplementary groups and capabilities as root holds and loses
 * them (kernel/sys.c, security/commoncap.c), and the checks they gate: mlock past
 * RLIMIT_MEMLOCK (CAP_IPC_LOCK), raising a hard limit (CAP_SYS_RESOURCE), the set*id calls
 * (CAP_SETUID/CAP_SETGID), setgroups (CAP_SETGID), a nice value below 0 or past RLIMIT_NICE
 * and another user's process (CAP_SYS_NICE).
 *
 * The facts are root's: a run by another user prints one line and stops (mmemu runs as
 * the user running it, like the native reference). Each scenario runs in a forked child,
 * which changes its ids and reports; the parent prints each child's status. Capability
 * masks are never printed whole (the bounding set is the host's); only bits and relations.
 * Whether CAP_SYS_RESOURCE is held depends on the host (containers drop it), so that line
 * prints whether the answer matched the capability. */
#include "guest.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define LIMIT_PAGES 2

struct caps {
  unsigned long long eff, perm, inh;
};

static struct caps get_caps(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  CHECK(syscall(SYS_capget, &hdr, d) == 0);
  struct caps c = {
      d[0].effective | (unsigned long long)d[1].effective << 32,
      d[0].permitted | (unsigned long long)d[1].permitted << 32,
      d[0].inheritable | (unsigned long long)d[1].inheritable << 32,
  };
  return c;
}

static long set_caps(struct caps c) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  d[0].effective = (unsigned)c.eff;
  d[1].effective = (unsigned)(c.eff >> 32);
  d[0].permitted = (unsigned)c.perm;
  d[1].permitted = (unsigned)(c.perm >> 32);
  d[0].inheritable = (unsigned)c.inh;
  d[1].inheritable = (unsigned)(c.inh >> 32);
  return syscall(SYS_capset, &hdr, d);
}

static int has(unsigned long long set, int cap) {
  return (set >> cap) & 1;
}

static const char* ids(int gid) {
  static char buf[64];
  unsigned r, e, s;
  if (gid) {
    CHECK(getresgid(&r, &e, &s) == 0);
  } else {
    CHECK(getresuid(&r, &e, &s) == 0);
  }
  snprintf(buf, sizeof buf, "%u %u %u", r, e, s);
  return buf;
}

/* mlock of LIMIT_PAGES + 2 pages, past the soft RLIMIT_MEMLOCK the parent set. */
static const char* mlock_past_limit(void) {
  static char* p;
  if (!p) p = map_anon(LIMIT_PAGES + 2);
  const char* r = rc_str(mlock(p, (LIMIT_PAGES + 2) * G_PAGE));
  if (strcmp(r, "ok") == 0) CHECK(munlock(p, (LIMIT_PAGES + 2) * G_PAGE) == 0);
  return r;
}

static const char* map_locked_past_limit(void) {
  void* p = mmap(NULL, (LIMIT_PAGES + 2) * G_PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
  const char* r = ptr_str(p);
  if (p != MAP_FAILED) CHECK(munmap(p, (LIMIT_PAGES + 2) * G_PAGE) == 0);
  return r;
}

static void run(const char* name, void (*fn)(void)) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    say("== %s", name);
    fn();
    _exit(g_finish());
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str(name, wstatus_str(st), "exited 0");
}

static void as_root(void) {
  struct caps c = get_caps();
  expect_yes("effective == permitted", c.eff == c.perm);
  expect_yes("inheritable empty", c.inh == 0);
  expect_yes("CAP_IPC_LOCK, CAP_SETUID, CAP_SETGID effective",
             has(c.eff, CAP_IPC_LOCK) && has(c.eff, CAP_SETUID) && has(c.eff, CAP_SETGID));
  expect_long("PR_CAPBSET_READ CAP_SETUID", prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0), 1);
  expect_str("PR_CAPBSET_READ 99", rc_str(prctl(PR_CAPBSET_READ, 99, 0, 0, 0)), "EINVAL");
  expect_long("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), 0);
  expect_str("mlock past RLIMIT_MEMLOCK", mlock_past_limit(), "ok");
  expect_str("mmap MAP_LOCKED past RLIMIT_MEMLOCK", map_locked_past_limit(), "ok");
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_max += 1;
  const char* raise = rc_str(setrlimit(RLIMIT_NOFILE, &rl));
  expect_yes("raising a hard limit needs CAP_SYS_RESOURCE",
             strcmp(raise, has(c.eff, CAP_SYS_RESOURCE) ? "ok" : "EPERM") == 0);
  gid_t g[3] = {7, 3, 5};
  expect_str("setgroups 7 3 5", rc_str(setgroups(3, g)), "ok");
  gid_t back[4] = {0, 0, 0, 0};
  expect_long("getgroups(0)", getgroups(0, NULL), 3);
  expect_str("getgroups(2)", rc_str(getgroups(2, back)), "EINVAL");
  CHECK(getgroups(4, back) == 3);
  say("groups (sorted): %u %u %u", back[0], back[1], back[2]);
  expect_str("setgroups -1", rc_str(setgroups(-1, g)), "EINVAL");
  expect_str("setresgid 5 6 7", rc_str(setresgid(5, 6, 7)), "ok");
  say("gids: %s", ids(1));
  expect_str("setregid -1 8", rc_str(setregid(-1, 8)), "ok");
  say("gids: %s", ids(1));
  expect_str("setgid 9", rc_str(setgid(9)), "ok");
  say("gids: %s", ids(1));
  expect_str("setuid -1", rc_str(setuid(-1)), "EINVAL");
  expect_long("setfsuid 1000 (old)", setfsuid(1000), 0);
  c = get_caps();
  expect_yes("fsuid 1000: CAP_DAC_OVERRIDE dropped, CAP_IPC_LOCK kept",
             !has(c.eff, CAP_DAC_OVERRIDE) && has(c.eff, CAP_IPC_LOCK));
  expect_long("setfsuid 0 (old)", setfsuid(0), 1000);
  c = get_caps();
  expect_yes("fsuid 0: CAP_DAC_OVERRIDE back", has(c.eff, CAP_DAC_OVERRIDE));
  errno = 0;
  expect_long("getpriority", getpriority(PRIO_PROCESS, 0), 0);
  expect_str("setpriority -5", rc_str(setpriority(PRIO_PROCESS, 0, -5)), "ok");
  expect_long("getpriority", getpriority(PRIO_PROCESS, 0), -5);
  expect_str("setpriority -100 (clamped)", rc_str(setpriority(PRIO_PROCESS, 0, -100)), "ok");
  expect_long("getpriority", getpriority(PRIO_PROCESS, 0), -20);
  expect_long("raw getpriority (20 - nice)", syscall(SYS_getpriority, PRIO_PROCESS, 0), 40);
  expect_str("setpriority of the parent", rc_str(setpriority(PRIO_PROCESS, getppid(), 0)), "ok");
  expect_str("getpriority of nobody", rc_str(getpriority(PRIO_PROCESS, 999999)), "ESRCH");
  expect_str("setpriority which 7", rc_str(setpriority(7, 0, 0)), "EINVAL");
  expect_str("setpriority 0 again", rc_str(setpriority(PRIO_PROCESS, 0, 0)), "ok");
}

static void setuid_user(void) {
  expect_str("setuid 1000", rc_str(setuid(1000)), "ok");
  say("uids: %s", ids(0));
  struct caps c = get_caps();
  expect_yes("no capabilities", c.eff == 0 && c.perm == 0 && c.inh == 0);
  expect_str("setuid 0", rc_str(setuid(0)), "EPERM");
  expect_str("setresuid -1 0 -1", rc_str(setresuid(-1, 0, -1)), "EPERM");
  expect_str("setreuid 1000 1000 (no change)", rc_str(setreuid(1000, 1000)), "ok");
  expect_str("mlock past RLIMIT_MEMLOCK", mlock_past_limit(), "ENOMEM");
  expect_str("mmap MAP_LOCKED past RLIMIT_MEMLOCK", map_locked_past_limit(), "EAGAIN");
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_max += 1;
  expect_str("raise a hard limit", rc_str(setrlimit(RLIMIT_NOFILE, &rl)), "EPERM");
  rl.rlim_max -= 2;
  rl.rlim_cur = rl.rlim_max;
  expect_str("lower a hard limit", rc_str(setrlimit(RLIMIT_NOFILE, &rl)), "ok");
  expect_str("setgroups", rc_str(setgroups(0, NULL)), "EPERM");
  expect_str("setgid 0 (the real gid)", rc_str(setgid(0)), "ok");
  expect_str("setgid 1000", rc_str(setgid(1000)), "EPERM");
  c.eff = c.perm = 1ULL << CAP_IPC_LOCK;
  expect_str("capset CAP_IPC_LOCK", rc_str(set_caps(c)), "EPERM");
  expect_str("PR_CAPBSET_DROP", rc_str(prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0)), "EPERM");
  expect_long("setfsuid 0 (refused: old)", setfsuid(0), 1000);
  expect_long("setfsuid -1 (query)", setfsuid(-1), 1000);
  struct rlimit nice;
  CHECK(getrlimit(RLIMIT_NICE, &nice) == 0);
  expect_yes("RLIMIT_NICE 0", nice.rlim_cur == 0 && nice.rlim_max == 0);
  expect_str("setpriority 5", rc_str(setpriority(PRIO_PROCESS, 0, 5)), "ok");
  expect_long("getpriority", getpriority(PRIO_PROCESS, 0), 5);
  expect_str("setpriority 3 (lower)", rc_str(setpriority(PRIO_PROCESS, 0, 3)), "EACCES");
  expect_str("setpriority -1", rc_str(setpriority(PRIO_PROCESS, 0, -1)), "EACCES");
  expect_str("setpriority 7", rc_str(setpriority(PRIO_PROCESS, 0, 7)), "ok");
  expect_str("setpriority of root's process", rc_str(setpriority(PRIO_PROCESS, getppid(), 10)),
             "EPERM");
  expect_str("setpriority of my pid", rc_str(setpriority(PRIO_PROCESS, getpid(), 9)), "ok");
  expect_long("getpriority", getpriority(PRIO_PROCESS, 0), 9);
  expect_str("setpriority of a process group", rc_str(setpriority(PRIO_PGRP, 0, 10)), "EPERM");
}

static void seteuid_user(void) {
  expect_str("seteuid 1000", rc_str(setreuid(-1, 1000)), "ok");
  say("uids: %s", ids(0));
  struct caps c = get_caps();
  expect_yes("effective empty, permitted kept", c.eff == 0 && has(c.perm, CAP_IPC_LOCK));
  expect_str("mlock past RLIMIT_MEMLOCK", mlock_past_limit(), "ENOMEM");
  expect_str("seteuid 0", rc_str(setreuid(-1, 0)), "ok");
  say("uids: %s", ids(0));
  c = get_caps();
  expect_yes("effective == permitted again", c.eff == c.perm && has(c.eff, CAP_IPC_LOCK));
  expect_str("mlock past RLIMIT_MEMLOCK", mlock_past_limit(), "ok");
  expect_str("setresuid 1000 1000 0", rc_str(setresuid(1000, 1000, 0)), "ok");
  say("uids: %s", ids(0));
  c = get_caps();
  expect_yes("saved root keeps permitted", c.eff == 0 && has(c.perm, CAP_IPC_LOCK));
  expect_str("setresuid -1 0 -1 (the saved id)", rc_str(setresuid(-1, 0, -1)), "ok");
  say("uids: %s", ids(0));
  expect_str("setresuid 2000 -1 -1", rc_str(setresuid(2000, -1, -1)), "ok");
  expect_str("setreuid 1000 1000", rc_str(setreuid(1000, 1000)), "ok");
  say("uids: %s", ids(0));
  c = get_caps();
  expect_yes("no root id left: nothing", c.eff == 0 && c.perm == 0);
}

static void keepcaps(void) {
  expect_str("PR_SET_KEEPCAPS 2", rc_str(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0)), "EINVAL");
  expect_str("PR_SET_KEEPCAPS 1", rc_str(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)), "ok");
  expect_long("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), 1);
  expect_long("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), 16);
  expect_str("setresuid 1000 1000 1000", rc_str(setresuid(1000, 1000, 1000)), "ok");
  struct caps c = get_caps();
  expect_yes("permitted kept, effective empty", c.eff == 0 && has(c.perm, CAP_IPC_LOCK));
  expect_str("mlock past RLIMIT_MEMLOCK", mlock_past_limit(), "ENOMEM");
  c.eff = 1ULL << CAP_IPC_LOCK;
  expect_str("capset effective CAP_IPC_LOCK", rc_str(set_caps(c)), "ok");
  expect_str("mlock past RLIMIT_MEMLOCK", mlock_past_limit(), "ok");
  c.eff = 1ULL << CAP_IPC_LOCK;
  c.perm = 1ULL << CAP_IPC_LOCK;
  expect_str("capset permitted down to CAP_IPC_LOCK", rc_str(set_caps(c)), "ok");
  c.perm |= 1ULL << CAP_SETUID;
  expect_str("capset permitted back up", rc_str(set_caps(c)), "EPERM");
  c.perm = 1ULL << CAP_IPC_LOCK;
  c.eff = 1ULL << CAP_SETUID;
  expect_str("capset effective outside permitted", rc_str(set_caps(c)), "EPERM");
}

static void ambient(void) {
  struct caps c = get_caps();
  expect_str("PR_CAP_AMBIENT raise, not inheritable",
             rc_str(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0)), "EPERM");
  c.inh = 1ULL << CAP_IPC_LOCK;
  expect_str("capset inheritable CAP_IPC_LOCK", rc_str(set_caps(c)), "ok");
  expect_str("PR_CAP_AMBIENT raise",
             rc_str(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0)), "ok");
  expect_long("PR_CAP_AMBIENT is_set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_IPC_LOCK, 0, 0),
              1);
  expect_str("PR_CAP_AMBIENT bad cap",
             rc_str(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 99, 0, 0)), "EINVAL");
  expect_str("PR_CAP_AMBIENT clear_all with an argument",
             rc_str(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0)), "EINVAL");
  c.inh = 0;
  expect_str("capset inheritable empty", rc_str(set_caps(c)), "ok");
  expect_long("ambient follows inheritable",
              prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_IPC_LOCK, 0, 0), 0);
  c.inh = 1ULL << CAP_IPC_LOCK;
  CHECK(set_caps(c) == 0);
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0) == 0);
  expect_str("setuid 1000", rc_str(setuid(1000)), "ok");
  expect_long("ambient gone with root",
              prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_IPC_LOCK, 0, 0), 0);
}

int main(void) {
  if (geteuid() != 0) {
    say("not root: nothing to compare");
    return 0;
  }
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
  rl.rlim_cur = LIMIT_PAGES * G_PAGE;
  CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
  say("uids: %s", ids(0));
  say("gids: %s", ids(1));
  run("as root", as_root);
  run("setuid to a user", setuid_user);
  run("seteuid and back", seteuid_user);
  run("PR_SET_KEEPCAPS", keepcaps);
  run("ambient capabilities", ambient);
  return g_finish();
}
