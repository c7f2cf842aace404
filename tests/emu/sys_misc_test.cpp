// Misc calls: resource limits (the mm's for MEMLOCK/AS/STACK/DATA, the descriptor table's
// for NOFILE), getrandom from the run's seed, uname per guest arch, ids and umask, rseq
// and robust-list registration, futex wait/wake (private and through shared memory), process
// groups, affinity, capabilities (the credentials' sets, and the mm's copy of what it
// checks), prctl names, sysinfo.
#include <sys/mman.h>
#include <sys/utsname.h>

#include "emu/kernel/cred.hpp"
#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

class SysMiscTest : public SysTest {
 protected:
  static constexpr vaddr_t kBuf = SysTest::kScratch + 4096;
};

constexpr std::uint64_t kInf = ~0ULL;

TEST_P(SysMiscTest, PrlimitUsesTheProcessLimitsAndTheFdTable) {
  EXPECT_EQ(call(Sys::prlimit64, 0, 8 /*MEMLOCK*/, 0, kBuf), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf), 8u << 20);
  put(kBuf, std::array<std::uint64_t, 2>{4096, 8u << 20});
  EXPECT_EQ(call(Sys::prlimit64, 0, 8, kBuf, kBuf + 16), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 16), 8u << 20);  // the old value
  EXPECT_EQ(p.rlimits[Rlim::Memlock].cur, 4096u);
  EXPECT_EQ(mm_().rlimit(Rlim::Memlock), 4096u);  // the mm reads the process's set
  // Raising the hard limit needs CAP_SYS_RESOURCE.
  put(kBuf, std::array<std::uint64_t, 2>{4096, 16u << 20});
  EXPECT_EQ(call(Sys::prlimit64, 0, 8, kBuf, 0), E(EPERM));
  p.cred.cap_effective |= cap_bit(CAP_SYS_RESOURCE);
  EXPECT_EQ(call(Sys::prlimit64, 0, 8, kBuf, 0), 0);
  put(kBuf, std::array<std::uint64_t, 2>{5, 4});
  EXPECT_EQ(call(Sys::prlimit64, 0, 8, kBuf, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::prlimit64, 0, 16, 0, kBuf), E(EINVAL));
  EXPECT_EQ(call(Sys::prlimit64, 4242, 8, 0, kBuf), E(ESRCH));
  EXPECT_EQ(call(Sys::prlimit64, 0, 8, 8, kBuf), E(EFAULT));
  // NOFILE is the descriptor table's limit.
  put(kBuf, std::array<std::uint64_t, 2>{16, 4096});
  EXPECT_EQ(call(Sys::prlimit64, 0, 7, kBuf, 0), 0);
  EXPECT_EQ(p.fds->max_fds(), 16);
  EXPECT_EQ(call(Sys::fcntl, 0, 0, 0), E(EBADF));
  EXPECT_EQ(call(Sys::pipe2, kScratch, 0), 0);
  EXPECT_EQ(call(Sys::fcntl, 0, 0 /*F_DUPFD*/, 16), E(EINVAL));
  put(kBuf, std::array<std::uint64_t, 2>{16, 2u << 20});
  EXPECT_EQ(call(Sys::prlimit64, 0, 7, kBuf, 0), E(EPERM));  // above nr_open
  // STACK, AS and DATA, which the mm reads, are in the same set.
  EXPECT_EQ(call(Sys::prlimit64, 0, 3, 0, kBuf), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf), mm_().rlimit(Rlim::Stack));
  EXPECT_EQ(call(Sys::prlimit64, 0, 9, 0, kBuf), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 8), kInf);
  if (has(Sys::getrlimit)) {
    EXPECT_EQ(call(Sys::getrlimit, 7, kBuf), 0);
    EXPECT_EQ(get<std::uint64_t>(kBuf), 16u);
    put(kBuf, std::array<std::uint64_t, 2>{1 << 20, kInf});
    EXPECT_EQ(call(Sys::setrlimit, 2 /*DATA*/, kBuf), 0);
    EXPECT_EQ(mm_().rlimit(Rlim::Data), 1u << 20);
    EXPECT_EQ(call(Sys::getrlimit, 99, kBuf), E(EINVAL));
  }
}

TEST_P(SysMiscTest, GetrandomIsDeterministicPerRun) {
  EXPECT_EQ(call(Sys::getrandom, kBuf, 32, 0), 32);
  const std::string first = bytes(kBuf, 32);
  EXPECT_NE(first, std::string(32, '\0'));
  EXPECT_EQ(call(Sys::getrandom, kBuf, 32, 0), 32);
  EXPECT_NE(bytes(kBuf, 32), first);  // the stream moves on
  // A kernel with the same seed hands out the same stream.
  Kernel k2(options(), unicorn_cpu_factory());
  Process p2(k2, 1000, 1, arch());
  p2.as = p.as;
  p2.fds = std::make_unique<FdTable>();
  SyscallContext ctx{k2, p2, Sys::getrandom, 0, {kBuf + 100, 32, 0, 0, 0, 0}, 0};
  EXPECT_EQ(table.find(Sys::getrandom)(ctx).value(), 32);
  EXPECT_EQ(bytes(kBuf + 100, 32), first);
  p2.as = nullptr;
  EXPECT_EQ(call(Sys::getrandom, kBuf, 4, 8), E(EINVAL));
  EXPECT_EQ(call(Sys::getrandom, kBuf, 4, 6), E(EINVAL));  // INSECURE | RANDOM
  EXPECT_EQ(call(Sys::getrandom, 0, 4, 0), E(EFAULT));
  EXPECT_EQ(call(Sys::getrandom, kBuf, 0, 1), 0);
  // A buffer running into a hole: the bytes before it.
  ASSERT_TRUE(do_munmap(mm_(), kScratch + 12 * 4096, 4096));
  EXPECT_EQ(call(Sys::getrandom, kScratch + 12 * 4096 - 10, 64, 0), 10);
}

TEST_P(SysMiscTest, UnameNamesTheGuestMachine) {
  EXPECT_EQ(call(Sys::uname, kBuf), 0);
  EXPECT_EQ(std::string(bytes(kBuf, 65).c_str()), "Linux");
  EXPECT_EQ(std::string(bytes(kBuf + 4 * 65, 65).c_str()),
            arch() == Arch::X86_64 ? "x86_64" : "aarch64");
  struct ::utsname host;
  ::uname(&host);
  EXPECT_EQ(std::string(bytes(kBuf + 2 * 65, 65).c_str()), host.release);
  EXPECT_EQ(call(Sys::uname, 0), E(EFAULT));
}

TEST_P(SysMiscTest, IdsAndUmask) {
  p.cred.uid = 1001;
  p.cred.euid = 1002;
  p.cred.suid = 1003;
  p.cred.gid = 2001;
  p.cred.egid = 2002;
  EXPECT_EQ(call(Sys::getuid), 1001);
  EXPECT_EQ(call(Sys::geteuid), 1002);
  EXPECT_EQ(call(Sys::getgid), 2001);
  EXPECT_EQ(call(Sys::getegid), 2002);
  EXPECT_EQ(call(Sys::getresuid, kBuf, kBuf + 4, kBuf + 8), 0);
  EXPECT_EQ(get<std::uint32_t>(kBuf), 1001u);
  EXPECT_EQ(get<std::uint32_t>(kBuf + 4), 1002u);
  EXPECT_EQ(get<std::uint32_t>(kBuf + 8), 1003u);
  EXPECT_EQ(call(Sys::umask, 0777027), 022);
  EXPECT_EQ(call(Sys::umask, 0), 027);
}

TEST_P(SysMiscTest, RobustListAndRseqRegistration) {
  EXPECT_EQ(call(Sys::set_robust_list, kBuf, 24), 0);
  EXPECT_EQ(p.areas.robust_list, kBuf);
  EXPECT_EQ(call(Sys::set_robust_list, kBuf, 23), E(EINVAL));
  EXPECT_EQ(call(Sys::get_robust_list, 0, kBuf + 64, kBuf + 72), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 64), kBuf);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 72), 24u);
  EXPECT_EQ(call(Sys::get_robust_list, 4242, kBuf + 64, kBuf + 72), E(ESRCH));
  // rseq: 32-byte aligned area of at least 32 bytes; cpu_id written at registration.
  const vaddr_t area = kBuf + 256;
  fill(area, 32, 0xff);
  EXPECT_EQ(call(Sys::rseq, area + 8, 32, 0, 0x53053053), E(EINVAL));
  EXPECT_EQ(call(Sys::rseq, area, 16, 0, 0x53053053), E(EINVAL));
  EXPECT_EQ(call(Sys::rseq, 0x30000000, 32, 0, 0x53053053), E(EFAULT));
  EXPECT_EQ(call(Sys::rseq, area, 32, 0, 0x53053053), 0);
  EXPECT_EQ(get<std::uint32_t>(area + 4), 0u);            // cpu_id
  EXPECT_EQ(get<std::uint32_t>(area + 16), 0xffffffffU);  // flags: the guest's own
  EXPECT_EQ(call(Sys::rseq, area, 32, 0, 0x53053053), E(EBUSY));
  EXPECT_EQ(call(Sys::rseq, area, 32, 0, 0x1), E(EPERM));
  EXPECT_EQ(call(Sys::rseq, area + 32, 32, 0, 0x53053053), E(EINVAL));
  EXPECT_EQ(call(Sys::rseq, area, 32, 1, 0x1), E(EPERM));
  EXPECT_EQ(call(Sys::rseq, area, 32, 1, 0x53053053), 0);
  EXPECT_EQ(p.areas.rseq_area, 0u);
  EXPECT_EQ(get<std::uint32_t>(area + 4), 0xffffffffU);         // RSEQ_CPU_ID_UNINITIALIZED
  EXPECT_EQ(call(Sys::rseq, 0, 32, 1, 0x53053053), E(EINVAL));  // nothing registered
  EXPECT_EQ(call(Sys::rseq, area, 32, 1, 0x53053053), E(EINVAL));
}

TEST_P(SysMiscTest, FutexWaitAndWake) {
  put<std::uint32_t>(kBuf, 5);
  constexpr int kWait = 128, kWake = 129;  // private
  EXPECT_EQ(call(Sys::futex, kBuf, kWait, 6, 0, 0, 0), E(EAGAIN));
  EXPECT_EQ(call(Sys::futex, kBuf + 1, kWait, 5, 0, 0, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::futex, 0x30000000, kWait, 5, 0, 0, 0), E(EFAULT));
  EXPECT_EQ(call(Sys::futex, kBuf, kWake, 1, 0, 0, 0), 0);  // nobody waits
  EXPECT_EQ(call(Sys::futex, kBuf, 5 /*WAKE_OP*/, 1, 0, 0, 0), E(ENOSYS));
  // A wait blocks on a queue of its own, restartable like Linux's -ERESTARTSYS.
  const std::array<std::uint64_t, 6> args{kBuf, kWait, 5, 0, 0, 0};
  SysResult r = raw(Sys::futex, args);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_NE(r.queue(), nullptr);
  EXPECT_EQ(r.deadline_ns(), 0u);
  EXPECT_EQ(r.restart(), Restart::IfSaRestart);
  // With a relative timeout: a deadline, and ETIMEDOUT when the retry finds no wake-up.
  put(kBuf + 16, std::array<std::int64_t, 2>{0, 1000000});
  const std::array<std::uint64_t, 6> timed{kBuf, kWait, 5, kBuf + 16, 0, 0};
  r = raw(Sys::futex, timed);
  ASSERT_EQ(r.kind(), SysResult::Kind::Block);
  EXPECT_GT(r.deadline_ns(), 0u);
  EXPECT_EQ(r.restart(), Restart::Never);
  r = raw(Sys::futex, timed, 1);
  ASSERT_TRUE(r.is_return());
  EXPECT_EQ(r.value(), E(ETIMEDOUT));
  put(kBuf + 16, std::array<std::int64_t, 2>{0, 1000000000});
  EXPECT_EQ(call(Sys::futex, kBuf, kWait, 5, kBuf + 16, 0, 0), E(EINVAL));
  // WAIT_BITSET takes an absolute time and a non-zero mask.
  EXPECT_EQ(call(Sys::futex, kBuf, 128 | 9, 5, 0, 0, 0), E(EINVAL));
  put(kBuf + 16, std::array<std::int64_t, 2>{1, 0});
  EXPECT_EQ(call(Sys::futex, kBuf, 128 | 9, 5, kBuf + 16, 0, ~0U), E(ETIMEDOUT));
  EXPECT_EQ(call(Sys::futex, kBuf, 256 | 0, 5, 0, 0, 0), E(ENOSYS));  // CLOCK_REALTIME + WAIT
}

TEST_P(SysMiscTest, ProcessGroupsAndSessions) {
  p.pgid = p.sid = 1000;  // the initial process leads both
  EXPECT_EQ(call(Sys::getpgid, 0), 1000);
  EXPECT_EQ(call(Sys::getsid, 0), 1000);
  EXPECT_EQ(call(Sys::getpgid, 4242), E(ESRCH));
  EXPECT_EQ(call(Sys::setsid), E(EPERM));         // already a group leader
  EXPECT_EQ(call(Sys::setpgid, 0, 0), E(EPERM));  // a session leader
  EXPECT_EQ(call(Sys::setpgid, 0, static_cast<std::uint64_t>(-1)), E(EINVAL));
  EXPECT_EQ(call(Sys::setpgid, 4242, 0), E(ESRCH));
  p.sid = 1;
  p.pgid = 1;
  EXPECT_EQ(call(Sys::setpgid, 0, 0), 0);  // a new group led by itself
  EXPECT_EQ(p.pgid, 1000);
  EXPECT_EQ(call(Sys::setpgid, 0, 777), E(EPERM));  // no such group in the session
  if (has(Sys::getpgrp)) {
    EXPECT_EQ(call(Sys::getpgrp), 1000);
  }
  p.pgid = 1;
  EXPECT_EQ(call(Sys::setsid), 1000);
  EXPECT_EQ(p.sid, 1000);
  EXPECT_EQ(p.pgid, 1000);
}

TEST_P(SysMiscTest, OneCpu) {
  EXPECT_EQ(call(Sys::sched_getaffinity, 0, 128, kBuf), 8);
  EXPECT_EQ(get<std::uint64_t>(kBuf), 1u);
  EXPECT_EQ(call(Sys::sched_getaffinity, 0, 7, kBuf), E(EINVAL));
  EXPECT_EQ(call(Sys::sched_getaffinity, 0, 8, 0), E(EFAULT));
  EXPECT_EQ(call(Sys::sched_getaffinity, 4242, 8, kBuf), E(ESRCH));
  put<std::uint64_t>(kBuf, 2);
  EXPECT_EQ(call(Sys::sched_setaffinity, 0, 8, kBuf), E(EINVAL));
  put<std::uint64_t>(kBuf, 3);
  EXPECT_EQ(call(Sys::sched_setaffinity, 0, 8, kBuf), 0);
  fill(kBuf, 8, 0xff);
  EXPECT_EQ(call(Sys::getcpu, kBuf, kBuf + 4, 0), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf), 0u);
}

TEST_P(SysMiscTest, CapabilitiesAreTheCredentialsSets) {
  const std::uint32_t hdr[2] = {0x20080522, 0};
  put(kBuf, hdr);
  p.cred.cap_effective = p.cred.cap_permitted = cap_bit(CAP_IPC_LOCK);
  p.cred.cap_bset = kCapValidMask;
  sync_mm_caps(p);
  EXPECT_EQ(mm_().caps, CAP_IPC_LOCK_BIT);
  EXPECT_EQ(call(Sys::capget, kBuf, kBuf + 16), 0);
  EXPECT_EQ(get<std::uint32_t>(kBuf + 16), 1U << 14);  // effective
  EXPECT_EQ(get<std::uint32_t>(kBuf + 20), 1U << 14);  // permitted
  EXPECT_EQ(get<std::uint32_t>(kBuf + 28), 0U);        // effective, second word
  // Dropping CAP_IPC_LOCK (what the mlock_limit guest does when it holds it): the mm's
  // mlock check sees it gone.
  const std::uint32_t none[6] = {};
  put(kBuf + 64, none);
  EXPECT_EQ(call(Sys::capset, kBuf, kBuf + 64), 0);
  EXPECT_EQ(mm_().caps & CAP_IPC_LOCK_BIT, 0u);
  EXPECT_EQ(p.cred.cap_permitted, 0u);
  // It cannot come back.
  std::uint32_t lock[6] = {1U << 14, 1U << 14, 0, 0, 0, 0};
  put(kBuf + 64, lock);
  EXPECT_EQ(call(Sys::capset, kBuf, kBuf + 64), E(EPERM));
  // Unknown versions: EINVAL and the preferred version written back.
  const std::uint32_t bad[2] = {1, 0};
  put(kBuf, bad);
  EXPECT_EQ(call(Sys::capget, kBuf, kBuf + 16), E(EINVAL));
  EXPECT_EQ(get<std::uint32_t>(kBuf), 0x20080522U);
  put(kBuf, bad);
  EXPECT_EQ(call(Sys::capget, kBuf, 0), 0);
  const std::uint32_t other[2] = {0x20080522, 4242};
  put(kBuf, other);
  EXPECT_EQ(call(Sys::capget, kBuf, kBuf + 16), E(ESRCH));
}

// Root's capabilities go with its uid: setuid to a user empties every set and the mm's
// copy, so mlock past RLIMIT_MEMLOCK is refused from then on.
TEST_P(SysMiscTest, SetuidFromRootDropsTheCapabilities) {
  p.cred = {};
  p.cred.cap_bset = kCapValidMask;
  cap_bprm_creds(p.cred);  // root after execve: everything
  sync_mm_caps(p);
  EXPECT_EQ(p.cred.cap_effective, kCapValidMask);
  EXPECT_EQ(mm_().caps, CAP_IPC_LOCK_BIT | CAP_SYS_RAWIO_BIT | CAP_SYS_RESOURCE_BIT);
  EXPECT_EQ(call(Sys::setresuid, 1000, 1000, 0), 0);  // saved root: permitted stays
  EXPECT_EQ(p.cred.cap_effective, 0u);
  EXPECT_EQ(p.cred.cap_permitted, kCapValidMask);
  EXPECT_EQ(mm_().caps, 0u);
  EXPECT_EQ(call(Sys::setresuid, -1, 0, -1), 0);  // back to the saved id
  EXPECT_EQ(p.cred.cap_effective, kCapValidMask);
  EXPECT_EQ(call(Sys::setuid, 1000), 0);
  EXPECT_EQ(p.cred.cap_permitted, 0u);
  EXPECT_EQ(p.cred.fsuid, 1000u);
  EXPECT_EQ(mm_().caps, 0u);
  EXPECT_EQ(call(Sys::setuid, 0), E(EPERM));
  EXPECT_EQ(call(Sys::setgroups, 0, 0), E(EPERM));
  EXPECT_EQ(call(Sys::getgroups, 0, 0), 0);
}

TEST_P(SysMiscTest, PrctlNameAndSysinfo) {
  str("a-very-long-name-indeed", 2048);
  EXPECT_EQ(call(Sys::prctl, 15 /*PR_SET_NAME*/, kScratch + 2048), 0);
  EXPECT_EQ(p.comm, "a-very-long-nam");  // 15 bytes
  EXPECT_EQ(call(Sys::prctl, 16 /*PR_GET_NAME*/, kBuf), 0);
  EXPECT_EQ(bytes(kBuf, 16), std::string("a-very-long-nam\0", 16));
  EXPECT_EQ(call(Sys::prctl, 9999), E(EINVAL));
  EXPECT_EQ(call(Sys::sysinfo, kBuf), 0);
  EXPECT_EQ(get<std::uint64_t>(kBuf + 32), 64ULL << 20);  // totalram: the emulated machine
  EXPECT_EQ(get<std::uint64_t>(kBuf + 40), k.machine().phys.nr_free() << 12);
  EXPECT_EQ(get<std::uint32_t>(kBuf + 104), 1u);
  EXPECT_EQ(call(Sys::sysinfo, 0), E(EFAULT));
  EXPECT_EQ(call(Sys::personality, 0xffffffff), 0);
}

TEST_P(SysMiscTest, ArchPrctlNeedsACpu) {
  if (!has(Sys::arch_prctl)) {
    EXPECT_FALSE(sys_number(arch(), Sys::arch_prctl).has_value());
    return;
  }
  EXPECT_EQ(call(Sys::arch_prctl, 0x1002, 1ULL << 47), E(EPERM));
  EXPECT_EQ(call(Sys::arch_prctl, 0x9999, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::arch_prctl, 0x1011, 0), 1);
  EXPECT_EQ(call(Sys::arch_prctl, 0x1002, 0x1000), E(EINVAL));  // no CPU in this fixture
}

INSTANTIATE_SYS_ARCHES(SysMiscTest);

}  // namespace
}  // namespace mmemu::test
