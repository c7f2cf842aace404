// dup_mm and dup_mmap: the child's mm is initialised from the parent's, its maple tree is
// duplicated in one step (__mt_dup), and each entry is then replaced in place by the
// child's copy of the VMA; on failure the selected recovery runs (fork_recovery.cpp).
#include <fmt/format.h>

#include <algorithm>

#include "vma/anon_vma.hpp"
#include "vma/exit_mmap.hpp"
#include "vma/file.hpp"
#include "vma/fork_internal.hpp"
#include "vma/overcommit.hpp"

namespace mmemu {

std::string_view recovery_name(ForkRecovery r) {
  switch (r) {
    case ForkRecovery::XaZero:
      return "xa-zero";
    case ForkRecovery::TreeMax:
      return "tree-max";
    case ForkRecovery::Partial:
      return "partial";
  }
  return "?";
}

std::optional<ForkRecovery> parse_recovery(std::string_view s) {
  for (ForkRecovery r : {ForkRecovery::XaZero, ForkRecovery::TreeMax, ForkRecovery::Partial})
    if (recovery_name(r) == s) return r;
  return std::nullopt;
}

std::string_view walker_point_name(WalkerPoint p) {
  switch (p) {
    case WalkerPoint::LockDrop:
      return "lock-drop";
    case WalkerPoint::ExitUnlock:
      return "exit-unlock";
    case WalkerPoint::Both:
      return "both";
  }
  return "?";
}

std::optional<WalkerPoint> parse_walker_point(std::string_view s) {
  for (WalkerPoint p : {WalkerPoint::LockDrop, WalkerPoint::ExitUnlock, WalkerPoint::Both})
    if (walker_point_name(p) == s) return p;
  return std::nullopt;
}

namespace {

// Restores the injector's context label on every return path.
class ContextLabel {
 public:
  explicit ContextLabel(FaultInjector& inj) : inj_(inj), saved_(inj.context()) {}
  ~ContextLabel() { inj_.set_context(saved_); }
  ContextLabel(const ContextLabel&) = delete;
  ContextLabel& operator=(const ContextLabel&) = delete;
  // Names the step so that an allocation (and a leak report) says where it came from.
  void step(std::string_view s) { inj_.set_context(fmt::format("fork: {}", s)); }
  void step(std::string_view s, vaddr_t vma) {
    inj_.set_context(fmt::format("fork: {} {:#x}", s, vma));
  }

 private:
  FaultInjector& inj_;
  std::string saved_;
};

// mm_init for a child: what the kernel's memcpy of the parent's mm_struct keeps, minus what
// mm_init resets (counters, locked and pinned pages, flags, def_flags: mlockall's
// MCL_FUTURE and memory locks are not inherited).
void mm_init_from(Mm& mm, const Mm& old) {
  mm.set_rlimits(&old.rlimits());  // the child's limits are a copy of these (copy_signal)
  mm.mmap_base = old.mmap_base;
  mm.task_size = old.task_size;
  mm.start_code = old.start_code;
  mm.end_code = old.end_code;
  mm.start_data = old.start_data;
  mm.end_data = old.end_data;
  mm.start_brk = old.start_brk;
  mm.brk = old.brk;
  mm.start_stack = old.start_stack;
  mm.arg_start = old.arg_start;
  mm.arg_end = old.arg_end;
  mm.env_start = old.env_start;
  mm.env_end = old.env_end;
  mm.caps = old.caps;
  mm.pkey_allocation_map = old.pkey_allocation_map;  // arch_dup_pkeys
  mm.execute_only_pkey = old.execute_only_pkey;
  mm.pt().pkru = old.pt().pkru;  // the forking thread's PKRU
  mm.def_flags = 0;              // VM_INIT_DEF_MASK keeps only VM_NOHUGEPAGE, which mmemu has not
  mm.flags = 0;
  mm.on_exit_mmap = old.on_exit_mmap;  // the trace hook follows the child
}

// i_mmap: the child's VMA goes right after the parent's (vma_interval_tree_insert_after).
void link_file_after(Vma& tmp, const Vma& mpnt) {
  auto& v = tmp.vm_file->i_mmap;
  auto it = std::find(v.begin(), v.end(), &mpnt);
  v.insert(it == v.end() ? v.end() : it + 1, &tmp);
}

Vma* entry_vma(const std::optional<MapleTree::Entry>& e) {
  return e ? static_cast<Vma*>(e->value) : nullptr;
}

// dup_mmap: returns the failing step's errno after running the recovery; the caller runs
// the walkers and exit_mmap.
Result<void> dup_mmap(Mm& mm, Mm& oldmm, ForkRecovery recovery, ForkReport& rep, ContextLabel& ctx,
                      const FatalSignalPending& fatal_signal_pending) {
  mm.total_vm = oldmm.total_vm;
  mm.data_vm = oldmm.data_vm;
  mm.exec_vm = oldmm.exec_vm;
  mm.stack_vm = oldmm.stack_vm;

  ctx.step("mt_dup");
  if (auto d = mm.mm_mt.dup_from(oldmm.mm_mt); !d) {
    // "goto out": no recovery, no flags; the tree was left empty.
    rep.failed_step = "mt_dup";
    rep.recovery_note = fmt::format(
        "__mt_dup failed after {} nodes (at the node for [{:#x}, {:#x}]); the child's tree "
        "is empty",
        d.error().nodes_copied, d.error().node_min, d.error().node_max);
    return fail(d.error().err.code);
  }

  Vma* mpnt = nullptr;
  Result<void> ret;
  for (auto e = mm.mm_mt.find(0); e; e = mm.mm_mt.find(mpnt->vm_end)) {
    mpnt = entry_vma(e);
    if (mpnt->vm_flags & VM_DONTCOPY) {
      ctx.step("vma_iter_clear", mpnt->vm_start);
      if (auto r = mm.mm_mt.store_range(mpnt->vm_start, mpnt->vm_end - 1, nullptr); !r) {
        rep.failed_step = "vma_iter_clear";
        ret = r;
        break;
      }
      vm_stat_account(mm, mpnt->vm_flags, -static_cast<std::int64_t>(mpnt->pages()));
      if (mpnt->vm_end == 0) break;
      continue;
    }
    // A task killed while it forks (the OOM killer's victim, say) stops copying VMAs; what
    // it copied so far is undone at loop_out as after an allocation failure here.
    ctx.step("fatal_signal", mpnt->vm_start);
    bool killed = false;
    {
      const AllocCaller caller(oldmm.machine().inject, "dup_mmap", mpnt->vm_start);
      killed = fatal_signal_pending ? fatal_signal_pending() : injected_fatal_signal(oldmm);
    }
    if (killed) {
      rep.failed_step = "fatal_signal";
      ret = fail(EINTR);
      break;
    }
    // The child's copy of an accounted VMA is charged (to the parent, as Linux does).
    if (mpnt->vm_flags & VM_ACCOUNT) {
      if (auto r = vm_enough_memory(oldmm, mpnt->pages()); !r) {
        rep.failed_step = "vm_enough_memory";
        ret = r;
        break;
      }
    }
    ctx.step("vm_area_dup", mpnt->vm_start);
    auto nv = vm_area_dup(*mpnt);
    if (!nv) {
      rep.failed_step = "vm_area_dup";
      ret = std::unexpected(nv.error());
      break;
    }
    Vma* tmp = *nv;
    tmp->vm_mm = &mm;
    if (tmp->vm_flags & VM_WIPEONFORK) {
      // A clean slate: no anon_vma until the child's first fault, no pages copied.
      tmp->anon_vma = nullptr;
    } else {
      ctx.step("anon_vma_fork", mpnt->vm_start);
      if (auto r = anon_vma_fork(*tmp, *mpnt); !r) {
        vm_area_free(tmp);
        rep.failed_step = "anon_vma_fork";
        ret = r;
        break;
      }
    }
    tmp->vm_flags &= ~VM_LOCKED_MASK;
    // The duplicated tree already has a slot for exactly this range: no allocation.
    mm.mm_mt.replace(tmp->vm_start, tmp->vm_end - 1, tmp);
    ++mm.map_count;
    if (tmp->vm_file) link_file_after(*tmp, *mpnt);
    if (!(tmp->vm_flags & VM_WIPEONFORK)) {
      ctx.step("copy_page_range", tmp->vm_start);
      if (auto r = copy_page_range(*tmp, *mpnt, &rep); !r) {
        rep.failed_step = "copy_page_range";
        rep.failed_vma = tmp->vm_start;
        // The partly copied VMA is in the child's tree: the failure point is the next.
        mpnt = entry_vma(mm.mm_mt.find(tmp->vm_end));
        ret = r;
        break;
      }
    }
    if (tmp->vm_end == 0) break;  // cannot happen below TASK_SIZE; keeps find() in range
  }
  if (ret) {
    mpnt = nullptr;  // the walk ran off the end: every VMA is in the new tree
    ctx.step("arch_dup_mmap");
    if (auto r = arch_dup_mmap(oldmm, mm); !r) {
      rep.failed_step = "arch_dup_mmap";
      ret = r;
    }
  }
  if (ret) return {};

  // loop_out with an error.
  if (rep.failed_step != "copy_page_range" && mpnt) rep.failed_vma = mpnt->vm_start;
  rep.vmas_copied = mm.map_count;
  rep.has_failure_point = mpnt != nullptr;
  rep.failure_point = mpnt ? mpnt->vm_start : 0;
  fork_detail::LoopOut lo{mm, oldmm, mpnt, rep};
  ctx.step("recovery");
  switch (recovery) {
    case ForkRecovery::XaZero:
      fork_detail::recover_xa_zero(lo);
      break;
    case ForkRecovery::TreeMax:
      fork_detail::recover_tree_max(lo);
      break;
    case ForkRecovery::Partial:
      fork_detail::recover_partial(lo);
      break;
  }
  return ret;
}

}  // namespace

bool injected_fatal_signal(Mm& parent) {
  return parent.machine().inject.should_fail(InjectSite::FatalSignal);
}

Result<std::unique_ptr<Mm>> dup_mm(Mm& parent, ForkRecovery recovery, ForkReport* report,
                                   const std::vector<ConcurrentWalker*>& walkers,
                                   const std::vector<ConcurrentWalker*>& exit_walkers,
                                   const FatalSignalPending& fatal_signal_pending) {
  ForkReport local;
  ForkReport& rep = report ? *report : local;
  rep = ForkReport{};
  rep.recovery = recovery;
  ContextLabel ctx(parent.machine().inject);

  ctx.step("mm_init");
  auto created = Mm::create(parent.machine(), parent.arch());
  if (!created) {
    rep.ok = false;
    rep.failed_step = "mm_init";
    return std::unexpected(created.error());
  }
  std::unique_ptr<Mm> mm = std::move(*created);
  mm_init_from(*mm, parent);

  const Result<void> r = dup_mmap(*mm, parent, recovery, rep, ctx, fatal_signal_pending);
  // out: flush_tlb_mm(oldmm) on every path, for the entries made read-only.
  parent.tlb().flush_all();
  if (r) return mm;

  rep.ok = false;
  rep.child_flags = mm->flags;
  rep.child_mm_users = mm->mm_users;
  rep.child_mm_count = mm->mm_count;
  // The lock-drop point: dup_mmap has unlocked both mms, mmput has not run yet.
  ctx.step("lock-drop");
  for (ConcurrentWalker* w : walkers) {
    rep.walkers.push_back(w->walk(*mm, parent));
    rep.walkers.back().point = "lock-drop";
  }
  if (!exit_walkers.empty())
    mm->on_exit_unlock = [&](Mm& dying) {
      ctx.step("exit-unlock");
      for (ConcurrentWalker* w : exit_walkers) {
        rep.walkers.push_back(w->walk(dying, parent));
        rep.walkers.back().point = "exit-unlock";
      }
      ctx.step("exit_mmap");
    };
  // mmput: dup_mm's use was the only one, so exit_mmap runs (its trace event fires), then
  // the users' mm_count goes and the struct with its pgd.
  ctx.step("exit_mmap");
  {
    CallFrame frame(mm->pt(), "mmput (failed fork)");
    rep.exited = mmput(*mm, &rep.exit);
  }
  if (!rep.exited)
    rep.errors.push_back(
        fmt::format("mm_users {} after dup_mm's mmput: exit_mmap deferred", mm->mm_users));
  else if (mm->mm_count != 0)
    rep.errors.push_back(fmt::format("mm_count {} after the last mmput", mm->mm_count));
  if (rep.exited && !rep.exit.empty && rep.exit.vmas_removed != rep.exit.map_count)
    rep.errors.push_back(fmt::format("exit_mmap removed {} VMAs but map_count was {}",
                                     rep.exit.vmas_removed, rep.exit.map_count));
  mm->on_exit_unlock = nullptr;
  mm.reset();
  return std::unexpected(r.error());
}

}  // namespace mmemu
