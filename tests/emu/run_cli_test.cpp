// `mmemu run` as users call it: option parsing (repeatable options never swallow the
// program, --env replaces, "--" ends the options), a failed fork's report with the walkers
// at the lock-drop point for each recovery, the names in VMA dumps, usage errors (one line
// naming the option, status 2, for a bad value of every option), where injection counting
// starts (the program's first instruction, or its load), --uid/--gid.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "emu_test_util.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;

struct Cli {
  int status = -1;
  std::string out;   // the guest's standard output
  std::string dump;  // --out FILE
  std::string err;   // mmemu's standard error
};

// Runs `PREFIX mmemu SUBCOMMAND [--out DUMP] ARGS` (PREFIX such as `env -i A=1`) with the
// dumps going to a file (for run) and standard error to another.
Cli mmemu_cmd(const std::string& subcommand, const std::string& args,
              const std::string& prefix = "", bool dump_file = true) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("mmemu-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string dump = (dir / "dump.txt").string(), err = (dir / "err.txt").string();
  const std::string out = subcommand == "run" && dump_file ? " --out " + dump : "";
  const std::string cmd =
      prefix + " " + MMEMU_BINARY + " " + subcommand + out + " " + args + " 2>" + err;
  Cli c;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return c;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
    c.out.append(buf, n);
  const int st = ::pclose(p);
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  auto slurp = [](const std::string& f) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  c.dump = slurp(dump);
  c.err = slurp(err);
  fs::remove_all(dir);
  return c;
}

Cli mmemu_run(const std::string& args, const std::string& prefix = "") {
  return mmemu_cmd("run", args, prefix);
}

// A usage error: status 2, nothing run, exactly one line on standard error that names
// `what` (the option).
void expect_usage_error(const Cli& c, const std::string& what) {
  EXPECT_EQ(c.status, 2) << what << ": " << c.err;
  EXPECT_EQ(c.out, "") << what;
  EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << what << ": " << c.err;
  EXPECT_TRUE(c.err.ends_with("\n")) << c.err;
  EXPECT_NE(c.err.find(what), std::string::npos) << what << ": " << c.err;
}

class RunCli : public ::testing::TestWithParam<Arch> {
 protected:
  std::string guest(const std::string& name) { return test::guest_path(GetParam(), name); }
};

TEST_P(RunCli, RepeatableOptionsTakeOneValueEach) {
  const Cli c = mmemu_run("--inject vma:100000 --inject page:100000 --env A=1 --env B=2 " +
                          guest("hello") + " arg");
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "hello, world\n");
  EXPECT_EQ(c.err, "");
}

// The 25th vm_area_dup of the second fork fails: the guest sees ENOMEM for that fork only
// and the fork dump says what the recovery left and what each walker met.
TEST_P(RunCli, FailedForkReportsTheRecoveryAndTheWalkers) {
  const std::string common =
      "--walkers all --inject-from fork:2 --inject vma:25 --dump-pgtables fork " +
      guest("fork_fail") + " 3";
  const Cli xa = mmemu_run("--fork-recovery xa-zero " + common);
  EXPECT_EQ(xa.status, 0) << xa.err << xa.dump;
  EXPECT_NE(xa.out.find("fork 0: ok\nfork 1: ENOMEM\nfork 2: ok\n"), std::string::npos) << xa.out;
  EXPECT_NE(xa.dump.find("  vm_area_dup failed at VMA 0x"), std::string::npos) << xa.dump;
  EXPECT_NE(xa.dump.find(", 24 VMAs copied\n  recovery xa-zero: XA_ZERO_ENTRY stored over ["),
            std::string::npos)
      << xa.dump;
  EXPECT_NE(xa.dump.find("  walker unuse_mm-nocheck: met-xa-zero at 0x"), std::string::npos);
  EXPECT_NE(xa.dump.find("  walker unuse_mm: skipped-unstable (0 VMAs seen; mm_users 1, "
                         "mm_count 1, took mmget_not_zero)\n"),
            std::string::npos);
  EXPECT_NE(xa.dump.find("  walker oom_reaper: skipped-oom-skip (0 VMAs seen; mm_users 1, "
                         "mm_count 1, took mmgrab)\n"),
            std::string::npos);
  // rmap reaches the child through a COW-shared frame's anon_vma, never through its tree.
  EXPECT_NE(xa.dump.find("  walker rmap-nocheck: met-child-vma from frame 0x"), std::string::npos);
  EXPECT_NE(xa.dump.find("    rmap visit: mm "), std::string::npos);
  EXPECT_NE(xa.dump.find("XA_ZERO marker in tree"), std::string::npos);  // lock-drop dump
  EXPECT_NE(xa.dump.find("  child exit_mmap: 24 VMAs removed (map_count 24), stopped at XA_ZERO"),
            std::string::npos);

  const Cli tm = mmemu_run("--fork-recovery tree-max " + common);
  EXPECT_EQ(tm.status, 0) << tm.err << tm.dump;
  EXPECT_NE(tm.out.find("fork 1: ENOMEM\n"), std::string::npos) << tm.out;
  EXPECT_NE(tm.dump.find("  walker unuse_mm-nocheck: empty-tree (0 VMAs seen; "), std::string::npos)
      << tm.dump;
  EXPECT_NE(tm.dump.find("  walker oom_reaper-nocheck: empty-tree (0 VMAs seen; "),
            std::string::npos);
  EXPECT_NE(tm.dump.find("  child exit_mmap: no VMA: straight to destroy"), std::string::npos);
  EXPECT_EQ(tm.dump.find("met-xa-zero"), std::string::npos);

  const Cli pa = mmemu_run("--fork-recovery partial " + common);
  EXPECT_EQ(pa.status, 0) << pa.err << pa.dump;
  // x86_64's fork_fail has two VMAs more above the failure point than arm64's.
  const std::string erased = GetParam() == Arch::X86_64 ? "26" : "24";
  EXPECT_NE(
      pa.dump.find("  recovery partial: erased " + erased + " entries not yet copied from 0x"),
      std::string::npos)
      << pa.dump;
  EXPECT_NE(pa.dump.find("; 24 copied VMAs kept\n"), std::string::npos);
  EXPECT_NE(pa.dump.find("  walker unuse_mm-nocheck: walked (24 VMAs seen; "), std::string::npos);
  EXPECT_EQ(pa.dump.find("met-xa-zero"), std::string::npos);
}

// --walker-at exit-unlock: the walkers run inside the dying child's exit_mmap, where
// mm_users is already 0: swapoff's mmget_not_zero fails, the reaper (mm_count) walks on.
TEST_P(RunCli, WalkersInExitMmapsUnlockWindow) {
  const Cli c = mmemu_run(
      "--fork-recovery xa-zero --walkers unuse_mm-nocheck,oom_reaper-nocheck "
      "--walker-at exit-unlock --inject-from fork:1 --inject anon_vma:3 " +
      guest("fork_fail") + " 1");
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.err.find("mmemu:   walker unuse_mm-nocheck in exit_mmap's unlock window: "
                       "no-mm-users (0 VMAs seen; mm_users 0, mm_count 1, took mmget_not_zero)"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.err.find("mmemu:   walker oom_reaper-nocheck in exit_mmap's unlock window: "
                       "met-xa-zero at 0x"),
            std::string::npos)
      << c.err;
  EXPECT_EQ(c.err.find("mmemu:   walker unuse_mm-nocheck: "), std::string::npos) << c.err;
}

// Without a fork dump the report goes to mmemu's log.
TEST_P(RunCli, WalkersWithoutDumpsReportInTheLog) {
  const Cli c = mmemu_run(
      "--fork-recovery xa-zero --walkers unuse_mm-nocheck --inject-from fork:1 "
      "--inject anon_vma:3 " +
      guest("fork_fail") + " 1");
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("fork 0: ENOMEM\n"), std::string::npos) << c.out;
  EXPECT_NE(c.err.find("mmemu: pid 1000: fork failed: anon_vma_fork failed at VMA 0x"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.err.find("mmemu:   walker unuse_mm-nocheck: met-xa-zero at 0x"), std::string::npos)
      << c.err;
}

// Dumps name VMAs with the function the guest's /proc/self/maps uses: the data VMA that
// ends where the break starts is not "[heap]" (vma_is_initial_heap is strict); the heap is.
TEST_P(RunCli, ExitDumpNamesOneHeap) {
  const Cli c = mmemu_run("--dump-pgtables exit " + guest("hello"));
  EXPECT_EQ(c.status, 0) << c.err;
  int heaps = 0;
  for (std::size_t at = c.dump.find("[heap]"); at != std::string::npos;
       at = c.dump.find("[heap]", at + 1))
    ++heaps;
  EXPECT_EQ(heaps, 1) << c.dump;
}

TEST_P(RunCli, UnknownWalkerIsAUsageError) {
  const Cli c = mmemu_run("--walkers kswapd " + guest("hello"));
  EXPECT_EQ(c.status, 2);
  EXPECT_NE(c.err.find("unknown walker 'kswapd'"), std::string::npos) << c.err;
  EXPECT_EQ(c.out, "");
}

// --env NAME=VALUE replaces NAME where it stands in the environment (a later duplicate of
// it goes), as env(1) does; a new NAME goes at the end.
TEST_P(RunCli, EnvReplacesANameInPlace) {
  const Cli c = mmemu_run("--clear-env --env A=1 --env B=2 --env A=3 " + guest("printenv"));
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "A=3\nB=2\n");
  // env -i keeps LSAN_OPTIONS (the sanitizer build's suppressions): it comes first.
  const char* lsan = std::getenv("LSAN_OPTIONS");
  const std::string kept = lsan ? fmt::format("LSAN_OPTIONS={}", lsan) : "";
  const Cli h = mmemu_run("--env X=9 --env Z=0 " + guest("printenv"),
                          fmt::format("env -i {}X=1 Y=2 X=5", lsan ? "'" + kept + "' " : ""));
  EXPECT_EQ(h.status, 0) << h.err;
  EXPECT_EQ(h.out, (lsan ? kept + "\n" : "") + "X=9\nY=2\nZ=0\n");
}

// The options end at the first argument mmemu does not know as one, or at "--": an unknown
// option is a usage error, a program whose name starts with '-' follows "--".
TEST_P(RunCli, DoubleDashEndsTheOptions) {
  const Cli c = mmemu_run("--slice 1000 -- " + guest("hello") + " -- x");
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "hello, world\n");
  const Cli dash = mmemu_run("-- -no-such-program");
  EXPECT_EQ(dash.status, 127) << dash.err;
  EXPECT_NE(dash.err.find("cannot run -no-such-program"), std::string::npos) << dash.err;
  expect_usage_error(mmemu_run("--bogus-option " + guest("hello")), "--bogus-option");
  expect_usage_error(mmemu_run("--"), "no PROGRAM");
}

// Every option's bad value: status 2 and one line naming the option; the program never runs.
TEST_P(RunCli, EveryBadOptionValueIsAOneLineUsageError) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--phys-mem 3", "--phys-mem"},
      {"--phys-mem lots", "--phys-mem"},
      {"--inject vma:0", "--inject"},
      {"--inject vma:1,", "--inject"},
      {"--inject heap:1", "--inject"},
      {"--inject-from fork:0", "--inject-from"},
      {"--inject-from fork:2x", "--inject-from"},
      {"--inject-from exec", "--inject-from"},
      {"--inject-random nan", "--inject-random"},
      {"--inject-random 1.5", "--inject-random"},
      {"--inject-random -0.1", "--inject-random"},
      {"--inject-random often", "--inject-random"},
      {"--seed -1", "--seed"},
      {"--seed x", "--seed"},
      {"--fork-recovery none", "--fork-recovery"},
      {"--vsyscall native", "--vsyscall"},
      {"--walkers kswapd", "--walkers"},
      {"--walkers ''", "--walkers"},
      {"--walkers rmap,,oom_reaper", "--walkers"},
      {"--walker-at fork", "--walker-at"},
      {"--dump-pgtables never", "--dump-pgtables"},
      {"--dump-pgtables ''", "--dump-pgtables"},
      {"--format xml", "--format"},
      {"--trace /nonexistent-dir/t", "--trace"},
      {"--log /nonexistent-dir/l", "--log"},
      {"--trace ''", "--trace"},
      {"--trace /dev/null --trace-format xml", "--trace-format"},
      {"--trace-format chrome", "--trace-format"},  // without --trace
      {"--stats=maybe", "--stats"},
      {"--check=maybe", "--check"},
      {"--slice 0", "--slice"},
      {"--slice -5", "--slice"},
      {"--slice fast", "--slice"},
      {"--slice 5 --slice 6", "--slice"},
      {"--env NOEQUALS", "--env"},
      {"--env =x", "--env"},
      {"--clear-env=x", "--clear-env"},
      {"--uid -1", "--uid"},
      {"--uid 4294967295", "--uid"},
      {"--uid 4294967296", "--uid"},
      {"--uid root", "--uid"},
      {"--gid ''", "--gid"},
      {"--gid 4294967295", "--gid"},
  };
  for (const auto& [args, what] : bad)
    expect_usage_error(mmemu_run(args + " " + guest("hello")), what);
  // --out, which mmemu_run gives itself.
  expect_usage_error(mmemu_cmd("run", "--out /nonexistent-dir/o " + guest("hello"), "", false),
                     "--out");
}

TEST(ScriptCli, EveryBadOptionValueIsAOneLineUsageError) {
  const fs::path dir = fs::path(::testing::TempDir()) / "mmemu-script-cli";
  fs::create_directories(dir);
  const std::string script = (dir / "empty.mms").string();
  std::ofstream(script) << "# nothing\n";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--arch sparc " + script, "--arch"},
      {"--format xml " + script, "--format"},
      {"--phys-mem 3 " + script, "--phys-mem"},
      {"--recovery none " + script, "--recovery"},
      {"--out /nonexistent-dir/o " + script, "/nonexistent-dir/o"},
      {"--check=maybe " + script, "--check"},
      {"--bogus " + script, "--bogus"},
      {"/nonexistent-dir/s.mms", "/nonexistent-dir/s.mms"},
      {"", "file"},
  };
  for (const auto& [args, what] : bad)
    expect_usage_error(mmemu_cmd("script", args), what);
  EXPECT_EQ(mmemu_cmd("script", script).status, 0);
  fs::remove_all(dir);
}

// Injection counts from the program's first instruction: the loader's allocations are not
// counted, so the first VMA the running program allocates is the one that fails.
TEST_P(RunCli, InjectionCountsFromTheFirstInstruction) {
  const fs::path trace = fs::path(::testing::TempDir()) / ("inject-" + std::to_string(::getpid()));
  const Cli c = mmemu_run("--inject vma:1 --trace " + trace.string() + " " + guest("hello"));
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "hello, world\n");
  std::ifstream in(trace);
  int injected = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"ev\":\"inject\"") == std::string::npos) continue;
    ++injected;
    EXPECT_EQ(line.find("execve"), std::string::npos) << line;
  }
  EXPECT_EQ(injected, 1);
  fs::remove(trace);
  // Every allocation failing: the program starts (its first fault finds no memory).
  const Cli r = mmemu_run("--inject-random 1 " + guest("hello"));
  EXPECT_EQ(r.status, 137) << r.err;
  EXPECT_NE(r.err.find("out of memory: killing pid 1000"), std::string::npos) << r.err;
}

// --inject-from load counts the initial program's load too; a failure that stops it is
// reported as the injection it was, with status 125 (never as a bad program, 126, nor as
// EFAULT).
TEST_P(RunCli, InjectedFailureDuringTheLoadIsReportedAsSuch) {
  for (const char* site : {"vma", "anon_vma", "maple_node", "pgtable"}) {
    const Cli c =
        mmemu_run(std::string("--inject-from load --inject ") + site + ":1 " + guest("hello"));
    EXPECT_EQ(c.status, 125) << site << ": " << c.err;
    EXPECT_EQ(c.out, "");
    EXPECT_NE(c.err.find(std::string("injected failure while loading it: ") + site +
                         " attempt 1 (allocation "),
              std::string::npos)
        << c.err;
    EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << c.err;
    EXPECT_EQ(c.err.find("EFAULT"), std::string::npos) << c.err;
  }
  const Cli r = mmemu_run("--inject-from load --inject-random 1 " + guest("hello"));
  EXPECT_EQ(r.status, 125) << r.err;
  // Past the load, counting goes on from it: the load's attempts count.
  const Cli late = mmemu_run("--inject-from load --inject vma:1000 " + guest("hello"));
  EXPECT_EQ(late.status, 0) << late.err;
  EXPECT_EQ(late.out, "hello, world\n");
}

// --uid/--gid: the guest runs as that user, with the capabilities Linux gives it (none for
// a user other than root).
TEST_P(RunCli, UidAndGidSetTheCredentials) {
  const Cli user = mmemu_run("--uid 1000 --gid 1000 " + guest("creds"));
  EXPECT_EQ(user.status, 0) << user.err;
  EXPECT_EQ(user.out, "not root: nothing to compare\n");
  const Cli root = mmemu_run("--uid 0 --gid 0 " + guest("creds"));
  EXPECT_EQ(root.status, 0) << root.err << root.out;
  EXPECT_NE(root.out.find("uids: 0 0 0\ngids: 0 0 0\n"), std::string::npos) << root.out;
  // The unprivileged side of RLIMIT_MEMLOCK, whoever runs the test.
  const Cli lock = mmemu_run("--uid 1000 " + guest("mlock_limit"));
  EXPECT_EQ(lock.status, 0) << lock.err << lock.out;
}

INSTANTIATE_TEST_SUITE_P(Arches, RunCli, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& pi) { return std::string(arch_name(pi.param)); });

}  // namespace
}  // namespace mmemu
