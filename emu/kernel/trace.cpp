// The run's sinks: the log (mmemu's messages), the stats counters and the JSON-lines trace,
// and the JSON of the exit_mmap report it carries.
#include "emu/kernel/trace.hpp"

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
  if (!out_) return;
  nlohmann::json j = nlohmann::json::object();
  j["seq"] = ++seq_;
  j["ev"] = ev;
  j["pid"] = pid;
  for (auto& [k, v] : fields.items())
    j[k] = std::move(v);
  *out_ << j.dump() << '\n';
}

}  // namespace mmemu
