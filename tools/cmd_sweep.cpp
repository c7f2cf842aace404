// `mmemu sweep`: fails every allocation attempt of a program (or .mms script) in turn, one
// worker process per (site, attempt, recovery), and reports how each case ended
// (tools/sweep_*.hpp hold the pieces: the case list and shards, the workers, the
// classification, the report).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tools/commands.hpp"
#include "tools/sweep_cases.hpp"
#include "tools/sweep_classify.hpp"
#include "tools/sweep_report.hpp"
#include "tools/sweep_worker.hpp"

namespace mmemu::cli {

namespace {

namespace fs = std::filesystem;
using namespace mmemu::sweep;
using json = nlohmann::json;

constexpr int kExitUsage = 2;

struct SweepArgs {
  std::vector<std::string> pass;  // run (or script) options handed to every worker
  std::vector<std::string> sites = all_sites();
  std::vector<std::string> recoveries = all_recoveries();
  std::string from = "start";
  unsigned jobs = std::max(1U, std::thread::hardware_concurrency());
  Shard shard;
  double timeout = 60;
  bool json = false;
  bool merge = false;
  std::vector<std::string> rest;  // PROGRAM ARGS, or the --merge files
  std::string spec_sites = "all", spec_recovery = "all";
};

// Options of `mmemu run` (and `mmemu script`) that each worker gets as given: name ->
// takes a value. Their values are checked by the clean run, as `mmemu run` checks them.
const std::map<std::string, bool, std::less<>>& run_passthrough() {
  static const std::map<std::string, bool, std::less<>> m{
      {"--phys-mem", true},  {"--seed", true},   {"--vsyscall", true},  {"--walkers", true},
      {"--walker-at", true}, {"--slice", true},  {"--env", true},       {"--uid", true},
      {"--gid", true},       {"--check", false}, {"--clear-env", false}};
  return m;
}
const std::map<std::string, bool, std::less<>>& script_passthrough() {
  static const std::map<std::string, bool, std::less<>> m{
      {"--arch", true}, {"--phys-mem", true}, {"--check", false}};
  return m;
}
// Options the sweep sets itself for each case.
bool sweep_owned(std::string_view o) {
  for (std::string_view x :
       {"--inject", "--inject-from", "--inject-random", "--fork-recovery", "--stats", "--out",
        "--trace", "--log", "--dump-pgtables", "--list-allocations"})
    if (o == x) return true;
  return false;
}

bool usage(const std::string& msg) {
  std::cerr << "mmemu sweep: " << msg << '\n';
  return false;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (const std::string& x : v)
    s += (s.empty() ? "" : std::string(sep)) + x;
  return s;
}

bool is_script(const std::vector<std::string>& rest) {
  return !rest.empty() && rest.front().ends_with(".mms");
}

// Reads the command line after `sweep`; false after a one-line usage error.
bool parse_args(std::vector<std::string> argv, SweepArgs& a) {
  std::size_t i = 0;
  std::vector<std::pair<std::string, std::string>> pass;  // (option, value or "")
  for (; i < argv.size(); ++i) {
    std::string opt = argv[i];
    if (opt == "--") {
      ++i;
      break;
    }
    if (!opt.starts_with('-') || opt == "-") break;
    std::optional<std::string> inline_value;
    if (const std::size_t eq = opt.find('='); opt.starts_with("--") && eq != std::string::npos) {
      inline_value = opt.substr(eq + 1);
      opt.resize(eq);
    }
    auto value = [&](std::string& out) {
      if (inline_value) {
        out = *inline_value;
        return true;
      }
      if (i + 1 >= argv.size()) return usage(opt + ": expected a value");
      out = argv[++i];
      return true;
    };
    std::string v;
    if (opt == "--merge") {
      a.merge = true;
      continue;
    }
    if (opt == "--sites") {
      if (!value(v)) return false;
      std::string bad;
      auto s = parse_name_list(v, all_sites(), &bad);
      if (!s)
        return usage(fmt::format("--sites {}: unknown site '{}' (expected {}, or all)", v, bad,
                                 join(all_sites(), ", ")));
      a.sites = *s;
      a.spec_sites = v;
    } else if (opt == "--recovery") {
      if (!value(v)) return false;
      std::string bad;
      auto r = parse_name_list(v, all_recoveries(), &bad);
      if (!r)
        return usage(fmt::format("--recovery {}: unknown recovery '{}' (expected {}, or all)", v,
                                 bad, join(all_recoveries(), ", ")));
      a.recoveries = *r;
      a.spec_recovery = v;
    } else if (opt == "--from") {
      if (!value(v)) return false;
      int k = 0;
      const bool fork_k = v.starts_with("fork:") && [&] {
        const auto [end, ec] = std::from_chars(v.data() + 5, v.data() + v.size(), k);
        return ec == std::errc() && end == v.data() + v.size() && k >= 1;
      }();
      if (v != "start" && !fork_k)
        return usage(fmt::format("--from {}: expected start or fork:K (K >= 1)", v));
      a.from = v;
    } else if (opt == "-j" || opt == "--jobs") {
      if (!value(v)) return false;
      unsigned n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < 1 || n > 1024)
        return usage(fmt::format("{} {}: expected a number of workers from 1 to 1024", opt, v));
      a.jobs = n;
    } else if (opt.starts_with("-j") && opt.size() > 2 && !opt.starts_with("--")) {
      argv.insert(argv.begin() + static_cast<std::ptrdiff_t>(i) + 1, opt.substr(2));
      argv[i] = "-j";
      --i;
    } else if (opt == "--shard") {
      if (!value(v)) return false;
      const auto s = parse_shard(v);
      if (!s) return usage(fmt::format("--shard {}: expected I/N with 1 <= I <= N", v));
      a.shard = *s;
    } else if (opt == "--timeout") {
      if (!value(v)) return false;
      char* end = nullptr;
      const double t = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(t > 0 && t <= 86400))
        return usage(fmt::format("--timeout {}: expected seconds per case, above 0", v));
      a.timeout = t;
    } else if (opt == "--format") {
      if (!value(v)) return false;
      if (v != "text" && v != "json")
        return usage(fmt::format("--format {}: expected text or json", v));
      a.json = v == "json";
    } else if (sweep_owned(opt)) {
      return usage(opt + ": set by the sweep for each case (see --sites, --recovery, --from)");
    } else if (const auto it = run_passthrough().find(opt);
               it != run_passthrough().end() || script_passthrough().contains(opt)) {
      const bool takes = it != run_passthrough().end() ? it->second : script_passthrough().at(opt);
      if (takes) {
        if (!value(v)) return false;
        pass.emplace_back(opt, v);
      } else {
        if (inline_value) return usage(opt + ": takes no value");
        pass.emplace_back(opt, std::string());
      }
    } else {
      return usage(opt + ": unknown option (a PROGRAM starting with '-' goes after --)");
    }
  }
  a.rest.assign(argv.begin() + static_cast<std::ptrdiff_t>(std::min(i, argv.size())), argv.end());
  if (a.merge) {
    if (a.rest.empty()) return usage("--merge: expected the JSON reports of the shards (FILE...)");
    return true;
  }
  if (a.rest.empty())
    return usage("no PROGRAM given (usage: mmemu sweep [options] PROGRAM [ARGS...] | SCRIPT.mms)");
  const bool script = is_script(a.rest);
  const auto& allowed = script ? script_passthrough() : run_passthrough();
  for (const auto& [o, v] : pass) {
    if (!allowed.contains(o))
      return usage(fmt::format("{}: not an option of `mmemu {}`", o, script ? "script" : "run"));
    a.pass.push_back(o);
    if (allowed.at(o)) a.pass.push_back(v);
  }
  if (script && a.from != "start")
    return usage("--from " + a.from + ": a script sweeps from start");
  if (script && a.rest.size() > 1) return usage("a script takes no arguments: " + a.rest[1]);
  return true;
}

// Single-quoted for a POSIX shell, unless nothing in it needs quoting.
std::string shell_quote(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
  });
  if (plain) return s;
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : p.string();
}

class Sweep {
 public:
  Sweep(const SweepArgs& a, std::string argv0)
      : a_(a), script_(is_script(a.rest)), exe_(self_exe()), argv0_(std::move(argv0)) {}

  int run();

 private:
  // The worker's command: mmemu run|script, the user's options, what the case sets, then
  // the report options (when `report` is given) and the program.
  std::vector<std::string> command(const std::string& binary, const Case* c,
                                   const std::string* report, bool list) const;
  std::string repro(const Case& c) const;
  // 0, or the sweep's exit status when it cannot go on (after saying why).
  int clean_run();
  // The clean run and the counting runs are no cases: a hang there is the program's.
  double setup_timeout() const { return std::max(a_.timeout * 10, 600.0); }
  std::optional<std::uint64_t> count_by_probing(const std::string& site);
  std::optional<RunReport> report_of(const fs::path& file) const {
    const std::string text = slurp(file);
    return script_ ? parse_script_report(text) : parse_run_report(text);
  }
  std::string fingerprint() const;

  const SweepArgs& a_;
  const bool script_;
  const std::string exe_;
  const std::string argv0_;
  fs::path dir_;
  bool has_list_ = false;
  std::uint64_t baseline_enomem_ = 0;
  std::vector<std::pair<std::string, std::uint64_t>> counts_;
  std::map<std::pair<std::string, std::uint64_t>, std::pair<std::optional<std::string>,
                                                            std::optional<std::string>>>
      calls_;  // (site, nth) -> (function, addr)
};

std::vector<std::string> Sweep::command(const std::string& binary, const Case* c,
                                        const std::string* report, bool list) const {
  std::vector<std::string> v{binary, script_ ? "script" : "run"};
  v.insert(v.end(), a_.pass.begin(), a_.pass.end());
  const std::string recovery = c ? c->recovery : a_.recoveries.front();
  v.insert(v.end(), {script_ ? "--recovery" : "--fork-recovery", recovery});
  if (!script_ && a_.from != "start") v.insert(v.end(), {"--inject-from", a_.from});
  if (c) v.insert(v.end(), {"--inject", fmt::format("{}:{}", c->site, c->nth)});
  if (report) {
    if (!script_) v.push_back("--stats");
    v.insert(v.end(), {"--format", "json", "--out", *report});
  }
  if (list) v.push_back("--list-allocations");
  if (!script_ && (report || a_.rest.front().starts_with('-'))) v.push_back("--");
  v.insert(v.end(), a_.rest.begin(), a_.rest.end());
  return v;
}

std::string Sweep::repro(const Case& c) const {
  std::string s;
  for (const std::string& w : command(argv0_, &c, nullptr, false))
    s += (s.empty() ? "" : " ") + shell_quote(w);
  return s;
}

std::string Sweep::fingerprint() const {
  std::string s =
      fmt::format("--sites {} --recovery {}", join(a_.sites, ","), join(a_.recoveries, ","));
  if (!script_) s += " --from " + a_.from;
  for (const std::string& w : a_.pass)
    s += " " + shell_quote(w);
  for (const std::string& w : a_.rest)
    s += " " + shell_quote(w);
  return s;
}

// The program without any failure: it must run cleanly; it gives the ENOMEM baseline, and
// the attempts per site (with the call of each when `--list-allocations` exists).
int Sweep::clean_run() {
  // Does this binary list allocations? (`mmemu run --list-allocations`, one JSON object
  // per attempt on --out.)
  {
    const fs::path help = dir_ / "help.txt";
    WorkerJob job{{exe_, script_ ? "script" : "run", "--help"}, help.string(), "/dev/null"};
    run_worker(job, setup_timeout());
    has_list_ = slurp(help).find("--list-allocations") != std::string::npos;
  }
  const fs::path report = dir_ / "clean.json", err = dir_ / "clean.err";
  const std::string report_s = report.string();
  const WorkerResult w =
      run_worker(WorkerJob{command(exe_, nullptr, &report_s, has_list_), "/dev/null", err.string()},
                 setup_timeout());
  const std::string errs = slurp(err);
  const std::string first_line = errs.substr(0, errs.find('\n'));
  if (!w.signaled && !w.timed_out && w.exit_code == kExitUsage &&
      (first_line.starts_with("mmemu run: ") || first_line.starts_with("mmemu: ") ||
       first_line.starts_with("mmemu script: ") || script_)) {
    // A bad option value (or a script that does not parse): the worker's own one line.
    std::string msg = first_line;
    for (std::string_view p : {"mmemu run: ", "mmemu script: ", "mmemu: "})
      if (msg.starts_with(p)) msg = msg.substr(p.size());
    usage(msg);
    return kExitUsage;
  }
  if (!script_ && !w.signaled && !w.timed_out && (w.exit_code == 126 || w.exit_code == 127)) {
    usage(fmt::format("cannot run {}: {}", a_.rest.front(), first_line));
    return kExitUsage;
  }
  const std::string text = slurp(report);
  const auto r = script_ ? parse_script_report(text) : parse_run_report(text);
  const Verdict v = classify(w, r, r ? r->enomem : 0, script_);
  if (is_failure(v.outcome)) {
    std::cerr << fmt::format("mmemu sweep: the run without injected failures already fails: {}{}\n",
                             v.outcome, v.detail.empty() ? "" : " (" + v.detail + ")");
    return 1;
  }
  baseline_enomem_ = r->enomem;
  std::map<std::string, std::uint64_t> counted;
  if (has_list_) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("site") || !j.contains("nth") ||
          !j["site"].is_string() || !j["nth"].is_number_unsigned())
        continue;
      const std::string site = j["site"].get<std::string>();
      const std::uint64_t nth = j["nth"].get<std::uint64_t>();
      counted[site] = std::max(counted[site], nth);
      auto str = [&j](const char* k) -> std::optional<std::string> {
        const auto it = j.find(k);
        if (it == j.end() || it->is_null()) return std::nullopt;
        return it->is_string() ? it->get<std::string>() : it->dump();
      };
      calls_[{site, nth}] = {str("function"), str("addr")};
    }
  }
  for (const std::string& site : a_.sites) {
    std::uint64_t n = 0;
    if (has_list_) {
      n = counted[site];
    } else if (script_) {
      const auto it = r->attempts.find(site);
      n = it == r->attempts.end() ? 0 : it->second;
    } else {
      auto probed = count_by_probing(site);
      if (!probed) return 1;
      n = *probed;
    }
    counts_.emplace_back(site, n);
  }
  return 0;
}

// Without a listing: the number of attempts at `site` is the largest N whose `--inject
// SITE:N` injects a failure (a run fails its N-th attempt exactly when it makes one;
// everything before is the clean run's). Doubling, then bisection.
std::optional<std::uint64_t> Sweep::count_by_probing(const std::string& site) {
  const fs::path report = dir_ / "probe.json";
  const std::string report_s = report.string();
  bool broken = false;
  auto reached = [&](std::uint64_t n) {
    const Case c{0, site, n, a_.recoveries.front()};
    const WorkerResult w =
        run_worker(WorkerJob{command(exe_, &c, &report_s, false)}, setup_timeout());
    const auto r = report_of(report);
    if (!r || w.signaled || w.timed_out) {
      broken = true;
      return false;
    }
    return r->injected > 0;
  };
  if (!reached(1)) {
    if (broken) std::cerr << "mmemu sweep: counting the attempts at " << site << " failed\n";
    return broken ? std::nullopt : std::optional<std::uint64_t>(0);
  }
  std::uint64_t lo = 1, hi = 2;  // reached(lo), hi unknown
  while (reached(hi) && !broken) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1 && !broken) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    (reached(mid) ? lo : hi) = mid;
  }
  if (broken) {
    std::cerr << "mmemu sweep: counting the attempts at " << site << " failed\n";
    return std::nullopt;
  }
  return lo;
}

int Sweep::run() {
  char tmpl[] = "/tmp/mmemu-sweep-XXXXXX";
  if (const char* t = std::getenv("TMPDIR"); t && *t) {
    dir_ = fs::path(t) / "mmemu-sweep-XXXXXX";
  } else {
    dir_ = tmpl;
  }
  std::string d = dir_.string();
  if (!::mkdtemp(d.data())) {
    std::cerr << fmt::format("mmemu sweep: cannot make a directory {}: {}\n", d,
                             std::strerror(errno));
    return 1;
  }
  dir_ = d;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir_};
  if (const int st = clean_run()) return st;

  const std::vector<Case> all = build_cases(counts_, a_.recoveries);
  const std::vector<Case> mine = shard_cases(all, a_.shard);
  Report report;
  report.info = {fingerprint(), a_.shard, all.size()};
  report.cases.resize(mine.size());
  const bool progress = ::isatty(2) != 0;
  std::size_t done_n = 0, failed = 0;
  const auto begun = std::chrono::steady_clock::now();
  run_pool(
      mine.size(), a_.jobs, a_.timeout,
      [&](std::size_t i) {
        const std::string file = (dir_ / fmt::format("case-{}.json", i)).string();
        return WorkerJob{command(exe_, &mine[i], &file, false)};
      },
      [&](std::size_t i, const WorkerResult& w) {
        const fs::path file = dir_ / fmt::format("case-{}.json", i);
        const auto r = w.timed_out ? std::nullopt : report_of(file);
        std::error_code ec;
        fs::remove(file, ec);
        const Verdict v = classify(w, r, baseline_enomem_, script_);
        CaseResult& out = report.cases[i];
        out.c = mine[i];
        out.outcome = v.outcome;
        out.exit_status = v.exit_status;
        out.detail = v.detail;
        out.repro = repro(mine[i]);
        if (const auto it = calls_.find({mine[i].site, mine[i].nth}); it != calls_.end())
          std::tie(out.function, out.addr) = it->second;
        ++done_n;
        if (is_failure(v.outcome)) ++failed;
        if (progress) {
          const double spent =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count();
          const double left =
              spent / static_cast<double>(done_n) * static_cast<double>(mine.size() - done_n);
          std::cerr << fmt::format("\rmmemu sweep: {}/{} cases, {} failure{}, ~{:.0f} s left  ",
                                   done_n, mine.size(), failed, failed == 1 ? "" : "s", left)
                    << std::flush;
        }
      });
  if (progress && !mine.empty()) std::cerr << "\r\033[K" << std::flush;
  std::cout << (a_.json ? render_json(report) : render_text(report)) << std::flush;
  return exit_status_of(report);
}

int merge(const SweepArgs& a) {
  std::vector<Report> parts;
  for (const std::string& f : a.rest) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      usage(fmt::format("--merge: cannot read {}: {}", f, std::strerror(errno)));
      return kExitUsage;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = parse_report(ss.str(), f);
    if (!r) {
      usage("--merge: " + r.error());
      return kExitUsage;
    }
    parts.push_back(std::move(*r));
  }
  auto m = merge_reports(parts, a.rest);
  if (!m) {
    usage("--merge: " + m.error());
    return kExitUsage;
  }
  std::cout << (a.json ? render_json(*m) : render_text(*m)) << std::flush;
  return exit_status_of(*m);
}

}  // namespace

void add_sweep_command(CLI::App& app, int& status, std::string argv0) {
  auto placeholder = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "sweep",
      "Fail each allocation attempt of a program (or SCRIPT.mms) in turn and report each case.\n"
      "Usage: mmemu sweep [run options] [--sites vma,anon_vma,maple_node,pgtable,page,"
      "fatal_signal|all]\n"
      "         [--recovery xa-zero,tree-max,partial|all] [--from start|fork:K] [-j N]\n"
      "         [--shard I/N] [--timeout SECONDS] [--format text|json] PROGRAM [ARGS...]\n"
      "--timeout: per case, default 60 (the clean run and counting runs: 10 times that, at\n"
      "least 600). -j: default, the number of CPUs. --from: where --inject counts from.\n"
      "       mmemu sweep [--format text|json] --merge FILE...\n"
      "Run options handed to each case: --phys-mem --seed --vsyscall --walkers --walker-at\n"
      "--slice --env --uid --gid --check --clear-env (a script: --arch --phys-mem --check).\n"
      "Outcomes: ok enomem guest-error signal leak invariant crash hang.\n"
      "Exit status: 0, 1 when a case leaked, broke an invariant, crashed or hung, 2 for usage "
      "errors.");
  sub->prefix_command();
  // As in `mmemu run`: a positional that takes nothing keeps "--" in this subcommand.
  sub->add_option("PROGRAM", *placeholder, "the program, then its arguments")
      ->check(CLI::Validator([](const std::string&) { return std::string("not an option"); }, "",
                             "program"));
  sub->validate_positionals();
  sub->callback([sub, &status, argv0 = std::move(argv0)] {
    SweepArgs a;
    std::vector<std::string> rest = sub->remaining();
    if (!parse_args(rest, a)) {
      status = kExitUsage;
      return;
    }
    status = a.merge ? merge(a) : Sweep(a, argv0).run();
  });
}

}  // namespace mmemu::cli
