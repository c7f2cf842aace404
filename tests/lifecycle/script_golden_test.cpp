// Golden-output tests of `mmemu script`: each shipped script (tools/scripts/*.mms) is run by
// the built mmemu binary and its standard output must equal tests/golden/<case>.out byte for
// byte, with exit status 0. Also the command's contract: exit statuses 1, 2 and 70 paths,
// line:column errors, standard input, --out and JSON lines with stable keys.
//
// After a deliberate output change, MMEMU_UPDATE_GOLDEN=1 rewrites the golden files; review
// the diff before committing it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef MMEMU_BINARY
#error "MMEMU_BINARY must name the built mmemu executable (tests/CMakeLists.txt)"
#endif
#ifndef MMEMU_SOURCE_DIR
#error "MMEMU_SOURCE_DIR must name the source tree (tests/CMakeLists.txt)"
#endif

namespace {

namespace fs = std::filesystem;

const fs::path kSrc = MMEMU_SOURCE_DIR;

struct Proc {
  int status = -1;
  std::string out;
};

// Runs a shell command line, capturing standard output; standard error goes to `err_file`
// when given (else to /dev/null).
Proc run(const std::string& cmd, const std::string& err_file = "/dev/null") {
  Proc r;
  FILE* p = ::popen((cmd + " 2>" + err_file).c_str(), "r");
  if (!p) return r;
  std::array<char, 65536> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    r.out.append(buf.data(), n);
  const int w = ::pclose(p);
  r.status = WIFEXITED(w) ? WEXITSTATUS(w) : -1;
  return r;
}

std::string mmemu() {
  return std::string("'") + MMEMU_BINARY + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first line where two outputs differ, for a readable failure.
std::string first_difference(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ea = !std::getline(a, la), eb = !std::getline(b, lb);
    if (ea && eb) return "same lines (a difference in the final newline)";
    if (ea || eb || la != lb)
      return "line " + std::to_string(line) + ":\n  golden: " + (ea ? "<end>" : la) +
             "\n  actual: " + (eb ? "<end>" : lb);
  }
}

struct Case {
  const char* golden;  // tests/golden/<golden>.out
  const char* script;  // tools/scripts/<script>
  const char* args;    // extra options before the file
  int status = 0;      // its exit status
};

// Every shipped script has at least one case; the fork-failure demo runs once per recovery.
constexpr std::array<Case, 7> kCases{{
    {"fork_failure.xa-zero", "fork_failure.mms", "--recovery xa-zero"},
    {"fork_failure.tree-max", "fork_failure.mms", "--recovery tree-max"},
    {"fork_failure.partial", "fork_failure.mms", "--recovery partial"},
    {"free_pgtables", "free_pgtables.mms", ""},
    {"cow", "cow.mms", ""},
    {"cow.json", "cow.mms", "--format json"},
    {"what_if", "what_if.mms", "", 70},  // it shows a page table freed while in use
}};

class ScriptGolden : public ::testing::TestWithParam<Case> {};

TEST_P(ScriptGolden, OutputMatchesGoldenFile) {
  const Case& c = GetParam();
  const fs::path script = kSrc / "tools/scripts" / c.script;
  const fs::path golden = kSrc / "tests/golden" / (std::string(c.golden) + ".out");
  ASSERT_TRUE(fs::exists(script)) << script;
  const Proc r = run(mmemu() + " script " + c.args + " '" + script.string() + "'");
  EXPECT_EQ(r.status, c.status) << "mmemu script " << c.args << " " << script;
  if (const char* u = std::getenv("MMEMU_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(golden, std::ios::binary | std::ios::trunc) << r.out;
    GTEST_SKIP() << "rewrote " << golden;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden << " is missing (MMEMU_UPDATE_GOLDEN=1 writes it)";
  const std::string want = slurp(golden);
  EXPECT_TRUE(r.out == want) << golden << " differs at " << first_difference(want, r.out);
}

INSTANTIATE_TEST_SUITE_P(Shipped, ScriptGolden, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n = i.param.golden;
                           for (char& ch : n)
                             if (ch == '.' || ch == '-') ch = '_';
                           return n;
                         });

TEST(ScriptGoldenCoverage, EveryShippedScriptHasAGoldenCase) {
  std::set<std::string> covered;
  for (const Case& c : kCases)
    covered.insert(c.script);
  int scripts = 0;
  for (const auto& e : fs::directory_iterator(kSrc / "tools/scripts")) {
    if (e.path().extension() != ".mms") continue;
    ++scripts;
    EXPECT_TRUE(covered.contains(e.path().filename().string())) << e.path();
  }
  EXPECT_GE(scripts, 3);
}

// --- the command's contract ---

// Writes `text` to a temporary script and runs it with `args`.
Proc run_text(const std::string& text, const std::string& args = "",
              const std::string& err_file = "/dev/null") {
  const fs::path p =
      fs::temp_directory_path() / ("mmemu_script_test_" + std::to_string(::getpid()) + ".mms");
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  Proc r = run(mmemu() + " script " + args + " '" + p.string() + "'", err_file);
  fs::remove(p);
  return r;
}

std::string err_path() {
  return (fs::temp_directory_path() / ("mmemu_script_err_" + std::to_string(::getpid()))).string();
}

TEST(ScriptCommand, UnknownCommandIsAnErrorWithLineAndColumnAndStatus2) {
  const std::string ef = err_path();
  const Proc r = run_text("mm a\n  frobnicate a\n", "", ef);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");  // nothing ran
  const std::string err = slurp(ef);
  fs::remove(ef);
  EXPECT_NE(err.find(":2:3: error: unknown command 'frobnicate'"), std::string::npos) << err;
}

TEST(ScriptCommand, BadArgumentsAreReportedWhereTheyAre) {
  const std::string ef = err_path();
  const Proc r = run_text(
      "mm a arch=sparc\n"
      "mm b\n"
      "x = mmap b auto 4Q rw- private\n"
      "mprotect b 0x1000 4K rwz\n"
      "touch c 0x1000\n"
      "munmap b $nothere 4K\n"
      "write b 0x1000 \"unterminated\n",
      "", ef);
  EXPECT_EQ(r.status, 2);
  const std::string err = slurp(ef);
  fs::remove(ef);
  EXPECT_NE(err.find(":1:11: error: arch=: unknown architecture 'sparc'"), std::string::npos)
      << err;
  EXPECT_NE(err.find(":3:18: error: argument 3: unexpected 'Q' in number"), std::string::npos)
      << err;
  EXPECT_NE(err.find(":4:22: error: argument 4: bad protection 'rwz'"), std::string::npos) << err;
  EXPECT_NE(err.find(":5:7: error: no mm named 'c'"), std::string::npos) << err;
  EXPECT_NE(err.find(":6:10: error: $nothere is used before it is set"), std::string::npos) << err;
  EXPECT_NE(err.find(":7:16: error: unterminated string"), std::string::npos) << err;
}

TEST(ScriptCommand, RuntimeErrorStopsWithStatus2AndNamesTheLine) {
  const std::string ef = err_path();
  // b's fork fails, so b never exists: using it is a script error, found while running.
  const Proc r = run_text("mm a\ninject pgtable:1\nfork a b\ntouch b 0x10000\n", "", ef);
  EXPECT_EQ(r.status, 2);
  const std::string err = slurp(ef);
  fs::remove(ef);
  EXPECT_NE(err.find(":4:7: error: no live mm named 'b'"), std::string::npos) << err;
  EXPECT_NE(r.out.find("fork a b"), std::string::npos);  // steps before it did run
}

TEST(ScriptCommand, FailedExpectExitsOneAfterRunningEverything) {
  const Proc r = run_text(
      "mm a\n"
      "x = mmap a auto 8K rw- private\n"
      "expect vmas a 2\n"
      "touch a $x+16K\n"
      "expect fault SEGV_MAPERR\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("FAIL: 1 VMAs (map_count 1), expected 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pass: last result SEGV_MAPERR"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("end: leak check ok"), std::string::npos) << r.out;
}

// The memory calls reach the core with their arguments as written (mremap flags, madvise
// advice, mlock forms, relative brk, MAP_FIXED_NOREPLACE, populate, file access modes),
// with every invariant checked after every step (--check).
TEST(ScriptCommand, MemoryCallsReachTheCore) {
  const Proc r = run_text(
      "mm a arch=arm64\n"
      "x = mmap a auto 16K rw- private\n"
      "write a $x \"keep me\"\n"
      "touch a $x 16K write\n"
      "y = mremap a $x 16K 64K maymove\n"
      "expect bytes a $y \"keep me\"\n"
      "expect vmas a 1\n"
      "mprotect a $y 4K r--\n"
      "touch a $y write\n"
      "expect fault SEGV_ACCERR\n"
      "touch a $y read\n"
      "expect fault ok\n"
      "madvise a $y+4K 4K dontneed\n"
      "expect bytes a $y+4K \"\\0\"\n"
      "mlock a $y+8K 8K\n"
      "expect vmas a 4\n"
      "mlockall a current future\n"
      "munlockall a\n"
      "h = brk a\n"
      "brk a +64K\n"
      "touch a $h 64K write\n"
      "expect rss a anon 32\n"
      "brk a -32K\n"
      "expect rss a anon 24\n"
      "z = mmap a $y 4K rw- private fixed noreplace\n"
      "expect errno EEXIST\n"
      "p = mmap a auto 32K rw- private populate\n"
      "expect rss a anon 32\n"
      "file f size=8K readonly\n"
      "q = mmap a auto 8K rw- shared file=f\n"
      "expect errno EACCES\n"
      "q = mmap a auto 8K r-- shared file=f\n"
      "touch a $q+4K read\n"
      "expect bytes a $q+4K \"f page 1\\n\"\n"
      "check\n"
      "",
      "--check");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("=> SEGV_ACCERR at "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--check:"), std::string::npos) << r.out;
}

// Dumps name VMAs with the function /proc/PID/maps uses (vma/proc_maps.cpp): the heap is
// the VMA overlapping [start_brk, brk) (vma_is_initial_heap, strict), so a VMA that only
// ends where the heap starts is not "[heap]", whether the heap is empty or not.
TEST(ScriptCommand, DumpNamesTheHeapAsProcMapsDoes) {
  const Proc r = run_text(
      "mm a brk=0x600000 archmap=no\n"
      "mmap a 0x5f0000 64K rw- private fixed\n"
      "dump a vmas\n"
      "brk a +8K\n"
      "dump a vmas\n");
  EXPECT_EQ(r.status, 0) << r.out;
  std::vector<std::string> heap, below;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) {
    if (l.find("[heap]") != std::string::npos) heap.push_back(l);
    if (l.find("005f0000-00600000 rw-p") != std::string::npos) below.push_back(l);
  }
  ASSERT_EQ(heap.size(), 1U) << r.out;
  EXPECT_NE(heap[0].find("00600000-00602000 rw-p"), std::string::npos) << heap[0];
  ASSERT_EQ(below.size(), 2U) << r.out;  // once per dump, never named
}

TEST(ScriptCommand, ReadsStandardInputAndWritesOut) {
  const fs::path out = fs::temp_directory_path() / ("mmemu_out_" + std::to_string(::getpid()));
  const Proc r = run("printf 'mm a\\nx = mmap a auto 4K r-- private\\n' | " + mmemu() +
                     " script --out '" + out.string() + "' -");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  const std::string text = slurp(out);
  fs::remove(out);
  EXPECT_NE(text.find("x = mmap a auto 4K r-- private"), std::string::npos) << text;
}

TEST(ScriptCommand, UsageErrorsExitTwo) {
  EXPECT_EQ(run(mmemu() + " script").status, 2);
  EXPECT_EQ(run(mmemu() + " script --format yaml x.mms").status, 2);
  EXPECT_EQ(run(mmemu() + " script /nonexistent/file.mms").status, 2);
  EXPECT_EQ(run(mmemu() + " script --phys-mem 12Q -").status, 2);
  EXPECT_EQ(run(mmemu() + " nosuchcommand").status, 2);
  EXPECT_EQ(run(mmemu() + " script --help").status, 0);
}

TEST(ScriptCommand, JsonLinesHaveStableKeys) {
  const Proc r = run_text(
      "mm a arch=arm64\n"
      "x = mmap a auto 8K rw- private\n"
      "touch a $x write\n"
      "munmap a 0x1001 4K\n"
      "dump a\n",
      "--format json");
  EXPECT_EQ(r.status, 0);
  std::istringstream in(r.out);
  std::vector<nlohmann::json> lines;
  for (std::string l; std::getline(in, l);)
    lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), 5U + 4U);  // 5 steps, end-check, end-exit, end-leaks, end
  for (std::size_t i = 0; i < 5; ++i) {
    for (const char* k : {"line", "text", "cmd", "ok", "status", "result", "data"})
      EXPECT_TRUE(lines[i].contains(k)) << k << " in " << lines[i].dump();
    EXPECT_EQ(lines[i]["line"], i + 1);
  }
  EXPECT_EQ(lines[1]["data"]["value"],
            lines[2]["line"].get<int>() ? lines[1]["data"]["value"] : nlohmann::json());
  EXPECT_EQ(lines[3]["status"], "EINVAL");
  EXPECT_EQ(lines[3]["ok"], false);
  const auto& d = lines[4]["data"];
  for (const char* k : {"vmas", "tree", "pgtables", "counters", "machine"})
    EXPECT_TRUE(d.contains(k)) << k;
  EXPECT_EQ(d["vmas"]["vmas"].size(), 1U);
  EXPECT_EQ(d["pgtables"]["arch"], "arm64");
  EXPECT_EQ(lines.back()["cmd"], "end");
  EXPECT_EQ(lines.back()["exit_status"], 0);
}

}  // namespace
