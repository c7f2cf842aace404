// Helpers of the command-line tests: read a file whole, and run `mmemu run` with its dumps,
// trace and messages each in a file of their own.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace mmemu::test {

// The whole file ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& f) {
  std::ifstream in(f, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ShellRun {
  int status = -1;  // the exit status (-1: killed by a signal, or not run)
  std::string out;  // standard output
};

// `sh -c CMD` with its standard output captured.
inline ShellRun shell(const std::string& cmd) {
  ShellRun r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
    r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

struct CliRun {
  int status = -1;    // the exit status (-1: killed by a signal, or not run)
  std::string out;    // the guest's standard output
  std::string dump;   // --out FILE
  std::string trace;  // --trace FILE
  std::string err;    // mmemu's standard error
};

// `mmemu run --clear-env --out DUMP --trace TRACE OPTIONS PROGRAM_AND_ARGS`, in a directory
// of this test process's own (arches' cases run side by side), removed afterwards.
inline CliRun mmemu_run_traced(const std::string& options, const std::string& program_and_args) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / ("mmemu-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path dump = dir / "dump", trace = dir / "trace", err = dir / "err";
  const std::string cmd = std::string(MMEMU_BINARY) + " run --clear-env --out " + dump.string() +
                          " --trace " + trace.string() + " " + options + " " + program_and_args +
                          " 2>" + err.string();
  const ShellRun sh = shell(cmd);
  CliRun r;
  r.status = sh.status;
  r.out = sh.out;
  r.dump = slurp(dump);
  r.trace = slurp(trace);
  r.err = slurp(err);
  fs::remove_all(dir);
  return r;
}

}  // namespace mmemu::test
