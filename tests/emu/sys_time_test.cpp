// Time calls: host wall/monotonic clocks, emulated CPU-time clocks (one ns per guest
// instruction), resolutions, sleeps as deadlines, and their errnos (measured natively).
#include <time.h>

#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

class SysTimeTest : public SysTest {
 protected:
  static constexpr vaddr_t kBuf = SysTest::kScratch + 4096;
  std::int64_t ns_at(vaddr_t a) {
    return get<std::int64_t>(a) * 1000000000LL + get<std::int64_t>(a + 8);
  }
};

TEST_P(SysTimeTest, MonotonicAndRealtimeComeFromTheHost) {
  timespec before;
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  EXPECT_EQ(call(Sys::clock_gettime, CLOCK_MONOTONIC, kBuf), 0);
  timespec after;
  ::clock_gettime(CLOCK_MONOTONIC, &after);
  const std::int64_t got = ns_at(kBuf);
  EXPECT_GE(got, before.tv_sec * 1000000000LL + before.tv_nsec);
  EXPECT_LE(got, after.tv_sec * 1000000000LL + after.tv_nsec);
  EXPECT_EQ(call(Sys::clock_gettime, CLOCK_REALTIME, kBuf), 0);
  EXPECT_NEAR(static_cast<double>(get<std::int64_t>(kBuf)), static_cast<double>(::time(nullptr)),
              2.0);
  EXPECT_EQ(call(Sys::clock_gettime, 10, kBuf), E(EINVAL));
  EXPECT_EQ(call(Sys::clock_gettime, 12, kBuf), E(EINVAL));
  EXPECT_EQ(call(Sys::clock_gettime, CLOCK_MONOTONIC, 0), E(EFAULT));
}

TEST_P(SysTimeTest, CpuClocksCountGuestInstructions) {
  p.instructions = 2500000123ULL;
  EXPECT_EQ(call(Sys::clock_gettime, CLOCK_PROCESS_CPUTIME_ID, kBuf), 0);
  EXPECT_EQ(get<std::int64_t>(kBuf), 2);
  EXPECT_EQ(get<std::int64_t>(kBuf + 8), 500000123);
  EXPECT_EQ(call(Sys::clock_gettime, CLOCK_THREAD_CPUTIME_ID, kBuf), 0);
  EXPECT_EQ(ns_at(kBuf), 2500000123LL);
  // clock_getcpuclockid(0) form: ~0 << 3 | CPUCLOCK_SCHED.
  EXPECT_EQ(call(Sys::clock_gettime, static_cast<std::uint64_t>(-6), kBuf), 0);
  EXPECT_EQ(ns_at(kBuf), 2500000123LL);
  EXPECT_EQ(call(Sys::clock_gettime, static_cast<std::uint64_t>(-1), kBuf), E(EINVAL));
  // Another pid that does not exist.
  EXPECT_EQ(call(Sys::clock_gettime, static_cast<std::uint64_t>((~4242 << 3) | 2), kBuf),
            E(EINVAL));
  EXPECT_EQ(call(Sys::times, kBuf), call(Sys::times, 0));
  EXPECT_EQ(get<std::int64_t>(kBuf), 250);  // 2.5 s in USER_HZ ticks
}

TEST_P(SysTimeTest, Resolutions) {
  EXPECT_EQ(call(Sys::clock_getres, CLOCK_MONOTONIC, kBuf), 0);
  EXPECT_EQ(ns_at(kBuf), 1);
  EXPECT_EQ(call(Sys::clock_getres, CLOCK_MONOTONIC_COARSE, kBuf), 0);
  timespec host;
  ::clock_getres(CLOCK_MONOTONIC_COARSE, &host);
  EXPECT_EQ(ns_at(kBuf), host.tv_nsec);
  EXPECT_EQ(call(Sys::clock_getres, CLOCK_PROCESS_CPUTIME_ID, kBuf), 0);
  EXPECT_EQ(ns_at(kBuf), 1);
  EXPECT_EQ(call(Sys::clock_getres, static_cast<std::uint64_t>(-3), kBuf), 0);  // thread VIRT
  EXPECT_EQ(ns_at(kBuf), 4000000);
  EXPECT_EQ(call(Sys::clock_getres, CLOCK_MONOTONIC, 0), 0);
  EXPECT_EQ(call(Sys::clock_getres, 10, kBuf), E(EINVAL));
}

TEST_P(SysTimeTest, GettimeofdayAndTime) {
  EXPECT_EQ(call(Sys::gettimeofday, kBuf, kBuf + 16), 0);
  EXPECT_NEAR(static_cast<double>(get<std::int64_t>(kBuf)), static_cast<double>(::time(nullptr)),
              2.0);
  EXPECT_LT(get<std::int64_t>(kBuf + 8), 1000000);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 16), 0u);  // tz: UTC, no DST
  EXPECT_EQ(call(Sys::gettimeofday, 0, 0), 0);
  EXPECT_EQ(call(Sys::gettimeofday, 8, 0), E(EFAULT));
  if (has(Sys::time)) {
    const std::int64_t t = call(Sys::time, kBuf);
    EXPECT_EQ(get<std::int64_t>(kBuf), t);
    EXPECT_GT(call(Sys::time, 0), 0);
    EXPECT_EQ(call(Sys::time, 8), E(EFAULT));
  }
}

TEST_P(SysTimeTest, NanosleepBlocksUntilADeadline) {
  put(kBuf, std::array<std::int64_t, 2>{0, 50000000});
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const SysResult r = raw(Sys::nanosleep, {kBuf, 0, 0, 0, 0, 0});
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_EQ(r.queue(), nullptr);
  EXPECT_EQ(r.restart(), Restart::Never);
  const std::uint64_t start = static_cast<std::uint64_t>(now.tv_sec) * 1000000000ULL +
                              static_cast<std::uint64_t>(now.tv_nsec);
  EXPECT_GE(r.deadline_ns(), start + 50000000);
  EXPECT_LT(r.deadline_ns(), start + 50000000 + 1000000000);
  // Woken at the deadline: done.
  const SysResult again = raw(Sys::nanosleep, {kBuf, 0, 0, 0, 0, 0}, 1);
  EXPECT_TRUE(again.is_return());
  EXPECT_EQ(again.value(), 0);
  // Errors.
  put(kBuf, std::array<std::int64_t, 2>{0, 1000000000});
  EXPECT_EQ(call(Sys::nanosleep, kBuf, 0), E(EINVAL));
  put(kBuf, std::array<std::int64_t, 2>{-1, 0});
  EXPECT_EQ(call(Sys::nanosleep, kBuf, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::nanosleep, 0, 0), E(EFAULT));
  put(kBuf, std::array<std::int64_t, 2>{0, 0});
  EXPECT_EQ(call(Sys::nanosleep, kBuf, 0), 0);  // nothing to wait for
}

TEST_P(SysTimeTest, ClockNanosleepClocksAndAbsoluteTimes) {
  put(kBuf, std::array<std::int64_t, 2>{0, 0});
  EXPECT_EQ(call(Sys::clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, kBuf, 0), E(EOPNOTSUPP));
  EXPECT_EQ(call(Sys::clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, kBuf, 0), 0);
  EXPECT_EQ(call(Sys::clock_nanosleep, 10, 0, kBuf, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::clock_nanosleep, CLOCK_MONOTONIC, 2, kBuf, 0), 0);  // unknown flags ignored
  // An absolute time in the past returns at once; one in the future blocks.
  put(kBuf, std::array<std::int64_t, 2>{1, 0});
  EXPECT_EQ(call(Sys::clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, kBuf, 0), 0);
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  put(kBuf, std::array<std::int64_t, 2>{now.tv_sec + 5, 0});
  EXPECT_EQ(call(Sys::clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, kBuf, 0), kBlocked);
}

INSTANTIATE_SYS_ARCHES(SysTimeTest);

}  // namespace
}  // namespace mmemu::test
