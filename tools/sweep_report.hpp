// The report of `mmemu sweep`: one result per case, rendered as JSON lines (one object per
// case, then one {"summary": ...} object) or as a text table grouped by site and outcome;
// read back from JSON and merged across shards (`mmemu sweep --merge`). A report that
// does not parse, or shards that do not fit together, are errors with a message naming
// the file and what is wrong; nothing is merged then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "tools/sweep_cases.hpp"

namespace mmemu::sweep {

struct CaseResult {
  Case c;
  std::string outcome;
  std::optional<int> exit_status;
  std::optional<std::string> function;  // the kernel function that made the failed attempt
  std::optional<std::string> addr;      // the address (or VMA) it was for
  std::string repro;                    // the shell command that runs this case alone
  std::string detail;
};

// What identifies a sweep: its command (program, arguments, options that change cases),
// the shard and the size of the whole case list.
struct SweepInfo {
  std::string sweep;
  Shard shard;
  std::size_t total_cases = 0;
};

struct Report {
  SweepInfo info;
  std::vector<CaseResult> cases;  // by case index
};

std::string render_json(const Report& r);
std::string render_text(const Report& r);
// 0 when no case is a failure (sweep_classify.hpp), 1 otherwise.
int exit_status_of(const Report& r);

// One file's report (`name` for messages).
std::expected<Report, std::string> parse_report(const std::string& text, const std::string& name);
// The shards of one sweep as one report, as the unsharded sweep would have printed it.
// Refused: different sweeps or shard counts, a shard twice, a case twice, a missing shard.
std::expected<Report, std::string> merge_reports(const std::vector<Report>& parts,
                                                 const std::vector<std::string>& names);

}  // namespace mmemu::sweep
