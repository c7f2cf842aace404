// The plain-Unicorn runner of the benchmarks (emu/cpu/flat_unicorn.hpp): a program that
// writes to fd 1 and exits with its argc, as one read-execute segment.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "emu/cpu/flat_unicorn.hpp"

namespace mmemu::test {
namespace {

// write(1, "hi\n", 3); exit_group(argc). Eight instructions, then the message.
const std::vector<std::uint8_t> kX86Hello = {
    0xb8, 0x01, 0x00, 0x00, 0x00,              // +0   mov eax,0x1
    0xbf, 0x01, 0x00, 0x00, 0x00,              // +5   mov edi,0x1
    0x48, 0x8d, 0x35, 0x12, 0x00, 0x00, 0x00,  // +10  lea rsi,[rip+0x12]  (+35: msg)
    0xba, 0x03, 0x00, 0x00, 0x00,              // +17  mov edx,0x3
    0x0f, 0x05,                                // +22  syscall
    0xb8, 0xe7, 0x00, 0x00, 0x00,              // +24  mov eax,0xe7
    0x48, 0x8b, 0x3c, 0x24,                    // +29  mov rdi,QWORD PTR [rsp]
    0x0f, 0x05,                                // +33  syscall
    'h',  'i',  '\n',                          // +35  msg
};
const std::vector<std::uint8_t> kArmHello = {
    0x08, 0x08, 0x80, 0xd2,  // +0   mov x8, #0x40
    0x20, 0x00, 0x80, 0xd2,  // +4   mov x0, #0x1
    0xc1, 0x00, 0x00, 0x10,  // +8   adr x1, +32 (msg)
    0x62, 0x00, 0x80, 0xd2,  // +12  mov x2, #0x3
    0x01, 0x00, 0x00, 0xd4,  // +16  svc #0x0
    0xc8, 0x0b, 0x80, 0xd2,  // +20  mov x8, #0x5e
    0xe0, 0x03, 0x40, 0xf9,  // +24  ldr x0, [sp]
    0x01, 0x00, 0x00, 0xd4,  // +28  svc #0x0
    'h',  'i',  '\n', 0,     // +32  msg
};

constexpr std::uint64_t kCode = 0x400000;

FlatProgram hello(Arch arch) {
  const std::vector<std::uint8_t>& code = arch == Arch::X86_64 ? kX86Hello : kArmHello;
  return {arch, kCode, {{kCode, code.size(), PERM_RX, code}}, {"hello", "a", "b"}};
}

class FlatUnicornTest : public ::testing::TestWithParam<Arch> {};

TEST_P(FlatUnicornTest, RunsUntilExit) {
  const FlatRunResult r = run_flat_unicorn(hello(GetParam()), {.code_hook = true});
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.status, 3);  // argc
  EXPECT_EQ(r.insns, 8U);
}

TEST_P(FlatUnicornTest, WithoutCodeHookCountsNothing) {
  const FlatRunResult r = run_flat_unicorn(hello(GetParam()));
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.insns, 0U);
}

TEST_P(FlatUnicornTest, StopsAfterMaxInsns) {
  const FlatRunResult r = run_flat_unicorn(hello(GetParam()), {.code_hook = true, .max_insns = 4});
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(r.exited);
  EXPECT_EQ(r.status, -1);
  EXPECT_EQ(r.insns, 4U);
}

TEST_P(FlatUnicornTest, EntryOutsideTheSegmentsIsAnError) {
  FlatProgram p = hello(GetParam());
  p.entry = 0x800000;
  const FlatRunResult r = run_flat_unicorn(p);
  EXPECT_NE(r.error, "");
  EXPECT_FALSE(r.exited);
}

INSTANTIATE_TEST_SUITE_P(Arches, FlatUnicornTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const ::testing::TestParamInfo<Arch>& p) {
                           return std::string(arch_name(p.param));
                         });

}  // namespace
}  // namespace mmemu::test
