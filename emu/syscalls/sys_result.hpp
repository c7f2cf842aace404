// What a system call (or a file operation under it) answers: a value for the guest's return
// register, "block until woken and retry", or "no return" (exit, a successful execve). Kept
// apart from syscall.hpp so the file layer (fd.hpp) can use it without the kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "mmu/types.hpp"

namespace mmemu {

class Process;
class Kernel;

// Processes blocked until something happens: data or space in a pipe, a child's exit, a
// signal. Owned by whatever the waiters wait for (a pipe, a process); the kernel keeps the
// list. Waking makes every waiter runnable; each then re-runs its system call from the
// start (with SyscallContext::retry set) and blocks again if it still cannot proceed.
class WaitQueue {
 public:
  WaitQueue() = default;
  ~WaitQueue();  // wakes every waiter: they retry and see that the object is gone
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  void wake_all();
  bool has_waiters() const { return !waiters_.empty(); }
  std::size_t nr_waiters() const { return waiters_.size(); }

 private:
  friend class Kernel;
  std::vector<Process*> waiters_;
};

// How a blocked call interrupted by a caught signal continues once the handler returns
// (Linux's -ERESTARTSYS / -ERESTARTNOHAND / -EINTR).
enum class Restart : std::uint8_t {
  IfSaRestart,  // -ERESTARTSYS: restarted if the handler has SA_RESTART, else -EINTR (read, wait4)
  Never,        // -EINTR whenever a handler runs (nanosleep, pause, sigsuspend-like waits)
  Uninterruptible,  // only SIGKILL ends the wait (vfork's wait for the child)
};

class SysResult {
 public:
  enum class Kind : std::uint8_t {
    Return,    // put value() in the return register and go on
    Block,     // park the process on queue() (and/or until deadline_ns()); retry when woken
    NoReturn,  // the handler already set up everything (exit: the process is gone; execve:
               // a new image is loaded); the dispatcher must not touch the registers
  };

  // A raw return value as the guest sees it (negative -errno values included).
  static SysResult ret(std::int64_t v) { return SysResult(Kind::Return, v); }
  static SysResult ok(std::uint64_t v = 0) { return ret(static_cast<std::int64_t>(v)); }
  static SysResult err(int errno_code) { return ret(-static_cast<std::int64_t>(errno_code)); }
  static SysResult from(const Result<void>& r) { return r ? ok() : err(r.error().code); }
  template <class T>
  static SysResult from(const Result<T>& r) {
    return r ? ok(static_cast<std::uint64_t>(*r)) : err(r.error().code);
  }
  // Blocks on wq (which must outlive the wait or wake its waiters when destroyed).
  static SysResult block(WaitQueue& wq, Restart restart = Restart::IfSaRestart) {
    SysResult s(Kind::Block, 0);
    s.wq_ = &wq;
    s.restart_ = restart;
    return s;
  }
  // Blocks until the host's CLOCK_MONOTONIC reaches deadline_ns (nanosleep), or until wq is
  // woken if given. The kernel only sleeps the host when every process is blocked.
  static SysResult block_until(std::uint64_t deadline_ns, WaitQueue* wq = nullptr,
                               Restart restart = Restart::Never) {
    SysResult s(Kind::Block, 0);
    s.wq_ = wq;
    s.deadline_ = deadline_ns;
    s.restart_ = restart;
    return s;
  }
  static SysResult no_return() { return SysResult(Kind::NoReturn, 0); }

  Kind kind() const { return kind_; }
  bool is_return() const { return kind_ == Kind::Return; }
  bool is_error() const { return kind_ == Kind::Return && value_ < 0 && value_ >= -4095; }
  std::int64_t value() const { return value_; }
  WaitQueue* queue() const { return wq_; }
  std::uint64_t deadline_ns() const { return deadline_; }  // 0: none
  Restart restart() const { return restart_; }

 private:
  SysResult(Kind k, std::int64_t v) : kind_(k), value_(v) {}
  Kind kind_;
  std::int64_t value_;
  WaitQueue* wq_ = nullptr;
  std::uint64_t deadline_ = 0;
  Restart restart_ = Restart::IfSaRestart;
};

}  // namespace mmemu
