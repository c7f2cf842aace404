// `mmemu sweep`'s report: rendering, parsing and merging (sweep_report.hpp).
#include "tools/sweep_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tools/sweep_classify.hpp"

namespace mmemu::sweep {

using json = nlohmann::json;

namespace {

json case_json(const CaseResult& r) {
  json j{{"case", r.c.index},
         {"site", r.c.site},
         {"nth", r.c.nth},
         {"recovery", r.c.recovery},
         {"outcome", r.outcome},
         {"exit_status", r.exit_status ? json(*r.exit_status) : json()},
         {"function", r.function ? json(*r.function) : json()},
         {"addr", r.addr ? json(*r.addr) : json()},
         {"repro", r.repro}};
  if (!r.detail.empty()) j["detail"] = r.detail;
  return j;
}

std::map<std::string, std::size_t> outcome_counts(const Report& r) {
  std::map<std::string, std::size_t> n;
  for (const CaseResult& c : r.cases)
    ++n[c.outcome];
  return n;
}

std::size_t failures(const Report& r) {
  return static_cast<std::size_t>(std::count_if(
      r.cases.begin(), r.cases.end(), [](const CaseResult& c) { return is_failure(c.outcome); }));
}

// "1-24, 26, 30-31"
std::string ranges(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string s;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1)
      ++j;
    s += (s.empty() ? "" : ",") +
         (j == i ? fmt::format("{}", v[i]) : fmt::format("{}-{}", v[i], v[j]));
    i = j + 1;
  }
  return s;
}

std::string summary_line(const Report& r) {
  std::string s = fmt::format("{} case{}", r.cases.size(), r.cases.size() == 1 ? "" : "s");
  const auto n = outcome_counts(r);
  std::string parts;
  for (const std::string& o : all_outcomes())
    if (n.contains(o)) parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", n.at(o), o);
  if (!parts.empty()) s += ": " + parts;
  const std::size_t f = failures(r);
  s += f ? fmt::format("; {} failure{} (leak, invariant, crash, hang)", f, f == 1 ? "" : "s")
         : "; no failures";
  return s;
}

}  // namespace

int exit_status_of(const Report& r) {
  return failures(r) ? 1 : 0;
}

std::string render_json(const Report& r) {
  std::string out;
  for (const CaseResult& c : r.cases)
    out += case_json(c).dump() + '\n';
  json outcomes = json::object();
  for (const auto& [o, n] : outcome_counts(r))
    outcomes[o] = n;
  const json summary{{"summary",
                      {{"sweep", r.info.sweep},
                       {"shard", r.info.shard.text()},
                       {"cases", r.cases.size()},
                       {"total_cases", r.info.total_cases},
                       {"outcomes", outcomes},
                       {"failures", failures(r)},
                       {"exit_status", exit_status_of(r)}}}};
  out += summary.dump() + '\n';
  return out;
}

std::string render_text(const Report& r) {
  std::string out = fmt::format("mmemu sweep: {}\n", r.info.sweep);
  if (r.info.shard.count > 1)
    out += fmt::format("shard {}: {} of the {} cases\n", r.info.shard.text(), r.cases.size(),
                       r.info.total_cases);
  // Groups in the order of the case list's sites, then of the outcomes.
  std::vector<std::string> sites;
  for (const CaseResult& c : r.cases)
    if (std::find(sites.begin(), sites.end(), c.c.site) == sites.end()) sites.push_back(c.c.site);
  out += fmt::format("{:<13}{:<12}{:>6}  {:<24}  {:<28}  {}\n", "site", "outcome", "cases",
                     "recoveries", "calls", "attempts");
  for (const std::string& site : sites) {
    for (const std::string& o : all_outcomes()) {
      std::vector<std::uint64_t> nths;
      std::vector<std::string> recs, calls;
      std::map<std::string, std::size_t> call_n;
      std::size_t n = 0;
      for (const CaseResult& c : r.cases) {
        if (c.c.site != site || c.outcome != o) continue;
        ++n;
        nths.push_back(c.c.nth);
        if (std::find(recs.begin(), recs.end(), c.c.recovery) == recs.end())
          recs.push_back(c.c.recovery);
        const std::string f = c.function.value_or("?");
        if (call_n[f]++ == 0) calls.push_back(f);
      }
      if (n == 0) continue;
      std::string rec_s, call_s;
      for (const std::string& x : recs)
        rec_s += (rec_s.empty() ? "" : ",") + x;
      for (const std::string& f : calls)
        call_s += (call_s.empty() ? "" : ",") + f;
      out += fmt::format("{:<13}{:<12}{:>6}  {:<24}  {:<28}  {}\n", site, o, n, rec_s, call_s,
                         ranges(nths));
    }
  }
  // Each failure with its repro, the first kMaxListed of them (JSON lists them all).
  constexpr std::size_t kMaxListed = 20;
  std::size_t listed = 0;
  for (const CaseResult& c : r.cases) {
    if (!is_failure(c.outcome)) continue;
    if (listed++ == 0) out += "failures:\n";
    if (listed > kMaxListed) continue;
    out += fmt::format(
        "  {}:{} {} {} (exit {}) in {}{}{}\n    {}\n", c.c.site, c.c.nth, c.c.recovery, c.outcome,
        c.exit_status ? fmt::format("{}", *c.exit_status) : "-", c.function.value_or("?"),
        c.addr ? " at " + *c.addr : "", c.detail.empty() ? "" : ": " + c.detail, c.repro);
  }
  if (listed > kMaxListed)
    out += fmt::format("  [... {} more; --format json lists every case]\n", listed - kMaxListed);
  out += "summary: " + summary_line(r) + '\n';
  return out;
}

std::expected<Report, std::string> parse_report(const std::string& text, const std::string& name) {
  Report r;
  bool have_summary = false;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    const json j = json::parse(line, nullptr, false);
    auto bad = [&](const std::string& what) {
      return std::unexpected(fmt::format("{}:{}: {}", name, line_no, what));
    };
    if (j.is_discarded() || !j.is_object())
      return bad("not a JSON object (expected `mmemu sweep --format json` output)");
    if (have_summary) return bad("a line after the summary");
    if (const auto s = j.find("summary"); s != j.end()) {
      const json& sj = *s;
      if (!sj.is_object() || !sj.value("sweep", json()).is_string() ||
          !sj.value("shard", json()).is_string() ||
          !sj.value("total_cases", json()).is_number_unsigned())
        return bad("a summary without sweep, shard and total_cases");
      const auto shard = parse_shard(sj["shard"].get<std::string>());
      if (!shard) return bad("a summary whose shard is not I/N");
      r.info = {sj["sweep"].get<std::string>(), *shard, sj["total_cases"].get<std::size_t>()};
      have_summary = true;
      continue;
    }
    CaseResult c;
    try {
      c.c.index = j.at("case").get<std::size_t>();
      c.c.site = j.at("site").get<std::string>();
      c.c.nth = j.at("nth").get<std::uint64_t>();
      c.c.recovery = j.at("recovery").get<std::string>();
      c.outcome = j.at("outcome").get<std::string>();
      if (!j.at("exit_status").is_null()) c.exit_status = j["exit_status"].get<int>();
      if (!j.at("function").is_null()) c.function = j["function"].get<std::string>();
      if (!j.at("addr").is_null()) c.addr = j["addr"].get<std::string>();
      c.repro = j.at("repro").get<std::string>();
      c.detail = j.value("detail", std::string());
    } catch (const json::exception&) {
      return bad(
          "a case without case, site, nth, recovery, outcome, exit_status, function, "
          "addr and repro");
    }
    if (std::find(all_outcomes().begin(), all_outcomes().end(), c.outcome) == all_outcomes().end())
      return bad("unknown outcome '" + c.outcome + "'");
    r.cases.push_back(std::move(c));
  }
  if (!have_summary) return std::unexpected(name + ": no summary line (an incomplete report?)");
  for (const CaseResult& c : r.cases)
    if (c.c.index >= r.info.total_cases || c.c.index % r.info.shard.count != r.info.shard.index - 1)
      return std::unexpected(fmt::format("{}: case {} does not belong to shard {} of {} cases",
                                         name, c.c.index, r.info.shard.text(), r.info.total_cases));
  return r;
}

std::expected<Report, std::string> merge_reports(const std::vector<Report>& parts,
                                                 const std::vector<std::string>& names) {
  if (parts.empty()) return std::unexpected(std::string("nothing to merge"));
  const SweepInfo& first = parts.front().info;
  std::map<std::size_t, std::string> shard_from;  // shard index -> file
  std::map<std::size_t, std::string> case_from;   // case index -> file
  Report out;
  out.info = {first.sweep, Shard{1, 1}, first.total_cases};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const SweepInfo& in = parts[i].info;
    if (in.sweep != first.sweep)
      return std::unexpected(fmt::format("{} is of another sweep than {}: '{}' vs '{}'", names[i],
                                         names[0], in.sweep, first.sweep));
    if (in.shard.count != first.shard.count || in.total_cases != first.total_cases)
      return std::unexpected(fmt::format(
          "{} is shard {} of {} cases, {} is shard {} of {}: not the same split", names[i],
          in.shard.text(), in.total_cases, names[0], first.shard.text(), first.total_cases));
    if (const auto [it, fresh] = shard_from.emplace(in.shard.index, names[i]); !fresh)
      return std::unexpected(fmt::format("{} and {} are both shard {}: overlapping shards",
                                         it->second, names[i], in.shard.text()));
    for (const CaseResult& c : parts[i].cases) {
      if (const auto [it, fresh] = case_from.emplace(c.c.index, names[i]); !fresh)
        return std::unexpected(fmt::format("case {} is in {} and {}: overlapping shards", c.c.index,
                                           it->second, names[i]));
      out.cases.push_back(c);
    }
  }
  for (std::size_t s = 1; s <= first.shard.count; ++s)
    if (!shard_from.contains(s))
      return std::unexpected(fmt::format("shard {}/{} is missing", s, first.shard.count));
  if (out.cases.size() != first.total_cases)
    return std::unexpected(fmt::format("the shards hold {} of the sweep's {} cases",
                                       out.cases.size(), first.total_cases));
  std::sort(out.cases.begin(), out.cases.end(),
            [](const CaseResult& a, const CaseResult& b) { return a.c.index < b.c.index; });
  return out;
}

}  // namespace mmemu::sweep
