// Guard markers as `mmemu run` shows them, on both arches: the guard_regions guest's dump
// at its reserved-call label "guards installed" (--dump-pgtables guest) holds one run of two
// guard markers with the arch's raw marker value, in a PTE table whose used count includes
// them, and no VMA split; the trace names the faults on guard pages "segv-guard" and the
// stats count them; the text dump prints the run as "guard".
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "emu/emu_test_util.hpp"
#include "tools/cli_test_util.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using test::slurp;

using test::CliRun;

CliRun run(const std::string& options, const std::string& program) {
  return test::mmemu_run_traced(options, program);
}

std::uint64_t unhex(const json& s) {
  return std::stoull(s.get<std::string>(), nullptr, 16);
}

class GuardDump : public ::testing::TestWithParam<Arch> {
 protected:
  std::string guest() { return test::guest_path(GetParam(), "guard_regions"); }
  std::uint64_t marker() const {
    return GetParam() == Arch::X86_64 ? 0xfffffffffffff600ULL : 0x4f8ULL;
  }
};

TEST_P(GuardDump, JsonDumpHoldsTheMarkersAndTheTraceNamesTheFaults) {
  const CliRun r = run("--dump-pgtables guest --format json --stats", guest());
  ASSERT_EQ(r.status, 0) << r.err;
  json dump, stats;
  std::istringstream in(r.dump);
  for (std::string l; std::getline(in, l);) {
    if (l.empty()) continue;
    json j = json::parse(l);
    if (j.contains("stats")) stats = j["stats"];
    if (j.value("label", "") == "guards installed") dump = std::move(j);
  }
  ASSERT_FALSE(dump.is_null()) << r.dump.substr(0, 2000);
  std::vector<json> guards;
  std::uint64_t table_used = 0;
  for (const json& t : dump["pgtables"]["tables"]) {
    if (t["level"] != "pte") continue;
    for (const json& run : t["runs"])
      if (run["kind"] == "guard") {
        guards.push_back(run);
        table_used = t["used"].get<std::uint64_t>();
      }
  }
  ASSERT_EQ(guards.size(), 1U);
  const json& g = guards[0];
  EXPECT_EQ(g["last"].get<unsigned>() - g["first"].get<unsigned>(), 1U);  // pages 2 and 3
  EXPECT_EQ(unhex(g["raw"]), marker());
  EXPECT_EQ(g["bits"], "guard");
  EXPECT_EQ(g["present"], false);
  EXPECT_GE(table_used, 10U);  // the mapping's 8 pages and 2 markers, at least
  // The 10-page mapping is one VMA holding the markers.
  const std::uint64_t gstart = unhex(g["va_start"]);
  int holders = 0;
  for (const json& v : dump["vmas"]["vmas"]) {
    const std::uint64_t s = unhex(v["start"]), e = unhex(v["end"]);
    if (s <= gstart && gstart < e) {
      ++holders;
      EXPECT_EQ(e - s, 10U * 4096) << v;
      EXPECT_EQ(gstart - s, 2U * 4096) << v;
    }
  }
  EXPECT_EQ(holders, 1);

  int guard_faults = 0;
  std::istringstream tr(r.trace);
  for (std::string l; std::getline(tr, l);) {
    if (l.empty()) continue;
    const json j = json::parse(l);
    if (j["ev"] == "fault" && j["result"] == "segv-guard") ++guard_faults;
  }
  EXPECT_GE(guard_faults, 20);
  ASSERT_TRUE(stats.contains("fault.segv-guard")) << stats;
  EXPECT_EQ(stats["fault.segv-guard"].get<int>(), guard_faults);
}

TEST_P(GuardDump, TextDumpPrintsGuard) {
  const CliRun r = run("--dump-pgtables guest", guest());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string want = fmt::format("guard, raw {:#018x} guard", marker());
  const auto at = r.dump.find("guards installed");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(r.dump.find(want, at), std::string::npos) << r.dump.substr(at, 6000);
}

INSTANTIATE_TEST_SUITE_P(Arches, GuardDump, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const ::testing::TestParamInfo<Arch>& i) {
                           return std::string(arch_name(i.param));
                         });

}  // namespace
}  // namespace mmemu
