// Plain Unicorn with flat memory and no mmemu in between: the baseline mmemu's overhead is
// measured against (tests/bench/bench_emu.cpp, BM_Compute_unicorn). The program's loadable
// segments are mapped at their addresses with uc_mem_map (a page two segments share gets
// both permissions), a 1 MiB stack below 0x7ffff0000000 holds argc, argv, an empty envp and
// an empty auxv, and the program runs from its entry. Its only system calls are write to
// fd 1 (collected in `out`) and exit/exit_group; every other one returns -ENOSYS. The
// caller parses the executable (emu/cpu does not depend on emu/image) and passes plain data.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "emu/cpu/cpu.hpp"

namespace mmemu {

struct FlatSegment {
  std::uint64_t vaddr = 0, memsz = 0;
  unsigned perms = PERM_NONE;           // PERM_R | PERM_W | PERM_X
  std::span<const std::uint8_t> bytes;  // its first bytes (at most memsz); the rest is zero
};

struct FlatProgram {
  Arch arch = Arch::X86_64;
  std::uint64_t entry = 0;
  std::vector<FlatSegment> segments;
  std::vector<std::string> argv;  // argv[0] included
};

struct FlatRunOptions {
  // An empty UC_HOOK_CODE that counts instructions (mmemu's CPU always has one); without
  // it FlatRunResult::insns stays 0.
  bool code_hook = false;
  std::uint64_t max_insns = 0;  // stop after this many instructions; 0: run until exit
};

struct FlatRunResult {
  std::string out;          // what the program wrote to fd 1
  bool exited = false;      // it called exit or exit_group
  int status = -1;          // its exit status (low 8 bits), if it exited
  std::uint64_t insns = 0;  // instructions run, with FlatRunOptions::code_hook
  std::string error;        // empty unless the engine could not be set up or failed to run
};

FlatRunResult run_flat_unicorn(const FlatProgram& program, const FlatRunOptions& options = {});

}  // namespace mmemu
