// AArch64 register tables and context save/restore for the Unicorn backend.
#include "emu/cpu/unicorn_arch.hpp"

namespace mmemu {
namespace {

constexpr std::array<int, 31> kX = {
    UC_ARM64_REG_X0,  UC_ARM64_REG_X1,  UC_ARM64_REG_X2,  UC_ARM64_REG_X3,  UC_ARM64_REG_X4,
    UC_ARM64_REG_X5,  UC_ARM64_REG_X6,  UC_ARM64_REG_X7,  UC_ARM64_REG_X8,  UC_ARM64_REG_X9,
    UC_ARM64_REG_X10, UC_ARM64_REG_X11, UC_ARM64_REG_X12, UC_ARM64_REG_X13, UC_ARM64_REG_X14,
    UC_ARM64_REG_X15, UC_ARM64_REG_X16, UC_ARM64_REG_X17, UC_ARM64_REG_X18, UC_ARM64_REG_X19,
    UC_ARM64_REG_X20, UC_ARM64_REG_X21, UC_ARM64_REG_X22, UC_ARM64_REG_X23, UC_ARM64_REG_X24,
    UC_ARM64_REG_X25, UC_ARM64_REG_X26, UC_ARM64_REG_X27, UC_ARM64_REG_X28, UC_ARM64_REG_X29,
    UC_ARM64_REG_X30};
constexpr std::array<int, 32> kV = {
    UC_ARM64_REG_V0,  UC_ARM64_REG_V1,  UC_ARM64_REG_V2,  UC_ARM64_REG_V3,  UC_ARM64_REG_V4,
    UC_ARM64_REG_V5,  UC_ARM64_REG_V6,  UC_ARM64_REG_V7,  UC_ARM64_REG_V8,  UC_ARM64_REG_V9,
    UC_ARM64_REG_V10, UC_ARM64_REG_V11, UC_ARM64_REG_V12, UC_ARM64_REG_V13, UC_ARM64_REG_V14,
    UC_ARM64_REG_V15, UC_ARM64_REG_V16, UC_ARM64_REG_V17, UC_ARM64_REG_V18, UC_ARM64_REG_V19,
    UC_ARM64_REG_V20, UC_ARM64_REG_V21, UC_ARM64_REG_V22, UC_ARM64_REG_V23, UC_ARM64_REG_V24,
    UC_ARM64_REG_V25, UC_ARM64_REG_V26, UC_ARM64_REG_V27, UC_ARM64_REG_V28, UC_ARM64_REG_V29,
    UC_ARM64_REG_V30, UC_ARM64_REG_V31};

constexpr UnicornRegName kNames[] = {
    {"x0", UC_ARM64_REG_X0, false},
    {"x1", UC_ARM64_REG_X1, false},
    {"x2", UC_ARM64_REG_X2, false},
    {"x3", UC_ARM64_REG_X3, false},
    {"x4", UC_ARM64_REG_X4, false},
    {"x5", UC_ARM64_REG_X5, false},
    {"x6", UC_ARM64_REG_X6, false},
    {"x7", UC_ARM64_REG_X7, false},
    {"x8", UC_ARM64_REG_X8, false},
    {"x9", UC_ARM64_REG_X9, false},
    {"x10", UC_ARM64_REG_X10, false},
    {"x11", UC_ARM64_REG_X11, false},
    {"x12", UC_ARM64_REG_X12, false},
    {"x13", UC_ARM64_REG_X13, false},
    {"x14", UC_ARM64_REG_X14, false},
    {"x15", UC_ARM64_REG_X15, false},
    {"x16", UC_ARM64_REG_X16, false},
    {"x17", UC_ARM64_REG_X17, false},
    {"x18", UC_ARM64_REG_X18, false},
    {"x19", UC_ARM64_REG_X19, false},
    {"x20", UC_ARM64_REG_X20, false},
    {"x21", UC_ARM64_REG_X21, false},
    {"x22", UC_ARM64_REG_X22, false},
    {"x23", UC_ARM64_REG_X23, false},
    {"x24", UC_ARM64_REG_X24, false},
    {"x25", UC_ARM64_REG_X25, false},
    {"x26", UC_ARM64_REG_X26, false},
    {"x27", UC_ARM64_REG_X27, false},
    {"x28", UC_ARM64_REG_X28, false},
    {"x29", UC_ARM64_REG_X29, false},
    {"x30", UC_ARM64_REG_X30, false},
    {"fp", UC_ARM64_REG_X29, false},
    {"lr", UC_ARM64_REG_X30, false},
    {"sp", UC_ARM64_REG_SP, false},
    {"pc", UC_ARM64_REG_PC, false},
    {"nzcv", UC_ARM64_REG_NZCV, false},
    {"tpidr_el0", UC_ARM64_REG_TPIDR_EL0, false},
    {"tpidrro_el0", UC_ARM64_REG_TPIDRRO_EL0, false},
    {"fpcr", UC_ARM64_REG_FPCR, false},
    {"fpsr", UC_ARM64_REG_FPSR, false},
    {"v0", UC_ARM64_REG_V0, true},
    {"v1", UC_ARM64_REG_V1, true},
    {"v2", UC_ARM64_REG_V2, true},
    {"v3", UC_ARM64_REG_V3, true},
    {"v4", UC_ARM64_REG_V4, true},
    {"v5", UC_ARM64_REG_V5, true},
    {"v6", UC_ARM64_REG_V6, true},
    {"v7", UC_ARM64_REG_V7, true},
    {"v8", UC_ARM64_REG_V8, true},
    {"v9", UC_ARM64_REG_V9, true},
    {"v10", UC_ARM64_REG_V10, true},
    {"v11", UC_ARM64_REG_V11, true},
    {"v12", UC_ARM64_REG_V12, true},
    {"v13", UC_ARM64_REG_V13, true},
    {"v14", UC_ARM64_REG_V14, true},
    {"v15", UC_ARM64_REG_V15, true},
    {"v16", UC_ARM64_REG_V16, true},
    {"v17", UC_ARM64_REG_V17, true},
    {"v18", UC_ARM64_REG_V18, true},
    {"v19", UC_ARM64_REG_V19, true},
    {"v20", UC_ARM64_REG_V20, true},
    {"v21", UC_ARM64_REG_V21, true},
    {"v22", UC_ARM64_REG_V22, true},
    {"v23", UC_ARM64_REG_V23, true},
    {"v24", UC_ARM64_REG_V24, true},
    {"v25", UC_ARM64_REG_V25, true},
    {"v26", UC_ARM64_REG_V26, true},
    {"v27", UC_ARM64_REG_V27, true},
    {"v28", UC_ARM64_REG_V28, true},
    {"v29", UC_ARM64_REG_V29, true},
    {"v30", UC_ARM64_REG_V30, true},
    {"v31", UC_ARM64_REG_V31, true},
};

constexpr std::string_view kGeneral[] = {
    "x0",  "x1",  "x2",  "x3",  "x4",  "x5",  "x6",  "x7",  "x8",  "x9",   "x10",      "x11",
    "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21",  "x22",      "x23",
    "x24", "x25", "x26", "x27", "x28", "x29", "x30", "sp",  "pc",  "nzcv", "tpidr_el0"};

CpuContext save(uc_engine* uc) {
  Arm64Context c;
  for (std::size_t i = 0; i < kX.size(); i++)
    c.x[i] = uc_read_u64(uc, kX[i]);
  c.sp = uc_read_u64(uc, UC_ARM64_REG_SP);
  c.pc = uc_read_u64(uc, UC_ARM64_REG_PC);
  c.nzcv = uc_read_u64(uc, UC_ARM64_REG_NZCV);
  c.tpidr_el0 = uc_read_u64(uc, UC_ARM64_REG_TPIDR_EL0);
  c.tpidrro_el0 = uc_read_u64(uc, UC_ARM64_REG_TPIDRRO_EL0);
  c.fpcr = static_cast<std::uint32_t>(uc_read_u64(uc, UC_ARM64_REG_FPCR));
  c.fpsr = static_cast<std::uint32_t>(uc_read_u64(uc, UC_ARM64_REG_FPSR));
  for (std::size_t i = 0; i < kV.size(); i++)
    uc_reg_read(uc, kV[i], c.v[i].data());
  return c;
}

bool restore(uc_engine* uc, const CpuContext& ctx) {
  const auto* c = std::get_if<Arm64Context>(&ctx);
  if (!c) return false;
  for (std::size_t i = 0; i < kX.size(); i++)
    uc_write_u64(uc, kX[i], c->x[i]);
  uc_write_u64(uc, UC_ARM64_REG_SP, c->sp);
  uc_write_u64(uc, UC_ARM64_REG_PC, c->pc);
  uc_write_u64(uc, UC_ARM64_REG_NZCV, c->nzcv);
  uc_write_u64(uc, UC_ARM64_REG_TPIDR_EL0, c->tpidr_el0);
  uc_write_u64(uc, UC_ARM64_REG_TPIDRRO_EL0, c->tpidrro_el0);
  uc_write_u64(uc, UC_ARM64_REG_FPCR, c->fpcr);
  uc_write_u64(uc, UC_ARM64_REG_FPSR, c->fpsr);
  for (std::size_t i = 0; i < kV.size(); i++)
    uc_reg_write(uc, kV[i], c->v[i].data());
  return true;
}

const UnicornArchOps kOps = {
    .arch = UC_ARCH_ARM64,
    .mode = UC_MODE_ARM,
    .pc = UC_ARM64_REG_PC,
    .sp = UC_ARM64_REG_SP,
    .nr = UC_ARM64_REG_X8,
    .ret = UC_ARM64_REG_X0,
    .tls = UC_ARM64_REG_TPIDR_EL0,
    .args = {UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2, UC_ARM64_REG_X3, UC_ARM64_REG_X4,
             UC_ARM64_REG_X5},
    .names = kNames,
    .general = kGeneral,
    .save = save,
    .restore = restore,
};

}  // namespace

const UnicornArchOps& unicorn_arm64_ops() {
  return kOps;
}

}  // namespace mmemu
