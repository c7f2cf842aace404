// The system-call table: one handler per call. A second registration is refused and listed
// in duplicates(), and the table every kernel uses (make_syscall_table) has none and serves
// the core calls.
#include <gtest/gtest.h>

#include <vector>

#include "emu/syscalls/syscall.hpp"

namespace mmemu::test {
namespace {

SysResult first_handler(SyscallContext&) {
  return SysResult::ok(1);
}
SysResult second_handler(SyscallContext&) {
  return SysResult::ok(2);
}

TEST(SyscallTable, SecondRegistrationIsRefusedAndListed) {
  SyscallTable t;
  EXPECT_EQ(t.find(Sys::read), nullptr);
  EXPECT_TRUE(t.add(Sys::read, first_handler));
  EXPECT_TRUE(t.add(Sys::write, first_handler));  // one handler may serve several calls
  EXPECT_TRUE(t.duplicates().empty());

  EXPECT_FALSE(t.add(Sys::read, second_handler));
  EXPECT_EQ(t.find(Sys::read), &first_handler);  // the first handler stays
  EXPECT_EQ(t.duplicates(), std::vector<Sys>{Sys::read});
  EXPECT_EQ(t.size(), 2U);

  EXPECT_FALSE(t.add(Sys::read, first_handler));  // the same handler again is refused too
  EXPECT_EQ(t.duplicates(), (std::vector<Sys>{Sys::read, Sys::read}));
}

TEST(SyscallTable, GroupRegisteredTwiceListsEachOfItsCalls) {
  SyscallTable once;
  register_time_syscalls(once);
  ASSERT_GT(once.size(), 0U);
  ASSERT_TRUE(once.duplicates().empty());

  SyscallTable twice;
  register_time_syscalls(twice);
  register_time_syscalls(twice);
  EXPECT_EQ(twice.size(), once.size());
  EXPECT_EQ(twice.duplicates().size(), once.size());
  for (Sys s : twice.duplicates()) {
    SCOPED_TRACE(sys_name(s));
    EXPECT_NE(once.find(s), nullptr);
    EXPECT_EQ(twice.find(s), once.find(s));
  }
}

TEST(SyscallTable, MadeTableHasNoDuplicatesAndServesTheCoreCalls) {
  const auto t = make_syscall_table();
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->duplicates().empty());
  for (Sys s : {Sys::read, Sys::write, Sys::openat, Sys::close, Sys::mmap, Sys::munmap,
                Sys::mprotect, Sys::brk, Sys::clone, Sys::fork, Sys::execve, Sys::exit_group,
                Sys::wait4, Sys::rt_sigaction, Sys::mmemu_dump}) {
    SCOPED_TRACE(sys_name(s));
    EXPECT_NE(t->find(s), nullptr);
  }
}

}  // namespace
}  // namespace mmemu::test
