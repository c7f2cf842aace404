// Real programs: Debian's static busybox, bash and zsh (packages busybox-static, bash-static,
// zsh-static) run shell scripts under `mmemu run`, for x86_64 (the host's binaries) and arm64
// (the arm64 packages tools/fetch_arm64_clients unpacks into the build tree), and each run's
// standard output and exit status must equal the same script's native run (the host's x86_64
// binaries on the host kernel). The cases are in cases.txt (its header gives the format);
// known_failing.txt lists the runs expected to differ today, each with its cause.
//
// Every run gets the same clean environment: PATH (a directory of symlinks, one per busybox
// applet, plus bash and zsh, to the run's own architecture's binaries), HOME (the run's
// scratch directory, also its working directory, empty at the start), LC_ALL=C, TZ=UTC0.
// Standard input is /dev/null; umask 022; the soft open-file limit is 4096 (the hard
// limit if lower).
// Files the script creates in its working directory are real files natively and mmemu's
// in-memory files under mmemu; each run has a fresh directory.
//
// Normalisation: outputs are compared verbatim, except that a case may name rules (its
// `norm=` option), applied to the native and the mmemu output alike. These are the only
// places where mmemu differs on purpose (pids start at 1000, one CPU, the host's memory
// figures sampled at another moment, the architecture's name):
//   digits  every run of decimal digits becomes "N" (free, meminfo, nproc, loadavg, uptime)
//   spaces  every run of blanks becomes one space (columns aligned to those numbers)
//   arch    "aarch64" becomes "x86_64" (uname -m on arm64)
// A case whose output cannot be made stable this way prints a derived fact instead
// (`[ $$ -gt 1 ] && echo ok`), and says so in a comment.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace {

namespace fs = std::filesystem;

constexpr const char* kArches[] = {"x86_64", "arm64"};

struct Case {
  std::string name;
  std::string shell = "sh";        // sh (busybox sh), bash, zsh
  std::set<std::string> arches;    // empty: both
  std::vector<std::string> norms;  // rule names, see the header
  std::string script;
  int line = 0;  // of its header in cases.txt
};

struct Param {
  Case c;
  std::string arch;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << p.c.name << " " << p.arch;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

// cases.txt: "== NAME [shell=S] [arch=A] [norm=R,R]" opens a case; the lines up to the next
// "==" line are its script (passed with -c); "#" lines before the first case are comments.
std::vector<Case> load_cases() {
  std::vector<Case> v;
  std::ifstream in(MMEMU_REAL_CASES);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) {
    ++n;
    if (l.starts_with("== ")) {
      Case c;
      c.line = n;
      const auto words = split(l.substr(3), ' ');
      if (words.empty()) continue;
      c.name = words[0];
      for (size_t i = 1; i < words.size(); ++i) {
        const auto eq = words[i].find('=');
        const std::string k = words[i].substr(0, eq), val = words[i].substr(eq + 1);
        if (k == "shell") c.shell = val;
        if (k == "arch") c.arches.insert(val);
        if (k == "norm") c.norms = split(val, ',');
      }
      v.push_back(c);
    } else if (!v.empty()) {
      v.back().script += l + "\n";
    }
  }
  return v;
}

// known_failing.txt: "NAME ARCH cause..." (ARCH x86_64, arm64 or *).
std::map<std::string, std::string> load_known_failing() {
  std::map<std::string, std::string> m;
  std::ifstream in(MMEMU_REAL_KNOWN_FAILING);
  std::string l;
  while (std::getline(in, l)) {
    if (l.empty() || l[0] == '#') continue;
    std::istringstream s(l);
    std::string name, arch, cause;
    s >> name >> arch;
    std::getline(s, cause);
    const auto b = cause.find_first_not_of(' ');
    cause = b == std::string::npos ? "" : cause.substr(b);
    if (arch == "*")
      for (const char* a : kArches)
        m[name + " " + a] = cause;
    else
      m[name + " " + arch] = cause;
  }
  return m;
}

std::vector<Param> all_params() {
  std::vector<Param> v;
  for (const Case& c : load_cases())
    for (const char* a : kArches)
      if (c.arches.empty() || c.arches.contains(a)) v.push_back({c, a});
  return v;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string client_path(const std::string& arch, const std::string& shell) {
  const std::string root =
      arch == "x86_64" ? std::string("/") : std::string(MMEMU_REAL_ARM64_DIR) + "/";
  if (shell == "bash") return root + "bin/bash-static";
  if (shell == "zsh") return root + "bin/zsh-static";
  return root + "bin/busybox";
}

std::vector<std::string> shell_argv(const std::string& path, const std::string& shell,
                                    const std::string& script) {
  if (shell == "bash") return {path, "--norc", "--noprofile", "-c", script};
  if (shell == "zsh") return {path, "-f", "-c", script};  // -f: no host startup files
  return {path, "sh", "-c", script};
}

// A directory of symlinks: every busybox applet, bash and zsh, to ARCH's binaries.
fs::path bin_dir(const std::string& arch) {
  static std::map<std::string, fs::path> dirs;
  if (auto it = dirs.find(arch); it != dirs.end()) return it->second;
  const fs::path d =
      fs::path(testing::TempDir()) / fmt::format("mmemu-real-bin-{}-{}", ::getpid(), arch);
  fs::remove_all(d);
  fs::create_directories(d);
  // The applet list is the host busybox's: the arm64 one is the same Debian version.
  const std::string list =
      fs::path(testing::TempDir()) / fmt::format("mmemu-real-applets-{}", ::getpid());
  const std::string cmd = fmt::format("/bin/busybox --list > {}", list);
  if (std::system(cmd.c_str()) != 0) return d;
  std::ifstream in(list);
  std::string applet;
  std::error_code ec;
  while (std::getline(in, applet))
    if (!applet.empty()) fs::create_symlink(client_path(arch, "sh"), d / applet, ec);
  fs::remove(list, ec);
  fs::create_symlink(client_path(arch, "bash"), d / "bash", ec);
  fs::create_symlink(client_path(arch, "zsh"), d / "zsh", ec);
  dirs[arch] = d;
  return d;
}

struct Outcome {
  std::string out, err;
  int status = -1;  // exit status, 128+N for a signal, -1 when it timed out
};

// Runs argv in CWD with ENV, standard input /dev/null, in its own process group, killed
// (with the group) after timeout_s.
Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const fs::path& cwd, int timeout_s) {
  const fs::path out = cwd.string() + ".out", err = cwd.string() + ".err";
  std::vector<char*> av, ev;
  for (const auto& a : argv)
    av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : env)
    ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    // The same umask and open-file limit wherever the test runs (the shells print them).
    ::umask(022);
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
      nofile.rlim_cur = std::min<rlim_t>(4096, nofile.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    const int i = ::open("/dev/null", O_RDONLY);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (i < 0 || o < 0 || e < 0 || ::chdir(cwd.c_str()) != 0) ::_exit(125);
    ::dup2(i, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::close_range(3, ~0U, 0);  // the shells list /proc/self/fd: only 0, 1, 2 are theirs
    ::execve(av[0], av.data(), ev.data());
    ::_exit(127);
  }
  Outcome r;
  if (pid < 0) return r;
  ::setpgid(pid, pid);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int st = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      st = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Whatever the run left in its group (a background job) goes too.
  ::kill(-pid, SIGKILL);
  if (st != -1) r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_file(out);
  r.err = read_file(err);
  std::error_code ec;
  fs::remove(out, ec);
  fs::remove(err, ec);
  return r;
}

fs::path fresh_dir(const std::string& tag) {
  static int n = 0;
  const fs::path d =
      fs::path(testing::TempDir()) / fmt::format("mmemu-real-{}-{}-{}", ::getpid(), tag, n++);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> run_env(const std::string& arch, const fs::path& home) {
  return {"PATH=" + bin_dir(arch).string(), "HOME=" + home.string(), "LC_ALL=C", "TZ=UTC0"};
}

Outcome run_native(const Case& c) {
  const fs::path d = fresh_dir("native");
  Outcome r = run(shell_argv(client_path("x86_64", c.shell), c.shell, c.script),
                  run_env("x86_64", d), d, MMEMU_REAL_TIMEOUT_S);
  fs::remove_all(d);
  return r;
}

Outcome run_mmemu(const Case& c, const std::string& arch) {
  const fs::path d = fresh_dir(arch);
  std::vector<std::string> argv = {MMEMU_BINARY, "run", "--clear-env"};
  for (const auto& e : run_env(arch, d)) {
    argv.push_back("--env");
    argv.push_back(e);
  }
  for (const auto& a : shell_argv(client_path(arch, c.shell), c.shell, c.script))
    argv.push_back(a);
  // mmemu itself needs nothing from the environment but the sanitizer settings.
  std::vector<std::string> env;
  for (const char* k : {"LSAN_OPTIONS", "ASAN_OPTIONS", "UBSAN_OPTIONS"})
    if (const char* v = std::getenv(k)) env.push_back(fmt::format("{}={}", k, v));
  Outcome r = run(argv, env, d, MMEMU_REAL_TIMEOUT_S);
  fs::remove_all(d);
  return r;
}

// Every run of characters `in` accepts becomes `with`. (Not std::regex: GCC 12's <regex>
// trips -Wmaybe-uninitialized in the sanitizer build.)
std::string squeeze(const std::string& s, bool (*in)(char), const std::string& with) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (!in(s[i])) {
      out += s[i++];
      continue;
    }
    while (i < s.size() && in(s[i]))
      ++i;
    out += with;
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string normalise(std::string s, const std::vector<std::string>& rules) {
  for (const auto& rule : rules) {
    if (rule == "digits")
      s = squeeze(
          s, [](char c) { return c >= '0' && c <= '9'; }, "N");
    if (rule == "arch") s = replace_all(s, "aarch64", "x86_64");
    if (rule == "spaces")
      s = squeeze(
          s, [](char c) { return c == ' ' || c == '\t'; }, " ");
  }
  return s;
}

// "line N: native 'A', mmemu 'B'" for the first line that differs.
std::string first_difference(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string la, lb;
  for (int n = 1;; ++n) {
    const bool ha = static_cast<bool>(std::getline(a, la));
    const bool hb = static_cast<bool>(std::getline(b, lb));
    if (!ha && !hb) return "same lines (a difference in the final newline)";
    if (la != lb || ha != hb)
      return fmt::format("line {}: native '{}', mmemu '{}'", n, ha ? la : "<end>",
                         hb ? lb : "<end>");
  }
}

std::string describe(const Outcome& native, const Outcome& emu, const std::string& want,
                     const std::string& got) {
  std::string d;
  if (want != got) d = "stdout " + first_difference(want, got);
  if (native.status != emu.status) {
    if (!d.empty()) d += "; ";
    d += fmt::format("status native {}, mmemu {}", native.status,
                     emu.status == -1 ? std::string("timeout") : std::to_string(emu.status));
  }
  return d;
}

// The symlink directories go when the test program ends.
class CleanBinDirs : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    for (const char* a : kArches)
      fs::remove_all(
          fs::path(testing::TempDir()) / fmt::format("mmemu-real-bin-{}-{}", ::getpid(), a), ec);
  }
};
const auto* const clean_bin_dirs = ::testing::AddGlobalTestEnvironment(new CleanBinDirs);

class RealPrograms : public ::testing::TestWithParam<Param> {};

TEST_P(RealPrograms, MatchesTheNativeRun) {
  const Case& c = GetParam().c;
  const std::string& arch = GetParam().arch;
  for (const char* a : {"x86_64"}) {
    for (const char* s : {"sh", "bash", "zsh"})
      ASSERT_TRUE(fs::exists(client_path(a, s)))
          << client_path(a, s) << " is missing: run tools/deps (it installs busybox-static, "
          << "bash-static and zsh-static)";
  }
  if (arch == "arm64" && !fs::exists(client_path(arch, c.shell))) {
    const char* offline = std::getenv("MMEMU_OFFLINE");
    if (offline && std::string(offline) == "1") GTEST_SKIP() << "MMEMU_OFFLINE=1: no arm64 clients";
    const std::string why = read_file(fs::path(MMEMU_REAL_ARM64_DIR) / "FAILED");
    FAIL() << client_path(arch, c.shell) << " is missing: "
           << (why.empty() ? "the build did not fetch the arm64 clients (tools/fetch_arm64_clients)"
                           : why)
           << " (set MMEMU_OFFLINE=1 to skip the arm64 runs)";
  }
  const Outcome native = run_native(c);
  ASSERT_NE(native.status, -1) << "the native run timed out; cases.txt line " << c.line;
  const Outcome emu = run_mmemu(c, arch);
  const std::string want = normalise(native.out, c.norms), got = normalise(emu.out, c.norms);
  const bool same = want == got && native.status == emu.status;
  static const auto known = load_known_failing();
  if (auto it = known.find(c.name + " " + arch); it != known.end()) {
    if (same)
      FAIL() << c.name << " " << arch
             << " is listed in known_failing.txt but now matches the native run: remove it";
    GTEST_SKIP() << "known failing (" << it->second << "): " << describe(native, emu, want, got);
  }
  EXPECT_EQ(got, want) << "cases.txt line " << c.line << ": " << describe(native, emu, want, got)
                       << "\nmmemu stderr:\n"
                       << emu.err << "\nnative stderr:\n"
                       << native.err;
  EXPECT_EQ(emu.status, native.status) << "mmemu stderr:\n"
                                       << emu.err << "\nnative stderr:\n"
                                       << native.err;
}

INSTANTIATE_TEST_SUITE_P(Cases, RealPrograms, ::testing::ValuesIn(all_params()),
                         [](const auto& pi) { return pi.param.c.name + "_" + pi.param.arch; });

}  // namespace
