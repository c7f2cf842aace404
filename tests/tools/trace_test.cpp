// `mmemu run --trace` as users read it, on both arches: the system calls' arguments in the
// JSON-lines trace (exact values of the fork_fail guest's known calls), a failed fork's
// report as structured JSON in the `--format json` dump and the trace (the README's demo
// run), and --trace-format chrome (a Chrome trace-event file Perfetto opens: one track per
// process, syscall slices with arguments, instants, byte-identical across runs).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "emu/emu_test_util.hpp"
#include "tools/cli_test_util.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using test::slurp;

using test::CliRun;

// `mmemu run --out DUMP --trace TRACE OPTIONS PROGRAM ARGS`, the guest's environment cleared.
CliRun mmemu_run(const std::string& options, const std::string& program_and_args) {
  return test::mmemu_run_traced(options, program_and_args);
}

std::vector<json> lines(const std::string& text) {
  std::vector<json> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) v.push_back(json::parse(l));
  return v;
}

std::vector<json> events(const std::string& trace, std::string_view ev) {
  std::vector<json> v;
  for (json& j : lines(trace))
    if (j["ev"] == ev) v.push_back(std::move(j));
  return v;
}

std::vector<json> syscalls(const std::string& trace, std::string_view name) {
  std::vector<json> v;
  for (json& j : events(trace, "syscall"))
    if (j["name"] == name) v.push_back(std::move(j));
  return v;
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}
std::uint64_t unhex(const json& s) {
  return std::stoull(s.get<std::string>(), nullptr, 16);
}

class Trace : public ::testing::TestWithParam<Arch> {
 protected:
  std::string guest(const std::string& name) { return test::guest_path(GetParam(), name); }
};

// fork_fail's first calls of its own, in program order: map_guarded(1) =
// mmap(NULL, 2 pages, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) and the guard
// page's mprotect(p + 4096, 4096, PROT_NONE); open(argv[0], O_RDONLY) (openat on both ABIs)
// and lseek(fd, 0, SEEK_END); the report line written to fd 1.
TEST_P(Trace, SyscallsCarryTheirArguments) {
  const std::string prog = guest("fork_fail");
  const CliRun r = mmemu_run("", prog + " 1");
  ASSERT_EQ(r.status, 0) << r.err;

  const auto mmaps = syscalls(r.trace, "mmap");
  const auto first = std::find_if(mmaps.begin(), mmaps.end(), [](const json& j) {
    return j["args"][1] == 8192 && j["args"][3] == "0x22";
  });
  ASSERT_NE(first, mmaps.end()) << r.trace.substr(0, 4000);
  const json& m = *first;
  EXPECT_EQ(m["args"], json::parse(R"(["0x0", 8192, "0x3", "0x22", -1, 0])"));
  ASSERT_TRUE(m["ret"].is_string()) << m;  // an address: hex
  const std::uint64_t addr = unhex(m["ret"]);
  EXPECT_EQ(addr % 4096, 0U);
  EXPECT_FALSE(m.contains("errno"));
  EXPECT_LT(m["start_seq"].get<std::uint64_t>(), m["seq"].get<std::uint64_t>());

  // The guard page's mprotect: the next call of this process.
  const auto all = events(r.trace, "syscall");
  const auto it = std::find_if(all.begin(), all.end(), [&](const json& j) { return j == m; });
  ASSERT_NE(it + 1, all.end());
  EXPECT_EQ((it + 1)->value("name", ""), "mprotect");
  EXPECT_EQ((*(it + 1))["args"], json::array({hex(addr + 4096), 4096, "0x0"}));
  EXPECT_EQ((*(it + 1))["ret"], 0);

  const auto opens = syscalls(r.trace, "openat");
  const auto open = std::find_if(opens.begin(), opens.end(), [&](const json& j) {
    return j["args"][1].is_object() && j["args"][1]["str"] == prog;
  });
  ASSERT_NE(open, opens.end()) << r.trace.substr(0, 4000);
  EXPECT_EQ((*open)["args"].size(), 4U);
  EXPECT_EQ((*open)["args"][0], -100);   // AT_FDCWD
  EXPECT_EQ((*open)["args"][2], "0x0");  // O_RDONLY
  const int fd = (*open)["ret"].template get<int>();
  EXPECT_GE(fd, 3);

  const auto seeks = syscalls(r.trace, "lseek");
  ASSERT_EQ(seeks.size(), 1U);
  EXPECT_EQ(seeks[0]["args"], json::array({fd, 0, 2}));
  EXPECT_EQ(seeks[0]["ret"], fs::file_size(prog));

  const std::string line = "mappings made: 42\n";
  const auto writes = syscalls(r.trace, "write");
  ASSERT_FALSE(writes.empty());
  EXPECT_EQ(writes[0]["args"].size(), 3U);
  EXPECT_EQ(writes[0]["args"][0], 1);
  EXPECT_EQ(writes[0]["args"][2], line.size());
  EXPECT_EQ(writes[0]["ret"], line.size());
  EXPECT_TRUE(writes[0]["args"][1].is_string());

  // The parent's waitpid blocks while the child runs: one event, when it returns, with the
  // child's events between its start and its end.
  const auto waits = syscalls(r.trace, "wait4");
  ASSERT_EQ(waits.size(), 1U);
  EXPECT_EQ(waits[0]["args"][0], 1001);
  EXPECT_EQ(waits[0]["args"][2], "0x0");
  EXPECT_EQ(waits[0]["ret"], 1001);
  const auto child_exits = events(r.trace, "exit");
  ASSERT_FALSE(child_exits.empty());
  EXPECT_EQ(child_exits[0]["pid"], 1001);
  EXPECT_LT(waits[0]["start_seq"].get<std::uint64_t>(), child_exits[0]["seq"].get<std::uint64_t>());
  EXPECT_LT(child_exits[0]["seq"].get<std::uint64_t>(), waits[0]["seq"].get<std::uint64_t>());

  // brk returns an address (hex); a call that failed carries its errno.
  const auto brks = syscalls(r.trace, "brk");
  ASSERT_FALSE(brks.empty());
  EXPECT_TRUE(brks[0]["ret"].is_string()) << brks[0];
  EXPECT_EQ(brks[0]["args"].size(), 1U);
  for (const json& s : events(r.trace, "syscall")) {
    const bool failed =
        s.contains("ret") && s["ret"].is_number_integer() && s["ret"].get<std::int64_t>() < 0;
    EXPECT_EQ(s.contains("errno"), failed) << s;
  }
}

// The README's demo run: the second fork fails in vm_area_dup at its 25th VMA, recovered the
// xa-zero way, with all six walkers at the lock-drop point.
constexpr const char* kDemo =
    "--fork-recovery xa-zero --walkers all --inject-from fork:2 --inject vma:25 "
    "--dump-pgtables fork --format json";

TEST_P(Trace, FailedForkReportIsStructuredJson) {
  const std::string prog = guest("fork_fail");
  const CliRun r = mmemu_run(kDemo, prog + " 3");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<json> failed;
  for (json& d : lines(r.dump))
    if (d.contains("fork")) failed.push_back(std::move(d));
  ASSERT_EQ(failed.size(), 1U);
  const json& d = failed[0];
  EXPECT_EQ(d["dump"], "fork");
  EXPECT_EQ(d["label"], "fork by 1000 failed in vm_area_dup (xa-zero)");
  EXPECT_FALSE(d["detail"].empty());  // the prose stays for text readers
  const json& f = d["fork"];
  const bool x86 = GetParam() == Arch::X86_64;
  const int ptes_copied = x86 ? 17 : 16;
  // The failed VMA: fork_fail's 25th in address order (arch-specific layout).
  const std::string vma = x86 ? "0x7ffff7fc6000" : "0xfffff7dca000";
  const std::string vma_last = x86 ? "0x7ffff7fc6fff" : "0xfffff7dcafff";
  EXPECT_EQ(f["ok"], false);
  EXPECT_EQ(f["recovery"], "xa-zero");
  EXPECT_EQ(f["failed_step"], "vm_area_dup");
  EXPECT_EQ(f["failed_vma"], vma);
  EXPECT_EQ(f["failure_point"], vma);
  EXPECT_EQ(f["vmas_copied"], 24);
  EXPECT_EQ(f["xa_zero"], json({{"first", vma}, {"last", vma_last}}));
  EXPECT_EQ(f["tree_max"], "0x0");
  EXPECT_EQ(f["torn_down"], 0);
  EXPECT_EQ(
      f["recovery_note"],
      fmt::format("XA_ZERO_ENTRY stored over [{}, {}]; exit_mmap stops there", vma, vma_last));
  EXPECT_EQ(f["child_flags"], json::array({"unstable", "oom-skip"}));
  EXPECT_EQ(f["child_mm_users"], 1);
  EXPECT_EQ(f["child_mm_count"], 1);
  EXPECT_EQ(f["ptes_copied"], ptes_copied);
  EXPECT_EQ(f["ptes_wrprotected"], 0);
  EXPECT_EQ(f["pages_copied"], 0);
  EXPECT_EQ(f["errors"], json::array());
  EXPECT_EQ(f["exit_mmap"]["vmas_removed"], 24);
  EXPECT_EQ(f["exit_mmap"]["map_count"], 24);
  EXPECT_EQ(f["exit_mmap"]["met_xa_zero"], true);
  EXPECT_EQ(f["exit_mmap"]["pages_freed"], 0);
  EXPECT_EQ(f["exit_mmap"]["tables_freed"], 6);

  // The walkers in the order they ran; the dump walker (mmemu's own) is not one of them.
  const json& w = f["walkers"];
  ASSERT_EQ(w.size(), 6U);
  const std::vector<std::pair<std::string, std::string>> want{
      {"unuse_mm-nocheck", "met-xa-zero"},   {"unuse_mm", "skipped-unstable"},
      {"rmap-nocheck", "met-child-vma"},     {"rmap", "skipped-unstable"},
      {"oom_reaper-nocheck", "met-xa-zero"}, {"oom_reaper", "skipped-oom-skip"}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(w[i]["walker"], want[i].first);
    EXPECT_EQ(w[i]["outcome"], want[i].second) << w[i];
    EXPECT_EQ(w[i]["point"], "lock-drop");
    EXPECT_EQ(w[i]["mm_users"], 1);
    EXPECT_EQ(w[i]["mm_count"], 1);
  }
  EXPECT_EQ(w[0]["met"], json({{"first", vma}, {"last", vma_last}}));
  EXPECT_EQ(w[0]["vmas_seen"], 24);
  EXPECT_EQ(w[0]["ref"], "mmget_not_zero");
  EXPECT_EQ(w[0]["checks"], false);
  EXPECT_EQ(w[1]["met"], nullptr);
  EXPECT_EQ(w[1]["vmas_seen"], 0);
  EXPECT_EQ(w[1]["checks"], true);
  EXPECT_EQ(w[4]["met"], json({{"first", vma}, {"last", vma_last}}));
  EXPECT_EQ(w[4]["pages_reaped"], x86 ? 17 : 15);
  EXPECT_EQ(w[4]["ref"], "mmgrab");
  EXPECT_EQ(w[5]["vmas_seen"], 0);
  // rmap: from a frame of the program file, the parent's and the dying child's VMAs.
  for (int i : {2, 3}) {
    EXPECT_EQ(w[i]["ref"], "none");
    EXPECT_EQ(w[i]["via"], "i_mmap of " + prog);
    EXPECT_EQ(w[i]["vmas_seen"], 4);
    ASSERT_EQ(w[i]["visits"].size(), 4U);
    const json& v = w[i]["visits"];
    EXPECT_EQ(v[0]["mm"], 1);
    EXPECT_EQ(v[0]["dying"], false);
    EXPECT_EQ(v[0]["pte"], "present");
    EXPECT_EQ(v[0]["frame"], w[i]["via_pfn"]);
    EXPECT_EQ(v[1]["mm"], 3);
    EXPECT_EQ(v[1]["dying"], true);
    EXPECT_EQ(v[1]["mm_flags"], json::array({"unstable", "oom-skip"}));
    EXPECT_EQ(v[1]["vma_start"], v[0]["vma_start"]);
    EXPECT_EQ(v[1]["addr"], v[0]["addr"]);
    EXPECT_EQ(v[2]["pte"], "none");
    EXPECT_EQ(v[2]["frame"], nullptr);
    if (i == 2) {
      EXPECT_EQ(v[1]["pte"], "present");
      EXPECT_EQ(v[1]["frame"], w[i]["via_pfn"]);
      EXPECT_EQ(v[3]["pte"], "none");
    } else {
      EXPECT_EQ(v[1]["pte"], "not-looked-into");
      EXPECT_EQ(v[3]["pte"], "not-looked-into");
    }
  }

  // The trace's fork event carries the same report (one to_json), plus the injector's
  // attempt numbers and the child pid.
  const auto forks = events(r.trace, "fork");
  ASSERT_EQ(forks.size(), 3U);
  json ev = forks[1];
  EXPECT_EQ(ev["child"], 0);
  for (const char* k : {"seq", "ev", "pid", "child", "attempts_before", "attempts_after",
                        "checks_before", "checks_after"})
    ev.erase(k);
  EXPECT_EQ(ev, f);
  EXPECT_EQ(forks[0]["ok"], true);
  EXPECT_EQ(forks[0]["child"], 1001);
  EXPECT_FALSE(forks[0].contains("failed_step"));
}

// `mmemu script --format json`: a failed fork's data is the same structured report (the
// shipped fork_failure.mms, its first fork failing at the 28th vm_area_dup).
TEST_P(Trace, ScriptForkJsonIsTheSameReport) {
  const std::string cmd = fmt::format(
      "{} script --arch {} --recovery xa-zero --format json {}/tools/scripts/fork_failure.mms",
      MMEMU_BINARY, arch_name(GetParam()), MMEMU_SOURCE_DIR);
  std::FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
    out.append(buf, n);
  ::pclose(p);
  std::vector<json> failed;
  for (json& step : lines(out))
    if (step["cmd"] == "fork" && step["data"]["ok"] == false) failed.push_back(step["data"]);
  ASSERT_EQ(failed.size(), 3U) << out.substr(0, 2000);
  const json& f = failed[0];
  const bool x86 = GetParam() == Arch::X86_64;
  const std::string vma = x86 ? "0x7ffff7f4f000" : "0xfffff7d50000";
  EXPECT_EQ(f["failed_step"], "vm_area_dup");
  EXPECT_EQ(f["failed_vma"], vma);
  EXPECT_EQ(f["vmas_copied"], 27);
  EXPECT_EQ(f["ptes_copied"], 82);
  EXPECT_EQ(f["xa_zero"]["first"], vma);
  EXPECT_EQ(f["child_flags"], json::array({"unstable", "oom-skip"}));
  EXPECT_EQ(f["exit_mmap"]["vmas_removed"], 27);
  EXPECT_EQ(f["exit_mmap"]["tables_freed"], 8);
  ASSERT_EQ(f["walkers"].size(), 6U);
  EXPECT_EQ(f["walkers"][0]["met"]["first"], vma);
  EXPECT_EQ(f["walkers"][2]["outcome"], "met-child-vma");
  EXPECT_FALSE(f["walkers"][2]["visits"].empty());
  EXPECT_EQ(failed[1]["failed_step"], "anon_vma_fork");
  EXPECT_EQ(failed[2]["failed_step"], "copy_page_range");

  // The same keys as `mmemu run`'s dump of a failed fork: one to_json.
  const CliRun r = mmemu_run(kDemo, guest("fork_fail") + " 3");
  for (json& d : lines(r.dump))
    if (d.contains("fork")) {
      std::set<std::string> run_keys, script_keys;
      for (const auto& [k, v] : d["fork"].items())
        run_keys.insert(k);
      for (const auto& [k, v] : f.items())
        script_keys.insert(k);
      script_keys.erase("injected");  // the script adds what its injector failed to any step
      EXPECT_EQ(run_keys, script_keys);
    }
}

// --trace-format chrome of a forking guest.
TEST_P(Trace, ChromeFormatOpensInPerfetto) {
  const std::string prog = guest("fork_fail");
  const std::string opts =
      "--trace-format chrome --fork-recovery xa-zero --walkers unuse_mm-nocheck "
      "--inject-from fork:2 --inject vma:25";
  const CliRun r = mmemu_run(opts, prog + " 3");
  ASSERT_EQ(r.status, 0) << r.err;
  // Two runs write the same file apart from the TLB-fill instants, whose number follows the
  // CPU's TLB sizing by host time (chrome_trace.hpp): the clock does not count them.
  const CliRun again = mmemu_run(opts, prog + " 3");
  const auto without_fills = [](const std::string& text) {
    std::string kept;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (line.find("\"cat\":\"tlb\"") == std::string::npos ||
          line.find("\"name\":\"tlb_flush\"") != std::string::npos)
        kept += line + '\n';
    return kept;
  };
  EXPECT_TRUE(without_fills(r.trace) == without_fills(again.trace))
      << "two runs wrote different files";

  const json t = json::parse(r.trace);  // one object: {"traceEvents": [...], ...}
  ASSERT_TRUE(t["traceEvents"].is_array());
  EXPECT_EQ(t["displayTimeUnit"], "ms");
  std::map<int, std::string> names;         // pid -> process_name
  std::set<int> pids;                       // pids of events other than metadata
  std::map<int, std::vector<json>> slices;  // pid -> X slices in file order
  std::vector<json> forks, walkers, injects, execs, exits;
  for (const json& e : t["traceEvents"]) {
    const int pid = e["pid"].get<int>();
    EXPECT_EQ(e["tid"], pid);
    if (e["ph"] == "M") {
      if (e["name"] == "process_name") names[pid] = e["args"]["name"];
      continue;
    }
    pids.insert(pid);
    ASSERT_TRUE(e["ts"].is_number_unsigned()) << e;
    if (e["ph"] == "X") {
      EXPECT_EQ(e["cat"], "syscall");
      ASSERT_TRUE(e["dur"].is_number_unsigned()) << e;
      EXPECT_TRUE(e["args"].contains("args")) << e;
      slices[pid].push_back(e);
      continue;
    }
    ASSERT_EQ(e["ph"], "i") << e;
    EXPECT_EQ(e["s"], "t");
    if (e["name"] == "fork" || e["name"] == "fork failed") forks.push_back(e);
    if (e["cat"] == "walker") walkers.push_back(e);
    if (e["cat"] == "inject") injects.push_back(e);
    if (e["name"] == "exec") execs.push_back(e);
    if (e["name"] == "exit") exits.push_back(e);
  }
  // Three processes ran: the parent and two children (the failed fork made none).
  EXPECT_EQ(pids, (std::set<int>{1000, 1001, 1002}));
  for (int pid : pids) {
    ASSERT_TRUE(names.contains(pid)) << pid;
    EXPECT_EQ(names[pid], "fork_fail") << pid;
  }
  // Slices on a track nest or follow each other: never a partial overlap.
  for (auto& [pid, v] : slices) {
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
      const std::uint64_t end = v[i]["ts"].get<std::uint64_t>() + v[i]["dur"].get<std::uint64_t>();
      const std::uint64_t next = v[i + 1]["ts"].get<std::uint64_t>();
      const std::uint64_t next_end = next + v[i + 1]["dur"].get<std::uint64_t>();
      EXPECT_TRUE(next >= end || next_end <= end) << v[i] << "\n" << v[i + 1];
    }
  }
  // The forks: two made a child, the second failed; each lies inside its clone slice.
  ASSERT_EQ(forks.size(), 3U);
  EXPECT_EQ(forks[0]["args"]["child"], 1001);
  EXPECT_EQ(forks[1]["name"], "fork failed");
  EXPECT_EQ(forks[1]["args"]["failed_step"], "vm_area_dup");
  EXPECT_EQ(forks[2]["args"]["child"], 1002);
  for (const json& f : forks) {
    const auto ts = f["ts"].get<std::uint64_t>();
    const bool inside = std::any_of(slices[1000].begin(), slices[1000].end(), [&](const json& s) {
      const auto b = s["ts"].get<std::uint64_t>();
      return (s["name"] == "clone" || s["name"] == "fork") && b <= ts &&
             ts <= b + s["dur"].get<std::uint64_t>();
    });
    EXPECT_TRUE(inside) << f;
  }
  ASSERT_EQ(walkers.size(), 1U);
  EXPECT_EQ(walkers[0]["name"], "walker unuse_mm-nocheck");
  EXPECT_EQ(walkers[0]["args"]["outcome"], "met-xa-zero");
  ASSERT_EQ(injects.size(), 1U);
  EXPECT_EQ(injects[0]["name"], "inject vma");
  ASSERT_EQ(execs.size(), 1U);
  EXPECT_EQ(exits.size(), 3U);

  // A syscall slice carries the call's arguments and result: the parent's wait4 for 1001.
  const auto wait = std::find_if(slices[1000].begin(), slices[1000].end(), [](const json& s) {
    return s["name"] == "wait4" && s["args"]["ret"] == 1001;
  });
  ASSERT_NE(wait, slices[1000].end());
  EXPECT_EQ((*wait)["args"]["args"][0], 1001);
  EXPECT_EQ((*wait)["args"]["args"].size(), 4U);
}

// A run that ends with the initial process killed (SIGKILL found by its fork's third
// fatal_signal check): the chrome file is still whole, the clone slice failed with EINTR
// and the kill is on the track.
TEST_P(Trace, ChromeFileIsClosedWhenTheProgramIsKilled) {
  const CliRun r = mmemu_run("--trace-format chrome --inject-from fork:1 --inject fatal_signal:3",
                             guest("fork_fail") + " 3");
  ASSERT_EQ(r.status, 137) << r.err;
  const json t = json::parse(r.trace);
  std::vector<json> clones, exits;
  for (const json& e : t["traceEvents"]) {
    if (e["ph"] == "X" && e["name"] == "clone") clones.push_back(e);
    if (e["ph"] == "i" && e["name"] == "exit") exits.push_back(e);
  }
  ASSERT_EQ(clones.size(), 1U);
  EXPECT_EQ(clones[0]["args"]["errno"], "EINTR");
  EXPECT_EQ(clones[0]["args"]["ret"], -4);
  ASSERT_EQ(exits.size(), 1U);
  EXPECT_EQ(exits[0]["pid"], 1000);
  EXPECT_EQ(exits[0]["args"]["status"], "killed by SIGKILL");
}

INSTANTIATE_TEST_SUITE_P(Arches, Trace, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& p) { return std::string(arch_name(p.param)); });

}  // namespace
}  // namespace mmemu
