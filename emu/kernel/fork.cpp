// fork, vfork and clone (without CLONE_THREAD): a child process with a copy-on-write copy
// of the parent's address space (dup_mm with the chosen recovery) and of its registers.
#include <fmt/format.h>

#include <optional>

#include "emu/kernel/fork_observers.hpp"
#include "emu/kernel/kernel.hpp"
#include "vma/fault.hpp"
#include "vma/file.hpp"

namespace mmemu {

namespace {

constexpr std::uint64_t kCloneVm = 0x100, kCloneFs = 0x200, kCloneFiles = 0x400,
                        kCloneSighand = 0x800, kClonePidfd = 0x1000, kClonePtrace = 0x2000,
                        kCloneVfork = 0x4000, kCloneParent = 0x8000, kCloneThread = 0x10000,
                        kCloneSysvsem = 0x40000, kCloneSettls = 0x80000,
                        kCloneParentSettid = 0x100000, kCloneChildCleartid = 0x200000,
                        kCloneChildSettid = 0x1000000;
constexpr std::uint64_t kSupported = kCloneVm | kCloneVfork | kCloneSettls | kCloneParentSettid |
                                     kCloneChildCleartid | kCloneChildSettid | kCloneSysvsem;

}  // namespace

Result<int> Kernel::fork_process(Process& parent, const CloneArgs& args) {
  if (args.flags & ~kSupported) return fail(EINVAL);
  if ((args.flags & kCloneVm) && !(args.flags & kCloneVfork)) return fail(EINVAL);  // threads
  if (static_cast<std::size_t>(nr_live()) >= opts_.max_processes) return fail(EAGAIN);
  const int child_pid = next_pid_;

  std::shared_ptr<AddressSpace> as;
  std::optional<ForkObservers> observers;  // only a copied address space is watched
  if (args.flags & kCloneVm) {
    as = parent.as;
    mmget(*as->mm);  // copy_mm: the child is one more user of the parent's mm
  } else {
    machine_.inject.set_context(fmt::format("pid {}: fork", parent.pid));
    if (++forks_ == opts_.inject_at_fork) arm_injections();
    observers.emplace(*this, parent, child_pid);
    ForkReport rep;
    // fatal_signal_pending(current), asked per VMA dup_mmap copies. Nothing runs inside a
    // fork, so the kill that arrives meanwhile is the injector's: a real SIGKILL sent now
    // (as the OOM killer sends it), of which the parent dies on its way out of the call.
    const FatalSignalPending killed = [this, &parent] {
      if (machine_.inject.should_fail(InjectSite::FatalSignal))
        send_signal(parent, SigInfo{.signo = kSigKill, .code = kSiKernel});
      return parent.sig.is_pending(kSigKill);
    };
    auto mm = dup_mm(parent.mm(), opts_.fork_recovery, &rep, observers->walkers(),
                     observers->exit_walkers(), killed);
    observers->copied(rep, mm.has_value());
    if (!mm) {
      stats_.add("fork_failed");
      return std::unexpected(mm.error());  // ENOMEM, or EINTR with SIGKILL pending
    }
    as = make_address_space(std::move(*mm), child_pid);
    as->exe_path = parent.as->exe_path;
    as->exe_file = parent.as->exe_file;
    if (as->exe_file) as->exe_file->get();
  }
  // Before the child exists: its use of the mm goes again (a copy's only use: exit_mmap).
  auto unwind = [&](int e) {
    (void)mmput(*as->mm);
    return fail(e);
  };
  auto cpu = make_cpu(parent.arch);
  if (!cpu) return unwind(ENOMEM);
  if (!(*cpu)->restore_context(parent.cpu->save_context())) return unwind(EINVAL);
  (*cpu)->set_syscall_ret(0);
  if (args.stack) (*cpu)->set_sp(args.stack);
  if (args.flags & kCloneSettls) (*cpu)->set_tls(args.tls);

  ++next_pid_;
  auto child = std::make_unique<Process>(*this, child_pid, parent.pid, parent.arch);
  Process& c = *child;
  c.pgid = parent.pgid;
  c.sid = parent.sid;
  c.comm = parent.comm;
  c.cred = parent.cred;
  c.nice = parent.nice;
  c.fs = parent.fs;
  c.rlimits = parent.rlimits;
  c.sig.inherited() = parent.sig.inherited();
  c.areas = parent.areas;
  c.fds = std::make_unique<FdTable>(FdTable::dup_fd(*parent.fds));
  c.exit_signal = args.exit_signal;
  c.as = std::move(as);
  attach_cpu(c, std::move(*cpu));
  if (args.flags & kCloneChildCleartid) c.clear_child_tid = args.child_tid;
  const auto tid = static_cast<std::uint32_t>(child_pid);
  if (args.flags & kCloneChildSettid) (void)copy_to_user(c.mm(), args.child_tid, &tid, 4);
  if (args.flags & kCloneParentSettid) (void)copy_to_user(parent.mm(), args.parent_tid, &tid, 4);
  if (args.flags & kCloneVfork) {
    c.vfork_parent = parent.pid;
    parent.vfork_child = child_pid;
  }
  parent.children.push_back(child_pid);
  procs_.emplace(child_pid, std::move(child));
  runq_.push_back(child_pid);
  stats_.add("fork_ok");
  if (observers) observers->forked(c);
  return child_pid;
}

}  // namespace mmemu
