// SignalState's choice of the next signal (emu/signal/signal.hpp): which pending signal
// delivery takes first, which one it acts on once the ignored ones are discarded (what
// decides whether an interrupted system call restarts), and whether a signal sent now
// would be acted on.
#include <gtest/gtest.h>

#include "emu/signal/signal.hpp"

namespace mmemu {
namespace {

constexpr int kSigUsr1 = 10, kSigSegv = 11, kSigTerm = 15, kSigChld = 17, kSigCont = 18,
              kSigUrg = 23, kSigWinch = 28, kSigRtMin = 34;

SignalState with_pending(std::initializer_list<int> sigs) {
  SignalState s;
  for (int sig : sigs) {
    if (sig >= 32) {
      SigInfo i;
      i.signo = sig;
      s.rt_queue.push_back(i);
    } else {
      s.pending |= sig_bit(sig);
    }
  }
  return s;
}

TEST(SignalState, LowestUnblockedFirstSynchronousBeforeAll) {
  SignalState s = with_pending({kSigTerm, kSigUsr1, kSigRtMin});
  EXPECT_EQ(s.next_deliverable(), kSigUsr1);
  s.blocked = sig_bit(kSigUsr1);
  EXPECT_EQ(s.next_deliverable(), kSigTerm);
  EXPECT_EQ(s.next_deliverable(sig_bit(kSigTerm)), kSigRtMin);
  s.pending |= sig_bit(kSigSegv);
  EXPECT_EQ(s.next_deliverable(), kSigSegv);
  s.blocked = ~0ULL;
  EXPECT_EQ(s.next_deliverable(), 0);
  s.pending |= sig_bit(kSigKill);
  EXPECT_EQ(s.next_deliverable(), kSigKill);  // never blocked
}

TEST(SignalState, ActedOnSkipsWhatDeliveryWouldDiscard) {
  // SIGURG, SIGCHLD and SIGCONT ignored by default, SIGWINCH with a handler.
  SignalState s = with_pending({kSigUrg, kSigChld, kSigCont, kSigWinch});
  s.act(kSigWinch).handler = 0x401000;
  EXPECT_EQ(s.next_deliverable(), kSigChld);
  EXPECT_EQ(s.next_acted_on(), kSigWinch);
  s.act(kSigWinch).handler = kSigIgn;
  EXPECT_EQ(s.next_acted_on(), 0);
  // An explicitly ignored SIGTERM is passed over; a default one terminates.
  s.pending |= sig_bit(kSigTerm);
  s.act(kSigTerm).handler = kSigIgn;
  EXPECT_EQ(s.next_acted_on(), 0);
  s.act(kSigTerm).handler = kSigDfl;
  EXPECT_EQ(s.next_acted_on(), kSigTerm);
  // A blocked signal is not acted on at all.
  s.blocked = sig_bit(kSigTerm);
  EXPECT_EQ(s.next_acted_on(), 0);
}

// What decides whether a repeated host signal is forwarded or ends the run.
TEST(SignalState, WouldActOnUnlessBlockedOrIgnored) {
  constexpr int kSigInt = 2;
  SignalState s;
  EXPECT_TRUE(s.would_act_on(kSigInt));  // default: terminate
  EXPECT_FALSE(s.would_act_on(kSigChld));
  EXPECT_FALSE(s.would_act_on(kSigCont));
  s.act(kSigChld).handler = 0x401000;
  EXPECT_TRUE(s.would_act_on(kSigChld));
  s.act(kSigInt).handler = kSigIgn;
  EXPECT_FALSE(s.would_act_on(kSigInt));
  s.act(kSigInt).handler = 0x401000;
  s.pending |= sig_bit(kSigInt);  // pending, not yet run: a repeat merges with it
  EXPECT_TRUE(s.would_act_on(kSigInt));
  s.blocked = sig_bit(kSigInt) | kUnblockable;
  EXPECT_FALSE(s.would_act_on(kSigInt));
  EXPECT_TRUE(s.would_act_on(kSigKill));
}

}  // namespace
}  // namespace mmemu
