// The JSON of a fork's report and of the walkers it ran, shared by every JSON output.
#include <fmt/format.h>

#include <algorithm>

#include "emu/kernel/trace.hpp"
#include "vma/fork.hpp"
#include "vma/fork_report.hpp"
#include "vma/mm.hpp"

namespace mmemu {

namespace {

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

// The MMF_* flags by name, as the text reports word them ("-": none).
nlohmann::json flag_names(std::uint32_t flags) {
  nlohmann::json a = nlohmann::json::array();
  const std::string names = mmf_flag_names(flags);
  for (std::size_t at = 0; names != "-" && at < names.size();) {
    const std::size_t sp = std::min(names.find(' ', at), names.size());
    a.push_back(names.substr(at, sp - at));
    at = sp + 1;
  }
  return a;
}

nlohmann::json visit_json(const RmapVisit& v) {
  const char* pte = !v.looked      ? "not-looked-into"
                    : !v.has_table ? "no-table"
                    : !v.present   ? "none"
                                   : "present";
  return {{"mm", v.mm},
          {"dying", v.child},
          {"mm_flags", flag_names(v.mm_flags)},
          {"tree_empty", v.tree_empty},
          {"vma_start", hex(v.vm_start)},
          {"vma_end", hex(v.vm_end)},
          {"addr", hex(v.addr)},
          {"pte", pte},
          {"frame", v.looked && v.present ? nlohmann::json(hex(v.pfn)) : nlohmann::json(nullptr)}};
}

}  // namespace

void to_json(nlohmann::json& j, const WalkerReport& w) {
  j = {{"walker", w.walker},
       {"point", w.point},
       {"checks", w.checks},
       {"outcome", w.outcome},
       {"met", w.outcome == "met-xa-zero"
                   ? nlohmann::json{{"first", hex(w.addr)}, {"last", hex(w.addr_last)}}
                   : nlohmann::json(nullptr)},
       {"vmas_seen", w.vmas_seen},
       {"pages_reaped", w.pages_reaped},
       {"mm_users", w.mm_users},
       {"mm_count", w.mm_count},
       {"ref", w.ref}};
  if (w.walker.starts_with("rmap")) {
    j["via"] = w.via.empty() ? nlohmann::json(nullptr) : nlohmann::json(w.via);
    j["via_pfn"] = w.via.empty() ? nlohmann::json(nullptr) : nlohmann::json(hex(w.via_pfn));
    nlohmann::json vs = nlohmann::json::array();
    for (const RmapVisit& v : w.visits)
      vs.push_back(visit_json(v));
    j["visits"] = std::move(vs);
  }
}

void to_json(nlohmann::json& j, const ForkReport& r) {
  j = {{"ok", r.ok},
       {"recovery", recovery_name(r.recovery)},
       {"vmas_copied", r.vmas_copied},
       {"ptes_copied", r.ptes_copied},
       {"ptes_wrprotected", r.ptes_wrprotected},
       {"pages_copied", r.pages_copied},
       {"walkers", r.walkers}};
  if (r.ok) return;
  // These steps fail before or after the per-VMA loop: no VMA to name.
  const bool no_vma =
      r.failed_step == "mm_init" || r.failed_step == "mt_dup" || r.failed_step == "arch_dup_mmap";
  j["failed_step"] = r.failed_step;
  j["failed_vma"] = no_vma ? nlohmann::json(nullptr) : nlohmann::json(hex(r.failed_vma));
  j["failure_point"] =
      r.has_failure_point ? nlohmann::json(hex(r.failure_point)) : nlohmann::json(nullptr);
  j["tree_max"] = hex(r.tree_max);
  j["xa_zero"] = r.xa_zero_stored ? nlohmann::json{{"first", hex(r.xa_zero_first)},
                                                   {"last", hex(r.xa_zero_last)}}
                                  : nlohmann::json(nullptr);
  j["torn_down"] = r.torn_down;
  j["recovery_note"] = r.recovery_note;
  j["child_flags"] = flag_names(r.child_flags);
  j["child_mm_users"] = r.child_mm_users;
  j["child_mm_count"] = r.child_mm_count;
  j["errors"] = r.errors;
  j["exit_mmap"] = r.exited ? nlohmann::json(r.exit) : nlohmann::json(nullptr);
}

}  // namespace mmemu
