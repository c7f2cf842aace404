// `mmemu run --list-allocations` and `mmemu script --list-allocations`: every allocation
// attempt (and fatal_signal check) from the --inject-from point, numbered exactly as
// --inject counts them, with the kernel function asking and the address. Checked by parsing
// the JSON lines: numbering, counts per site against --stats, and that the listed
// `vm_area_dup` attempt N is the one `--inject vma:N` makes fail (the fork report says so).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "emu/emu_test_util.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // keeps the key order, which is checked

struct Cli {
  int status = -1;
  std::string out;  // standard output
  std::string err;  // standard error
};

Cli mmemu(const std::string& args, const std::string& stdin_text = "") {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("mmemu-alloc-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string err = (dir / "err.txt").string(), in = (dir / "in.txt").string();
  std::ofstream(in) << stdin_text;
  const std::string cmd = std::string(MMEMU_BINARY) + " " + args + " <" + in + " 2>" + err;
  Cli c;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return c;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
    c.out.append(buf, n);
  const int st = ::pclose(p);
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(err);
  std::stringstream ss;
  ss << e.rdbuf();
  c.err = ss.str();
  fs::remove_all(dir);
  return c;
}

// The JSON lines of `text` that are allocation entries (they have "alloc" and "nth").
std::vector<json> alloc_lines(const std::string& text) {
  std::vector<json> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.empty() || l.front() != '{') continue;
    json j = json::parse(l);
    if (j.contains("alloc") && j.contains("nth")) v.push_back(std::move(j));
  }
  return v;
}

// Exactly the keys the sweep relies on, in order, and consistent numbering: `alloc` counts
// allocation attempts 1, 2, ... (null for checks), `nth` counts each site's 1, 2, ...
void expect_well_numbered(const std::vector<json>& list) {
  std::uint64_t alloc = 0;
  std::map<std::string, std::uint64_t> nth;
  for (const json& j : list) {
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it)
      keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"alloc", "site", "nth", "function", "addr", "pid",
                                              "context", "failed"}))
        << j;
    const std::string site = j["site"];
    if (site == "fatal_signal") {
      EXPECT_TRUE(j["alloc"].is_null()) << j;
    } else {
      EXPECT_EQ(j["alloc"], ++alloc) << j;
    }
    EXPECT_EQ(j["nth"], ++nth[site]) << j;
    const std::string f = j["function"];
    EXPECT_FALSE(f.empty()) << j;
    EXPECT_NE(f, "alloc_pages") << j;  // the allocator's default: some caller is unnamed
    EXPECT_TRUE(j["addr"].is_null() || std::string(j["addr"]).starts_with("0x")) << j;
  }
}

class AllocList : public ::testing::TestWithParam<Arch> {
 protected:
  std::string guest(const std::string& name) { return test::guest_path(GetParam(), name); }
};

TEST_P(AllocList, ForkFailListNamesWhatInjectVmaNFails) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("alloc-list-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string list_file = (dir / "list.json").string();
  const Cli c = mmemu("run --list-allocations --format json --out " + list_file +
                      " --inject-from fork:2 " + guest("fork_fail") + " 3");
  ASSERT_EQ(c.status, 0) << c.err;
  std::ifstream in(list_file);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<json> list = alloc_lines(ss.str());
  ASSERT_FALSE(list.empty());
  expect_well_numbered(list);
  // From the second fork on: the first attempts are its own, by pid 1000.
  EXPECT_EQ(list.front()["pid"], 1000) << list.front();
  EXPECT_EQ(list.front()["function"], "pgd_alloc") << list.front();
  for (const json& j : list)
    EXPECT_FALSE(j["failed"].get<bool>()) << j;

  // The 25th vma attempt is the second fork's 25th vm_area_dup, and --inject vma:25 fails
  // exactly that one (the fork report names its VMA).
  const json* dup25 = nullptr;
  for (const json& j : list)
    if (j["site"] == "vma" && j["nth"] == 25) dup25 = &j;
  ASSERT_NE(dup25, nullptr);
  EXPECT_EQ((*dup25)["function"], "vm_area_dup") << *dup25;
  EXPECT_EQ((*dup25)["pid"], 1000) << *dup25;
  EXPECT_TRUE(std::string((*dup25)["context"]).starts_with("fork: vm_area_dup ")) << *dup25;
  if (GetParam() == Arch::X86_64) {
    EXPECT_EQ((*dup25)["addr"], "0x7ffff7fc6000") << *dup25;
  }
  const std::string dump_file = (dir / "dump.txt").string();
  const Cli f = mmemu("run --out " + dump_file + " --dump-pgtables fork --inject-from fork:2 " +
                      "--inject vma:25 " + guest("fork_fail") + " 3");
  EXPECT_EQ(f.status, 0) << f.err;
  EXPECT_NE(f.out.find("fork 1: ENOMEM\n"), std::string::npos) << f.out;
  std::ifstream din(dump_file);
  std::stringstream dump;
  dump << din.rdbuf();
  EXPECT_NE(dump.str().find("  vm_area_dup failed at VMA " + std::string((*dup25)["addr"]) +
                            ", 24 VMAs copied\n"),
            std::string::npos)
      << dump.str();

  // The same injection listed: that attempt, and only it, is marked failed.
  const std::string failed_file = (dir / "failed.json").string();
  const Cli l = mmemu("run --list-allocations --format json --out " + failed_file +
                      " --inject-from fork:2 --inject vma:25 " + guest("fork_fail") + " 3");
  EXPECT_EQ(l.status, 0) << l.err;
  std::ifstream fin(failed_file);
  std::stringstream fss;
  fss << fin.rdbuf();
  int failed = 0;
  for (const json& j : alloc_lines(fss.str())) {
    if (!j["failed"].get<bool>()) continue;
    ++failed;
    EXPECT_EQ(j["site"], "vma") << j;
    EXPECT_EQ(j["nth"], 25) << j;
    EXPECT_EQ(j["addr"], (*dup25)["addr"]) << j;
  }
  EXPECT_EQ(failed, 1);
  fs::remove_all(dir);
}

// From the load on, the list holds every attempt of the run: per site, as many entries as
// --stats counts attempts; the stats line follows the list in the same --out.
TEST_P(AllocList, CountsPerSiteAreTheStatsAttempts) {
  const Cli c = mmemu(
      "run --list-allocations --stats --format json --out /dev/stdout "
      "--inject-from load " +
      guest("fork_fail") + " 2");
  ASSERT_EQ(c.status, 0) << c.err;
  const std::vector<json> list = alloc_lines(c.out);
  expect_well_numbered(list);
  std::map<std::string, std::uint64_t> counted;
  for (const json& j : list)
    ++counted[j["site"].get<std::string>()];
  json stats;
  std::istringstream in(c.out);
  for (std::string l; std::getline(in, l);)
    if (l.starts_with("{\"exit_status\"") || l.find("\"stats\"") != std::string::npos)
      stats = json::parse(l);
  ASSERT_TRUE(stats.contains("machine")) << c.out.substr(c.out.size() - 400);
  for (const auto& [site, n] : stats["machine"]["attempts"].items())
    EXPECT_EQ(counted[site], n.get<std::uint64_t>()) << site;
  // fork_fail 2 forks twice: a fatal_signal check per VMA each copies.
  EXPECT_GT(counted["fatal_signal"], 0U);
  // The load's own first attempts: exec's new mm, outside any process.
  EXPECT_EQ(list.front()["function"], "pgd_alloc") << list.front();
}

TEST_P(AllocList, TextIsATableWithAHeader) {
  const Cli c = mmemu("run --list-allocations --out /dev/stdout --inject-from fork:2 " +
                      guest("fork_fail") + " 3");
  ASSERT_EQ(c.status, 0) << c.err;
  const std::size_t head = c.out.find("alloc  site");
  ASSERT_NE(head, std::string::npos) << c.out;
  const std::string header = c.out.substr(head, c.out.find('\n', head) - head);
  EXPECT_NE(header.find("alloc  site          nth  function"), std::string::npos) << header;
  EXPECT_TRUE(header.ends_with("addr            context")) << header;
  if (GetParam() == Arch::X86_64) {
    EXPECT_NE(c.out.find("\n   64  vma            25  vm_area_dup        0x7ffff7fc6000  fork: "
                         "vm_area_dup 0x7ffff7fc6000\n"),
              std::string::npos)
        << c.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Arches, AllocList, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const ::testing::TestParamInfo<Arch>& i) {
                           return std::string(arch_name(i.param));
                         });

// A script's list starts at its first line: no pid, the line as context.
TEST(AllocListScript, NumbersFromTheFirstLine) {
  const std::string script =
      "mm p\n"
      "a = mmap p auto 8K rw- private\n"
      "touch p $a write\n"
      "fork p c\n"
      "touch c $a write\n";
  const Cli c = mmemu("script --list-allocations --format json -", script);
  ASSERT_EQ(c.status, 0) << c.err << c.out;
  const std::vector<json> list = alloc_lines(c.out);
  expect_well_numbered(list);
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list.front()["context"], "line 1: mm p") << list.front();
  for (const json& j : list)
    EXPECT_TRUE(j["pid"].is_null()) << j;
  // The child's write: a COW copy of the parent's page, at its address.
  const json& last = list.back();
  EXPECT_EQ(last["function"], "wp_page_copy") << last;
  EXPECT_EQ(last["context"], "line 5: touch c $a write") << last;
  const Cli t = mmemu("script --list-allocations -", script);
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("alloc  site"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace mmemu
