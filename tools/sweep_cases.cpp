// `mmemu sweep`'s case list and shards (sweep_cases.hpp).
#include "tools/sweep_cases.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace mmemu::sweep {

std::string Shard::text() const {
  return fmt::format("{}/{}", index, count);
}

const std::vector<std::string>& all_sites() {
  static const std::vector<std::string> v{"vma",     "anon_vma", "maple_node",
                                          "pgtable", "page",     "fatal_signal"};
  return v;
}

const std::vector<std::string>& all_recoveries() {
  static const std::vector<std::string> v{"xa-zero", "tree-max", "partial"};
  return v;
}

std::optional<std::vector<std::string>> parse_name_list(std::string_view spec,
                                                        const std::vector<std::string>& known,
                                                        std::string* bad) {
  if (spec == "all") return known;
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= spec.size();) {
    const std::size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string name(spec.substr(at, comma - at));
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      if (bad) *bad = name;
      return std::nullopt;
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    at = comma + 1;
  }
  return out;
}

std::optional<Shard> parse_shard(std::string_view spec) {
  const std::size_t slash = spec.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<std::size_t> {
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  const auto i = number(spec.substr(0, slash)), n = number(spec.substr(slash + 1));
  if (!i || !n || *i < 1 || *i > *n) return std::nullopt;
  return Shard{*i, *n};
}

std::vector<Case> build_cases(const std::vector<std::pair<std::string, std::uint64_t>>& counts,
                              const std::vector<std::string>& recoveries) {
  std::vector<Case> out;
  for (const auto& [site, n] : counts)
    for (std::uint64_t nth = 1; nth <= n; ++nth)
      for (const std::string& r : recoveries)
        out.push_back(Case{out.size(), site, nth, r});
  return out;
}

std::vector<Case> shard_cases(const std::vector<Case>& all, Shard shard) {
  std::vector<Case> out;
  for (const Case& c : all)
    if (c.index % shard.count == shard.index - 1) out.push_back(c);
  return out;
}

}  // namespace mmemu::sweep
