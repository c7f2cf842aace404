// Signals sent to mmemu itself: SIGINT and SIGQUIT from the terminal, SIGTERM and SIGHUP
// from whoever runs it. While a HostSignalForwarding object lives they no longer end mmemu
// on the spot: the host handler only queues the signal's number on a self-pipe. The
// kernel's run loop takes them between slices and while every process sleeps, and sends
// each to the guest's foreground process group as a terminal does. A repeated one that
// group would not act on (it ignores or blocks the signal) ends the run in order
// (Kernel::run: statistics, dumps and the leak check still come); one it handles is
// forwarded every time, as a terminal would. Host waits
// that may last (the scheduler's sleep, a read of mmemu's standard input) poll wake_fd()
// beside their own descriptor so that a signal ends them.
#pragma once

#include <array>
#include <csignal>

namespace mmemu {

namespace host_signals {

inline constexpr std::array<int, 4> kForwarded{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

// The next queued signal (in arrival order, repeats kept), 0 when none. Never blocks.
int take();
// Readable while a signal is queued; -1 when no forwarding is installed.
int wake_fd();

}  // namespace host_signals

// Installs the forwarding for its lifetime (one at a time; the previous actions come back
// when it goes). If the self-pipe cannot be made, nothing is installed and the signals
// keep their usual effect.
class HostSignalForwarding {
 public:
  HostSignalForwarding();
  ~HostSignalForwarding();
  HostSignalForwarding(const HostSignalForwarding&) = delete;
  HostSignalForwarding& operator=(const HostSignalForwarding&) = delete;
  bool installed() const { return installed_; }

 private:
  bool installed_ = false;
  std::array<struct sigaction, host_signals::kForwarded.size()> old_{};
};

}  // namespace mmemu
