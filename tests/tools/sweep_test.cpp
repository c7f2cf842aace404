// `mmemu sweep`: the case list and its shards, the classification of synthetic worker
// results, the report's JSON round trip and merging, the worker pool's timeout and crash
// detection, and the real command on the shipped fork_fail guest (x86_64 and arm64):
// outcomes of known cases, repro lines that reproduce, shards that add up to the whole
// sweep and merge into its report, usage errors, a hang, a script sweep.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "mmu/types.hpp"
#include "tools/cli_test_util.hpp"
#include "tools/sweep_cases.hpp"
#include "tools/sweep_classify.hpp"
#include "tools/sweep_report.hpp"
#include "tools/sweep_worker.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace mmemu::sweep;

// ---------------------------------------------------------------- helpers

std::string guest_dir() {
  if (const char* d = std::getenv("MMEMU_GUEST_DIR")) return d;
  return (fs::path(MMEMU_BINARY).parent_path() / "guests").string();
}
std::string guest(Arch a, const std::string& name) {
  return guest_dir() + "/" + std::string(arch_name(a)) + "/" + name;
}

using test::slurp;

struct Cli {
  int status = -1;
  std::string out, err;
};

// `mmemu ARGS` with standard output and standard error captured.
Cli mmemu(const std::string& args) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("mmemu-sweep-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path out = dir / "out", err = dir / "err";
  const std::string cmd = std::string(MMEMU_BINARY) + " " + args + " >" + out.string() + " 2>" +
                          err.string() + " </dev/null";
  const int st = std::system(cmd.c_str());
  Cli c;
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  c.out = slurp(out);
  c.err = slurp(err);
  return c;
}

std::vector<json> lines(const std::string& text) {
  std::vector<json> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    v.push_back(json::parse(l));
  return v;
}

// The case lines of a JSON report (without its summary), and the summary.
std::vector<json> cases_of(const std::string& text) {
  std::vector<json> v = lines(text);
  EXPECT_FALSE(v.empty());
  if (!v.empty()) {
    EXPECT_TRUE(v.back().contains("summary")) << v.back();
    v.pop_back();
  }
  return v;
}

// ---------------------------------------------------------------- case list and shards

TEST(SweepCases, OrderIsSitesThenAttemptsThenRecoveries) {
  const auto all = build_cases({{"vma", 2}, {"pgtable", 0}, {"page", 1}}, {"partial", "xa-zero"});
  ASSERT_EQ(all.size(), 6U);
  const std::vector<std::tuple<std::string, std::uint64_t, std::string>> want{
      {"vma", 1, "partial"}, {"vma", 1, "xa-zero"},  {"vma", 2, "partial"},
      {"vma", 2, "xa-zero"}, {"page", 1, "partial"}, {"page", 1, "xa-zero"}};
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].index, i);
    EXPECT_EQ(std::tie(all[i].site, all[i].nth, all[i].recovery),
              std::tie(std::get<0>(want[i]), std::get<1>(want[i]), std::get<2>(want[i])));
  }
}

TEST(SweepCases, ShardsAreDisjointAndCoverTheSweep) {
  const auto all = build_cases({{"vma", 7}, {"anon_vma", 3}}, all_recoveries());
  for (std::size_t n : {1U, 2U, 3U, 7U, 40U}) {
    std::multiset<std::size_t> seen;
    for (std::size_t i = 1; i <= n; ++i)
      for (const Case& c : shard_cases(all, Shard{i, n}))
        seen.insert(c.index);
    EXPECT_EQ(seen.size(), all.size()) << n;
    for (const Case& c : all)
      EXPECT_EQ(seen.count(c.index), 1U) << n;
  }
  const auto s = shard_cases(all, Shard{2, 3});
  ASSERT_EQ(s.size(), 10U);
  EXPECT_EQ(s[0].index, 1U);
  EXPECT_EQ(s[1].index, 4U);
}

TEST(SweepCases, Parsing) {
  EXPECT_EQ(parse_shard("2/3")->index, 2U);
  EXPECT_EQ(parse_shard("2/3")->count, 3U);
  for (const char* bad : {"0/3", "4/3", "3", "/3", "1/", "a/b", "1/3x", "-1/3", ""})
    EXPECT_FALSE(parse_shard(bad)) << bad;
  std::string badname;
  EXPECT_EQ(*parse_name_list("pgtable,vma,pgtable", all_sites(), &badname),
            (std::vector<std::string>{"pgtable", "vma"}));
  EXPECT_EQ(*parse_name_list("all", all_recoveries(), &badname), all_recoveries());
  EXPECT_FALSE(parse_name_list("vma,,page", all_sites(), &badname));
  EXPECT_EQ(badname, "");
  EXPECT_FALSE(parse_name_list("vma,bogus", all_sites(), &badname));
  EXPECT_EQ(badname, "bogus");
}

// ---------------------------------------------------------------- classification

WorkerResult exited(int code) {
  WorkerResult w;
  w.exit_code = code;
  return w;
}

RunReport report(int status) {
  RunReport r;
  r.exit_status = status;
  return r;
}

TEST(SweepClassify, EachOutcome) {
  WorkerResult hang;
  hang.timed_out = true;
  EXPECT_EQ(classify(hang, std::nullopt, 0, false).outcome, "hang");
  WorkerResult died;
  died.signaled = true;
  died.signal = 11;
  const Verdict crash = classify(died, report(0), 0, false);
  EXPECT_EQ(crash.outcome, "crash");
  EXPECT_EQ(crash.detail, "mmemu died of signal 11");
  EXPECT_FALSE(crash.exit_status);
  WorkerResult unstarted;
  unstarted.spawn_failed = true;
  EXPECT_EQ(classify(unstarted, std::nullopt, 0, false).outcome, "crash");
  // No summary, or one that does not explain the status: mmemu did not end as it should.
  EXPECT_EQ(classify(exited(0), std::nullopt, 0, false).outcome, "crash");
  EXPECT_EQ(classify(exited(3), report(0), 0, false).outcome, "crash");
  EXPECT_EQ(classify(exited(70), report(70), 0, false).outcome, "crash");
  // A script that stopped at a step that could not run wrote no summary: its own failure.
  EXPECT_EQ(classify(exited(2), std::nullopt, 0, true).outcome, "guest-error");

  RunReport leak = report(70);
  leak.problems = {{"leak", "leak: 1 vma object(s) still allocated"}};
  EXPECT_EQ(classify(exited(70), leak, 0, false).outcome, "leak");
  EXPECT_EQ(classify(exited(70), leak, 0, false).detail, "leak: 1 vma object(s) still allocated");
  RunReport both = leak;
  both.problems.emplace_back("invariant", "invariant broken: pid 1000 after mmap: x");
  EXPECT_EQ(classify(exited(70), both, 0, false).outcome, "invariant");  // the graver one
  RunReport dead = report(70);
  dead.problems = {{"deadlock", "deadlock: 1000(blocked in wait4)"}};
  EXPECT_EQ(classify(exited(70), dead, 0, false).outcome, "hang");

  RunReport killed = report(137);
  killed.guest_signal = 9;
  EXPECT_EQ(classify(exited(137), killed, 0, false).outcome, "signal");
  RunReport saw = report(0);
  saw.enomem = 3;
  EXPECT_EQ(classify(exited(0), saw, 2, false).outcome, "enomem");
  EXPECT_EQ(classify(exited(0), saw, 2, false).detail, "1 ENOMEM system call(s)");
  EXPECT_EQ(classify(exited(0), saw, 3, false).outcome, "ok");  // the program's own ENOMEMs
  EXPECT_EQ(classify(exited(4), report(4), 0, false).outcome, "guest-error");
  EXPECT_EQ(classify(exited(1), report(1), 0, true).outcome, "guest-error");

  for (const char* f : {"leak", "invariant", "crash", "hang"})
    EXPECT_TRUE(is_failure(f)) << f;
  for (const char* f : {"ok", "enomem", "guest-error", "signal"})
    EXPECT_FALSE(is_failure(f)) << f;
}

TEST(SweepClassify, ReadsRunAndScriptSummaries) {
  const std::string run =
      "{\"dump\":\"exit\"}\n"
      "{\"exit_status\":137,\"wait_status\":9,\"machine\":{},\"problems\":[{\"kind\":\"leak\","
      "\"message\":\"leak: m\"}],\"stats\":{\"inject\":1,\"syscalls_enomem\":2}}\n";
  const auto r = parse_run_report(run);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_status, 137);
  EXPECT_EQ(r->guest_signal, 9);
  EXPECT_EQ(r->enomem, 2U);
  EXPECT_EQ(r->injected, 1U);
  ASSERT_EQ(r->problems.size(), 1U);
  EXPECT_EQ(r->problems[0].first, "leak");
  EXPECT_FALSE(parse_run_report("{\"dump\":\"exit\"}\nnot json\n"));
  const std::string script =
      "{\"cmd\":\"mmap\"}\n{\"cmd\":\"end\",\"exit_status\":70,\"leaked\":false,"
      "\"invariants_broken\":false,\"freed_in_use\":1,\"enomem_steps\":4,"
      "\"attempts\":{\"vma\":5}}\n";
  const auto s = parse_script_report(script);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exit_status, 70);
  EXPECT_EQ(s->enomem, 4U);
  EXPECT_EQ(s->attempts.at("vma"), 5U);
  EXPECT_EQ(classify(exited(70), s, 0, true).outcome, "invariant");
}

// ---------------------------------------------------------------- the report

Report sample(Shard shard) {
  Report r;
  const auto all = build_cases({{"vma", 2}, {"pgtable", 1}}, {"tree-max", "partial"});
  r.info = {"--sites vma,pgtable prog", shard, all.size()};
  for (const Case& c : shard_cases(all, shard)) {
    CaseResult cr;
    cr.c = c;
    cr.outcome = c.nth == 2 ? "enomem" : c.site == "pgtable" ? "leak" : "ok";
    cr.exit_status = cr.outcome == "leak" ? 70 : 0;
    if (c.site == "vma") cr.function = "vm_area_dup";
    cr.repro = "mmemu run --inject " + c.site + ":" + std::to_string(c.nth) + " prog";
    r.cases.push_back(cr);
  }
  return r;
}

TEST(SweepReport, JsonRoundTripAndMerge) {
  const Report whole = sample(Shard{1, 1});
  const std::string text = render_json(whole);
  const auto back = parse_report(text, "whole.json");
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(render_json(*back), text);
  EXPECT_EQ(exit_status_of(whole), 1);  // the pgtable cases leaked
  const json summary = lines(text).back()["summary"];
  EXPECT_EQ(summary["cases"], 6);
  EXPECT_EQ(summary["outcomes"], (json{{"ok", 2}, {"enomem", 2}, {"leak", 2}}));

  std::vector<Report> parts{sample(Shard{3, 3}), sample(Shard{1, 3}), sample(Shard{2, 3})};
  const std::vector<std::string> names{"c", "a", "b"};
  const auto merged = merge_reports(parts, names);
  ASSERT_TRUE(merged) << merged.error();
  EXPECT_EQ(render_json(*merged), text);
  EXPECT_EQ(render_text(*merged), render_text(whole));

  auto twice = parts;
  twice[1] = sample(Shard{3, 3});
  EXPECT_EQ(merge_reports(twice, names).error(), "c and a are both shard 3/3: overlapping shards");
  EXPECT_EQ(merge_reports({parts[0], parts[1]}, {"c", "a"}).error(), "shard 2/3 is missing");
  auto other = parts;
  other[2].info.sweep = "--sites vma other";
  EXPECT_NE(merge_reports(other, names).error().find("b is of another sweep than c"),
            std::string::npos);
  EXPECT_NE(merge_reports({sample(Shard{1, 2}), sample(Shard{2, 3})}, {"x", "y"})
                .error()
                .find("not the same split"),
            std::string::npos);
  // A case in the wrong shard's file.
  std::string forged = render_json(parts[1]);
  forged.replace(forged.find("\"case\":0"), 8, "\"case\":1");
  EXPECT_NE(parse_report(forged, "f").error().find("does not belong to shard 1/3"),
            std::string::npos);
  EXPECT_NE(parse_report("{\"case\":0}\n", "g").error().find("g:1: a case without"),
            std::string::npos);
  EXPECT_EQ(parse_report("", "h").error(), "h: no summary line (an incomplete report?)");
}

TEST(SweepReport, TextGroupsBySiteAndOutcome) {
  const std::string t = render_text(sample(Shard{1, 1}));
  EXPECT_NE(t.find("\nvma          ok               2  tree-max,partial          vm_area_dup"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("\npgtable      leak             2  tree-max,partial          ?"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("failures:\n  pgtable:1 tree-max leak (exit 70) in ?\n    mmemu run --inject "
                   "pgtable:1 prog\n"),
            std::string::npos)
      << t;
  EXPECT_TRUE(t.ends_with(
      "summary: 6 cases: 2 ok, 2 enomem, 2 leak; 2 failures (leak, invariant, crash, hang)\n"))
      << t;
}

// ---------------------------------------------------------------- workers

TEST(SweepWorker, TimeoutKillsTheGroupAndSignalsAreCrashes) {
  const auto begun = std::chrono::steady_clock::now();
  // The shell's child (sleep) is in the worker's group: the kill reaches it too.
  const fs::path pidfile =
      fs::path(::testing::TempDir()) / ("sweep-sleep-" + std::to_string(::getpid()) + ".pid");
  const WorkerResult slow =
      run_worker({{"/bin/sh", "-c", "sleep 30 & echo $! >" + pidfile.string() + "; wait"}}, 0.3);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - begun, std::chrono::seconds(10));
  const pid_t sleeper = std::stoi(slurp(pidfile));
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {  // killed: a zombie until init reaps it
    const std::string stat = slurp(fmt::format("/proc/{}/stat", sleeper));
    gone = stat.empty() || stat.find(") Z ") != std::string::npos;  // gone, or a zombie
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "the worker's child " << sleeper << " outlived the timeout";
  if (!gone) ::kill(sleeper, SIGKILL);
  const WorkerResult segv = run_worker({{"/bin/sh", "-c", "kill -SEGV $$"}}, 10);
  EXPECT_TRUE(segv.signaled);
  EXPECT_EQ(segv.signal, SIGSEGV);
  EXPECT_EQ(classify(segv, std::nullopt, 0, false).outcome, "crash");
  const WorkerResult three = run_worker({{"/bin/sh", "-c", "exit 3"}}, 10);
  EXPECT_FALSE(three.timed_out || three.signaled);
  EXPECT_EQ(three.exit_code, 3);
  const WorkerResult missing = run_worker({{"/nonexistent/mmemu"}}, 10);
  EXPECT_EQ(missing.exit_code, 127);
  // A pool: every job ends once, whatever the order.
  std::vector<int> codes(5, -1);
  run_pool(
      5, 3, 10,
      [](std::size_t i) {
        return WorkerJob{{"/bin/sh", "-c", "exit " + std::to_string(i + 10)}};
      },
      [&](std::size_t i, const WorkerResult& r) { codes[i] = r.exit_code; });
  EXPECT_EQ(codes, (std::vector<int>{10, 11, 12, 13, 14}));
}

// ---------------------------------------------------------------- the command

class SweepCli : public ::testing::TestWithParam<Arch> {
 protected:
  std::string fork_fail() { return guest(GetParam(), "fork_fail"); }
};

// The CI-sized sweep: the second fork of fork_fail 2 (the README demo's failing fork), its
// VMA copies and page tables, with the demo's walkers at each failed fork's lock-drop point
// (anon_vma is swept by the script test).

TEST_P(SweepCli, ForkFailUnderEveryRecovery) {
  const Cli c = mmemu(fmt::format(
      "sweep --walkers all --from fork:2 --sites vma,pgtable --recovery all -j 2 --format json "
      "{} 2",
      fork_fail()));
  ASSERT_EQ(c.status, 0) << c.err << c.out.substr(0, 2000);
  const std::vector<json> cases = cases_of(c.out);
  const json summary = lines(c.out).back()["summary"];
  EXPECT_EQ(summary["cases"], cases.size());
  EXPECT_EQ(summary["total_cases"], cases.size());
  EXPECT_EQ(summary["failures"], 0);
  ASSERT_GT(cases.size(), 30U);
  std::map<std::string, std::set<std::string>> outcomes;  // site -> outcomes seen
  std::map<std::string, std::size_t> per_recovery;
  for (const json& k : cases) {
    const std::string o = k["outcome"];
    EXPECT_FALSE(is_failure(o)) << k;
    outcomes[k["site"]].insert(o);
    ++per_recovery[k["recovery"]];
    for (const char* key :
         {"site", "nth", "recovery", "outcome", "exit_status", "function", "addr", "repro"})
      EXPECT_TRUE(k.contains(key)) << key << k;
    EXPECT_TRUE(k["function"].is_string()) << k;
  }
  // Each (site, nth) under each of the three recoveries.
  EXPECT_EQ(per_recovery.size(), 3U);
  EXPECT_EQ(per_recovery["xa-zero"], cases.size() / 3);
  EXPECT_EQ(per_recovery["partial"], cases.size() / 3);
  // The README's demo case: the 25th VMA copy from fork 2 fails; fork_fail sees ENOMEM
  // and carries on, whatever the recovery.
  std::size_t demo = 0;
  for (const json& k : cases)
    if (k["site"] == "vma" && k["nth"] == 25) {
      ++demo;
      EXPECT_EQ(k["outcome"], "enomem") << k;
      EXPECT_EQ(k["exit_status"], 0) << k;
      EXPECT_EQ(k["function"], "vm_area_dup") << k;
      // The repro runs that case alone, with the same outcome.
      std::string repro = k["repro"];
      const std::string head = std::string(MMEMU_BINARY) + " run ";
      ASSERT_TRUE(repro.starts_with(head)) << repro;
      EXPECT_NE(
          repro.find(" run --walkers all --fork-recovery " + k["recovery"].get<std::string>() +
                     " --inject-from fork:2 --inject vma:25 "),
          std::string::npos)
          << repro;
      const fs::path stats =
          fs::path(::testing::TempDir()) / ("sweep-repro-" + std::to_string(::getpid()) + ".json");
      repro.replace(0, head.size(), "run --stats --format json --out " + stats.string() + " ");
      const Cli r = mmemu(repro);
      const auto rep = parse_run_report(slurp(stats));
      ASSERT_TRUE(rep) << repro;
      EXPECT_EQ(classify(exited(r.status), rep, 0, false).outcome, "enomem") << repro;
      EXPECT_NE(r.out.find("fork 1: ENOMEM"), std::string::npos) << r.out;
    }
  EXPECT_EQ(demo, 3U);
  EXPECT_TRUE(outcomes["vma"].contains("enomem"));
  EXPECT_TRUE(outcomes["pgtable"].contains("enomem"));
}

TEST_P(SweepCli, ShardsMergeIntoTheWholeSweep) {
  const std::string opts =
      "--from fork:2 --sites pgtable,maple_node --recovery tree-max,partial -j 2";
  const Cli whole = mmemu(fmt::format("sweep {} --format json {} 2", opts, fork_fail()));
  ASSERT_EQ(whole.status, 0) << whole.err;
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("sweep-shards-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::multiset<std::size_t> seen;
  std::string files;
  for (int i = 1; i <= 3; ++i) {
    const Cli part =
        mmemu(fmt::format("sweep {} --shard {}/3 --format json {} 2", opts, i, fork_fail()));
    ASSERT_EQ(part.status, 0) << part.err;
    for (const json& k : cases_of(part.out))
      seen.insert(k["case"].get<std::size_t>());
    EXPECT_EQ(lines(part.out).back()["summary"]["shard"], fmt::format("{}/3", i));
    const fs::path f = dir / fmt::format("shard{}.json", i);
    std::ofstream(f) << part.out;
    files = f.string() + " " + files;  // in any order
  }
  const std::vector<json> all = cases_of(whole.out);
  EXPECT_EQ(seen.size(), all.size());
  for (const json& k : all)
    EXPECT_EQ(seen.count(k["case"].get<std::size_t>()), 1U) << k;
  const Cli merged = mmemu("sweep --merge --format json " + files);
  EXPECT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(merged.out, whole.out);
  const Cli text = mmemu("sweep --merge " + files);
  const Cli whole_text = mmemu(fmt::format("sweep {} {} 2", opts, fork_fail()));
  EXPECT_EQ(text.out, whole_text.out);
  // The same shard twice, or a shard missing: refused.
  const Cli twice = mmemu(
      fmt::format("sweep --merge {0}/shard1.json {0}/shard1.json {0}/shard2.json", dir.string()));
  EXPECT_EQ(twice.status, 2);
  EXPECT_NE(twice.err.find("overlapping shards"), std::string::npos) << twice.err;
  const Cli missing =
      mmemu(fmt::format("sweep --merge {0}/shard1.json {0}/shard3.json", dir.string()));
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.err, "mmemu sweep: --merge: shard 2/3 is missing\n");
  fs::remove_all(dir);
}

TEST_P(SweepCli, HangIsATimedOutCase) {
  // fork_loop 6000 forks for about half a second; its clean run is no case and has no
  // timeout of its own. Each case fails an allocation from the 5000th fork on (and so runs
  // 5000 forks first, well past 0.1 s); the shard keeps just the first.
  const Cli c = mmemu(fmt::format(
      "sweep --from fork:5000 --sites vma --recovery tree-max --timeout 0.1 --shard 1/100000 "
      "--format json {} 6000",
      guest(GetParam(), "fork_loop")));
  EXPECT_EQ(c.status, 1) << c.err;
  const std::vector<json> cases = cases_of(c.out);
  ASSERT_FALSE(cases.empty());
  EXPECT_EQ(cases[0]["nth"], 1);
  for (const json& k : cases) {
    EXPECT_EQ(k["outcome"], "hang") << k;
    EXPECT_TRUE(k["exit_status"].is_null()) << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Arches, SweepCli, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& p) { return std::string(arch_name(p.param)); });

// A usage error: status 2, exactly one line naming what is wrong, nothing on stdout.
void expect_usage(const std::string& args, const std::string& what) {
  const Cli c = mmemu("sweep " + args);
  EXPECT_EQ(c.status, 2) << args << ": " << c.err;
  EXPECT_EQ(c.out, "") << args;
  EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << args << ": " << c.err;
  EXPECT_NE(c.err.find(what), std::string::npos) << args << ": " << c.err;
}

TEST(SweepUsage, EveryBadValueIsOneLine) {
  const std::string g = guest(Arch::X86_64, "fork_fail");
  expect_usage("--sites vma,bogus " + g, "--sites vma,bogus: unknown site 'bogus'");
  expect_usage("--recovery fast " + g, "--recovery fast: unknown recovery 'fast'");
  expect_usage("--from fork:0 " + g, "--from fork:0: expected start or fork:K");
  expect_usage("--from load " + g, "--from load");
  expect_usage("-j 0 " + g, "-j 0: expected a number of workers");
  expect_usage("-jx " + g, "-j x: expected a number of workers");
  expect_usage("--shard 4/3 " + g, "--shard 4/3: expected I/N");
  expect_usage("--shard 1 " + g, "--shard 1: expected I/N");
  expect_usage("--timeout 0 " + g, "--timeout 0: expected seconds");
  expect_usage("--timeout=abc " + g, "--timeout abc: expected seconds");
  expect_usage("--format xml " + g, "--format xml: expected text or json");
  expect_usage("--format", "--format: expected a value");
  expect_usage("--inject vma:1 " + g, "--inject: set by the sweep");
  expect_usage("--fork-recovery partial " + g, "--fork-recovery: set by the sweep");
  expect_usage("--bogus " + g, "--bogus: unknown option");
  expect_usage("--sites vma", "no PROGRAM given");
  expect_usage("--merge", "--merge: expected the JSON reports");
  expect_usage("--merge /nonexistent.json", "cannot read /nonexistent.json");
  // Values of `mmemu run`'s options are checked by `mmemu run` itself.
  expect_usage("--phys-mem 1K " + g, "--phys-mem 1K: expected a size");
  expect_usage("--vsyscall maybe " + g, "--vsyscall maybe");
  expect_usage("/nonexistent/prog", "cannot run /nonexistent/prog");
  expect_usage("--arch arm64 " + g, "--arch: not an option of `mmemu run`");
  expect_usage("--from fork:2 " + std::string(MMEMU_SOURCE_DIR) + "/tools/scripts/x.mms",
               "a script sweeps from start");
}

TEST(SweepScript, EveryAttemptOfAScript) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("sweep-mms-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path script = dir / "fork.mms";
  std::ofstream(script) << "mm a\n"
                           "p = mmap a auto 16K rw- private\n"
                           "touch a $p write\n"
                           "q = mmap a auto 8K rw- private\n"
                           "touch a $q+4K write\n"
                           "fork a b\n";
  const Cli c = mmemu("sweep --sites vma,anon_vma,pgtable --recovery all --format json -j 2 " +
                      script.string());
  ASSERT_EQ(c.status, 0) << c.err << c.out;
  const std::vector<json> cases = cases_of(c.out);
  ASSERT_FALSE(cases.empty());
  std::set<std::string> outcomes;
  for (const json& k : cases) {
    outcomes.insert(k["outcome"].get<std::string>());
    EXPECT_FALSE(is_failure(k["outcome"])) << k;
    const std::string repro = k["repro"];
    EXPECT_NE(repro.find(" script --recovery " + k["recovery"].get<std::string>() + " --inject " +
                         k["site"].get<std::string>() + ":" + std::to_string(k["nth"].get<int>()) +
                         " " + script.string()),
              std::string::npos)
        << repro;
  }
  EXPECT_TRUE(outcomes.contains("enomem")) << c.out;
  // The first VMA allocation is the mmap's: it fails, $p stays unset and the touch cannot
  // run: the script's own error.
  EXPECT_EQ(cases[0]["site"], "vma");
  EXPECT_EQ(cases[0]["nth"], 1);
  EXPECT_EQ(cases[0]["outcome"], "guest-error") << cases[0];
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mmemu
