// Process file descriptors: the pidfd file (kind, fstat, poll masks through the process's
// life), waitid(P_PIDFD), pidfd_send_signal, pidfd_getfd, process_mrelease reaping a dying
// child's memory with the OOM reaper's walk (and refusing a live one), process_madvise, and
// injected allocation failures inside process_madvise leaving nothing behind.
#include <sys/mman.h>

#include "emu/fs/pidfd.hpp"
#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

constexpr unsigned kPollIn = 0x1, kPollHup = 0x10, kPollRdNorm = 0x40;
constexpr int kPidfdNonblockFlag = 0x800;

// A spawned parent (never run) with a forked child, both in the kernel's table.
class SysPidfdTest : public ::testing::TestWithParam<Arch> {
 protected:
  SysPidfdTest() : k(SysTest::options(), unicorn_cpu_factory()) {
    auto r = k.spawn(sys_guest_path(GetParam(), "hello"), {"hello"}, {});
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    if (!r) return;
    parent = *r;
    register_pidfd_syscalls(table);
    register_process_syscalls(table);
    auto s = sys_mmap(parent->mm(), 0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      nullptr, 0);
    EXPECT_TRUE(s.has_value());
    scratch = *s;
    auto c = k.fork_process(*parent, CloneArgs{});
    EXPECT_TRUE(c.has_value());
    child_pid = *c;
  }
  ~SysPidfdTest() override {
    if (Process* c = k.find(child_pid); c && c->state != ProcState::Zombie) k.exit_process(*c, 9);
    if (parent) k.exit_process(*parent, 0);
  }
  Process* child() { return k.find(child_pid); }
  std::int64_t call(Sys s, std::array<std::uint64_t, 6> a, Process* as = nullptr) {
    SyscallContext ctx{k, as ? *as : *parent, s, 0, a, 0};
    const SysResult r = table.find(s)(ctx);
    return r.is_return() ? r.value() : INT64_MIN;
  }
  std::int64_t open_child(int flags = 0) {
    return call(Sys::pidfd_open, {static_cast<std::uint64_t>(child_pid),
                                  static_cast<std::uint64_t>(flags), 0, 0, 0, 0});
  }
  unsigned poll_mask(std::int64_t fd, WaitQueue** wq) {
    return parent->fds->get(static_cast<int>(fd))->poll(wq);
  }
  // n private anonymous pages and one shared anonymous page, written, in the child.
  vaddr_t populate_child(int n, vaddr_t* shared) {
    Mm& mm = child()->mm();
    auto a = sys_mmap(mm, 0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      nullptr, 0);
    auto sh =
        sys_mmap(mm, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, nullptr, 0);
    EXPECT_TRUE(a.has_value() && sh.has_value());
    const std::uint64_t v = 0x5a5a;
    for (int i = 0; i < n; ++i)
      EXPECT_TRUE(copy_to_user(mm, *a + i * PAGE_SIZE, &v, sizeof v));
    EXPECT_TRUE(copy_to_user(mm, *sh, &v, sizeof v));
    *shared = *sh;
    return *a;
  }
  bool present(Mm& mm, vaddr_t a) {
    auto ref = mm.pt().lookup(a);
    return ref && mm.fmt().present(mm.pt().get(*ref));
  }
  void kill_child(int sig) {
    SigInfo i;
    i.signo = sig;
    k.send_signal(*child(), i);
  }

  Kernel k;
  Process* parent = nullptr;
  int child_pid = 0;
  SyscallTable table;
  vaddr_t scratch = 0;
};

TEST_P(SysPidfdTest, APidfdIsItsOwnFileKindWhosePollFollowsTheProcess) {
  ASSERT_NE(parent, nullptr);
  const std::int64_t fd = open_child();
  ASSERT_GE(fd, 3);
  OpenFileRef f = parent->fds->get(static_cast<int>(fd));
  EXPECT_EQ(f->kind(), "pidfd");
  EXPECT_EQ(f->path(), "anon_inode:[pidfd]");
  EXPECT_EQ(f->stat()->mode, 0700U);
  EXPECT_EQ(f->flags(), 2);  // O_RDWR
  EXPECT_TRUE(parent->fds->cloexec(static_cast<int>(fd)));
  WaitQueue* wq = nullptr;
  EXPECT_EQ(poll_mask(fd, &wq), 0U);
  EXPECT_EQ(wq, &k.pidfd_wait());
  k.exit_process(*child(), 5 << 8);
  ASSERT_EQ(child()->state, ProcState::Zombie);
  EXPECT_EQ(poll_mask(fd, &wq), kPollIn | kPollRdNorm);
  // waitid(P_PIDFD) reaps it: POLLHUP from then on.
  EXPECT_EQ(call(Sys::waitid, {3, static_cast<std::uint64_t>(fd), scratch, 4, 0, 0}), 0);
  EXPECT_EQ(child(), nullptr);
  EXPECT_EQ(poll_mask(fd, &wq), kPollIn | kPollRdNorm | kPollHup);
  std::int32_t si[8];
  ASSERT_TRUE(copy_from_user(parent->mm(), si, scratch, sizeof si));
  EXPECT_EQ(si[0], 17);         // SIGCHLD
  EXPECT_EQ(si[2], 1);          // CLD_EXITED
  EXPECT_EQ(si[4], child_pid);  // si_pid
  EXPECT_EQ(si[6], 5);          // si_status
  // Errors once it is gone, and for bad arguments.
  EXPECT_EQ(open_child(), E(ESRCH));
  EXPECT_EQ(call(Sys::waitid, {3, static_cast<std::uint64_t>(fd), scratch, 4, 0, 0}), E(ECHILD));
  EXPECT_EQ(call(Sys::pidfd_send_signal, {static_cast<std::uint64_t>(fd), 0, 0, 0, 0, 0}),
            E(ESRCH));
  EXPECT_EQ(call(Sys::pidfd_open, {static_cast<std::uint64_t>(parent->pid), 1, 0, 0, 0, 0}),
            E(EINVAL));
  EXPECT_EQ(call(Sys::pidfd_open, {0, 0, 0, 0, 0, 0}), E(EINVAL));
}

TEST_P(SysPidfdTest, WaitidOnANonblockingPidfdIsEagainWhileTheChildRuns) {
  ASSERT_NE(parent, nullptr);
  const std::int64_t fd = open_child(kPidfdNonblockFlag);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(parent->fds->get(static_cast<int>(fd))->flags(), 2 | kPidfdNonblockFlag);
  const auto ufd = static_cast<std::uint64_t>(fd);
  EXPECT_EQ(call(Sys::waitid, {3, ufd, scratch, 4, 0, 0}), E(EAGAIN));
  EXPECT_EQ(call(Sys::waitid, {3, ufd, scratch, 4 | 1 /*WNOHANG*/, 0, 0}), 0);
  const std::int64_t blocking = open_child();
  EXPECT_EQ(call(Sys::waitid, {3, static_cast<std::uint64_t>(blocking), scratch, 4, 0, 0}),
            INT64_MIN);  // sleeps on child_wait
  EXPECT_EQ(call(Sys::waitid, {3, 0 /*stdin: not a pidfd*/, scratch, 4, 0, 0}), E(EBADF));
}

TEST_P(SysPidfdTest, PidfdSendSignalQueuesSiUserFromTheCaller) {
  ASSERT_NE(parent, nullptr);
  const auto fd = static_cast<std::uint64_t>(open_child());
  EXPECT_EQ(call(Sys::pidfd_send_signal, {fd, 10 /*SIGUSR1*/, 0, 0, 0, 0}), 0);
  ASSERT_TRUE(child()->sig.is_pending(10));
  const SigInfo& i = child()->sig.info[9];
  EXPECT_EQ(i.code, kSiUser);
  EXPECT_EQ(i.pid, parent->pid);
  EXPECT_EQ(call(Sys::pidfd_send_signal, {fd, 65, 0, 0, 0, 0}), E(EINVAL));
  EXPECT_EQ(call(Sys::pidfd_send_signal, {fd, 0, 0, 3, 0, 0}), E(EINVAL));
  EXPECT_EQ(call(Sys::pidfd_send_signal, {0, 0, 0, 0, 0, 0}), E(EBADF));
  // A siginfo claiming SI_USER for another process: EPERM; a wrong si_signo: EINVAL.
  std::array<std::int32_t, 32> raw{};
  raw[0] = 12;
  raw[2] = 0;
  ASSERT_TRUE(copy_to_user(parent->mm(), scratch, raw.data(), sizeof raw));
  EXPECT_EQ(call(Sys::pidfd_send_signal, {fd, 12, scratch, 0, 0, 0}), E(EPERM));
  EXPECT_EQ(call(Sys::pidfd_send_signal, {fd, 10, scratch, 0, 0, 0}), E(EINVAL));
  EXPECT_FALSE(child()->sig.is_pending(12));
}

TEST_P(SysPidfdTest, PidfdGetfdInstallsTheChildsOpenFileCloseOnExec) {
  ASSERT_NE(parent, nullptr);
  const auto fd = static_cast<std::uint64_t>(open_child());
  OpenFileRef theirs = child()->fds->get(1);
  ASSERT_NE(theirs, nullptr);
  const std::int64_t mine = call(Sys::pidfd_getfd, {fd, 1, 0, 0, 0, 0});
  ASSERT_GE(mine, 0);
  EXPECT_EQ(parent->fds->get(static_cast<int>(mine)), theirs);  // the same struct file
  EXPECT_TRUE(parent->fds->cloexec(static_cast<int>(mine)));
  EXPECT_EQ(call(Sys::pidfd_getfd, {fd, 999, 0, 0, 0, 0}), E(EBADF));
  EXPECT_EQ(call(Sys::pidfd_getfd, {fd, 1, 1, 0, 0, 0}), E(EINVAL));
  EXPECT_EQ(call(Sys::pidfd_getfd, {1, 1, 0, 0, 0, 0}), E(EBADF));
  k.exit_process(*child(), 9);
  EXPECT_EQ(call(Sys::pidfd_getfd, {fd, 1, 0, 0, 0, 0}), E(ESRCH));  // a zombie has no task
}

TEST_P(SysPidfdTest, ProcessMreleaseReapsAKilledChildLikeTheOomReaper) {
  ASSERT_NE(parent, nullptr);
  vaddr_t shared = 0;
  const vaddr_t priv = populate_child(8, &shared);
  Mm& mm = child()->mm();
  const std::int64_t anon = mm.rss[MM_ANONPAGES], file = mm.rss[MM_FILEPAGES],
                     shmem = mm.rss[MM_SHMEMPAGES];
  EXPECT_GE(anon, 8);
  EXPECT_EQ(shmem, 1);
  const auto fd = static_cast<std::uint64_t>(open_child());
  // Alive and not dying: EINVAL, nothing touched.
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 0, 0, 0, 0, 0}), E(EINVAL));
  EXPECT_EQ(mm.rss[MM_ANONPAGES], anon);
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 1, 0, 0, 0, 0}), E(EINVAL));
  kill_child(9);
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 0, 0, 0, 0, 0}), 0);
  // Every private page is gone (anonymous and private file pages), the shared one stays.
  EXPECT_EQ(mm.rss[MM_ANONPAGES], 0);
  EXPECT_EQ(mm.rss[MM_FILEPAGES], 0);
  EXPECT_EQ(mm.rss[MM_SHMEMPAGES], 1);
  for (int i = 0; i < 8; ++i)
    EXPECT_FALSE(present(mm, priv + i * PAGE_SIZE)) << i;
  EXPECT_TRUE(present(mm, shared));
  EXPECT_EQ(mm.flags & (MMF_OOM_SKIP | MMF_UNSTABLE), MMF_OOM_SKIP | MMF_UNSTABLE);
  EXPECT_EQ(k.stats().get("process_mrelease"), 1U);
  EXPECT_EQ(k.stats().get("process_mrelease_pages"), static_cast<std::uint64_t>(anon + file));
  // Again: MMF_OOM_SKIP, the work is done, 0 and nothing more counted.
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 0, 0, 0, 0, 0}), 0);
  EXPECT_EQ(k.stats().get("process_mrelease_pages"), static_cast<std::uint64_t>(anon + file));
  k.exit_process(*child(), 9);
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 0, 0, 0, 0, 0}), E(ESRCH));
}

TEST_P(SysPidfdTest, AFatalSignalOtherThanSigkillMakesItDyingUnlessCaughtOrBlocked) {
  ASSERT_NE(parent, nullptr);
  vaddr_t shared = 0;
  populate_child(2, &shared);
  const auto fd = static_cast<std::uint64_t>(open_child());
  child()->sig.blocked |= sig_bit(15);
  kill_child(15);
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 0, 0, 0, 0, 0}), E(EINVAL));
  child()->sig.blocked &= ~sig_bit(15);
  EXPECT_EQ(call(Sys::process_mrelease, {fd, 0, 0, 0, 0, 0}), 0);
  EXPECT_EQ(child()->mm().rss[MM_ANONPAGES], 0);
}

TEST_P(SysPidfdTest, ProcessMadviseAdvisesAnotherProcessOnlyWithRemoteAdvice) {
  ASSERT_NE(parent, nullptr);
  vaddr_t shared = 0;
  const vaddr_t priv = populate_child(4, &shared);
  const auto fd = static_cast<std::uint64_t>(open_child());
  const std::uint64_t iov[4] = {priv, PAGE_SIZE, priv + 2 * PAGE_SIZE, 2 * PAGE_SIZE};
  ASSERT_TRUE(copy_to_user(parent->mm(), scratch, iov, sizeof iov));
  EXPECT_EQ(call(Sys::process_madvise, {fd, scratch, 2, MADV_COLD, 0, 0}), 3 * 4096);
  EXPECT_EQ(call(Sys::process_madvise, {fd, scratch, 2, MADV_DONTNEED, 0, 0}), E(EINVAL));
  EXPECT_EQ(child()->mm().rss[MM_ANONPAGES] >= 4, true);
  EXPECT_EQ(call(Sys::process_madvise, {fd, scratch, 1025, MADV_COLD, 0, 0}), E(EINVAL));
  EXPECT_EQ(call(Sys::process_madvise, {fd, 8, 2, MADV_COLD, 0, 0}), E(EFAULT));
  EXPECT_EQ(call(Sys::process_madvise, {fd, scratch, 2, MADV_COLD, 1, 0}), E(EINVAL));
  // Without CAP_SYS_NICE another process may not be advised.
  parent->cred.cap_effective = 0;
  EXPECT_EQ(call(Sys::process_madvise, {fd, scratch, 2, MADV_COLD, 0, 0}), E(EPERM));
}

TEST_P(SysPidfdTest, InjectedFailuresInsideProcessMadviseLeaveNothingBehind) {
  ASSERT_NE(parent, nullptr);
  // MADV_POPULATE_WRITE on itself (any advice is allowed for oneself since 6.13) allocates
  // page tables and pages: fail each and check the address space.
  // Far from everything else, so that its page tables are new too.
  auto a = sys_mmap(parent->mm(), 0x200000000, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  ASSERT_TRUE(a.has_value());
  const auto self = static_cast<std::uint64_t>(
      call(Sys::pidfd_open, {static_cast<std::uint64_t>(parent->pid), 0, 0, 0, 0, 0}));
  const std::uint64_t iov[2] = {*a, 4 * PAGE_SIZE};
  ASSERT_TRUE(copy_to_user(parent->mm(), scratch, iov, sizeof iov));
  const std::int64_t rss = parent->mm().rss[MM_ANONPAGES];
  for (AllocSite site : {AllocSite::PgTable, AllocSite::Page}) {
    k.machine().inject.fail_nth(site, 1);
    const std::int64_t r = call(Sys::process_madvise, {self, scratch, 1, 23, 0, 0});
    k.machine().inject.disarm();
    EXPECT_EQ(r, E(ENOMEM)) << site_name(site);
  }
  EXPECT_LE(parent->mm().rss[MM_ANONPAGES], rss + 4);
  EXPECT_EQ(call(Sys::process_madvise, {self, scratch, 1, 23 /*MADV_POPULATE_WRITE*/, 0, 0}),
            4 * 4096);
  EXPECT_EQ(parent->mm().rss[MM_ANONPAGES], rss + 4);
  // Every process gone: the run's leak check finds nothing.
  k.exit_process(*child(), 9);
  k.exit_process(*parent, 0);
  parent = nullptr;
  EXPECT_EQ(k.final_check(), std::vector<std::string>{});
}

INSTANTIATE_SYS_ARCHES(SysPidfdTest);

}  // namespace
}  // namespace mmemu::test
