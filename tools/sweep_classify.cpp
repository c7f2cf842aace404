// `mmemu sweep`'s outcome classification (sweep_classify.hpp).
#include "tools/sweep_classify.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mmemu::sweep {

using json = nlohmann::json;

const std::vector<std::string>& all_outcomes() {
  static const std::vector<std::string> v{"ok",   "enomem",    "guest-error", "signal",
                                          "leak", "invariant", "crash",       "hang"};
  return v;
}

bool is_failure(const std::string& outcome) {
  return outcome == "leak" || outcome == "invariant" || outcome == "crash" || outcome == "hang";
}

namespace {

// Each line of `text` that is a JSON object for which `pick` says yes; the last one.
template <class Pick>
std::optional<json> last_object(const std::string& text, Pick pick) {
  std::istringstream in(text);
  std::optional<json> found;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() != '{') continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && pick(j)) found = std::move(j);
  }
  return found;
}

std::uint64_t count(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

}  // namespace

std::optional<RunReport> parse_run_report(const std::string& text) {
  const auto j = last_object(text, [](const json& o) {
    return o.contains("stats") && o.contains("exit_status") && o["exit_status"].is_number_integer();
  });
  if (!j) return std::nullopt;
  RunReport r;
  r.exit_status = (*j)["exit_status"].get<int>();
  if (const auto ws = j->find("wait_status"); ws != j->end() && ws->is_number_integer()) {
    const int w = ws->get<int>();
    if ((w & 0x7f) != 0 && (w & 0x7f) != 0x7f) r.guest_signal = w & 0x7f;
  }
  if (const auto ps = j->find("problems"); ps != j->end() && ps->is_array())
    for (const json& p : *ps)
      if (p.is_object() && p.value("kind", json()).is_string())
        r.problems.emplace_back(p["kind"].get<std::string>(), p.value("message", std::string()));
  const json& stats = (*j)["stats"];
  if (stats.is_object()) {
    r.enomem = count(stats, "syscalls_enomem");
    r.injected = count(stats, "inject");
  }
  return r;
}

std::optional<RunReport> parse_script_report(const std::string& text) {
  const auto j = last_object(text, [](const json& o) {
    return o.value("cmd", json()) == "end" && o.contains("exit_status") &&
           o["exit_status"].is_number_integer();
  });
  if (!j) return std::nullopt;
  RunReport r;
  r.exit_status = (*j)["exit_status"].get<int>();
  if (j->value("leaked", false)) r.problems.emplace_back("leak", "objects still allocated");
  if (j->value("invariants_broken", false))
    r.problems.emplace_back("invariant", "invariants broken");
  if (count(*j, "freed_in_use") > 0)
    r.problems.emplace_back(
        "invariant", fmt::format("{} page table(s) freed while in use", count(*j, "freed_in_use")));
  r.enomem = count(*j, "enomem_steps");
  if (const auto a = j->find("attempts"); a != j->end() && a->is_object())
    for (const auto& [site, n] : a->items())
      if (n.is_number_unsigned()) r.attempts[site] = n.get<std::uint64_t>();
  return r;
}

Verdict classify(const WorkerResult& w, const std::optional<RunReport>& report,
                 std::uint64_t baseline_enomem, bool script) {
  if (w.timed_out) return {"hang", std::nullopt, "timed out"};
  if (w.spawn_failed) return {"crash", std::nullopt, "the worker could not be started"};
  if (w.signaled) return {"crash", std::nullopt, fmt::format("mmemu died of signal {}", w.signal)};
  const int status = w.exit_code;
  if (!report) {
    // A script stops at a step that cannot run (a variable a failed mmap left unset):
    // status 2, and no end summary. The script's own way of failing.
    if (script && status == 2) return {"guest-error", status, "the script stopped at an error"};
    return {"crash", status, fmt::format("exit status {} without a summary", status)};
  }
  if (report->exit_status != status)
    return {"crash", status,
            fmt::format("exit status {} but the summary says {}", status, report->exit_status)};
  auto first = [&](const char* kind) -> const std::string* {
    for (const auto& [k, m] : report->problems)
      if (k == kind) return &m;
    return nullptr;
  };
  if (const std::string* m = first("invariant")) return {"invariant", status, *m};
  if (const std::string* m = first("leak")) return {"leak", status, *m};
  if (const std::string* m = first("deadlock")) return {"hang", status, *m};
  if (!report->problems.empty())
    return {"invariant", status, report->problems.front().second};  // a kind not known here
  if (status == 70) return {"crash", status, "exit status 70 without a problem"};
  if (report->guest_signal)
    return {"signal", status, fmt::format("killed by signal {}", report->guest_signal)};
  if (status == 0) {
    if (report->enomem > baseline_enomem)
      return {"enomem", status,
              fmt::format("{} ENOMEM{}", report->enomem - baseline_enomem,
                          script ? " step(s)" : " system call(s)")};
    return {"ok", status, ""};
  }
  return {"guest-error", status, ""};
}

}  // namespace mmemu::sweep
