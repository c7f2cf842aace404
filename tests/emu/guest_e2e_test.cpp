// End to end: every guest program on both architectures under mmemu, compared with the
// x86_64 build running natively on the host kernel (the reference for both: memory
// semantics do not depend on the architecture). Exceptions are listed per guest, only
// where mmemu legitimately differs from the host.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "emu_test_util.hpp"

namespace mmemu {
namespace {

using test::GuestRun;
using test::NativeRun;

struct Case {
  std::string name;
  Arch arch;
};

// Guests about one architecture only: their other build just says so.
bool x86_64_only(const std::string& name) {
  return name == "vsyscall";
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (const auto& n : test::guest_names())
    for (Arch a : {Arch::X86_64, Arch::Arm64})
      if (a == Arch::X86_64 || !x86_64_only(n)) v.push_back({n, a});
  return v;
}

// maps: which special mappings exist depends on the runner (mmemu has no vDSO, and the
// host may show [vvar_vclock]); the executable's own mappings depend on the build's ELF
// layout. Those lines are compared against mmemu's own expectations instead.
bool maps_runner_line(const std::string& l) {
  return l.starts_with("special ") || l.starts_with("baseline ");
}

void expect_clean(const GuestRun& r) {
  EXPECT_TRUE(r.spawn_error.empty()) << r.spawn_error;
  EXPECT_TRUE(r.summary.problems.empty()) << fmt::format("{}", fmt::join(r.summary.problems, "\n"));
  EXPECT_EQ(r.log.find("invariant broken"), std::string::npos) << r.log;
}

class GuestE2E : public ::testing::TestWithParam<Case> {};

TEST_P(GuestE2E, MatchesTheHostKernel) {
  const Case& c = GetParam();
  const NativeRun native = test::run_native(c.name, {});
  ASSERT_EQ(native.status, 0) << "the native run itself fails:\n" << native.out;
  const GuestRun r = test::run_guest(c.arch, c.name, {});
  expect_clean(r);
  std::string want = native.out, got = r.out;
  if (c.name == "maps") {
    want = test::filter_lines(want, maps_runner_line);
    got = test::filter_lines(got, maps_runner_line);
    const bool x86 = c.arch == Arch::X86_64;
    const std::string specials =
        test::filter_lines(r.out, [](const std::string& l) { return !l.starts_with("special "); });
    EXPECT_EQ(specials, fmt::format("special [heap]: yes\nspecial [stack]: yes\n"
                                    "special [vdso]: no\nspecial [vvar]: no\n"
                                    "special [vsyscall]: {}\n",
                                    x86 ? "yes" : "no"));
  }
  EXPECT_EQ(got, want) << "stderr:\n" << r.err << "\nmmemu log:\n" << r.log;
  EXPECT_EQ(r.status, native.status) << r.err << r.log;
}

INSTANTIATE_TEST_SUITE_P(Guests, GuestE2E, ::testing::ValuesIn(all_cases()), [](const auto& pi) {
  return pi.param.name + "_" + std::string(arch_name(pi.param.arch));
});

// The same guests with every invariant checked after every mm operation and fault.
class GuestChecked : public ::testing::TestWithParam<Case> {};

TEST_P(GuestChecked, NoInvariantBreaks) {
  const Case& c = GetParam();
  test::RunOptions o;
  o.kernel.check = true;
  const GuestRun r = test::run_guest(c.arch, c.name, {}, o);
  expect_clean(r);
  EXPECT_EQ(r.status, 0) << r.out << r.err << r.log;
}

INSTANTIATE_TEST_SUITE_P(
    Guests, GuestChecked,
    ::testing::Values(Case{"cow", Arch::X86_64}, Case{"cow", Arch::Arm64},
                      Case{"fork_fail", Arch::X86_64}, Case{"fork_fail", Arch::Arm64},
                      Case{"mremap", Arch::X86_64}, Case{"madv_dontneed", Arch::Arm64},
                      Case{"signals", Arch::X86_64}, Case{"signals", Arch::Arm64}),
    [](const auto& pi) { return pi.param.name + "_" + std::string(arch_name(pi.param.arch)); });

// The vsyscall guest in the two modes the host does not run (it runs Linux's default,
// xonly, compared above): emulate differs from the native run only where the page is
// readable; none has no page at all, so every call is a plain fault. The guest checks each
// mode's semantics itself (exit 0).
std::string replace_line(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from + "\n");
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(GuestVsyscall, EmulateModeIsTheNativeRunWithAReadablePage) {
  const NativeRun native = test::run_native("vsyscall", {});
  ASSERT_EQ(native.status, 0) << native.out;
  test::RunOptions o;
  o.kernel.vsyscall = VsyscallMode::Emulate;
  o.kernel.check = true;
  const GuestRun r = test::run_guest(Arch::X86_64, "vsyscall", {}, o);
  expect_clean(r);
  std::string want = native.out;
  want = replace_line(want, "vsyscall mode: xonly", "vsyscall mode: emulate");
  want = replace_line(want,
                      "maps line: ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0      "
                      "            [vsyscall]",
                      "maps line: ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0      "
                      "            [vsyscall]");
  want = replace_line(want, "read the page: SEGV_MAPERR",
                      "read the page: ok\nthe gettimeofday entry's code: yes\n"
                      "padding is int3: yes");
  want = replace_line(want, "read the page at +0x800: SEGV_MAPERR", "read the page at +0x800: ok");
  EXPECT_EQ(r.out, want) << r.err << r.log;
  EXPECT_EQ(r.status, 0) << r.err << r.log;
}

TEST(GuestVsyscall, NoneModeHasNoPage) {
  test::RunOptions o;
  o.kernel.vsyscall = VsyscallMode::None;
  const GuestRun r = test::run_guest(Arch::X86_64, "vsyscall", {}, o);
  expect_clean(r);
  EXPECT_EQ(r.out,
            "vsyscall mode: none\n"
            "gettimeofday entry: SEGV_MAPERR, si_addr the entry\n"
            "time entry: SEGV_MAPERR, si_addr the entry\n"
            "getcpu entry: SEGV_MAPERR, si_addr the entry\n"
            "call entry +0x10: SEGV_MAPERR, si_addr the entry\n"
            "call entry +0xc00: SEGV_MAPERR, si_addr the entry\n"
            "call entry +0x401: SEGV_MAPERR, si_addr the entry\n"
            "read the page: SEGV_MAPERR\n"
            "read the page at +0x800: SEGV_MAPERR\n"
            "write the page: SEGV_MAPERR\n"
            "write(2) from the page: EFAULT\n")
      << r.err << r.log;
  EXPECT_EQ(r.status, 0) << r.err << r.log;
}

TEST(GuestRun, MissingProgramIs127AndNamesTheFile) {
  const GuestRun r = test::run_path("/nonexistent/mmemu-guest", {});
  EXPECT_EQ(r.status, 127);
  EXPECT_NE(r.spawn_error.find("/nonexistent/mmemu-guest"), std::string::npos) << r.spawn_error;
  EXPECT_TRUE(r.out.empty());
}

TEST(GuestRun, MalformedElfIs126WithTheReason) {
  const std::string path = testing::TempDir() + "/mmemu-not-elf";
  {
    std::ofstream f(path);
    f << "echo neither an ELF nor a #! script\n";
  }
  ::chmod(path.c_str(), 0755);
  const GuestRun r = test::run_path(path, {});
  EXPECT_EQ(r.status, 126);
  EXPECT_NE(r.spawn_error.find("ELF"), std::string::npos) << r.spawn_error;
}

TEST(GuestRun, DirectoryIs126) {
  const GuestRun r = test::run_path("/", {});
  EXPECT_EQ(r.status, 126);
}

TEST(GuestRun, KilledGuestGives128PlusTheSignal) {
  KernelOptions o;
  Kernel k(o, unicorn_cpu_factory());
  std::ostringstream log;
  k.log().set_stream(&log);
  const std::string path = test::guest_path(Arch::X86_64, "hello");
  auto p = k.spawn(path, {path}, {});
  ASSERT_TRUE(p.has_value());
  SigInfo term;
  term.signo = 15;
  k.send_signal(**p, term);
  const RunSummary s = k.run();
  EXPECT_EQ(s.wait_status, 15);
  EXPECT_EQ(s.exit_status, 128 + 15);
  EXPECT_TRUE(s.problems.empty());
}

TEST(GuestRun, ArgumentsAndEnvironmentReachTheGuest) {
  // execve runs itself with arguments and an environment; its own checks cover both.
  const GuestRun r = test::run_guest(Arch::Arm64, "execve", {});
  EXPECT_NE(r.out.find("environment passed: passed"), std::string::npos) << r.out << r.log;
}

}  // namespace
}  // namespace mmemu
