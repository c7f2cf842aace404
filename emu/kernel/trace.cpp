// The run's sinks: the log (mmemu's messages), the stats counters and the JSON-lines trace,
// and the JSON of the exit_mmap report it carries.
#include "emu/kernel/trace.hpp"

#include <fmt/format.h>

#include <iostream>

#include "vma/mm.hpp"

namespace mmemu {

void to_json(nlohmann::json& j, const ExitMmapReport& r) {
  j = {{"vmas_removed", r.vmas_removed},
       {"map_count", r.map_count},
       {"nr_accounted", r.nr_accounted},
       {"met_xa_zero", r.met_xa_zero},
       {"empty", r.empty},
       {"pages_freed", r.pages_freed},
       {"tables_freed", r.tables_freed}};
}

void to_json(nlohmann::json& j, const FreedInUseTable& t) {
  const auto hex = [](std::uint64_t v) { return fmt::format("{:#x}", v); };
  nlohmann::json entries = nlohmann::json::array();
  for (const LiveEntry& e : t.entries)
    entries.push_back({{"va", hex(e.va)},
                       {"level", level_name(e.level)},
                       {"pfn", hex(e.pfn)},
                       {"entry", hex(e.entry)},
                       {"present", e.present},
                       {"guard", e.guard},
                       {"owner", e.owner}});
  j = {{"mm", t.mm},
       {"level", level_name(t.level)},
       {"pfn", hex(t.table)},
       {"start", hex(t.start)},
       {"last", hex(t.end - 1)},
       {"free_pgd_range",
        {{"addr", hex(t.args.addr)},
         {"end", hex(t.args.end)},
         {"floor", hex(t.args.floor)},
         {"ceiling", hex(t.args.ceiling)}}},
       {"entries", entries},
       {"chain", t.chain}};
}

std::ostream& Log::stream() {
  return out_ ? *out_ : std::cerr;
}

void Log::msg(std::string_view line) {
  std::ostream& o = stream();
  o << "mmemu: " << line << '\n';
  o.flush();
}

void Stats::add(std::string_view key, std::uint64_t n) {
  auto it = counts_.find(key);
  if (it == counts_.end()) {
    counts_.emplace(std::string(key), n);
  } else {
    it->second += n;
  }
}

std::uint64_t Stats::get(std::string_view key) const {
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

void Trace::emit(std::string_view ev, int pid, nlohmann::json fields) {
  if (!on()) return;
  nlohmann::json j = nlohmann::json::object();
  j["seq"] = ++seq_;
  j["ev"] = ev;
  j["pid"] = pid;
  for (auto& [k, v] : fields.items())
    j[k] = std::move(v);
  if (sink_)
    sink_->event(j);
  else
    *out_ << j.dump() << '\n';
}

}  // namespace mmemu
