// Guests under mmemu beside the references, in the same run (the ratios are the figures):
//
// (a) The compute loop (bench guest compute_nolibc: no libc, so plain Unicorn can run the
//     very same binary by handling write and exit_group):
//   BM_Compute_native             the x86_64 binary on the host kernel (spawn + wait)
//   BM_Compute_unicorn/ARCH       plain Unicorn, flat memory: PT_LOAD segments and a
//                                 stack mapped with uc_mem_map, run from the entry
//                                 (emu/cpu/flat_unicorn.hpp; the ELF is parsed here)
//   BM_Compute_unicorn_codehook/ARCH  the same with an empty UC_HOOK_CODE: what a
//                                 per-instruction hook would cost (mmemu's CPU has none; it
//                                 counts with one block hook)
//   BM_Compute_mmemu/ARCH         an in-process Kernel: ELF loader, page tables, the walker
//                                 filling Unicorn's TLB, scheduler slices, syscalls
//   mmemu / unicorn is mmemu's own overhead; every side includes its set-up and tear-down.
// (b) TLB fills: bench guest tlbtouch (32 MiB written once, then read one word per page
//     4 times) under the Kernel. Counters per run: fills (TLB misses the walker answered),
//     faults (handle_mm_fault calls, each resolved inside the fill), flushes, and
//     fills_per_s (fills / the whole run's time).
//
// Every run's output is checked against the native run of the x86_64 build.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "emu/cpu/flat_unicorn.hpp"
#include "emu/cpu/unicorn_cpu.hpp"
#include "emu/image/elf.hpp"
#include "emu/kernel/kernel.hpp"

namespace {

using namespace mmemu;

constexpr const char* kComputeIterations = "10000000";
constexpr const char* kTouchMiB = "32";
constexpr const char* kTouchPasses = "4";

std::string guest(Arch a, const char* name) {
  return std::string(MMEMU_BENCH_GUEST_DIR) + "/" + std::string(arch_name(a)) + "/" + name;
}

std::string read_file(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    s.append(buf, n);
  return s;
}

struct GuestResult {
  std::string out;
  int status = -1;
  std::string error;  // why it could not run
  std::uint64_t fills = 0, flushes = 0, faults = 0;
};

// ---- native ----

GuestResult run_native(const std::string& path, const std::vector<std::string>& args) {
  GuestResult r;
  std::FILE* out = std::tmpfile();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, ::fileno(out), 1);
  std::vector<std::string> argv_s{path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = -1;
  const int err = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    r.error = path + ": " + std::strerror(err);
  } else {
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  r.out = read_file(out);
  std::fclose(out);
  return r;
}

// The reference output of a guest: its x86_64 build on the host kernel, once per argv.
const std::string& reference(const char* name, const std::vector<std::string>& args) {
  static std::map<std::vector<std::string>, std::string> cache;
  std::vector<std::string> key{name};
  key.insert(key.end(), args.begin(), args.end());
  auto it = cache.find(key);
  if (it == cache.end()) {
    GuestResult r = run_native(guest(Arch::X86_64, name), args);
    it = cache.emplace(key, r.status == 0 ? r.out : "(native run failed) " + r.error).first;
  }
  return it->second;
}

// ---- mmemu ----

GuestResult run_mmemu(const std::string& path, const std::vector<std::string>& args,
                      KernelOptions o) {
  GuestResult r;
  std::FILE* out = std::tmpfile();
  const int devnull = ::open("/dev/null", O_RDWR);
  o.stdio_fds = {devnull, ::fileno(out), devnull};
  std::ostringstream log;
  {
    Kernel k(o, unicorn_cpu_factory());
    k.log().set_stream(&log);
    std::vector<std::string> argv{path};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = k.spawn(path, argv, {});
    if (!p) {
      r.error = p.error().message;
    } else {
      r.status = k.run().exit_status;
      r.fills = k.stats().get("tlb_fill");
      r.flushes = k.stats().get("tlb_flush");
      r.faults = k.stats().get("fault");
    }
  }
  if (r.status != 0 && r.error.empty()) r.error = "mmemu: " + log.str();
  r.out = read_file(out);
  std::fclose(out);
  ::close(devnull);
  return r;
}

// ---- plain Unicorn, flat memory ----

// Parses a static no-libc ELF and runs it in plain Unicorn (emu/cpu/flat_unicorn.hpp) with
// argv; returns what it wrote to fd 1 and its exit status.
GuestResult run_plain(Arch arch, const std::string& path, const std::vector<std::string>& args,
                      bool code_hook, std::uint64_t* insns = nullptr) {
  GuestResult r;
  const auto file = read_executable(path);
  const auto image = file ? parse_elf(*file) : std::unexpected(file.error());
  if (!image || image->arch != arch) {
    r.error = path + ": " +
              (image ? "not built for " + std::string(arch_name(arch)) : image.error().message);
    return r;
  }
  FlatProgram program{arch, image->entry, {}, {path}};
  program.argv.insert(program.argv.end(), args.begin(), args.end());
  for (const ElfSegment& seg : image->loads) {
    unsigned perms = PERM_NONE;
    if (seg.flags & ELF_PF_R) perms |= PERM_R;
    if (seg.flags & ELF_PF_W) perms |= PERM_W;
    if (seg.flags & ELF_PF_X) perms |= PERM_X;
    program.segments.push_back(
        {seg.vaddr, seg.memsz, perms, std::span(*file).subspan(seg.offset, seg.filesz)});
  }
  FlatRunResult run = run_flat_unicorn(program, {.code_hook = code_hook});
  r.out = std::move(run.out);
  r.status = run.status;
  r.error = run.error.empty() && !run.exited ? "stopped without exit" : std::move(run.error);
  if (insns) *insns = run.insns;
  return r;
}

// ---- the benchmarks ----

bool check(benchmark::State& state, const GuestResult& r, const std::string& ref) {
  if (!r.error.empty() || r.status != 0) {
    state.SkipWithError(("run failed: " + r.error).c_str());
    return false;
  }
  if (r.out != ref) {
    state.SkipWithError(("output differs from native: " + r.out).c_str());
    return false;
  }
  return true;
}

const std::vector<std::string>& compute_args() {
  static const std::vector<std::string> a{kComputeIterations};
  return a;
}

void BM_Compute_native(benchmark::State& state) {
  const std::string& ref = reference("compute_nolibc", compute_args());
  for (auto _ : state)
    if (!check(state, run_native(guest(Arch::X86_64, "compute_nolibc"), compute_args()), ref))
      break;
}
BENCHMARK(BM_Compute_native)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Compute_unicorn(benchmark::State& state, Arch arch) {
  const std::string& ref = reference("compute_nolibc", compute_args());
  for (auto _ : state)
    if (!check(state, run_plain(arch, guest(arch, "compute_nolibc"), compute_args(), false), ref))
      break;
}
BENCHMARK_CAPTURE(BM_Compute_unicorn, x86_64, Arch::X86_64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Compute_unicorn, arm64, Arch::Arm64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Compute_unicorn_codehook(benchmark::State& state, Arch arch) {
  const std::string& ref = reference("compute_nolibc", compute_args());
  std::uint64_t insns = 0;
  for (auto _ : state)
    if (!check(state, run_plain(arch, guest(arch, "compute_nolibc"), compute_args(), true, &insns),
               ref))
      break;
  state.counters["guest_insns"] = static_cast<double>(insns);
}
BENCHMARK_CAPTURE(BM_Compute_unicorn_codehook, x86_64, Arch::X86_64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Compute_unicorn_codehook, arm64, Arch::Arm64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Compute_mmemu(benchmark::State& state, Arch arch) {
  const std::string& ref = reference("compute_nolibc", compute_args());
  KernelOptions o;
  o.phys_bytes = 64ULL << 20;
  for (auto _ : state)
    if (!check(state, run_mmemu(guest(arch, "compute_nolibc"), compute_args(), o), ref)) break;
}
BENCHMARK_CAPTURE(BM_Compute_mmemu, x86_64, Arch::X86_64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Compute_mmemu, arm64, Arch::Arm64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_TlbTouch_mmemu(benchmark::State& state, Arch arch) {
  const std::vector<std::string> args{kTouchMiB, kTouchPasses};
  const std::string& ref = reference("tlbtouch", args);
  KernelOptions o;
  o.phys_bytes = 256ULL << 20;
  std::uint64_t fills = 0, flushes = 0, faults = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const GuestResult r = run_mmemu(guest(arch, "tlbtouch"), args, o);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!check(state, r, ref)) break;
    fills += r.fills;
    flushes += r.flushes;
    faults += r.faults;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["fills"] = static_cast<double>(fills) / n;
  state.counters["flushes"] = static_cast<double>(flushes) / n;
  state.counters["faults"] = static_cast<double>(faults) / n;
  state.counters["fills_per_s"] = seconds > 0 ? static_cast<double>(fills) / seconds : 0;
}
BENCHMARK_CAPTURE(BM_TlbTouch_mmemu, x86_64, Arch::X86_64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TlbTouch_mmemu, arm64, Arch::Arm64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
