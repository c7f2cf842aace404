// `mmemu run`: runs a static x86_64 or arm64 Linux program on mmemu's page tables.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "emu/cpu/unicorn_cpu.hpp"
#include "emu/kernel/chrome_trace.hpp"
#include "emu/kernel/host_signals.hpp"
#include "emu/kernel/kernel.hpp"
#include "tools/alloc_list.hpp"
#include "tools/commands.hpp"
#include "tools/dump.hpp"
#include "tools/html_view.hpp"
#include "tools/script_syntax.hpp"
#include "vma/walkers.hpp"

extern char** environ;

namespace mmemu::cli {

namespace {

constexpr int kExitUsage = 2;
// The initial program could not be started because an injected allocation failure hit its
// load (--inject-from load): mmemu's own failure, as env and timeout report theirs.
constexpr int kExitInjectedLoad = 125;

struct RunArgs {
  std::string phys_mem = "1G";
  std::vector<std::string> inject;
  std::string inject_from;
  double inject_random = 0;
  std::string seed = "1";  // numbers as strings: CLI11 takes "-1" as 2^64-1
  std::string recovery = "tree-max";
  std::string vsyscall = "xonly";
  std::string walkers;
  std::string walker_at = "lock-drop";
  std::string dump_when;
  std::string format = "text";
  std::string out;
  std::string trace;
  std::string trace_format = "json";  // --trace-format: json (JSON lines) or chrome
  std::string log;
  bool stats = false;
  bool list_allocations = false;
  bool check = false;
  std::string slice = "200000";
  std::vector<std::string> env;
  bool clear_env = false;
  std::string uid, gid;             // empty: the host's
  std::string program_placeholder;  // never set (see add_run_command)
};

// Which string options were given at all (an empty value is then an error, not "unset").
struct Given {
  bool walkers, dump_when, out, trace, log, uid, gid, trace_format;
};

// A decimal number that fits in T, nothing else around it.
template <class T>
std::optional<T> parse_number(const std::string& s) {
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// --uid/--gid N: a 32-bit id other than (uid_t)-1, which Linux never accepts as an id.
std::optional<std::uint32_t> parse_id(const std::string& s) {
  auto v = parse_number<std::uint32_t>(s);
  if (!v || *v == ~0U) return std::nullopt;
  return v;
}

// The guest's environment: mmemu's own (unless --clear-env), then each --env NAME=VALUE,
// which replaces an existing NAME where it stands (and drops later duplicates of it), as
// env(1) does, or else is appended.
std::vector<std::string> guest_environment(const RunArgs& a) {
  std::vector<std::string> envp;
  if (!a.clear_env)
    for (char** e = environ; e && *e; ++e)
      envp.emplace_back(*e);
  for (const std::string& e : a.env) {
    const std::string prefix = e.substr(0, e.find('=') + 1);
    bool placed = false;
    for (auto it = envp.begin(); it != envp.end();) {
      if (!it->starts_with(prefix)) {
        ++it;
      } else if (!placed) {
        *it++ = e;
        placed = true;
      } else {
        it = envp.erase(it);
      }
    }
    if (!placed) envp.push_back(e);
  }
  return envp;
}

// Opens FILE for writing, or explains why not.
std::unique_ptr<std::ofstream> open_out(const std::string& path, const char* what) {
  auto f = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
  if (!*f) {
    std::cerr << fmt::format("mmemu run: cannot write {} {}: {}\n", what, path,
                             std::strerror(errno));
    return nullptr;
  }
  return f;
}

dump::json dump_json(const DumpPoint& at, const Mm& mm) {
  dump::json j{{"dump", dump_kind_name(at.kind)},
               {"pid", at.pid},
               {"label", at.label},
               {"detail", at.detail},
               {"arch", arch_name(mm.arch())},
               {"counters", dump::mm_counters_json(mm)},
               {"vmas", dump::vmas_json(mm)},
               {"pgtables", dump::pgtables_json(mm)},
               {"tree", dump::tree_json(mm)}};
  if (!at.fork.is_null()) j["fork"] = at.fork;  // a failed fork's report, structured
  return j;
}

// --format html: every dump of the run, written as one page (tools/html_view.hpp) to --out
// when the run ends, however it ends.
struct HtmlDumps {
  std::ostream* out = nullptr;  // null: not --format html
  std::string title;
  std::vector<dump::json> dumps;
  ~HtmlDumps() {
    if (!out) return;
    *out << dump::html_view(dumps, title);
    out->flush();
  }
};

void render_dump(std::ostream& out, bool json, const DumpPoint& at, const Mm& mm,
                 const Machine& m) {
  (void)m;
  if (json) {
    out << dump_json(at, mm).dump() << '\n';
  } else {
    out << fmt::format("=== page tables: {} pid {} ({}): {} ===\n", dump_kind_name(at.kind), at.pid,
                       arch_name(mm.arch()), at.label);
    for (const std::string& line : at.detail)
      out << "  " << line << '\n';
    out << dump::vmas_text(mm) << dump::pgtables_text(mm) << dump::mm_counters_text(mm) << '\n';
  }
  out.flush();
}

int run(const RunArgs& a, const Given& given, std::vector<std::string> rest) {
  // The subcommand is a prefix command: CLI11 stops at the first argument it does not know
  // and leaves it, and everything after, here. An unknown option is a usage error; "--"
  // ends the options, so a PROGRAM starting with '-' follows one.
  if (!rest.empty() && rest.front() == "--") {
    rest.erase(rest.begin());
  } else if (!rest.empty() && rest.front().starts_with('-') && rest.front() != "-") {
    std::cerr << fmt::format(
        "mmemu run: {}: unknown option (a PROGRAM starting with '-' "
        "goes after --)\n",
        rest.front());
    return kExitUsage;
  }
  if (rest.empty()) {
    std::cerr << "mmemu run: no PROGRAM given (usage: mmemu run [options] PROGRAM [ARGS...])\n";
    return kExitUsage;
  }
  KernelOptions opts;
  const auto phys = script::parse_size(a.phys_mem);
  if (!phys || *phys < (16ULL << 20) || *phys % PAGE_SIZE != 0 || *phys > (64ULL << 30)) {
    std::cerr << fmt::format(
        "mmemu run: --phys-mem {}: expected a size from 16M to 64G in whole pages (like 256M)\n",
        a.phys_mem);
    return kExitUsage;
  }
  opts.phys_bytes = *phys;
  auto rec = parse_recovery(a.recovery);
  if (!rec) {
    std::cerr << fmt::format(
        "mmemu run: --fork-recovery {}: expected xa-zero, tree-max or "
        "partial\n",
        a.recovery);
    return kExitUsage;
  }
  opts.fork_recovery = *rec;
  const auto vsys = parse_vsyscall_mode(a.vsyscall);
  if (!vsys) {
    std::cerr << fmt::format("mmemu run: --vsyscall {}: expected emulate, xonly or none\n",
                             a.vsyscall);
    return kExitUsage;
  }
  opts.vsyscall = *vsys;
  for (std::size_t at = 0; given.walkers && at <= a.walkers.size();) {
    const std::size_t comma = std::min(a.walkers.find(',', at), a.walkers.size());
    const std::string name = a.walkers.substr(at, comma - at);
    if (name == "all") {
      for (const char* w : {"unuse_mm-nocheck", "unuse_mm", "rmap-nocheck", "rmap",
                            "oom_reaper-nocheck", "oom_reaper"})
        opts.walkers.emplace_back(w);
    } else if (parse_walker(name)) {
      opts.walkers.push_back(name);
    } else {
      std::cerr << fmt::format(
          "mmemu run: --walkers: unknown walker '{}' (unuse_mm, oom_reaper, rmap, each "
          "optionally -nocheck, or all)\n",
          name);
      return kExitUsage;
    }
    at = comma + 1;
  }
  opts.walker_at = *parse_walker_point(a.walker_at);  // CLI checked the name
  if (given.dump_when) {
    std::string err;
    auto w = parse_dump_when(a.dump_when, &err);
    if (!w) {
      std::cerr << "mmemu run: --dump-pgtables " << err << '\n';
      return kExitUsage;
    }
    opts.dump = *w;
  }
  const auto slice = parse_number<std::uint64_t>(a.slice);
  if (!slice || *slice == 0) {
    std::cerr << fmt::format(
        "mmemu run: --slice {}: expected a number of instructions per slice, at least 1\n",
        a.slice);
    return kExitUsage;
  }
  opts.slice_instructions = *slice;
  const auto seed = parse_number<std::uint64_t>(a.seed);
  if (!seed) {
    std::cerr << fmt::format("mmemu run: --seed {}: expected a number from 0 to 2^64-1\n", a.seed);
    return kExitUsage;
  }
  opts.check = a.check;
  opts.random_seed = *seed;
  std::vector<InjectRule> rules;
  for (const std::string& spec_list : a.inject) {
    std::size_t pos = 0;
    while (pos <= spec_list.size()) {
      std::size_t comma = spec_list.find(',', pos);
      if (comma == std::string::npos) comma = spec_list.size();
      const std::string spec = spec_list.substr(pos, comma - pos);
      pos = comma + 1;
      auto r = parse_inject_rule(spec);
      if (!r) {
        std::cerr << fmt::format(
            "mmemu run: --inject {}: expected SITE:N or SITE:N+ with SITE one of {}, any\n", spec,
            inject_site_names(", "));
        return kExitUsage;
      }
      rules.push_back(*r);
      if (comma == spec_list.size()) break;
    }
  }
  opts.inject_rules = rules;
  if (!a.inject_from.empty()) {
    const std::string& f = a.inject_from;
    const auto k = f.starts_with("fork:") ? parse_number<int>(f.substr(5)) : std::nullopt;
    if (f == "load") {
      opts.inject_from_load = true;
    } else if (k && *k >= 1) {
      opts.inject_at_fork = *k;
    } else if (f != "start") {
      std::cerr << fmt::format(
          "mmemu run: --inject-from {}: expected start, load or fork:K (K >= 1)\n", f);
      return kExitUsage;
    }
  }
  if (!(a.inject_random >= 0 && a.inject_random <= 1)) {  // NaN too
    std::cerr << fmt::format("mmemu run: --inject-random {}: expected a probability from 0 to 1\n",
                             a.inject_random);
    return kExitUsage;
  }
  opts.inject_random = a.inject_random;
  for (const std::string& e : a.env) {
    const std::size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << fmt::format("mmemu run: --env {}: expected NAME=VALUE\n", e);
      return kExitUsage;
    }
  }
  // --uid/--gid: false (after the usage line) for a value that is no id.
  auto take_id = [](bool given_id, const std::string& text, const char* option, const char* what,
                    std::optional<std::uint32_t>& id) {
    if (!given_id) return true;
    id = parse_id(text);
    if (!id)
      std::cerr << fmt::format("mmemu run: {} {}: expected a {} id from 0 to 4294967294\n", option,
                               text, what);
    return id.has_value();
  };
  if (!take_id(given.uid, a.uid, "--uid", "user", opts.uid) ||
      !take_id(given.gid, a.gid, "--gid", "group", opts.gid))
    return kExitUsage;

  const bool html = a.format == "html";
  if (html && !given.out) {
    std::cerr << "mmemu run: --format html needs --out FILE (the page is written there)\n";
    return kExitUsage;
  }
  if (given.trace_format && !given.trace) {
    std::cerr << "mmemu run: --trace-format needs --trace FILE\n";
    return kExitUsage;
  }
  std::unique_ptr<std::ofstream> out_file, trace_file, log_file;
  if (given.out && !(out_file = open_out(a.out, "--out"))) return kExitUsage;
  if (given.trace && !(trace_file = open_out(a.trace, "--trace"))) return kExitUsage;
  if (given.log && !(log_file = open_out(a.log, "--log"))) return kExitUsage;
  // Dumps and stats go to --out, else to mmemu's standard error: the guest owns stdout.
  // With --format html, --out gets the page and stats go to standard error as text.
  std::ostream& out = out_file && !html ? *out_file : std::cerr;
  const bool json = a.format == "json";
  HtmlDumps html_dumps;
  if (html) {
    html_dumps.out = out_file.get();
    html_dumps.title = "mmemu page tables:";
    for (const std::string& w : rest)
      html_dumps.title +=
          " " + w.substr(&w == &rest.front() ? w.rfind('/') + 1 : 0);  // npos + 1 == 0
  }

  // Before the kernel, so that it goes after it: the closing "]}" follows every event,
  // whichever way the run ends.
  std::unique_ptr<ChromeTrace> chrome;
  if (trace_file && a.trace_format == "chrome")
    chrome = std::make_unique<ChromeTrace>(*trace_file, rest.front());
  // --list-allocations: every attempt from the --inject-from point (when the kernel armed the
  // rules), numbered from the injector's counts then; printed at the end.
  std::optional<AllocList> allocs;
  Kernel k(opts, unicorn_cpu_factory());
  if (a.list_allocations) {
    auto observed = k.machine().inject.on_attempt;
    k.machine().inject.on_attempt = [&k, &allocs, observed](const FaultInjector::Event& e) {
      if (observed) observed(e);
      if (!k.inject_base()) return;
      if (!allocs) allocs.emplace(*k.inject_base());
      const Process* p = k.current();
      allocs->add(e, p ? std::optional<int>(p->pid) : std::nullopt, k.machine().inject.context());
    };
  }
  auto print_allocations = [&] {
    if (!a.list_allocations) return;
    if (!allocs) allocs.emplace(FaultInjector::Counts{});  // never armed: nothing listed
    if (json) {
      allocs->render_json(out);
    } else {
      allocs->render_text(out);
    }
  };
  if (log_file) k.log().set_stream(log_file.get());
  if (trace_file) k.trace().set_stream(trace_file.get());
  if (chrome) k.trace().set_sink(chrome.get());
  k.set_dump_hook([&out, json, &html_dumps](const DumpPoint& at, const Mm& mm, const Machine& m) {
    if (html_dumps.out)
      html_dumps.dumps.push_back(dump_json(at, mm));
    else
      render_dump(out, json, at, mm, m);
  });

  const std::vector<std::string> envp = guest_environment(a);
  const std::string& program = rest.front();
  // The first injected failure while the program is loaded (--inject-from load) is what
  // stopped the load, if it did not succeed: reported as the injection it was.
  FaultInjector& inject = k.machine().inject;
  std::optional<FaultInjector::Event> load_failure;
  const auto traced = inject.on_attempt;
  inject.on_attempt = [&load_failure, &traced](const FaultInjector::Event& e) {
    if (e.failed && !load_failure) load_failure = e;
    if (traced) traced(e);
  };
  auto p = k.spawn(program, rest, envp);
  inject.on_attempt = traced;
  if (!p && load_failure) {
    print_allocations();
    const std::string at =
        load_failure->addr ? fmt::format(" at {:#x}", *load_failure->addr) : std::string();
    k.log().msg(fmt::format(
        "cannot run {}: injected failure while loading it: {} attempt {} (allocation {}) in "
        "{}{}: exit status {}",
        program, site_name(load_failure->site), load_failure->attempt, load_failure->global,
        load_failure->function, at, kExitInjectedLoad));
    return kExitInjectedLoad;
  }
  if (!p) {
    k.log().msg(fmt::format("cannot run {}", p.error().message));
    return p.error().err == ENOENT ? 127 : 126;
  }
  const HostSignalForwarding forward;  // SIGINT & co. go to the guest (host_signals.hpp)
  const RunSummary s = k.run();
  for (const std::string& problem : s.problems)
    k.log().msg(problem);
  if (!s.problems.empty())
    k.log().msg(fmt::format("{} problem(s) found at the end of the run: exit status 70",
                            s.problems.size()));
  print_allocations();
  if (a.stats) {
    const Machine& m = k.machine();
    if (json) {
      dump::json j{{"stats", k.stats().all()}, {"machine", dump::machine_counters_json(m)}};
      j["exit_status"] = s.exit_status;
      j["wait_status"] = s.wait_status;
      j["problems"] = dump::json::array();
      for (const std::string& problem : s.problems) {
        const Problem pr = classify_problem(problem);
        j["problems"].push_back({{"kind", pr.kind}, {"message", pr.message}});
      }
      out << j.dump() << '\n';
    } else {
      out << "=== stats ===\n";
      for (const auto& [key, n] : k.stats().all())
        out << fmt::format("{:<24} {}\n", key, n);
      out << dump::machine_counters_text(m);
    }
    out.flush();
  }
  if (trace_file) trace_file->flush();
  return s.exit_status;
}

}  // namespace

void add_run_command(CLI::App& app, int& status) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* sub = app.add_subcommand(
      "run",
      "Run a static x86_64 or arm64 Linux program on mmemu's page tables.\n"
      "Usage: mmemu run [options] PROGRAM [ARGS...]\n"
      "Exit status: the guest's (128+N when killed by signal N), 70 when something leaked, an\n"
      "invariant broke or a page table was freed while in use, 126/127 when PROGRAM cannot be run, "
      "125 when an injected failure stopped its load (--inject-from load), 2 for usage errors.");
  sub->prefix_command();
  // PROGRAM and its arguments are never options' values: CLI11 leaves them, from the first
  // argument it does not know, in remaining(). This positional takes nothing (its check
  // refuses every value); it exists so that "--" stays in this subcommand (CLI11 hands a
  // "--" seen without a positional to fill back to the parent app).
  sub->add_option("PROGRAM", args->program_placeholder,
                  "the program, then its arguments; mmemu's options end before it (or at --)")
      ->check(CLI::Validator([](const std::string&) { return std::string("not an option"); }, "",
                             "program"));
  sub->validate_positionals();
  sub->add_option("--phys-mem", args->phys_mem, "emulated physical memory (K/M/G suffixes)")
      ->capture_default_str();
  sub->add_option("--inject", args->inject,
                  "fail allocations: SITE:N[,SITE:N...] (N-th attempt at SITE; N+ = from N "
                  "on; SITE: vma anon_vma maple_node pgtable page, any (every allocation site), "
                  "or fatal_signal (the N-th VMA a fork copies finds SIGKILL pending))")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--inject-from", args->inject_from,
                  "when --inject counts and --inject-random starts: start (the program's first "
                  "instruction, the default), load (the initial program's load too; a failure "
                  "that stops it exits 125), fork:K (when the K-th fork begins)");
  sub->add_option("--inject-random", args->inject_random,
                  "fail each allocation (never a fatal_signal check) with probability P (seeded "
                  "by --seed), from the --inject-from point");
  sub->add_option("--seed", args->seed, "seed for --inject-random and AT_RANDOM")
      ->capture_default_str();
  sub->add_option("--fork-recovery", args->recovery,
                  "dup_mmap failure recovery: xa-zero, tree-max, partial")
      ->capture_default_str();
  sub->add_option("--vsyscall", args->vsyscall,
                  "x86-64 vsyscall page, as Linux's vsyscall=: emulate (readable, calls "
                  "emulated), xonly (calls emulated, no page), none")
      ->capture_default_str();
  sub->add_option("--walkers", args->walkers,
                  "walkers run at a failed fork's lock-drop point: unuse_mm, oom_reaper, rmap "
                  "(-nocheck: without the mm flag test), or all (comma-separated)");
  sub->add_option("--walker-at", args->walker_at,
                  "where the --walkers run: lock-drop (dup_mmap unlocked, before mmput), "
                  "exit-unlock (inside the child's exit_mmap, between unmap_vmas and "
                  "free_pgtables, mm_users 0) or both")
      ->check(CLI::IsMember({"lock-drop", "exit-unlock", "both"}))
      ->capture_default_str();
  sub->add_option("--dump-pgtables", args->dump_when,
                  "dump page tables WHEN: exit, fork, fork-child, guest, syscall:NAME "
                  "(comma-separated)");
  sub->add_option("--format", args->format,
                  "text or json (dumps and stats), or html (the dumps as one page in --out, "
                  "which is then required)")
      ->check(CLI::IsMember({"text", "json", "html"}))
      ->capture_default_str();
  sub->add_option("--out", args->out, "write dumps and stats to FILE (default: standard error)");
  sub->add_option("--trace", args->trace,
                  "write an event trace to FILE (system calls with their arguments, faults, TLB "
                  "fills and flushes, forks, injected failures, ...)");
  sub->add_option("--trace-format", args->trace_format,
                  "the --trace file's format: json (one JSON object per line) or chrome "
                  "(Chrome trace-event JSON for Perfetto / chrome://tracing)")
      ->check(CLI::IsMember({"json", "chrome"}))
      ->capture_default_str();
  sub->add_flag("--stats", args->stats, "print event counts at the end");
  sub->add_flag("--list-allocations", args->list_allocations,
                "list every allocation attempt (and fatal_signal check) from the --inject-from "
                "point, numbered as --inject counts them, with the kernel function asking and "
                "the address; to --out, text or --format json");
  sub->add_flag("--check", args->check, "check every invariant after every mm operation");
  sub->add_option("--slice", args->slice, "instructions per scheduling slice")
      ->capture_default_str();
  sub->add_option("--log", args->log, "write mmemu's own messages to FILE");
  sub->add_option("--env", args->env,
                  "set NAME=VALUE in the guest's environment (replacing NAME where it is)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_flag("--clear-env", args->clear_env, "start the guest with an empty environment");
  sub->add_option("--uid", args->uid,
                  "run as user id N (real, effective, saved); euid 0 holds the host's bounding "
                  "set of capabilities, anyone else none (default: mmemu's own ids)");
  sub->add_option("--gid", args->gid, "run as group id N (real, effective, saved)");
  sub->callback([args, sub, &status] {
    const Given given{.walkers = sub->count("--walkers") > 0,
                      .dump_when = sub->count("--dump-pgtables") > 0,
                      .out = sub->count("--out") > 0,
                      .trace = sub->count("--trace") > 0,
                      .log = sub->count("--log") > 0,
                      .uid = sub->count("--uid") > 0,
                      .gid = sub->count("--gid") > 0,
                      .trace_format = sub->count("--trace-format") > 0};
    status = run(*args, given, sub->remaining());
  });
}

}  // namespace mmemu::cli
