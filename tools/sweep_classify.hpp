// The outcome of one `mmemu sweep` case, from how its worker ended and the structured
// summary it wrote: `mmemu run --stats --format json` (the stats line), or `mmemu script
// --format json` (the "end" line). A report that is missing or does not parse is an
// outcome too (crash), never an error.
//
// Outcomes, in the order reports list them:
//   ok           no failure reached the program, or it coped (exit 0, no new ENOMEM)
//   enomem       the program saw ENOMEM (more system calls, or script steps, returned it than
//                in the clean run) and still exited 0
//   guest-error  the program exited nonzero on its own (a script: an expect failed, or a
//                step could not run)
//   signal       the program was killed by a signal
//   leak         objects left allocated at the end
//   invariant    a broken invariant or a page table freed while in use
//   crash        mmemu itself died (a signal), or ended without its summary or with a
//                status its summary does not explain
//   hang         the case outlived --timeout, or mmemu found every process blocked for good
// The last four are failures: the sweep exits 1 when any case has one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/sweep_worker.hpp"

namespace mmemu::sweep {

const std::vector<std::string>& all_outcomes();
bool is_failure(const std::string& outcome);

// What one run's summary says.
struct RunReport {
  int exit_status = -1;
  int guest_signal = 0;  // the initial process died of this signal (run only)
  std::vector<std::pair<std::string, std::string>> problems;  // (kind, message)
  std::uint64_t enomem = 0;                       // system calls / script steps given ENOMEM
  std::map<std::string, std::uint64_t> attempts;  // per injection site (script only)
  std::uint64_t injected = 0;                     // failures injected (run only)
};

// The stats line of `mmemu run --stats --format json --out FILE` in FILE's text.
std::optional<RunReport> parse_run_report(const std::string& text);
// The last {"cmd":"end",...} line of `mmemu script --format json` output.
std::optional<RunReport> parse_script_report(const std::string& text);

struct Verdict {
  std::string outcome;
  std::optional<int> exit_status;  // mmemu's exit status, when it exited
  std::string detail;              // the first problem, or why it is a crash
};

// `baseline_enomem`: the clean run's count, so that a program's own ENOMEM is not the
// injection's.
Verdict classify(const WorkerResult& w, const std::optional<RunReport>& report,
                 std::uint64_t baseline_enomem, bool script);

}  // namespace mmemu::sweep
