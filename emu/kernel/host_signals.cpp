// The host side of signal forwarding: an async-signal-safe handler writing to a self-pipe.
#include "emu/kernel/host_signals.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace mmemu {

namespace {

// The self-pipe; -1 while nothing is installed. Plain ints: the handler only reads the
// write end, which is set before the handler is installed and cleared after it is gone.
int g_pipe[2] = {-1, -1};
// Set by the handler after its write, so that take() (once per scheduler round) reads the
// pipe only when a signal came. Lock-free, hence safe in a signal handler.
std::atomic<bool> g_pending{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_host_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  // A full pipe drops the signal: 64 KiB of unread signals say enough already.
  (void)!::write(g_pipe[1], &b, 1);
  g_pending.store(true);
  errno = saved;
}

}  // namespace

int host_signals::take() {
  if (g_pipe[0] < 0 || !g_pending.exchange(false)) return 0;
  unsigned char b = 0;
  for (;;) {
    const ssize_t n = ::read(g_pipe[0], &b, 1);
    if (n == 1) {
      g_pending.store(true);  // more may be queued: the next call reads again
      return b;
    }
    if (n < 0 && errno == EINTR) continue;
    return 0;  // EAGAIN: nothing queued
  }
}

int host_signals::wake_fd() {
  return g_pipe[0];
}

HostSignalForwarding::HostSignalForwarding() {
  if (g_pipe[0] >= 0) return;  // another one is installed
  if (::pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    g_pipe[0] = g_pipe[1] = -1;
    return;
  }
  struct sigaction sa = {};
  sa.sa_handler = on_host_signal;
  // SA_RESTART: mmemu's own host calls carry on; the waits that must end poll wake_fd().
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : host_signals::kForwarded)
    sigaddset(&sa.sa_mask, sig);
  for (std::size_t i = 0; i < host_signals::kForwarded.size(); ++i) {
    const int sig = host_signals::kForwarded[i];
    ::sigaction(sig, nullptr, &old_[i]);
    // Started with the signal ignored (a background job of a shell without job control):
    // it stays ignored, as it would be for the program run natively.
    if (old_[i].sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
  installed_ = true;
}

HostSignalForwarding::~HostSignalForwarding() {
  if (!installed_) return;
  for (std::size_t i = 0; i < host_signals::kForwarded.size(); ++i)
    if (old_[i].sa_handler != SIG_IGN) ::sigaction(host_signals::kForwarded[i], &old_[i], nullptr);
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
}

}  // namespace mmemu
