// Guests under mmemu beside the references, in the same run (the ratios are the figures):
//
// (a) The compute loop (bench guest compute_nolibc: no libc, so plain Unicorn can run the
//     very same binary by handling write and exit_group):
//   BM_Compute_native             the x86_64 binary on the host kernel (spawn + wait)
//   BM_Compute_unicorn/ARCH       plain Unicorn 2.0.1, flat memory: PT_LOAD segments and a
//                                 stack mapped with uc_mem_map, run from the entry
//   BM_Compute_unicorn_codehook/ARCH  the same with an empty UC_HOOK_CODE (mmemu's CPU
//                                 always has one, for exact fault PCs and slices)
//   BM_Compute_mmemu/ARCH         an in-process Kernel: ELF loader, page tables, software
//                                 TLB, scheduler slices, syscalls
//   mmemu / unicorn is mmemu's own overhead; every side includes its set-up and tear-down.
// (b) TLB refills: bench guest tlbtouch (32 MiB written once, then read one word per page
//     4 times: far more pages than the 128 TLB entries) under the Kernel with contiguous-
//     frame coalescing on and off (KernelOptions::tlb_coalesce, `mmemu run
//     --no-tlb-coalesce`). Counters per run: refills, refill_pages, pages_per_refill,
//     refills_per_s (refills / the whole run's time) and faults (each demand fault of the
//     write pass is followed by a one-page refill either way: its neighbours are not
//     present yet, so coalescing pays off in the read passes).
//
// Every run's output is checked against the native run of the x86_64 build.
#include <benchmark/benchmark.h>
#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unicorn/unicorn.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "emu/cpu/unicorn_cpu.hpp"
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
  std::uint64_t refills = 0, refill_pages = 0, faults = 0;
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
    Kernel k(o, make_unicorn_cpu);
    k.log().set_stream(&log);
    std::vector<std::string> argv{path};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = k.spawn(path, argv, {});
    if (!p) {
      r.error = p.error().message;
    } else {
      r.status = k.run().exit_status;
      r.refills = k.stats().get("tlb_refill");
      r.refill_pages = k.stats().get("tlb_refill_pages");
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

struct PlainState {
  Arch arch;
  std::string out;
  int status = -1;
  std::uint64_t insns = 0;
};

std::uint64_t reg_read(uc_engine* uc, int id) {
  std::uint64_t v = 0;
  uc_reg_read(uc, id, &v);
  return v;
}

void reg_write(uc_engine* uc, int id, std::uint64_t v) {
  uc_reg_write(uc, id, &v);
}

struct PlainRegs {
  int nr, ret, a0, a1, a2, sp;
};
constexpr PlainRegs kX86Regs{UC_X86_REG_RAX, UC_X86_REG_RAX, UC_X86_REG_RDI,
                             UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_RSP};
constexpr PlainRegs kArm64Regs{UC_ARM64_REG_X8, UC_ARM64_REG_X0, UC_ARM64_REG_X0,
                               UC_ARM64_REG_X1, UC_ARM64_REG_X2, UC_ARM64_REG_SP};

// write(1, ...) and exit/exit_group; anything else is -ENOSYS.
void plain_syscall(uc_engine* uc, PlainState& s) {
  const bool x86 = s.arch == Arch::X86_64;
  const PlainRegs& rg = x86 ? kX86Regs : kArm64Regs;
  const std::uint64_t nr = reg_read(uc, rg.nr);
  const std::uint64_t nr_write = x86 ? 1 : 64, nr_exit = x86 ? 60 : 93,
                      nr_exit_group = x86 ? 231 : 94;
  if (nr == nr_write) {
    const std::uint64_t len = reg_read(uc, rg.a2);
    std::string buf(len, '\0');
    if (reg_read(uc, rg.a0) != 1 ||
        uc_mem_read(uc, reg_read(uc, rg.a1), buf.data(), len) != UC_ERR_OK) {
      reg_write(uc, rg.ret, static_cast<std::uint64_t>(-EFAULT));
      return;
    }
    s.out += buf;
    reg_write(uc, rg.ret, len);
  } else if (nr == nr_exit || nr == nr_exit_group) {
    s.status = static_cast<int>(reg_read(uc, rg.a0) & 0xff);
    uc_emu_stop(uc);
  } else {
    reg_write(uc, rg.ret, static_cast<std::uint64_t>(-ENOSYS));
  }
}

void plain_x86_syscall(uc_engine* uc, void* s) {
  plain_syscall(uc, *static_cast<PlainState*>(s));
}
void plain_arm64_intr(uc_engine* uc, std::uint32_t intno, void* s) {
  if (intno == 2) {  // svc: the pc is already past it
    plain_syscall(uc, *static_cast<PlainState*>(s));
  } else {
    uc_emu_stop(uc);
  }
}
void plain_code(uc_engine*, std::uint64_t, std::uint32_t, void* s) {
  ++static_cast<PlainState*>(s)->insns;
}

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kStackTop = 0x7ffff0000000, kStackSize = 1 << 20;

// Loads a static no-libc ELF into a fresh engine, runs it from its entry with argv on the
// stack, and returns what it wrote to fd 1 and its exit status.
GuestResult run_plain(Arch arch, const std::string& path, const std::vector<std::string>& args,
                      bool code_hook, std::uint64_t* insns = nullptr) {
  GuestResult r;
  std::ifstream f(path, std::ios::binary);
  const std::vector<char> file((std::istreambuf_iterator<char>(f)), {});
  Elf64_Ehdr eh;
  if (file.size() < sizeof eh) {
    r.error = path + ": not an ELF file";
    return r;
  }
  std::memcpy(&eh, file.data(), sizeof eh);
  const bool x86 = arch == Arch::X86_64;
  if (eh.e_machine != (x86 ? EM_X86_64 : EM_AARCH64) ||
      eh.e_phoff + eh.e_phnum * sizeof(Elf64_Phdr) > file.size()) {
    r.error = path + ": not a static ELF64 for this architecture";
    return r;
  }
  std::vector<Elf64_Phdr> loads;
  std::map<std::uint64_t, std::uint32_t> page_perms;  // page -> UC_PROT_*
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, file.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_offset + ph.p_filesz > file.size()) {
      r.error = path + ": segment outside the file";
      return r;
    }
    loads.push_back(ph);
    std::uint32_t prot = 0;
    if (ph.p_flags & PF_R) prot |= UC_PROT_READ;
    if (ph.p_flags & PF_W) prot |= UC_PROT_WRITE;
    if (ph.p_flags & PF_X) prot |= UC_PROT_EXEC;
    for (std::uint64_t pg = ph.p_vaddr & ~(kPage - 1); pg < ph.p_vaddr + ph.p_memsz; pg += kPage)
      page_perms[pg] |= prot;  // a page shared by two segments gets both
  }

  uc_engine* uc = nullptr;
  if (uc_open(x86 ? UC_ARCH_X86 : UC_ARCH_ARM64, x86 ? UC_MODE_64 : UC_MODE_ARM, &uc) !=
      UC_ERR_OK) {
    r.error = "uc_open failed";
    return r;
  }
  bool ok = true;
  // Runs of neighbouring pages with equal permissions, one region each.
  for (auto it = page_perms.begin(); ok && it != page_perms.end();) {
    const std::uint64_t start = it->first;
    const std::uint32_t prot = it->second;
    std::uint64_t end = start + kPage;
    for (++it; it != page_perms.end() && it->first == end && it->second == prot; ++it)
      end += kPage;
    ok = uc_mem_map(uc, start, end - start, prot) == UC_ERR_OK;
  }
  for (const Elf64_Phdr& ph : loads)
    ok = ok && (ph.p_filesz == 0 ||
                uc_mem_write(uc, ph.p_vaddr, file.data() + ph.p_offset, ph.p_filesz) == UC_ERR_OK);
  ok = ok && uc_mem_map(uc, kStackTop - kStackSize, kStackSize, UC_PROT_READ | UC_PROT_WRITE) ==
                 UC_ERR_OK;

  // The initial stack: argc, argv..., NULL, envp NULL, AT_NULL; strings above it.
  std::vector<std::string> argv{path};
  argv.insert(argv.end(), args.begin(), args.end());
  std::uint64_t at = kStackTop;
  std::vector<std::uint64_t> ptrs;
  for (const std::string& s : argv) {
    at -= s.size() + 1;
    ok = ok && uc_mem_write(uc, at, s.c_str(), s.size() + 1) == UC_ERR_OK;
    ptrs.push_back(at);
  }
  std::vector<std::uint64_t> words{argv.size()};
  words.insert(words.end(), ptrs.begin(), ptrs.end());
  words.insert(words.end(), {0, 0, AT_NULL, 0});
  at = (at - words.size() * 8) & ~15ULL;
  ok = ok && uc_mem_write(uc, at, words.data(), words.size() * 8) == UC_ERR_OK;

  PlainState st{arch, {}, -1, 0};
  uc_hook h;
  if (x86) {
    ok = ok && uc_hook_add(uc, &h, UC_HOOK_INSN, reinterpret_cast<void*>(&plain_x86_syscall), &st,
                           1, 0, UC_X86_INS_SYSCALL) == UC_ERR_OK;
  } else {
    ok = ok && uc_hook_add(uc, &h, UC_HOOK_INTR, reinterpret_cast<void*>(&plain_arm64_intr), &st, 1,
                           0) == UC_ERR_OK;
  }
  if (code_hook)
    ok = ok && uc_hook_add(uc, &h, UC_HOOK_CODE, reinterpret_cast<void*>(&plain_code), &st, 1, 0) ==
                   UC_ERR_OK;
  if (!ok) {
    r.error = "setting up the engine failed";
  } else {
    reg_write(uc, (x86 ? kX86Regs : kArm64Regs).sp, at);
    const uc_err e = uc_emu_start(uc, eh.e_entry, 0, 0, 0);
    if (e != UC_ERR_OK) r.error = std::string("uc_emu_start: ") + uc_strerror(e);
    if (st.status < 0 && r.error.empty()) r.error = "stopped without exit";
  }
  uc_close(uc);
  r.out = std::move(st.out);
  r.status = st.status;
  if (insns) *insns = st.insns;
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

void BM_TlbTouch_mmemu(benchmark::State& state, Arch arch, bool coalesce) {
  const std::vector<std::string> args{kTouchMiB, kTouchPasses};
  const std::string& ref = reference("tlbtouch", args);
  KernelOptions o;
  o.phys_bytes = 256ULL << 20;
  o.tlb_coalesce = coalesce;
  std::uint64_t refills = 0, pages = 0, faults = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const GuestResult r = run_mmemu(guest(arch, "tlbtouch"), args, o);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!check(state, r, ref)) break;
    refills += r.refills;
    pages += r.refill_pages;
    faults += r.faults;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["refills"] = static_cast<double>(refills) / n;
  state.counters["refill_pages"] = static_cast<double>(pages) / n;
  state.counters["faults"] = static_cast<double>(faults) / n;
  state.counters["pages_per_refill"] =
      refills ? static_cast<double>(pages) / static_cast<double>(refills) : 0;
  state.counters["refills_per_s"] = seconds > 0 ? static_cast<double>(refills) / seconds : 0;
}
BENCHMARK_CAPTURE(BM_TlbTouch_mmemu, x86_64_coalesce, Arch::X86_64, true)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TlbTouch_mmemu, x86_64_single_page, Arch::X86_64, false)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TlbTouch_mmemu, arm64_coalesce, Arch::Arm64, true)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TlbTouch_mmemu, arm64_single_page, Arch::Arm64, false)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
