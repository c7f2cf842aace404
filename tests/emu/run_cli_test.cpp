// `mmemu run` as users call it: option parsing (repeatable options never swallow the
// program), a failed fork's report with the walkers at the lock-drop point for each
// recovery, the names in VMA dumps, usage errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

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

// Runs `mmemu run ARGS` with the dumps going to a file and standard error to another.
Cli mmemu_run(const std::string& args) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("mmemu-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string dump = (dir / "dump.txt").string(), err = (dir / "err.txt").string();
  const std::string cmd =
      std::string(MMEMU_BINARY) + " run --out " + dump + " " + args + " 2>" + err;
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

INSTANTIATE_TEST_SUITE_P(Arches, RunCli, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& pi) { return std::string(arch_name(pi.param)); });

}  // namespace
}  // namespace mmemu
