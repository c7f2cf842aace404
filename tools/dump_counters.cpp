// Counter dumps: per-mm page counts and the machine's live objects, injector and frames.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "tools/dump.hpp"
#include "vma/fork_report.hpp"

namespace mmemu::dump {

std::string mm_counters_text(const Mm& mm) {
  const PageTable& pt = mm.pt();
  return fmt::format(
      "counters of mm {} ({}): mm_users {}, mm_count {}, map_count {}, total_vm {}, locked_vm {}, "
      "pinned_vm {}, data_vm "
      "{}, exec_vm {}, stack_vm {}\n"
      "  rss anon {}, file {}, shmem {}, swap {}; tables {} (pgd {}, pud {}, pmd {}, pte {}); "
      "flags {}\n",
      mm.id(), arch_name(mm.arch()), mm.mm_users, mm.mm_count, mm.map_count, mm.total_vm,
      mm.locked_vm, mm.pinned_vm, mm.data_vm, mm.exec_vm, mm.stack_vm, mm.rss[MM_ANONPAGES],
      mm.rss[MM_FILEPAGES], mm.rss[MM_SHMEMPAGES], mm.rss[MM_SWAPENTS], pt.nr_tables_total(),
      pt.nr_tables(Level::Pgd), pt.nr_tables(Level::Pud), pt.nr_tables(Level::Pmd),
      pt.nr_tables(Level::Pte), mmf_flag_names(mm.flags));
}

json mm_counters_json(const Mm& mm) {
  const PageTable& pt = mm.pt();
  return {{"mm", mm.id()},
          {"mm_users", mm.mm_users},
          {"mm_count", mm.mm_count},
          {"map_count", mm.map_count},
          {"total_vm", mm.total_vm},
          {"locked_vm", mm.locked_vm},
          {"pinned_vm", mm.pinned_vm},
          {"data_vm", mm.data_vm},
          {"exec_vm", mm.exec_vm},
          {"stack_vm", mm.stack_vm},
          {"rss",
           {{"anon", mm.rss[MM_ANONPAGES]},
            {"file", mm.rss[MM_FILEPAGES]},
            {"shmem", mm.rss[MM_SHMEMPAGES]},
            {"swap", mm.rss[MM_SWAPENTS]}}},
          {"tables",
           {{"total", pt.nr_tables_total()},
            {"pgd", pt.nr_tables(Level::Pgd)},
            {"pud", pt.nr_tables(Level::Pud)},
            {"pmd", pt.nr_tables(Level::Pmd)},
            {"pte", pt.nr_tables(Level::Pte)}}},
          {"flags", mmf_flag_names(mm.flags)}};
}

std::string machine_counters_text(const Machine& m) {
  std::string live, inj;
  for (AllocSite s : kAllAllocSites) {
    live += fmt::format("{}{} {} (peak {})", live.empty() ? "" : ", ", site_name(s), m.live.live(s),
                        m.live.peak(s));
    inj += fmt::format("{}{} {}/{}", inj.empty() ? "" : ", ", site_name(s), m.inject.attempts(s),
                       m.inject.failures(s));
  }
  return fmt::format(
      "machine: live {}\n"
      "  allocations/injected failures: {}\n"
      "  phys frames {} ({} MiB), free {}\n",
      live, inj, m.phys.nr_frames(), m.phys.size_bytes() >> 20, m.phys.nr_free());
}

json machine_counters_json(const Machine& m) {
  json live = json::object(), peak = json::object(), att = json::object(), fail = json::object();
  for (AllocSite s : kAllAllocSites) {
    const std::string n(site_name(s));
    live[n] = m.live.live(s);
    peak[n] = m.live.peak(s);
    att[n] = m.inject.attempts(s);
    fail[n] = m.inject.failures(s);
  }
  return {{"live", live},
          {"peak", peak},
          {"attempts", att},
          {"failures", fail},
          {"phys", {{"frames", m.phys.nr_frames()}, {"free", m.phys.nr_free()}}},
          {"unknown_frees", m.live.unknown_frees()}};
}

namespace {

// Frames and tables are keyed by frame number; other objects by a host address, which is
// not shown (it changes from run to run).
bool keyed_by_pfn(AllocSite s) {
  return s == AllocSite::Page || s == AllocSite::PgTable;
}

struct Group {
  std::size_t count = 0;
  std::uint64_t first_attempt = ~0ULL;
  std::vector<std::uint64_t> pfns;
};

std::string pfn_list(std::vector<std::uint64_t> pfns) {
  std::sort(pfns.begin(), pfns.end());
  std::string s;
  for (std::size_t i = 0; i < pfns.size();) {
    std::size_t j = i;
    while (j + 1 < pfns.size() && pfns[j + 1] == pfns[j] + 1)
      ++j;
    s += s.empty() ? "" : " ";
    s += j == i ? fmt::format("{:#x}", pfns[i]) : fmt::format("{:#x}..{:#x}", pfns[i], pfns[j]);
    i = j + 1;
  }
  return s;
}

// site -> context -> group, in the order contexts first allocated.
std::vector<std::pair<AllocSite, std::vector<std::pair<std::string, Group>>>> grouped(
    const Machine& m, const std::set<pfn_t>& held) {
  std::vector<std::pair<AllocSite, std::vector<std::pair<std::string, Group>>>> out;
  for (AllocSite s : kAllAllocSites) {
    std::map<std::string, Group> g;
    for (const auto& r : m.live.records(s)) {
      if (s == AllocSite::Page && held.contains(r.key)) continue;
      Group& gr = g[r.context];
      ++gr.count;
      gr.first_attempt = std::min(gr.first_attempt, r.attempt);
      if (keyed_by_pfn(s)) gr.pfns.push_back(r.key);
    }
    std::vector<std::pair<std::string, Group>> v(g.begin(), g.end());
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.second.first_attempt < b.second.first_attempt;
    });
    if (!v.empty()) out.emplace_back(s, std::move(v));
  }
  return out;
}

}  // namespace

std::string live_objects_text(const Machine& m, const std::set<pfn_t>& held,
                              std::size_t max_groups) {
  std::string out;
  for (const auto& [site, groups] : grouped(m, held)) {
    std::size_t n = 0;
    for (const auto& [ctx, g] : groups)
      n += g.count;
    out += fmt::format("{}: {} live\n", site_name(site), n);
    std::size_t shown = 0, rest = 0;
    for (const auto& [ctx, g] : groups) {
      if (shown++ >= max_groups) {
        rest += g.count;
        continue;
      }
      out +=
          fmt::format("  {} from {} (first at allocation #{})", g.count,
                      ctx.empty() ? std::string("(no context)") : "'" + ctx + "'", g.first_attempt);
      if (!g.pfns.empty()) out += ": frames " + pfn_list(g.pfns);
      out += "\n";
    }
    if (rest)
      out +=
          fmt::format("  ... {} more from {} other contexts\n", rest, groups.size() - max_groups);
  }
  return out;
}

json live_objects_json(const Machine& m, const std::set<pfn_t>& held) {
  json out = json::array();
  for (const auto& [site, groups] : grouped(m, held)) {
    for (const auto& [ctx, g] : groups) {
      json pf = json::array();
      for (auto p : g.pfns)
        pf.push_back(hex(p));
      out.push_back({{"site", site_name(site)},
                     {"context", ctx},
                     {"count", g.count},
                     {"first_attempt", g.first_attempt},
                     {"frames", pf}});
    }
  }
  return out;
}

}  // namespace mmemu::dump
