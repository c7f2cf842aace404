// What watches a fork of an address space without taking part in it: the walkers dup_mm
// runs at a failed copy's lock-drop point (the dying child's page-table dump with
// --dump-pgtables fork, then the --walkers ones) and, with --walker-at, in the child's
// exit_mmap unlock window, the "fork" trace event (the ForkReport and the injector attempts
// and fatal_signal checks dup_mm used), a failed fork's dump or log lines, and the page-table
// dumps after a successful fork. Kernel::fork_process makes one per fork that copies the mm
// (not for CLONE_VM) and calls it at three points; it only reads the kernel's options and
// writes through its record/dump/log.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "vma/fork.hpp"

namespace mmemu {

class Kernel;
class Process;

class ForkObservers {
 public:
  // Before dup_mm: `child_pid` is the pid the child gets if the copy succeeds.
  ForkObservers(Kernel& k, const Process& parent, int child_pid);
  ~ForkObservers();
  ForkObservers(const ForkObservers&) = delete;
  ForkObservers& operator=(const ForkObservers&) = delete;

  // The walkers to hand to dup_mm, in the order they run: at the lock-drop point, and in
  // the dying child's exit_mmap unlock window (--walker-at).
  const std::vector<ConcurrentWalker*>& walkers() const { return walkers_; }
  const std::vector<ConcurrentWalker*>& exit_walkers() const { return exit_walkers_; }
  // After dup_mm: the trace event; when the copy failed, the failure's dump or log lines.
  void copied(const ForkReport& rep, bool ok);
  // Once the child is in the process table: the dumps of the parent and the child.
  void forked(const Process& child);

 private:
  Kernel& k_;
  const Process& parent_;
  int child_pid_;
  std::unique_ptr<ConcurrentWalker> dump_walker_;  // null unless dumping at fork
  std::vector<std::unique_ptr<ConcurrentWalker>> named_;
  std::vector<ConcurrentWalker*> walkers_;
  std::vector<ConcurrentWalker*> exit_walkers_;
  std::uint64_t attempts_before_;  // the injector's global attempt count before dup_mm
  std::uint64_t checks_before_;    // its fatal_signal check count before dup_mm
};

}  // namespace mmemu
