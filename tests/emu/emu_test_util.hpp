// Helpers for the emulator tests: where the guest programs are, running one under the
// kernel in-process (stdout/stderr captured in files), and running the x86_64 build natively
// as the reference.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "emu/cpu/unicorn_cpu.hpp"
#include "emu/kernel/kernel.hpp"

extern char** environ;

namespace mmemu::test {

namespace fs = std::filesystem;

// ${build}/guests: $MMEMU_GUEST_DIR, or next to the test binary's directory.
inline std::string guest_dir() {
  if (const char* d = std::getenv("MMEMU_GUEST_DIR")) return d;
  const fs::path exe = fs::read_symlink("/proc/self/exe");
  for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / "guests" / "guests.txt")) return (p / "guests").string();
  return "guests";
}

inline std::string guest_path(Arch a, const std::string& name) {
  return guest_dir() + "/" + std::string(arch_name(a)) + "/" + name;
}

inline std::vector<std::string> guest_names() {
  std::vector<std::string> v;
  std::ifstream in(guest_dir() + "/guests.txt");
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) v.push_back(l);
  return v;
}

inline std::string read_fd_file(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    s.append(buf, n);
  return s;
}

struct GuestRun {
  std::string out, err, log, trace;
  RunSummary summary;
  int status = -1;          // mmemu's exit status (the guest's, 128+sig, or 70)
  std::string spawn_error;  // non-empty when the program could not be started
};

struct RunOptions {
  KernelOptions kernel;
  bool trace = false;
  std::function<void(Kernel&)> before_run;  // arm injections, set hooks...
};

inline GuestRun run_path(const std::string& path, const std::vector<std::string>& args,
                         RunOptions o = {}) {
  GuestRun r;
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const int devnull = ::open("/dev/null", O_RDONLY);
  o.kernel.stdio_fds = {devnull, ::fileno(out), ::fileno(err)};
  std::ostringstream log, trace;
  {
    Kernel k(o.kernel, unicorn_cpu_factory());
    k.log().set_stream(&log);
    if (o.trace) k.trace().set_stream(&trace);
    if (o.before_run) o.before_run(k);
    std::vector<std::string> argv{path};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = k.spawn(path, argv, {});
    if (!p) {
      r.spawn_error = p.error().message;
      r.status = p.error().err == ENOENT ? 127 : 126;
    } else {
      r.summary = k.run();
      r.status = r.summary.exit_status;
    }
  }
  r.out = read_fd_file(out);
  r.err = read_fd_file(err);
  r.log = log.str();
  r.trace = trace.str();
  std::fclose(out);
  std::fclose(err);
  ::close(devnull);
  return r;
}

inline GuestRun run_guest(Arch a, const std::string& name, const std::vector<std::string>& args,
                          RunOptions o = {}) {
  return run_path(guest_path(a, name), args, std::move(o));
}

struct NativeRun {
  std::string out;
  int status = -1;
};

// The x86_64 build on the host kernel, same argv, empty environment; cached per argv.
inline NativeRun run_native(const std::string& name, const std::vector<std::string>& args) {
  static std::map<std::vector<std::string>, NativeRun> cache;
  std::vector<std::string> key{name};
  key.insert(key.end(), args.begin(), args.end());
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const std::string path = guest_path(Arch::X86_64, name);
  std::FILE* out = std::tmpfile();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, ::fileno(out), 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> argv_s{path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = -1;
  NativeRun n;
  if (posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), envp) == 0) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    n.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  posix_spawn_file_actions_destroy(&fa);
  n.out = read_fd_file(out);
  std::fclose(out);
  cache.emplace(key, n);
  return n;
}

// Lines of s, without the ones `drop` selects.
inline std::string filter_lines(const std::string& s,
                                const std::function<bool(const std::string&)>& drop) {
  std::istringstream in(s);
  std::string out;
  for (std::string l; std::getline(in, l);)
    if (!drop(l)) out += l + "\n";
  return out;
}

}  // namespace mmemu::test
