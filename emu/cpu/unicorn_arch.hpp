// Per-architecture register tables of the Unicorn backend (internal to emu/cpu/: the
// UnicornCpu and the plain-Unicorn runner of flat_unicorn.hpp).
#pragma once

#include <unicorn/unicorn.h>

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "emu/cpu/cpu.hpp"

namespace mmemu {

struct UnicornRegName {
  std::string_view name;
  int id;
  bool vector;  // 128-bit register: reg()/set_reg() see its low 64 bits
};

struct UnicornArchOps {
  uc_arch arch;
  uc_mode mode;
  int pc, sp, nr, ret, tls;
  std::array<int, 6> args;
  std::span<const UnicornRegName> names;      // every register reg() knows
  std::span<const std::string_view> general;  // reg_names(): the ones a dump shows
  CpuContext (*save)(uc_engine* uc);
  bool (*restore)(uc_engine* uc, const CpuContext& ctx);  // false: other arch
};

const UnicornArchOps& unicorn_x86_ops();
const UnicornArchOps& unicorn_arm64_ops();

// PERM_* (emu/cpu/cpu.hpp) as Unicorn's UC_PROT_* bits.
inline std::uint32_t uc_prot_of(unsigned perms) {
  return ((perms & PERM_R) ? UC_PROT_READ : 0) | ((perms & PERM_W) ? UC_PROT_WRITE : 0) |
         ((perms & PERM_X) ? UC_PROT_EXEC : 0);
}

// Raw access for 1..8-byte registers (value zero-extended) and 16-byte vectors.
std::uint64_t uc_read_u64(uc_engine* uc, int id);
void uc_write_u64(uc_engine* uc, int id, std::uint64_t v);

}  // namespace mmemu
