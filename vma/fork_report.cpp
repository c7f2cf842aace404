#include "vma/fork_report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mmemu {

namespace {

const char* plural(std::uint64_t n) {
  return n == 1 ? "" : "s";
}

}  // namespace

std::string mmf_flag_names(std::uint32_t flags) {
  std::string s;
  auto add = [&s](const char* n) { s += s.empty() ? n : std::string(" ") + n; };
  if (flags & MMF_UNSTABLE) add("unstable");
  if (flags & MMF_OOM_SKIP) add("oom-skip");
  if (flags & MMF_EXITED) add("exited");
  return s.empty() ? "-" : s;
}

std::string walker_report_text(const WalkerReport& w) {
  std::string s = fmt::format("walker {}", w.walker);
  if (w.point == "exit-unlock") s += " in exit_mmap's unlock window";
  s += fmt::format(": {}", w.outcome);
  if (w.outcome == "met-xa-zero") s += fmt::format(" at {:#x}: {}", w.addr, w.entry);
  if (!w.via.empty()) s += fmt::format(" from frame {:#x} ({})", w.via_pfn, w.via);
  s += fmt::format(" ({} VMA{} seen", w.vmas_seen, plural(static_cast<std::uint64_t>(w.vmas_seen)));
  if (w.pages_reaped) s += fmt::format(", {} pages reaped", w.pages_reaped);
  if (!w.ref.empty())
    s += fmt::format("; mm_users {}, mm_count {}, {}", w.mm_users, w.mm_count,
                     w.ref == "none" ? "no mm reference" : "took " + w.ref);
  return s + ")";
}

std::string rmap_visit_text(const RmapVisit& v) {
  std::string who = fmt::format("mm {}", v.mm);
  if (v.child) {
    who += fmt::format(" (dying child, flags {}", mmf_flag_names(v.mm_flags));
    who += v.tree_empty ? ", tree empty)" : ")";
  }
  std::string what;
  if (!v.looked)
    what = "not looked into (mm unstable)";
  else if (!v.has_table)
    what = "no PTE table";
  else if (!v.present)
    what = "PTE none";
  else
    what = fmt::format("PTE maps frame {:#x}", v.pfn);
  return fmt::format("rmap visit: {} VMA {:#x}-{:#x} at {:#x}: {}", who, v.vm_start, v.vm_end,
                     v.addr, what);
}

std::string exit_mmap_report_text(const ExitMmapReport& r) {
  std::string s;
  if (r.empty)
    s = "no VMA: straight to destroy";
  else
    s = fmt::format("{} VMA{} removed (map_count {})", r.vmas_removed,
                    plural(static_cast<std::uint64_t>(r.vmas_removed)), r.map_count);
  if (r.met_xa_zero) s += ", stopped at XA_ZERO";
  // The gather counts page references it dropped (a shared frame stays allocated).
  s += fmt::format(", {} page{} unmapped, {} table{} freed", r.pages_freed, plural(r.pages_freed),
                   r.tables_freed, plural(r.tables_freed));
  return s;
}

std::string fork_failure_headline(const ForkReport& r) {
  // A fatal signal is not a failure of the step: the task was found killed there.
  std::string s = r.failed_step == "fatal_signal"
                      ? std::string("fatal_signal pending")
                      : fmt::format("{} failed", r.failed_step.empty() ? "?" : r.failed_step);
  // These steps fail before or after the per-VMA loop: no VMA to name.
  if (r.failed_step != "mm_init" && r.failed_step != "mt_dup" && r.failed_step != "arch_dup_mmap")
    s += fmt::format(" at VMA {:#x}", r.failed_vma);
  return s + fmt::format(", {} VMA{} copied", r.vmas_copied,
                         plural(static_cast<std::uint64_t>(r.vmas_copied)));
}

std::vector<std::string> fork_failure_details(const ForkReport& r,
                                              const std::vector<std::string>& hide) {
  std::vector<std::string> v;
  v.push_back(fmt::format("recovery {}: {}", recovery_name(r.recovery), r.recovery_note));
  if (r.failed_step != "mm_init")
    v.push_back(
        fmt::format("child at lock drop: flags {}, mm_users {}, mm_count {}, {} PTEs copied, {} "
                    "parent PTEs write-protected",
                    mmf_flag_names(r.child_flags), r.child_mm_users, r.child_mm_count,
                    r.ptes_copied, r.ptes_wrprotected));
  for (const auto& w : r.walkers) {
    if (std::find(hide.begin(), hide.end(), w.walker) != hide.end()) continue;
    v.push_back(walker_report_text(w));
    for (const RmapVisit& visit : w.visits)
      v.push_back("  " + rmap_visit_text(visit));
  }
  if (r.exited) v.push_back("child exit_mmap: " + exit_mmap_report_text(r.exit));
  for (const auto& e : r.errors)
    v.push_back("WARNING: " + e);
  return v;
}

}  // namespace mmemu
