// The HTML page-table view (tools/html_view.hpp): the page generator on synthetic JSON
// (escaping, an empty list), and pages of real runs (`mmemu run --format html`, the main
// fork-failure demo on both arches; `dump ... format=html` in a script) loaded in headless
// Chromium: no script error (the page's #js-errors and Chromium's console), one element
// per page table of every dump, one timeline step per dump, shared frames marked, and a
// screenshot. The Chromium cases skip when chromium is not installed (tools/deps installs
// it).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tools/cli_test_util.hpp"
#include "tools/html_view.hpp"

namespace mmemu {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using test::slurp;

using Shell = test::ShellRun;
Shell sh(const std::string& cmd) {
  return test::shell(cmd);
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos;
       at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

// A fresh directory for one test.
fs::path temp_dir(const std::string& name) {
  const fs::path d =
      fs::path(::testing::TempDir()) / ("mmemu-html-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The JSON embedded in a page (<script type="application/json" id="mmemu-data">).
json page_data(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"mmemu-data\">";
  const std::size_t b = html.find(open);
  if (b == std::string::npos) return nullptr;
  const std::size_t e = html.find("</script>", b);
  return json::parse(html.substr(b + open.size(), e - b - open.size()), nullptr, false);
}

bool have_chromium() {
  return sh("command -v chromium >/dev/null 2>&1").status == 0;
}

struct Browser {
  std::string dom;  // the DOM after the page's script ran (--dump-dom)
  std::string log;  // Chromium's log, console messages included
  int status = -1;
};
// Loads `page` in headless Chromium; with `png`, takes a 1400x900 screenshot instead.
Browser chromium(const fs::path& dir, const fs::path& page, const std::string& png = "") {
  const std::string common =
      "chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
      "--no-first-run --hide-scrollbars --enable-logging=stderr --v=0 --user-data-dir=" +
      (dir / "profile").string() + " --virtual-time-budget=3000 ";
  const std::string err = (dir / "chromium.err").string();
  const std::string what =
      png.empty() ? "--dump-dom " : "--window-size=1400,900 --screenshot=" + png + " ";
  Browser b;
  const Shell s = sh(common + what + "'file://" + page.string() + "' 2>" + err);
  b.status = s.status;
  // The DOM without the scripts' text (the view's source names what it builds).
  std::size_t from = 0;
  for (std::size_t at; (at = s.out.find("<script", from)) != std::string::npos;) {
    b.dom += s.out.substr(from, at - from);
    const std::size_t end = s.out.find("</script>", at);
    from = end == std::string::npos ? s.out.size() : end + 9;
  }
  b.dom += s.out.substr(from);
  b.log = slurp(err);
  return b;
}

// Chromium's console messages and uncaught errors (its log has much else).
std::string console_lines(const std::string& log) {
  std::istringstream in(log);
  std::string out;
  for (std::string l; std::getline(in, l);)
    if (l.find("CONSOLE") != std::string::npos || l.find("Uncaught") != std::string::npos)
      out += l + "\n";
  return out;
}

// The page ran without a script error: its own error box is empty, its script finished
// (body data-rendered), and Chromium logged no uncaught exception.
void expect_clean_load(const Browser& b, std::size_t dumps) {
  EXPECT_EQ(b.status, 0) << b.log;
  EXPECT_NE(b.dom.find("<pre id=\"js-errors\"></pre>"), std::string::npos)
      << b.dom.substr(0, std::min<std::size_t>(b.dom.size(), 2000));
  EXPECT_NE(b.dom.find("data-rendered=\"" + std::to_string(dumps) + "\""), std::string::npos);
  EXPECT_EQ(b.log.find("Uncaught"), std::string::npos) << console_lines(b.log);
}

std::string mmemu() {
  return MMEMU_BINARY;
}

// ${build}/guests/ARCH/NAME, found from the test binary as tests/emu does.
std::string guest(const std::string& arch, const std::string& name) {
  const fs::path exe = fs::read_symlink("/proc/self/exe");
  for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / "guests" / "guests.txt")) return (p / "guests" / arch / name).string();
  return "guests/" + arch + "/" + name;
}

// ---------------------------------------------------------------- the generator

TEST(HtmlView, EmbeddedJsonCannotEndTheScriptElement) {
  const json d{{"dump", "fork"},
               {"pid", 1000},
               {"label", "</script><script>alert(1)</script> <!-- x"},
               {"detail", json::array({"a </SCRIPT> b"})}};
  const std::string html = dump::html_view({d}, "t <b>&</b>");
  // Three script elements (error hook, data, view) and no other "</script" in any case.
  EXPECT_EQ(count(html, "</script>"), 3U);
  std::string lower = html;
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(count(lower, "</script"), 3U);
  EXPECT_EQ(count(html, "<!-- x"), 0U);
  EXPECT_NE(html.find("<title>t &lt;b&gt;&amp;&lt;/b&gt;</title>"), std::string::npos);
  // The data survives the escaping unchanged.
  const json back = page_data(html);
  ASSERT_FALSE(back.is_discarded());
  EXPECT_EQ(back["title"], "t <b>&</b>");
  ASSERT_EQ(back["dumps"].size(), 1U);
  EXPECT_EQ(back["dumps"][0], d);
  // Self-contained: nothing is fetched.
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  // A dump with nothing but its title keys still loads, the label shown as text.
  if (!have_chromium()) GTEST_SKIP() << "chromium not installed (tools/deps installs it)";
  const fs::path dir = temp_dir("escape");
  std::ofstream(dir / "escape.html") << html;
  const Browser b = chromium(dir, dir / "escape.html");
  expect_clean_load(b, 1);
  EXPECT_NE(b.dom.find("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &lt;!-- x"),
            std::string::npos);
  EXPECT_NE(b.dom.find("a &lt;/SCRIPT&gt; b"), std::string::npos);  // the detail line
  EXPECT_EQ(count(b.dom, "<li class=\"step"), 1U);
  fs::remove_all(dir);
}

TEST(HtmlView, EmptyDumpListIsAPageThatSaysSo) {
  const std::string html = dump::html_view({}, "nothing");
  const json back = page_data(html);
  ASSERT_FALSE(back.is_discarded());
  EXPECT_EQ(back["dumps"], json::array());
  if (!have_chromium()) GTEST_SKIP() << "chromium not installed (tools/deps installs it)";
  const fs::path dir = temp_dir("empty");
  std::ofstream(dir / "empty.html") << html;
  const Browser b = chromium(dir, dir / "empty.html");
  expect_clean_load(b, 0);
  EXPECT_NE(b.dom.find("No page-table dumps in this file."), std::string::npos);
  EXPECT_EQ(count(b.dom, "data-table="), 0U);
  EXPECT_EQ(count(b.dom, "class=\"step"), 0U);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- real runs

class HtmlViewRun : public ::testing::TestWithParam<std::string> {};

// The README's demo: the second fork fails in vm_area_dup (xa-zero recovery) with every
// walker at the lock-drop point; dumps after each fork and of the failed child.
std::string demo_args(const std::string& arch) {
  return "--fork-recovery xa-zero --walkers all --inject-from fork:2 --inject vma:25 "
         "--dump-pgtables fork " +
         guest(arch, "fork_fail") + " 3";
}

TEST_P(HtmlViewRun, DemoPageLoadsWithEveryTableAndDump) {
  const fs::path dir = temp_dir("demo-" + GetParam());
  const fs::path page = dir / "demo.html", js = dir / "demo.json";
  ASSERT_EQ(sh(mmemu() + " run --format html --out " + page.string() + " " + demo_args(GetParam()) +
               " >/dev/null 2>&1")
                .status,
            0);
  ASSERT_EQ(sh(mmemu() + " run --format json --out " + js.string() + " " + demo_args(GetParam()) +
               " >/dev/null 2>&1")
                .status,
            0);
  // The page embeds exactly the dumps --format json writes.
  std::vector<json> dumps;
  std::istringstream lines(slurp(js));
  for (std::string l; std::getline(lines, l);)
    dumps.push_back(json::parse(l));
  const std::string html = slurp(page);
  const json data = page_data(html);
  ASSERT_FALSE(data.is_discarded());
  ASSERT_EQ(data["dumps"].size(), 4U);
  std::vector<std::string> kinds;
  for (std::size_t i = 0; i < dumps.size(); ++i) {
    EXPECT_EQ(data["dumps"][i], dumps[i]) << i;
    kinds.push_back(dumps[i]["dump"]);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"fork", "fork-failed-child", "fork", "fork"}));
  EXPECT_EQ(data["title"], "mmemu page tables: fork_fail 3");
  EXPECT_FALSE(dumps[2]["detail"].empty());  // the failed fork's report
  EXPECT_TRUE(dumps[0].contains("tree"));

  // Tables, and the shared frames after the first fork: each with the mappings rmap found
  // in both mms (parent mm 1 and its first child).
  std::size_t tables = 0, shared_runs = 0;
  std::set<std::uint64_t> first_fork_mms;
  for (std::size_t i = 0; i < dumps.size(); ++i) {
    tables += dumps[i]["pgtables"]["tables"].size();
    EXPECT_EQ(dumps[i]["pgtables"]["tables"].size(),
              dumps[i]["pgtables"]["counts"]["total"].get<std::size_t>());
    for (const json& t : dumps[i]["pgtables"]["tables"]) {
      for (const json& r : t.value("runs", json::array())) {
        EXPECT_TRUE(r.contains("refcount"));
        if (!r["present"] || r["kind"] == "zero-page" || r["mapcount"].get<int>() <= 1) {
          EXPECT_FALSE(r.contains("rmap"));
          continue;
        }
        ++shared_runs;
        ASSERT_TRUE(r.contains("rmap"));
        EXPECT_GE(r["refcount"].get<int>(), r["mapcount"].get<int>());
        for (const json& h : r["rmap"])
          if (i == 0) first_fork_mms.insert(h["mm"].get<std::uint64_t>());
      }
    }
  }
  EXPECT_EQ(first_fork_mms.size(), 2U);
  EXPECT_GT(shared_runs, 0U);

  if (!have_chromium()) GTEST_SKIP() << "chromium not installed (tools/deps installs it)";
  const Browser b = chromium(dir, page);
  expect_clean_load(b, dumps.size());
  EXPECT_EQ(count(b.dom, "data-table="), tables);
  EXPECT_EQ(count(b.dom, "<li class=\"step"), dumps.size());
  EXPECT_EQ(count(b.dom, "<section class=\"dump\""), dumps.size());
  EXPECT_EQ(count(b.dom, "class=\"run shared"), shared_runs);
  EXPECT_EQ(count(b.dom, "<pre class=\"detail\">"), 1U);  // one dump has a fork report
  // Neighbours compared: tables matched by level and span; each dump's new tables are
  // badged, the ones gone since the previous dump listed.
  std::size_t new_tables = 0, gone_tables = 0;
  for (std::size_t i = 1; i < dumps.size(); ++i) {
    std::set<std::string> before, after;
    for (const json& t : dumps[i - 1]["pgtables"]["tables"])
      before.insert(t["level"].get<std::string>() + "@" + t["va_start"].get<std::string>());
    for (const json& t : dumps[i]["pgtables"]["tables"])
      after.insert(t["level"].get<std::string>() + "@" + t["va_start"].get<std::string>());
    for (const std::string& k : after)
      new_tables += before.contains(k) ? 0 : 1;
    for (const std::string& k : before)
      gone_tables += after.contains(k) ? 0 : 1;
  }
  EXPECT_GT(new_tables + gone_tables, 0U);
  EXPECT_EQ(count(b.dom, "title=\"not in the previous dump\">new</span>"), new_tables);
  EXPECT_EQ(count(b.dom, "<li class=\"del\">table gone: "), gone_tables);
  EXPECT_EQ(count(b.dom, "Changes since #"), dumps.size() - 1);

  // Compared with the previous dump of the same pid instead (the page's "compare with"
  // choice, made by a script added to a copy): the failed child (#2, pid 1002) has
  // nothing before it, the parent's dump after the failure (#3) is compared with #1.
  std::string by_pid = html;
  by_pid.replace(by_pid.rfind("</body>"), 7,
                 "<script>var c = document.getElementById('compare'); c.value = 'pid';"
                 "c.dispatchEvent(new Event('change'));</script></body>");
  std::ofstream(dir / "by_pid.html") << by_pid;
  const Browser p = chromium(dir, dir / "by_pid.html");
  expect_clean_load(p, dumps.size());
  EXPECT_EQ(count(p.dom, "data-table="), tables);
  EXPECT_EQ(count(p.dom, "first dump of this process"), 2U);         // #1 and #2
  EXPECT_EQ(count(p.dom, "Changes since #1 (pid 1000, mm 1)"), 1U);  // #3
  EXPECT_EQ(count(p.dom, "Changes since #3 (pid 1000, mm 1)"), 1U);  // #4

  const fs::path png = dir / "demo.png";
  const Browser s = chromium(dir, page, png.string());
  EXPECT_EQ(s.status, 0) << s.log;
  const std::string img = slurp(png);
  ASSERT_GT(img.size(), 10000U);
  EXPECT_EQ(img.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  fs::remove_all(dir);
}

// Tables that are no VMA's: x86's kernel-half tables shared from init_mm (--vsyscall
// emulate) and arm64's table that serves only the [sigpage] arch mapping are marked.
TEST_P(HtmlViewRun, KernelHalfAndArchOnlyTablesAreMarked) {
  const fs::path dir = temp_dir("marks-" + GetParam());
  const fs::path page = dir / "hello.html", js = dir / "hello.json";
  const std::string args = "--vsyscall emulate --dump-pgtables exit " + guest(GetParam(), "hello");
  ASSERT_EQ(
      sh(mmemu() + " run --format html --out " + page.string() + " " + args + " >/dev/null 2>&1")
          .status,
      0);
  ASSERT_EQ(
      sh(mmemu() + " run --format json --out " + js.string() + " " + args + " >/dev/null 2>&1")
          .status,
      0);
  const json d = json::parse(slurp(js));
  std::size_t kernel_half = 0, arch_only = 0;
  for (const json& t : d["pgtables"]["tables"]) {
    kernel_half += t.value("kernel_half", false) ? 1 : 0;
    arch_only += t["arch_only"].get<bool>() ? 1 : 0;
  }
  // x86_64: the pud, pmd and pte of the vsyscall page; arm64: the pte of [sigpage].
  EXPECT_EQ(kernel_half, GetParam() == "x86_64" ? 3U : 0U);
  EXPECT_EQ(arch_only, GetParam() == "x86_64" ? 0U : 1U);
  if (!have_chromium()) GTEST_SKIP() << "chromium not installed (tools/deps installs it)";
  const Browser b = chromium(dir, page);
  expect_clean_load(b, 1);
  EXPECT_EQ(count(b.dom, "data-table="), d["pgtables"]["tables"].size());
  EXPECT_EQ(count(b.dom, " kernel-half\" data-table="), kernel_half);
  EXPECT_EQ(count(b.dom, " arch-only\" data-table="), arch_only);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Arches, HtmlViewRun, ::testing::Values("x86_64", "arm64"));

TEST(HtmlViewCli, FormatHtmlNeedsOut) {
  const Shell s =
      sh(mmemu() + " run --format html " + guest("x86_64", "hello") + " 2>&1 >/dev/null");
  EXPECT_EQ(s.status, 2);
  EXPECT_EQ(s.out, "mmemu run: --format html needs --out FILE (the page is written there)\n");
}

TEST(HtmlViewCli, ScriptDumpsGoToOnePage) {
  const fs::path dir = temp_dir("script");
  const fs::path page = dir / "s.html";
  std::ofstream(dir / "s.mms") << "mm p\n"
                                  "a = mmap p auto 16K rw- private\n"
                                  "touch p $a write\n"
                                  "dump p format=html out=\""
                               << page.string()
                               << "\"\n"
                                  "fork p c\n"
                                  "dump c pgtables format=html out=\""
                               << page.string() << "\"\n";
  const Shell s = sh(mmemu() + " script " + (dir / "s.mms").string() + " 2>&1");
  ASSERT_EQ(s.status, 0) << s.out;
  EXPECT_NE(s.out.find("to " + page.string() + ": dump 2 of the page"), std::string::npos) << s.out;
  const json data = page_data(slurp(page));
  ASSERT_FALSE(data.is_discarded());
  ASSERT_EQ(data["dumps"].size(), 2U);
  EXPECT_EQ(data["dumps"][0]["label"],
            "line 4: dump p format=html out=\"" + page.string() + "\" (p)");
  EXPECT_EQ(data["dumps"][1]["pgtables"]["mm"], 2);
  // The child's anonymous page is shared with the parent: rmap finds both.
  std::set<std::uint64_t> mms;
  for (const json& t : data["dumps"][1]["pgtables"]["tables"])
    for (const json& r : t.value("runs", json::array()))
      for (const json& h : r.value("rmap", json::array()))
        mms.insert(h["mm"].get<std::uint64_t>());
  EXPECT_EQ(mms, (std::set<std::uint64_t>{1, 2}));
  if (have_chromium()) expect_clean_load(chromium(dir, page), 2);

  // format= takes only html, and needs out=.
  std::ofstream(dir / "bad.mms") << "mm p\ndump p format=json out=\"x.html\"\n";
  EXPECT_EQ(sh(mmemu() + " script " + (dir / "bad.mms").string() + " >/dev/null 2>&1").status, 2);
  std::ofstream(dir / "bad2.mms") << "mm p\ndump p format=html\n";
  EXPECT_EQ(sh(mmemu() + " script " + (dir / "bad2.mms").string() + " >/dev/null 2>&1").status, 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mmemu
