// `mmemu diff` on real dumps of both arches: a script whose every step has an effect known
// in advance (an mprotect that splits a VMA and one that merges it back, a partial munmap, a
// mapping that needs a table of its own and its removal, a fork, the child), and the
// fork_fail guest's dumps before and after a fork (every private writable page loses its
// write bit and gains a second mapping, nothing else moves). The JSON output is parsed;
// identical dumps exit 0 with "no differences"; usage errors exit 2 with one line.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "mmu/types.hpp"
#include "tools/cli_test_util.hpp"
#include "tools/dump_diff.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Out {
  int status = -1;
  std::string out, err;
};

using test::slurp;

// A scratch directory per test, removed at the end.
class DiffDir {
 public:
  DiffDir() {
    const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = t->name();  // "Case/x86_64" for the arch-parameterised cases
    std::replace(name.begin(), name.end(), '/', '-');
    dir_ =
        fs::path(::testing::TempDir()) / ("mmemu-diff-" + std::to_string(::getpid()) + "-" + name);
    fs::create_directories(dir_);
  }
  ~DiffDir() { fs::remove_all(dir_); }
  fs::path operator/(const std::string& n) const { return dir_ / n; }

 private:
  fs::path dir_;
};

// Runs `mmemu ARGS` (standard output and error captured apart).
Out mmemu(const std::string& args, const DiffDir& d) {
  const std::string err = (d / "stderr.txt").string();
  const std::string cmd = std::string(MMEMU_BINARY) + " " + args + " 2>" + err;
  Out o;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return o;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
    o.out.append(buf, n);
  const int st = ::pclose(p);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  o.err = slurp(err);
  return o;
}

// ${build}/guests, found next to the test binary (as tests/emu do).
std::string guest(Arch a, const std::string& name) {
  const fs::path exe = fs::read_symlink("/proc/self/exe");
  for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / "guests" / "guests.txt"))
      return (p / "guests" / std::string(arch_name(a)) / name).string();
  return "guests/" + std::string(arch_name(a)) + "/" + name;
}

// Each step's effect is known: a at 0x40000000, 4 pages written (frames 0x200..0x203);
// dumps 1..8 after each step.
constexpr const char* kScript = R"(mm p
a = mmap p 0x40000000 16K rw- private fixed
touch p $a 16K write
dump p
mprotect p $a+4K 4K r--
dump p
mprotect p $a+4K 4K rw-
dump p
munmap p $a+8K 8K
dump p
b = mmap p 0x40200000 4K rw- private fixed
touch p $b write
dump p
munmap p $b 4K
dump p
fork p c
dump p
dump c
)";

class DumpDiff : public ::testing::TestWithParam<Arch> {
 protected:
  std::string arch() const { return std::string(arch_name(GetParam())); }
  bool x86() const { return GetParam() == Arch::X86_64; }
  // The write bit as each arch decodes it: x86 RW; arm64 AP=rw-el0 and DBM (PTE_WRITE).
  std::vector<std::string> write_removed() const {
    return x86() ? std::vector<std::string>{"RW"} : std::vector<std::string>{"AP=rw-el0", "DBM"};
  }
  std::vector<std::string> write_added() const {
    return x86() ? std::vector<std::string>{} : std::vector<std::string>{"AP=ro-el0"};
  }

  // Writes the script, runs it, returns the path of its JSON output.
  std::string script_dumps(const DiffDir& d) {
    std::ofstream(d / "steps.mms") << kScript;
    const std::string out = (d / "steps.json").string();
    const Out r = mmemu(
        fmt("script --arch {} --format json {} > {}", arch(), (d / "steps.mms").string(), out), d);
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }

  json diff_json(const DiffDir& d, const std::string& a, const std::string& b, int status = 1) {
    const Out r = mmemu("diff --format json " + a + " " + b, d);
    EXPECT_EQ(r.status, status) << a << " " << b << ": " << r.err;
    EXPECT_EQ(r.err, "");
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  template <class... A>
  static std::string fmt(const char* f, A&&... a) {
    return ::fmt::format(::fmt::runtime(f), std::forward<A>(a)...);
  }
};

json counter(const json& d, const std::string& name) {
  for (const json& c : d["counters"])
    if (c["name"] == name) return c;
  return json();
}

std::vector<std::string> strings(const json& a) {
  return a.get<std::vector<std::string>>();
}

TEST_P(DumpDiff, MprotectSplitsThenMergesAVmaAndFlipsOneEntry) {
  DiffDir d;
  const std::string f = script_dumps(d);
  const json split = diff_json(d, f + ":1", f + ":2");
  EXPECT_EQ(split["arch"], arch());
  EXPECT_EQ(split["differences"], true);
  EXPECT_EQ(split["tables"].size(), 0u);
  ASSERT_EQ(split["entries"].size(), 1u) << split.dump(1);
  const json& e = split["entries"][0];
  EXPECT_EQ(e["op"], "changed");
  EXPECT_EQ(e["level"], "pte");
  EXPECT_EQ(e["first"], 1);
  EXPECT_EQ(e["last"], 1);
  EXPECT_EQ(e["va_start"], "0x40001000");
  EXPECT_EQ(e["va_last"], "0x40001fff");
  EXPECT_EQ(e["a"]["frame_first"], "0x201");
  EXPECT_EQ(e["b"]["frame_first"], "0x201");
  EXPECT_EQ(e["a"]["prot"], "rw- young dirty");
  EXPECT_EQ(e["b"]["prot"], "r-- young dirty");
  EXPECT_EQ(strings(e["changed"]), (std::vector<std::string>{"prot", "bits"}));
  EXPECT_EQ(strings(e["bits_removed"]), write_removed());
  EXPECT_EQ(strings(e["bits_added"]), write_added());
  ASSERT_EQ(split["vmas"].size(), 1u);
  const json& v = split["vmas"][0];
  EXPECT_EQ(v["op"], "split");
  ASSERT_EQ(v["a"].size(), 1u);
  EXPECT_EQ(v["a"][0]["start"], "0x40000000");
  EXPECT_EQ(v["a"][0]["end"], "0x40004000");
  ASSERT_EQ(v["b"].size(), 3u);
  const std::vector<std::tuple<const char*, const char*, const char*>> pieces = {
      {"0x40000000", "0x40001000", "rw-p"},
      {"0x40001000", "0x40002000", "r--p"},
      {"0x40002000", "0x40004000", "rw-p"}};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(v["b"][i]["start"], std::get<0>(pieces[i]));
    EXPECT_EQ(v["b"][i]["end"], std::get<1>(pieces[i]));
    EXPECT_EQ(v["b"][i]["perms"], std::get<2>(pieces[i]));
  }
  EXPECT_EQ(strings(v["changed"]), (std::vector<std::string>{"perms", "flags"}));
  EXPECT_EQ(counter(split, "map_count")["old"], 1);
  EXPECT_EQ(counter(split, "map_count")["new"], 3);
  EXPECT_EQ(counter(split, "map_count")["delta"], 2);
  EXPECT_EQ(counter(split, "data_vm")["delta"], -1);
  EXPECT_TRUE(counter(split, "mm").is_null());  // which mm, not a count
  EXPECT_EQ(split["summary"]["vmas_split"], 1);
  EXPECT_EQ(split["summary"]["entries_changed"], 1);

  const json merge = diff_json(d, f + ":2", f + ":3");
  ASSERT_EQ(merge["vmas"].size(), 1u);
  EXPECT_EQ(merge["vmas"][0]["op"], "merged");
  EXPECT_EQ(merge["vmas"][0]["a"].size(), 3u);
  ASSERT_EQ(merge["vmas"][0]["b"].size(), 1u);
  EXPECT_EQ(merge["vmas"][0]["b"][0]["end"], "0x40004000");
  ASSERT_EQ(merge["entries"].size(), 1u);
  EXPECT_EQ(merge["entries"][0]["b"]["prot"], "rw- young dirty");
  EXPECT_EQ(strings(merge["entries"][0]["bits_added"]), write_removed());
  EXPECT_EQ(merge["summary"]["vmas_merged"], 1);

  // 1 and 3 hold the same mapping and entries; only machine-wide counters moved.
  const json back = diff_json(d, f + ":1", f + ":3");
  EXPECT_EQ(back["entries"].size(), 0u);
  EXPECT_EQ(back["vmas"].size(), 0u);
  EXPECT_EQ(back["tables"].size(), 0u);
  for (const json& c : back["counters"])
    EXPECT_TRUE(c["name"].get<std::string>().starts_with("machine.")) << c.dump();
}

TEST_P(DumpDiff, MunmapShrinksAVmaAndFreesItsOwnTable) {
  DiffDir d;
  const std::string f = script_dumps(d);
  const json shrink = diff_json(d, f + ":3", f + ":4");
  ASSERT_EQ(shrink["vmas"].size(), 1u);
  EXPECT_EQ(shrink["vmas"][0]["op"], "resized");
  EXPECT_EQ(shrink["vmas"][0]["b"][0]["end"], "0x40002000");
  ASSERT_EQ(shrink["entries"].size(), 1u) << shrink.dump(1);
  const json& gone = shrink["entries"][0];
  EXPECT_EQ(gone["op"], "removed");
  EXPECT_EQ(gone["first"], 2);
  EXPECT_EQ(gone["last"], 3);
  EXPECT_EQ(gone["count"], 2);
  EXPECT_EQ(gone["a"]["frame_first"], "0x202");
  EXPECT_EQ(gone["a"]["frame_last"], "0x203");
  EXPECT_EQ(gone["a"]["kind"], "anon");
  EXPECT_TRUE(gone["b"].is_null());
  EXPECT_EQ(counter(shrink, "rss.anon")["delta"], -2);
  EXPECT_EQ(shrink["tables"].size(), 0u);

  // b, 2 MiB up, needs a pte table of its own: allocated, then freed by its munmap.
  const json add = diff_json(d, f + ":4", f + ":5");
  ASSERT_EQ(add["tables"].size(), 1u) << add.dump(1);
  const json& t = add["tables"][0];
  EXPECT_EQ(t["op"], "allocated");
  EXPECT_EQ(t["level"], "pte");
  EXPECT_EQ(t["va_start"], "0x40200000");
  EXPECT_EQ(t["va_last"], "0x403fffff");
  EXPECT_TRUE(t["frame_a"].is_null());
  EXPECT_EQ(t["used_b"], 1);
  ASSERT_EQ(add["entries"].size(), 2u);
  EXPECT_EQ(add["entries"][0]["op"], "added");
  EXPECT_EQ(add["entries"][0]["level"], "pmd");
  EXPECT_EQ(add["entries"][0]["first"], 1);
  EXPECT_EQ(add["entries"][0]["b"]["kind"], "table");
  EXPECT_EQ(add["entries"][0]["b"]["frame_first"], t["frame_b"]);
  EXPECT_EQ(add["entries"][1]["op"], "added");
  EXPECT_EQ(add["entries"][1]["level"], "pte");
  EXPECT_EQ(add["entries"][1]["va_start"], "0x40200000");
  EXPECT_EQ(add["entries"][1]["b"]["frame_first"], "0x400");
  ASSERT_EQ(add["vmas"].size(), 1u);
  EXPECT_EQ(add["vmas"][0]["op"], "added");
  EXPECT_EQ(add["vmas"][0]["b"][0]["start"], "0x40200000");
  EXPECT_EQ(counter(add, "tables.pte")["delta"], 1);

  const json drop = diff_json(d, f + ":5", f + ":6");
  ASSERT_EQ(drop["tables"].size(), 1u);
  EXPECT_EQ(drop["tables"][0]["op"], "freed");
  EXPECT_EQ(drop["tables"][0]["va_start"], "0x40200000");
  EXPECT_EQ(drop["tables"][0]["frame_a"], t["frame_b"]);
  EXPECT_TRUE(drop["tables"][0]["frame_b"].is_null());
  ASSERT_EQ(drop["vmas"].size(), 1u);
  EXPECT_EQ(drop["vmas"][0]["op"], "removed");
  EXPECT_EQ(counter(drop, "tables.pte")["delta"], -1);
  EXPECT_EQ(counter(drop, "machine.live.pgtable")["delta"], -1);
}

TEST_P(DumpDiff, ForkWriteProtectsTheParentAndTheChildHasItsOwnTables) {
  DiffDir d;
  const std::string f = script_dumps(d);
  // The parent before and after fork: both pages read-only, mapped twice.
  const json par = diff_json(d, f + ":6", f + ":7");
  EXPECT_EQ(par["tables"].size(), 0u);
  EXPECT_EQ(par["vmas"].size(), 0u);
  ASSERT_EQ(par["entries"].size(), x86() ? 1u : 2u) << par.dump(1);
  const json& wp = par["entries"][0];
  EXPECT_EQ(wp["first"], 0);
  EXPECT_EQ(wp["last"], 1);
  EXPECT_EQ(wp["a"]["frame_first"], "0x200");
  EXPECT_EQ(wp["a"]["frame_last"], "0x201");
  EXPECT_EQ(wp["b"]["frame_first"], "0x200");
  EXPECT_EQ(wp["b"]["prot"], "r-- young dirty");
  EXPECT_EQ(wp["a"]["mapcount"], 1);
  EXPECT_EQ(wp["b"]["mapcount"], 2);
  EXPECT_EQ(strings(wp["changed"]), (std::vector<std::string>{"prot", "bits", "mapcount"}));
  EXPECT_EQ(strings(wp["bits_removed"]), write_removed());
  if (!x86()) {  // the arch page every arm64 mm maps at the top is shared with the child too
    EXPECT_EQ(par["entries"][1]["va_start"], "0xfffffffff000");
    EXPECT_EQ(strings(par["entries"][1]["changed"]), (std::vector<std::string>{"mapcount"}));
  }
  // Parent (after fork) against child: every table of the mm in another frame, none
  // allocated or freed; the child's entries are old (young cleared), same frames.
  const json pc = diff_json(d, f + ":7", f + ":8");
  std::set<std::string> spans;
  for (const json& t : pc["tables"]) {
    EXPECT_EQ(t["op"], "moved") << t.dump();
    EXPECT_NE(t["frame_a"], t["frame_b"]);
    spans.insert(t["level"].get<std::string>() + "@" + t["va_start"].get<std::string>());
  }
  // x86: the kernel-half tables under pgd[511] are init_mm's, the same in both.
  const std::set<std::string> expect =
      x86() ? std::set<std::string>{"pgd@0x0", "pud@0x0", "pmd@0x40000000", "pte@0x40000000"}
            : std::set<std::string>{"pgd@0x0",
                                    "pud@0x0",
                                    "pmd@0x40000000",
                                    "pte@0x40000000",
                                    "pud@0xff8000000000",
                                    "pmd@0xffffc0000000",
                                    "pte@0xffffffe00000"};
  EXPECT_EQ(spans, expect);
  bool leaf = false;
  for (const json& e : pc["entries"]) {
    if (e["level"] != "pte") {
      EXPECT_EQ(strings(e["changed"]), (std::vector<std::string>{"frame"})) << e.dump();
      EXPECT_EQ(e["a"]["kind"], "table");
      continue;
    }
    leaf = true;
    EXPECT_EQ(e["va_start"], "0x40000000");
    EXPECT_EQ(e["count"], 2);
    EXPECT_EQ(e["b"]["frame_first"], "0x200");
    EXPECT_EQ(e["b"]["prot"], "r-- dirty");
    EXPECT_EQ(strings(e["bits_removed"]), std::vector<std::string>{x86() ? "A" : "AF"});
  }
  EXPECT_TRUE(leaf);
  ASSERT_EQ(pc["vmas"].size(), 1u);
  EXPECT_EQ(pc["vmas"][0]["op"], "changed");
  EXPECT_EQ(strings(pc["vmas"][0]["changed"]),
            (std::vector<std::string>{"anon_vma", "anon_vma_chain"}));
}

// free_pgd_range with limits too wide (as what_if.mms) frees the pte table a's pages are
// still mapped from: the diff marks that table, and counts it.
TEST_P(DumpDiff, ATableFreedWhileInUseIsMarked) {
  DiffDir d;
  std::ofstream(d / "fiu.mms") << R"(mm x
a = mmap x 0x40000000 8K rw- private fixed
c = mmap x 0x40020000 8K rw- private fixed
touch x $a 8K write
touch x $c 8K write
dump x pgtables
unmap_region x $c $c+8K 0 0 0
dump x pgtables
)";
  const std::string f = (d / "fiu.json").string();
  // The script itself exits 70: a table was freed while in use.
  ASSERT_EQ(
      mmemu(fmt("script --arch {} --format json {} > {}", arch(), (d / "fiu.mms").string(), f), d)
          .status,
      70);
  const json j = diff_json(d, f + ":1", f + ":2");
  ASSERT_EQ(j["tables"].size(), 3u) << j["tables"].dump(1);
  const std::vector<std::pair<const char*, const char*>> freed = {
      {"pud", "0x0"}, {"pmd", "0x40000000"}, {"pte", "0x40000000"}};
  for (std::size_t i = 0; i < 3; ++i) {
    const json& t = j["tables"][i];
    EXPECT_EQ(t["op"], "freed");
    EXPECT_EQ(t["level"], freed[i].first);
    EXPECT_EQ(t["va_start"], freed[i].second);
    // Only the pte table still mapped a's two pages.
    EXPECT_EQ(t["freed_in_use"], i == 2) << t.dump();
    EXPECT_EQ(t["in_use_entries"], i == 2 ? 2 : 0);
  }
  EXPECT_EQ(j["tables"][2]["used_a"], 4);
  const json c = counter(j, "pgtables.freed_in_use");
  EXPECT_EQ(c["old"], 0);
  EXPECT_EQ(c["new"], 1);
  EXPECT_EQ(c["delta"], 1);
  const Out r = mmemu(fmt("diff {}:1 {}:2", f, f), d);
  EXPECT_NE(r.out.find("  - pte  va 0x40000000..0x401fffff  frame " +
                       j["tables"][2]["frame_a"].get<std::string>() +
                       "  used 4, FREED WHILE IN USE (2 entries still mapped)\n"),
            std::string::npos)
      << r.out;
}

TEST_P(DumpDiff, TextIsGroupedAndMarked) {
  DiffDir d;
  const std::string f = script_dumps(d);
  const Out r = mmemu("diff " + f + ":4 " + f + ":5", d);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find(fmt("--- {}:4  line 10: dump p\n+++ {}:5  line 13: dump p\n", f, f)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(fmt("{}: tables 1 allocated, 0 freed, 0 in other frames; 2 entries "
                           "changed; 1 VMA changes;",
                           arch())),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\npage tables:\n  + pte  va 0x40200000..0x403fffff  frame "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nvmas:\n  + added  40200000-40201000 rw-p\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  ~ map_count "), std::string::npos) << r.out;
  // --out writes the same text to the file, nothing to standard output.
  const Out o = mmemu(fmt("diff --out {} {}:4 {}:5", (d / "d.txt").string(), f, f), d);
  EXPECT_EQ(o.status, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(slurp(d / "d.txt"), r.out);
}

TEST_P(DumpDiff, IdenticalDumpsExitZero) {
  DiffDir d;
  const std::string f = script_dumps(d);
  const Out r = mmemu("diff " + f + ":7 " + f + ":7", d);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.out.ends_with("\nno differences\n")) << r.out;
  const json j = diff_json(d, f + ":2", f + ":2", 0);
  EXPECT_EQ(j["differences"], false);
  EXPECT_EQ(j["entries"].size() + j["tables"].size() + j["vmas"].size() + j["counters"].size(), 0u);
}

// A script's dump step, read as the dump a run writes (what the HTML view takes).
TEST_P(DumpDiff, ScriptDumpsReadAsRunDumps) {
  DiffDir d;
  const std::string f = script_dumps(d);
  auto doc = dump::load_dump(f + ":5");
  ASSERT_TRUE(doc) << doc.error();
  EXPECT_EQ(doc->where, f + ":5");
  EXPECT_EQ(doc->label, "line 13: dump p");
  EXPECT_EQ(doc->arch, arch());
  const json& r = doc->run_shaped;
  EXPECT_EQ(r["dump"], "script");
  EXPECT_EQ(r["label"], "line 13: dump p");
  EXPECT_EQ(r["arch"], arch());
  EXPECT_EQ(r["pgtables"], doc->pgtables);
  EXPECT_EQ(r["vmas"]["map_count"], 2);
  EXPECT_EQ(r["counters"]["map_count"], 2);
  EXPECT_FALSE(r["counters"].contains("machine"));  // the diff's own addition
  EXPECT_TRUE(doc->counters.contains("machine"));
  EXPECT_TRUE(r.contains("tree"));
}

// --format html: the page-table view (tools/html_view.hpp) of the two dumps, a script's
// dump steps reshaped as run dumps; the exit status still says whether they differ.
TEST_P(DumpDiff, HtmlIsTheViewOfBothDumps) {
  DiffDir d;
  const std::string f = script_dumps(d);
  const std::string page = (d / "d.html").string();
  const Out r = mmemu(fmt("diff --format html --out {} {}:4 {}:5", page, f, f), d);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "");
  const std::string html = slurp(page);
  ASSERT_TRUE(html.starts_with("<!DOCTYPE html>")) << html.substr(0, 200);
  const std::string tag = "<script type=\"application/json\" id=\"mmemu-data\">";
  const auto at = html.find(tag);
  ASSERT_NE(at, std::string::npos);
  const auto end = html.find("</script>", at);
  const json data = json::parse(html.substr(at + tag.size(), end - at - tag.size()));
  ASSERT_EQ(data["dumps"].size(), 2u);
  EXPECT_EQ(data["dumps"][0]["label"], "line 10: dump p");
  EXPECT_EQ(data["dumps"][1]["label"], "line 13: dump p");
  EXPECT_EQ(data["dumps"][1]["arch"], arch());
  EXPECT_EQ(data["dumps"][1]["pgtables"]["counts"]["pte"], x86() ? 2 : 3);
  EXPECT_EQ(mmemu(fmt("diff --format html --out {} {}:4 {}:4", page, f, f), d).status, 0);
}

// fork_fail's dumps before and after its fork (`mmemu run`): exactly the present entries of
// private writable mappings lose write and gain a mapping; read-only private pages only gain
// the mapping; shared and file pages do not change; no table, VMA or counter moves.
TEST_P(DumpDiff, GuestForkWriteProtectsExactlyThePrivateWritablePages) {
  DiffDir d;
  const std::string dumps = (d / "ff.json").string();
  const Out run = mmemu(fmt("run --dump-pgtables guest,fork --format json --out {} {} 1 "
                            ">/dev/null",
                            dumps, guest(GetParam(), "fork_fail")),
                        d);
  ASSERT_EQ(run.status, 0) << run.err;
  // Three dumps: before-fork, the fork, the guest's "end"; no :N is a usage error.
  const Out which = mmemu("diff " + dumps + " " + dumps + ":2", d);
  EXPECT_EQ(which.status, 2);
  EXPECT_EQ(which.out, "");
  EXPECT_EQ(which.err, fmt("mmemu diff: {0} holds 3 dumps, pick one with {0}:N (1: guest pid "
                           "1000: before-fork; 2: fork pid 1000: after fork 1000 -> 1001; 3: "
                           "guest pid 1000: end)\n",
                           dumps));

  const json j = diff_json(d, dumps + ":1", dumps + ":2");
  EXPECT_EQ(j["tables"].size(), 0u);
  EXPECT_EQ(j["vmas"].size(), 0u);
  EXPECT_EQ(j["counters"].size(), 0u) << j["counters"].dump();

  // What dump 1 says should happen, entry by entry (copy_page_range): every present entry of
  // a private VMA with an anon_vma is shared with the child, its mapcount one up; writable
  // ones are write-protected. va -> the expected new prot, or "" when only the mapcount
  // moves. Other VMAs are not copied (the child faults them in); the zero page has no
  // mapcount and is never writable, so its entries do not change.
  auto a = dump::load_dump(dumps + ":1");
  ASSERT_TRUE(a) << a.error();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> copied;  // VMAs [start, end)
  for (const json& v : a->vmas["vmas"])
    if (v["perms"].get<std::string>()[3] == 'p' && !v["anon_vma"].is_null())
      copied.emplace_back(std::stoull(v["start"].get<std::string>(), nullptr, 16),
                          std::stoull(v["end"].get<std::string>(), nullptr, 16));
  // The arch's own pages (arm64's at the top of the address space) are mapped by the child
  // too: one more mapping each.
  for (const json& m : a->pgtables["arch_mappings"])
    copied.emplace_back(std::stoull(m["start"].get<std::string>(), nullptr, 16),
                        std::stoull(m["end"].get<std::string>(), nullptr, 16));
  std::map<std::uint64_t, std::string> expect;
  for (const json& t : a->pgtables["tables"]) {
    if (t["level"] != "pte") continue;
    for (const json& r : t["runs"]) {
      const std::uint64_t va = std::stoull(r["va_start"].get<std::string>(), nullptr, 16);
      const std::uint64_t n = r["last"].get<std::uint64_t>() - r["first"].get<std::uint64_t>() + 1;
      if (std::none_of(copied.begin(), copied.end(),
                       [va](auto p) { return va >= p.first && va < p.second; }) ||
          r["kind"] == "zero-page")
        continue;
      std::string prot = r["prot"];
      for (std::uint64_t i = 0; i < n; ++i)
        expect[va + (i << PAGE_SHIFT)] = prot.starts_with("rw-") ? "r--" + prot.substr(3) : "";
    }
  }
  ASSERT_GT(expect.size(), 30u);
  std::map<std::uint64_t, std::string> got;
  int child_copies = 0;
  for (const json& e : j["entries"]) {
    EXPECT_EQ(e["op"], "changed") << e.dump();
    EXPECT_EQ(e["level"], "pte");
    EXPECT_EQ(e["a"]["frame_first"], e["b"]["frame_first"]);
    const std::vector<std::string> changed = strings(e["changed"]);
    const std::string young = x86() ? "A" : "AF";
    if (changed == std::vector<std::string>{"prot", "bits"} &&
        strings(e["bits_added"]) == std::vector<std::string>{young}) {
      // Not the fork's doing: the guest ran between the dumps and touched the page.
      EXPECT_EQ(e["b"]["prot"], e["a"]["prot"].get<std::string>() + " young");
      EXPECT_EQ(e["b"]["mapcount"], e["a"]["mapcount"]);
      continue;
    }
    const bool wp = std::find(changed.begin(), changed.end(), "prot") != changed.end();
    if (wp) {
      EXPECT_EQ(strings(e["bits_removed"]), write_removed()) << e.dump();
    }
    // One written page is the child's own copy already: the child's tid, stored into its
    // memory right after the fork (CLONE_CHILD_SETTID), copied it on write.
    if (e["b"]["mapcount"] == e["a"]["mapcount"]) {
      ++child_copies;
      EXPECT_EQ(e["count"], 1);
      EXPECT_TRUE(wp);
    } else {
      EXPECT_EQ(e["b"]["mapcount"], e["a"]["mapcount"].get<int>() + 1) << e.dump();
    }
    const std::uint64_t va = std::stoull(e["va_start"].get<std::string>(), nullptr, 16);
    for (std::uint64_t i = 0; i < e["count"].get<std::uint64_t>(); ++i)
      got[va + (i << PAGE_SHIFT)] = wp ? e["b"]["prot"].get<std::string>() : "";
  }
  EXPECT_EQ(child_copies, 1);
  EXPECT_EQ(got, expect);
}

TEST_P(DumpDiff, DifferentArchesAreTrouble) {
  DiffDir d;
  const std::string f = script_dumps(d);
  const Arch other = x86() ? Arch::Arm64 : Arch::X86_64;
  std::ofstream(d / "o.mms") << "mm p\ndump p\n";
  const std::string g = (d / "o.json").string();
  ASSERT_EQ(mmemu(fmt("script --arch {} --format json {} > {}", arch_name(other),
                      (d / "o.mms").string(), g),
                  d)
                .status,
            0);
  const Out r = mmemu(fmt("diff {}:1 {}", f, g), d);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("nothing to compare"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Arches, DumpDiff, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& i) { return std::string(arch_name(i.param)); });

// Trouble: one line on standard error naming the problem, nothing on standard output, 2.
TEST(DumpDiffUsage, BadInputIsOneLineAndStatusTwo) {
  DiffDir d;
  std::ofstream(d / "bad.json") << "{\"dump\": \"exit\", \"vmas\": \n";
  std::ofstream(d / "other.json") << "{\"hello\": 1}\n";
  std::ofstream(d / "tree.json")
      << R"({"cmd":"dump","data":{"tree":{}},"line":2,"text":"dump p tree"})"
      << "\n";
  std::ofstream(d / "shape.json")
      << R"({"dump":"exit","arch":"x86_64","pgtables":{"tables":[{"level":"pmx"}]}})"
      << "\n";
  const std::string dir = (d / "").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"diff " + dir + "missing.json " + dir + "missing.json",
       "cannot read " + dir + "missing.json: No such file or directory"},
      {"diff " + dir + "bad.json " + dir + "bad.json", dir + "bad.json: line 1: not JSON"},
      {"diff " + dir + "other.json " + dir + "other.json", "not a page-table dump"},
      {"diff " + dir + "tree.json " + dir + "tree.json", "no page-table dump in it"},
      {"diff " + dir + "shape.json " + dir + "shape.json", "pgtables table #1: needs level"},
      {"diff " + dir + "bad.json", "B is required"},
      {"diff --format xml " + dir + "bad.json " + dir + "bad.json", "--format"},
  };
  for (const auto& [args, what] : cases) {
    const Out r = mmemu(args, d);
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << args << ": " << r.err;
  }
}

// mmemu never crashes on input: every node of a real dump replaced by a value of each
// other type is an error message, or a dump that compares and renders.
TEST(DumpDiffUsage, EveryMalformedNodeIsAnErrorOrADump) {
  DiffDir d;
  std::ofstream(d / "m.mms") << "mm p\na = mmap p auto 8K rw- private\ntouch p $a write\n"
                                "dump p\n";
  const std::string f = (d / "m.json").string();
  ASSERT_EQ(mmemu(fmt::format("script --format json {} > {}", (d / "m.mms").string(), f), d).status,
            0);
  auto orig = dump::load_dump(f);
  ASSERT_TRUE(orig) << orig.error();
  json step;
  {
    std::istringstream in(slurp(f));
    for (std::string line; std::getline(in, line);)
      if (line.find("\"cmd\":\"dump\"") != std::string::npos) step = json::parse(line);
  }
  ASSERT_TRUE(step.is_object());
  const std::vector<json> others = {json(nullptr), json(42),      json(-1),      json("x"),
                                    json("0xzz"),  json::array(), json::object()};
  std::size_t nodes = 0, errors = 0;
  // Every JSON pointer in the step, leaves and inner nodes alike.
  std::vector<json::json_pointer> pointers;
  const std::function<void(const json&, const json::json_pointer&)> walk =
      [&](const json& j, const json::json_pointer& at) {
        pointers.push_back(at);
        if (j.is_object())
          for (const auto& [k, v] : j.items())
            walk(v, at / k);
        else if (j.is_array())
          for (std::size_t i = 0; i < j.size(); ++i)
            walk(j[i], at / i);
      };
  walk(step, json::json_pointer());
  for (const auto& at : pointers) {
    for (const json& o : others) {
      json m = step;
      m[at] = o;
      ++nodes;
      std::expected<std::vector<dump::DumpDoc>, std::string> docs;
      ASSERT_NO_THROW(docs = dump::parse_dumps(m.dump(), "m.json")) << at.to_string();
      if (!docs) {
        ++errors;
        EXPECT_EQ(docs.error().find('\n'), std::string::npos);
        continue;
      }
      for (const auto& doc : *docs) {
        ASSERT_NO_THROW({
          auto r = dump::diff_dumps(*orig, doc);
          if (r) {
            (void)dump::diff_text(*r);
            (void)dump::diff_json(*r).dump();
          }
        }) << at.to_string();
      }
    }
  }
  EXPECT_GT(nodes, 500u);
  EXPECT_GT(errors, 100u);
}

TEST(DumpDiffUsage, NthDumpOutOfRange) {
  DiffDir d;
  std::ofstream(d / "one.mms") << "mm p\ndump p\n";
  const std::string f = (d / "one.json").string();
  ASSERT_EQ(
      mmemu(fmt::format("script --format json {} > {}", (d / "one.mms").string(), f), d).status, 0);
  // One dump: FILE alone is enough, FILE:1 the same; FILE:2 does not exist.
  EXPECT_EQ(mmemu("diff " + f + " " + f + ":1", d).status, 0);
  const Out r = mmemu("diff " + f + " " + f + ":2", d);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, fmt::format("mmemu diff: {0}:2: no dump 2 ({0} holds 1 dump)\n", f));
}

}  // namespace
}  // namespace mmemu
