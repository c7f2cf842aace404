// fork, vfork and clone (without CLONE_THREAD): a child process with a copy-on-write copy
// of the parent's address space (dup_mm with the chosen recovery) and of its registers.
#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/fork_report.hpp"
#include "vma/walkers.hpp"

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

// At the lock-drop point of a failed dup_mmap: dumps the dying child's tables.
class DumpWalker final : public ConcurrentWalker {
 public:
  DumpWalker(Kernel& k, int parent, int child) : k_(k), parent_(parent), child_(child) {}
  std::string name() const override { return "dump"; }
  WalkerReport walk(Mm& mm, Mm&) override {
    k_.dump(DumpKind::ForkFailedChild, child_, mm,
            fmt::format("failed fork {} -> {} at the lock-drop point", parent_, child_));
    return WalkerReport{"dump", "walked", 0, {}, 0, false, 0};
  }

 private:
  Kernel& k_;
  int parent_, child_;
};

nlohmann::json report_json(const ForkReport& r) {
  nlohmann::json j{{"ok", r.ok},
                   {"recovery", recovery_name(r.recovery)},
                   {"ptes_copied", r.ptes_copied},
                   {"ptes_wrprotected", r.ptes_wrprotected},
                   {"pages_copied", r.pages_copied}};
  if (!r.ok) {
    j["failed_step"] = r.failed_step;
    j["failed_vma"] = fmt::format("{:#x}", r.failed_vma);
    j["vmas_copied"] = r.vmas_copied;
    j["tree_max"] = fmt::format("{:#x}", r.tree_max);
    j["xa_zero_stored"] = r.xa_zero_stored;
    j["torn_down"] = r.torn_down;
    j["note"] = r.recovery_note;
    if (!r.errors.empty()) j["errors"] = r.errors;
  }
  return j;
}

}  // namespace

Result<int> Kernel::fork_process(Process& parent, const CloneArgs& args) {
  if (args.flags & ~kSupported) return fail(EINVAL);
  if ((args.flags & kCloneVm) && !(args.flags & kCloneVfork)) return fail(EINVAL);  // threads
  if (static_cast<std::size_t>(nr_live()) >= opts_.max_processes) return fail(EAGAIN);
  const int child_pid = next_pid_;

  std::shared_ptr<AddressSpace> as;
  if (args.flags & kCloneVm) {
    as = parent.as;
  } else {
    machine_.inject.set_context(fmt::format("pid {}: fork", parent.pid));
    if (++forks_ == opts_.inject_at_fork) arm_injections();
    ForkReport rep;
    DumpWalker dw(*this, parent.pid, child_pid);
    std::vector<ConcurrentWalker*> walkers;
    if (opts_.dump.fork) walkers.push_back(&dw);  // first: the tree as the walkers find it
    std::vector<std::unique_ptr<ConcurrentWalker>> named;
    for (const std::string& w : opts_.walkers)
      if (auto kind = parse_walker(w)) {
        named.push_back(make_walker(kind->first, kind->second));
        walkers.push_back(named.back().get());
      }
    const std::uint64_t before = machine_.inject.attempts_total();
    auto mm = dup_mm(parent.mm(), opts_.fork_recovery, &rep, walkers);
    nlohmann::json j = report_json(rep);
    // The injector's global attempt numbers dup_mm used: (before, after].
    j["attempts_before"] = before;
    j["attempts_after"] = machine_.inject.attempts_total();
    j["child"] = mm ? child_pid : 0;
    record("fork", parent.pid, std::move(j));
    if (!mm) {
      stats_.add("fork_failed");
      std::vector<std::string> detail = fork_failure_details(rep, {dw.name()});
      detail.insert(detail.begin(), fork_failure_headline(rep));
      if (opts_.dump.fork) {
        dump(DumpKind::Fork, parent.pid, parent.mm(),
             fmt::format("fork by {} failed in {} ({})", parent.pid, rep.failed_step,
                         recovery_name(rep.recovery)),
             std::move(detail));
      } else if (!named.empty()) {
        log_.msg(fmt::format("pid {}: fork failed: {}", parent.pid, detail.front()));
        for (std::size_t i = 1; i < detail.size(); ++i)
          log_.msg("  " + detail[i]);
      }
      return fail(ENOMEM);
    }
    as = std::make_shared<AddressSpace>();
    as->mm = std::move(*mm);
    as->mm->set_flusher(&as->tlbs);
    as->mm->on_exit_mmap = [this, child_pid](Mm&, const ExitMmapReport& r) {
      record("exit_mmap", child_pid,
             {{"vmas_removed", r.vmas_removed},
              {"map_count", r.map_count},
              {"met_xa_zero", r.met_xa_zero},
              {"empty", r.empty},
              {"pages_freed", r.pages_freed},
              {"tables_freed", r.tables_freed}});
    };
    as->exe_path = parent.as->exe_path;
    as->exe_file = parent.as->exe_file;
    if (as->exe_file) as->exe_file->get();
  }
  auto cpu = make_cpu_(parent.arch);
  if (!cpu) return fail(ENOMEM);  // `as` goes (exit_mmap) if it was a copy
  if (!(*cpu)->restore_context(parent.cpu->save_context())) return fail(EINVAL);
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
  if (opts_.dump.fork && !(args.flags & kCloneVm))
    dump(DumpKind::Fork, parent.pid, parent.mm(),
         fmt::format("after fork {} -> {}", parent.pid, child_pid));
  if (opts_.dump.fork_child && !(args.flags & kCloneVm))
    dump(DumpKind::ForkChild, child_pid, c.mm(),
         fmt::format("child of fork {} -> {}", parent.pid, child_pid));
  return child_pid;
}

}  // namespace mmemu
