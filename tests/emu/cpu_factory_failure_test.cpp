// A CPU that cannot be created (the backend's engine is an allocation too): the first
// process is refused with ENOMEM and nothing is left behind; a fork whose child CPU cannot
// be created fails with ENOMEM in the parent, which goes on, and the failed child's address
// space is torn down with nothing leaked.
#include <gtest/gtest.h>

#include <sstream>

#include "emu/cpu/unicorn_cpu.hpp"
#include "emu/kernel/kernel.hpp"
#include "emu_test_util.hpp"

namespace mmemu {
namespace {

// The Unicorn factory, failing its calls number `fail_from` and later (1-based).
CpuFactory failing_factory(int fail_from, int* calls) {
  CpuFactory real = unicorn_cpu_factory();
  return [real, fail_from, calls](Arch arch, PhysMem& phys) -> Result<std::unique_ptr<Cpu>> {
    if (++*calls >= fail_from) return fail(ENOMEM);
    return real(arch, phys);
  };
}

class CpuFactoryFailure : public ::testing::TestWithParam<Arch> {};

TEST_P(CpuFactoryFailure, TheFirstProcessIsRefusedAndNothingLeaks) {
  int calls = 0;
  Kernel k(KernelOptions{}, failing_factory(1, &calls));
  std::ostringstream log;
  k.log().set_stream(&log);
  const std::string path = test::guest_path(GetParam(), "hello");
  auto p = k.spawn(path, {path}, {});
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().err, ENOMEM);
  EXPECT_EQ(p.error().message, path + ": cannot create a CPU");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(k.final_check().empty());
}

TEST_P(CpuFactoryFailure, AForkWithoutAChildCpuFailsWithEnomem) {
  int calls = 0;
  KernelOptions o;
  std::FILE* out = std::tmpfile();
  o.stdio_fds = {0, ::fileno(out), 2};
  Kernel k(o, failing_factory(3, &calls));  // the first process and its first child work
  std::ostringstream log;
  k.log().set_stream(&log);
  const std::string path = test::guest_path(GetParam(), "fork_fail");
  auto p = k.spawn(path, {path, "3"}, {});
  ASSERT_TRUE(p.has_value());
  const RunSummary s = k.run();
  const std::string printed = test::read_fd_file(out);
  std::fclose(out);
  EXPECT_EQ(s.exit_status, 0) << printed << log.str();
  EXPECT_NE(printed.find("fork 0: ok\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("fork 1: ENOMEM\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("fork 2: ENOMEM\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("forks failing other than with ENOMEM: 0"), std::string::npos);
  EXPECT_EQ(calls, 4);
  EXPECT_TRUE(s.problems.empty()) << s.problems.front();
}

INSTANTIATE_TEST_SUITE_P(Arches, CpuFactoryFailure, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& i) {
                           return i.param == Arch::X86_64 ? "x86_64" : "arm64";
                         });

}  // namespace
}  // namespace mmemu
