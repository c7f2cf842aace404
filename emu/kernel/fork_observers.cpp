// The fork observers: walkers at the lock-drop point, the fork trace event, and the dumps.
#include "emu/kernel/fork_observers.hpp"

#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "vma/fork_report.hpp"
#include "vma/walkers.hpp"

namespace mmemu {

namespace {

constexpr const char* kDumpWalker = "dump";

// At the lock-drop point of a failed dup_mmap: dumps the dying child's tables.
class DumpWalker final : public ConcurrentWalker {
 public:
  DumpWalker(Kernel& k, int parent, int child) : k_(k), parent_(parent), child_(child) {}
  std::string name() const override { return kDumpWalker; }
  WalkerReport walk(Mm& mm, Mm&) override {
    k_.dump(DumpKind::ForkFailedChild, child_, mm,
            fmt::format("failed fork {} -> {} at the lock-drop point", parent_, child_));
    WalkerReport r;
    r.walker = kDumpWalker;
    r.outcome = "walked";
    return r;
  }

 private:
  Kernel& k_;
  int parent_, child_;
};

// The report as the outputs show it: without the dump walker, which is mmemu's own
// --dump-pgtables fork at the lock-drop point, not a kernel walker.
ForkReport shown_report(const ForkReport& r) {
  ForkReport shown = r;
  std::erase_if(shown.walkers, [](const WalkerReport& w) { return w.walker == kDumpWalker; });
  return shown;
}

}  // namespace

ForkObservers::ForkObservers(Kernel& k, const Process& parent, int child_pid)
    : k_(k), parent_(parent), child_pid_(child_pid) {
  const KernelOptions& o = k_.options();
  if (o.dump.fork) {  // first: the tree as the walkers find it
    dump_walker_ = std::make_unique<DumpWalker>(k_, parent_.pid, child_pid_);
    walkers_.push_back(dump_walker_.get());
  }
  for (const std::string& w : o.walkers)
    if (auto kind = parse_walker(w)) {
      named_.push_back(make_walker(kind->first, kind->second));
      if (at_lock_drop(o.walker_at)) walkers_.push_back(named_.back().get());
      if (at_exit_unlock(o.walker_at)) exit_walkers_.push_back(named_.back().get());
    }
  attempts_before_ = k_.machine().inject.attempts_total();
  checks_before_ = k_.machine().inject.attempts(InjectSite::FatalSignal);
}

ForkObservers::~ForkObservers() = default;

void ForkObservers::copied(const ForkReport& rep, bool ok) {
  const ForkReport shown = shown_report(rep);
  nlohmann::json j = shown;
  // The injector's global attempt numbers dup_mm used: (before, after].
  j["attempts_before"] = attempts_before_;
  j["attempts_after"] = k_.machine().inject.attempts_total();
  // Its fatal_signal checks (one per VMA it copied) by the same numbering: (before, after].
  j["checks_before"] = checks_before_;
  j["checks_after"] = k_.machine().inject.attempts(InjectSite::FatalSignal);
  j["child"] = ok ? child_pid_ : 0;
  k_.record("fork", parent_.pid, std::move(j));
  if (ok) return;
  std::vector<std::string> detail = fork_failure_details(rep, {kDumpWalker});
  detail.insert(detail.begin(), fork_failure_headline(rep));
  if (k_.options().dump.fork) {
    k_.dump(DumpKind::Fork, parent_.pid, parent_.mm(),
            fmt::format("fork by {} failed in {} ({})", parent_.pid, rep.failed_step,
                        recovery_name(rep.recovery)),
            std::move(detail), shown);
  } else if (!named_.empty()) {
    k_.log().msg(fmt::format("pid {}: fork failed: {}", parent_.pid, detail.front()));
    for (std::size_t i = 1; i < detail.size(); ++i)
      k_.log().msg("  " + detail[i]);
  }
}

void ForkObservers::forked(const Process& child) {
  const DumpWhen& when = k_.options().dump;
  if (when.fork)
    k_.dump(DumpKind::Fork, parent_.pid, parent_.mm(),
            fmt::format("after fork {} -> {}", parent_.pid, child.pid));
  if (when.fork_child)
    k_.dump(DumpKind::ForkChild, child.pid, child.mm(),
            fmt::format("child of fork {} -> {}", parent_.pid, child.pid));
}

}  // namespace mmemu
