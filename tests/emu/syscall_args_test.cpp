// The trace's system-call arguments (emu/syscalls/syscall_args.hpp): every implemented call
// has a row, values are rendered by kind, and strings are read without faulting anything in.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <nlohmann/json.hpp>

#include "emu/syscalls/syscall.hpp"
#include "emu/syscalls/syscall_args.hpp"
#include "vma/mm_test_util.hpp"

namespace mmemu {
namespace {

using json = nlohmann::json;

TEST(SyscallArgs, EveryImplementedCallHasARow) {
  const auto table = make_syscall_table();
  std::size_t implemented = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(Sys::kCount); ++i) {
    const Sys s = static_cast<Sys>(i);
    if (!table->find(s)) continue;
    ++implemented;
    EXPECT_TRUE(sys_arg_spec(s).known) << sys_name(s) << " has no argument row";
    EXPECT_LE(sys_arg_spec(s).count, 6U) << sys_name(s);
  }
  EXPECT_EQ(implemented, table->size());
  EXPECT_EQ(sys_arg_spec(Sys::mmap).count, 6U);
  EXPECT_TRUE(sys_arg_spec(Sys::mremap).ret_addr);
  EXPECT_TRUE(sys_arg_spec(Sys::shmat).ret_addr);
  EXPECT_TRUE(sys_arg_spec(Sys::brk).ret_addr);
  EXPECT_FALSE(sys_arg_spec(Sys::munmap).ret_addr);
  EXPECT_FALSE(sys_arg_spec(Sys::io_setup).known);  // not implemented: no row needed
}

TEST(SyscallArgs, ValuesByKind) {
  EXPECT_EQ(sys_args_json(Sys::mmap, {0, 8192, 3, 0x22, ~0ULL, 0}, nullptr),
            json::parse(R"(["0x0", 8192, "0x3", "0x22", -1, 0])"));
  // openat without an mm: the path is its address.
  EXPECT_EQ(
      sys_args_json(Sys::openat, {static_cast<std::uint64_t>(-100), 0x4a1000, 0x80000, 0}, nullptr),
      json::parse(R"([-100, "0x4a1000", "0x80000", "0x0"])"));
  EXPECT_EQ(sys_args_json(Sys::lseek, {3, static_cast<std::uint64_t>(-8), 2, 9, 9, 9}, nullptr),
            json::parse(R"([3, -8, 2])"));
  EXPECT_EQ(sys_args_json(Sys::getpid, {1, 2, 3, 4, 5, 6}, nullptr), json::array());
  EXPECT_EQ(sys_ret_json(Sys::mmap, 0x7ffff7ff0000), "0x7ffff7ff0000");
  EXPECT_EQ(sys_ret_json(Sys::mmap, -12), -12);  // an error stays a number
  EXPECT_EQ(sys_ret_json(Sys::read, 5), 5);
}

class PeekString : public ::testing::TestWithParam<Arch> {};

TEST_P(PeekString, ReadsWhatIsMappedAndFaultsNothingIn) {
  test::MmFixture f(GetParam());
  const vaddr_t a = f.map_anon(3 * PAGE_SIZE);
  // "ab" at the end of page 0, "c\x01\0" at the start of page 1: one string over two pages.
  ASSERT_TRUE(copy_to_user(*f.mm, a + PAGE_SIZE - 2, "abc\x01", 5).has_value());
  const std::int64_t rss = f.mm->rss[MM_ANONPAGES];
  EXPECT_EQ(rss, 2);
  EXPECT_EQ(sys_args_json(Sys::unlink, {a + PAGE_SIZE - 2}, f.mm.get()),
            json::parse(R"([{"addr": ")" + fmt::format("{:#x}", a + PAGE_SIZE - 2) +
                        R"(", "str": "abc\\x01"}])"));
  // Page 2 was never touched: the string is not read, and the page stays unmapped.
  const vaddr_t untouched = a + 2 * PAGE_SIZE;
  EXPECT_EQ(sys_args_json(Sys::unlink, {untouched}, f.mm.get()),
            json::array({fmt::format("{:#x}", untouched)}));
  const auto ref = f.mm->pt().lookup(untouched);
  EXPECT_FALSE(ref && f.mm->fmt().present(f.mm->pt().get(*ref)));
  EXPECT_EQ(f.mm->rss[MM_ANONPAGES], rss);
  // Nowhere mapped, and NULL.
  EXPECT_EQ(sys_args_json(Sys::unlink, {0x10000}, f.mm.get()), json::array({"0x10000"}));
  EXPECT_EQ(sys_args_json(Sys::unlink, {0}, f.mm.get()), json::array({"0x0"}));
  // Longer than kTraceStringMax: cut there.
  const std::string longer(kTraceStringMax + 10, 'x');
  ASSERT_TRUE(copy_to_user(*f.mm, a, longer.c_str(), longer.size() + 1).has_value());
  const json j = sys_args_json(Sys::unlink, {a}, f.mm.get());
  EXPECT_EQ(j[0]["str"], std::string(kTraceStringMax, 'x'));
  EXPECT_EQ(j[0]["truncated"], true);
  EXPECT_EQ(f.problems(), "");
}

INSTANTIATE_TEST_SUITE_P(Arches, PeekString, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         test::arch_test_name);

}  // namespace
}  // namespace mmemu
