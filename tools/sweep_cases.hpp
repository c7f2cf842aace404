// The case list of `mmemu sweep`: one case per (site, attempt, recovery), in a fixed order
// (sites as given, attempts 1..count, recoveries as given), and the deterministic 1/N of
// it that one shard runs. Nothing here runs anything; parsing failures are nullopt (the
// caller words the usage error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mmemu::sweep {

struct Case {
  std::size_t index = 0;  // position in the whole sweep's list (not the shard's)
  std::string site;       // an injection site name ("vma", ..., "fatal_signal")
  std::uint64_t nth = 0;  // the attempt at `site` that fails, counted as --inject counts
  std::string recovery;   // "xa-zero", "tree-max" or "partial"
};

// 1-based shard I of N.
struct Shard {
  std::size_t index = 1;
  std::size_t count = 1;
  std::string text() const;  // "I/N"
};

// Every injection site a sweep can name, in their canonical order, and the recoveries.
const std::vector<std::string>& all_sites();
const std::vector<std::string>& all_recoveries();

// "a,b,c" or "all" over `known`: the names in the order given, each once. nullopt (and
// *bad = the offending item) for an unknown or empty name.
std::optional<std::vector<std::string>> parse_name_list(std::string_view spec,
                                                        const std::vector<std::string>& known,
                                                        std::string* bad);
// "I/N" with 1 <= I <= N.
std::optional<Shard> parse_shard(std::string_view spec);

// The whole sweep: `counts` holds (site, attempts counted by the clean run) in site order.
std::vector<Case> build_cases(const std::vector<std::pair<std::string, std::uint64_t>>& counts,
                              const std::vector<std::string>& recoveries);
// The cases whose index mod N is I-1: the shards of one list are disjoint and cover it.
std::vector<Case> shard_cases(const std::vector<Case>& all, Shard shard);

}  // namespace mmemu::sweep
