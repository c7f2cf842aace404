// Signals sent to the mmemu process (emu/kernel/host_signals.hpp): they reach the guest's
// foreground process group as a terminal's would (SI_KERNEL, no sender), they end host
// waits (a read of standard input, the scheduler's sleep), a second one the guest does not
// take ends the run, and either way the run ends in order: the statistics are still
// printed. The guest is tests/guests/sig_host.c; one case types ^C on a pseudo-terminal
// and compares with the guest run natively the same way.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "emu_test_util.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& f) {
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads fd until `want` is in what was read, EOF, or `limit` passes.
bool read_until(int fd, std::string& got, const std::string& want,
                std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (got.find(want) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

// A line of `--stats` text output.
std::string stat_line(const std::string& key, int n) {
  std::string line = key;
  line.resize(24, ' ');
  return line + " " + std::to_string(n) + "\n";
}

// The wait status of pid, given 5 s to exit once its output ended; killed after that so
// that a hung run fails instead of hanging the suite.
int reap(pid_t pid) {
  int st = 0;
  for (int i = 0; ::waitpid(pid, &st, WNOHANG) != pid; ++i) {
    if (i == 500) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      break;
    }
    ::usleep(10000);
  }
  return st;
}

// One `mmemu run --stats --out FILE sig_host MODE` with stdout on a pipe, stdin on another
// (kept open, never written) and stderr in a file.
class Mmemu {
 public:
  Mmemu(Arch arch, const std::string& mode) {
    dir_ = fs::path(::testing::TempDir()) /
           ("mmemu-hostsig-" + std::to_string(::getpid()) + "-" + mode);
    fs::create_directories(dir_);
    int outp[2], inp[2];
    if (::pipe(outp) != 0 || ::pipe(inp) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, (dir_ / "err.txt").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addclose(&fa, inp[1]);
    posix_spawn_file_actions_addclose(&fa, outp[0]);
    const std::string out_file = (dir_ / "stats.txt").string();
    const std::string guest = test::guest_path(arch, "sig_host");
    std::vector<std::string> args{MMEMU_BINARY, "run", "--stats", "--out", out_file, guest, mode};
    std::vector<char*> argv;
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, MMEMU_BINARY, &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(inp[0]);
    ::close(outp[1]);
    stdin_ = inp[1];
    stdout_ = outp[0];
  }
  ~Mmemu() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
    fs::remove_all(dir_);
  }
  bool wait_for(const std::string& text) { return read_until(stdout_, out, text); }
  // Sends sig every 100 ms until mmemu's output ends (the host merges a signal sent while
  // the last is still pending, so one cannot just send twice): how many were sent.
  // Sends sig every 100 ms until mmemu's log holds `logged` (mmemu stops forwarding and
  // ends the run); the number sent, 0 if it never came. Nothing is sent after that: a
  // signal arriving once mmemu has put its actions back would end it the usual way.
  int signal_until_logged(int sig, const std::string& logged) {
    for (int n = 1; n <= 200; ++n) {
      signal(sig);
      const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
      while (std::chrono::steady_clock::now() < end) {
        if (err().find(logged) != std::string::npos) return n;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    return 0;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  // The exit status (-1: killed by a signal), once the guest's output is all read.
  int finish() {
    read_until(stdout_, out, std::string(1, '\x01'));  // EOF, or 20 s: never sent
    const int st = reap(pid_);
    reaped_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string stats() const { return slurp((dir_ / "stats.txt").string()); }
  std::string err() const { return slurp((dir_ / "err.txt").string()); }

  std::string out;

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  bool reaped_ = false;
};

class HostSignal : public ::testing::TestWithParam<Arch> {};

// The guest's handler runs, sees a signal from the kernel, and the guest's own exit
// status is mmemu's; the statistics are printed as after any run.
TEST_P(HostSignal, SigintReachesTheGuestsHandler) {
  Mmemu m(GetParam(), "spin");
  ASSERT_TRUE(m.wait_for("ready\n")) << m.out << m.err();
  m.signal(SIGINT);
  EXPECT_EQ(m.finish(), 5) << m.err();
  EXPECT_EQ(m.out, "ready\nSIGINT code 128 pid 0 uid 0\n");
  EXPECT_NE(m.stats().find("=== stats ===\n"), std::string::npos) << m.stats();
  EXPECT_NE(m.stats().find(stat_line("host_signal", 1)), std::string::npos) << m.stats();
  EXPECT_EQ(m.err(), "");
}

// SIGTERM from a supervisor is forwarded as SIGINT is: the guest has no handler for it and
// dies of it, mmemu exits 128 + 15 after the statistics.
TEST_P(HostSignal, SigtermWithoutHandlerKillsTheGuest) {
  Mmemu m(GetParam(), "spin");
  ASSERT_TRUE(m.wait_for("ready\n")) << m.out << m.err();
  m.signal(SIGTERM);
  EXPECT_EQ(m.finish(), 128 + SIGTERM) << m.err();
  EXPECT_EQ(m.out, "ready\n");
  EXPECT_NE(m.stats().find("=== stats ==="), std::string::npos);
}

// A guest waiting for standard input (a host read that blocks mmemu) is interrupted: no
// SA_RESTART, so read gives EINTR.
TEST_P(HostSignal, SigintInterruptsARead) {
  Mmemu m(GetParam(), "read");
  ASSERT_TRUE(m.wait_for("ready\n")) << m.out << m.err();
  m.signal(SIGINT);
  EXPECT_EQ(m.finish(), 5) << m.err();
  EXPECT_EQ(m.out, "ready\nread: -1 EINTR\nSIGINT code 128 pid 0 uid 0\n");
}

// A guest in nanosleep (mmemu sleeping on the host until the deadline) is interrupted.
TEST_P(HostSignal, SigintInterruptsASleep) {
  Mmemu m(GetParam(), "sleep");
  ASSERT_TRUE(m.wait_for("ready\n")) << m.out << m.err();
  m.signal(SIGINT);
  EXPECT_EQ(m.finish(), 5) << m.err();
  EXPECT_EQ(m.out, "ready\nnanosleep: -1 EINTR\nSIGINT code 128 pid 0 uid 0\n");
}

// A guest that handles SIGINT gets every one (a terminal's ^C each time); one with no
// handler for SIGTERM dies of it.
TEST_P(HostSignal, EveryHandledSigintIsForwarded) {
  Mmemu m(GetParam(), "count");
  ASSERT_TRUE(m.wait_for("ready\n")) << m.out << m.err();
  m.signal(SIGINT);
  ASSERT_TRUE(m.wait_for("got 1\n")) << m.out << m.err();
  m.signal(SIGINT);
  ASSERT_TRUE(m.wait_for("got 2\n")) << m.out << m.err();
  m.signal(SIGTERM);
  EXPECT_EQ(m.finish(), 128 + SIGTERM) << m.err();
  EXPECT_EQ(m.out, "ready\ngot 1\ngot 2\n");
  EXPECT_EQ(m.err(), "");
  EXPECT_NE(m.stats().find(stat_line("host_signal", 3)), std::string::npos) << m.stats();
}

// A guest that ignores or blocks SIGINT is ended by the second one: every process killed,
// status 128 + 2, the reason logged, the statistics and the leak check as usual.
TEST_P(HostSignal, SecondSigintNotTakenEndsTheRunInOrder) {
  for (const char* mode : {"ignore", "block"}) {
    Mmemu m(GetParam(), mode);
    ASSERT_TRUE(m.wait_for("ready\n")) << mode << m.out << m.err();
    EXPECT_GE(m.signal_until_logged(SIGINT, "received again"), 2) << mode;
    EXPECT_EQ(m.finish(), 128 + SIGINT) << mode << m.err();
    EXPECT_EQ(m.out, "ready\n") << mode;
    EXPECT_EQ(m.err(),
              "mmemu: SIGINT received again and not taken by the guest: killing every guest "
              "process\n")
        << mode;
    EXPECT_NE(m.stats().find(stat_line("host_signal", 2)), std::string::npos) << m.stats();
    EXPECT_NE(m.stats().find(stat_line("exit", 1)), std::string::npos) << m.stats();
  }
}

INSTANTIATE_TEST_SUITE_P(Arches, HostSignal, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& pi) { return std::string(arch_name(pi.param)); });

// ^C typed on the controlling terminal: what the guest sees and how it ends are what the
// same program shows natively on a terminal.
struct PtyRun {
  int status = -1;
  std::string out;
};

PtyRun run_on_pty(const std::vector<std::string>& args) {
  PtyRun r;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return r;
  if (pid == 0) {
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (read_until(master, r.out, "ready\r\n")) (void)!::write(master, "\x03", 1);
  // Everything until EIO (the child gone) or 20 s; the sentinel never comes.
  read_until(master, r.out, std::string(1, '\x01'));
  const int st = reap(pid);
  ::close(master);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(HostSignalTerminal, CtrlCIsWhatTheGuestGetsNatively) {
  const std::string native_guest = test::guest_path(Arch::X86_64, "sig_host");
  const PtyRun native = run_on_pty({native_guest, "spin"});
  ASSERT_EQ(native.status, 5) << native.out;
  ASSERT_EQ(native.out, "ready\r\n^CSIGINT code 128 pid 0 uid 0\r\n");
  for (Arch a : {Arch::X86_64, Arch::Arm64}) {
    const fs::path stats =
        fs::path(::testing::TempDir()) / ("mmemu-hostsig-pty-" + std::to_string(::getpid()));
    const PtyRun emu = run_on_pty({MMEMU_BINARY, "run", "--stats", "--out", stats.string(),
                                   test::guest_path(a, "sig_host"), "spin"});
    EXPECT_EQ(emu.status, native.status) << arch_name(a);
    EXPECT_EQ(emu.out, native.out) << arch_name(a);
    EXPECT_NE(slurp(stats.string()).find("=== stats ==="), std::string::npos) << arch_name(a);
    fs::remove(stats);
  }
}

}  // namespace
}  // namespace mmemu
