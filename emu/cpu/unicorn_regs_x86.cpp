// x86_64 register tables and context save/restore for the Unicorn backend.
#include <cstring>

#include "emu/cpu/unicorn_arch.hpp"

namespace mmemu {
namespace {

// Context order: rax rbx rcx rdx rsi rdi rbp rsp r8..r15 (the order of X86Context::gpr).
constexpr std::array<int, 16> kGpr = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_RBP, UC_X86_REG_RSP, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};

constexpr std::array<int, 16> kXmm = {
    UC_X86_REG_XMM0,  UC_X86_REG_XMM1,  UC_X86_REG_XMM2,  UC_X86_REG_XMM3,
    UC_X86_REG_XMM4,  UC_X86_REG_XMM5,  UC_X86_REG_XMM6,  UC_X86_REG_XMM7,
    UC_X86_REG_XMM8,  UC_X86_REG_XMM9,  UC_X86_REG_XMM10, UC_X86_REG_XMM11,
    UC_X86_REG_XMM12, UC_X86_REG_XMM13, UC_X86_REG_XMM14, UC_X86_REG_XMM15};

constexpr UnicornRegName kNames[] = {
    {"rax", UC_X86_REG_RAX, false},         {"rbx", UC_X86_REG_RBX, false},
    {"rcx", UC_X86_REG_RCX, false},         {"rdx", UC_X86_REG_RDX, false},
    {"rsi", UC_X86_REG_RSI, false},         {"rdi", UC_X86_REG_RDI, false},
    {"rbp", UC_X86_REG_RBP, false},         {"rsp", UC_X86_REG_RSP, false},
    {"r8", UC_X86_REG_R8, false},           {"r9", UC_X86_REG_R9, false},
    {"r10", UC_X86_REG_R10, false},         {"r11", UC_X86_REG_R11, false},
    {"r12", UC_X86_REG_R12, false},         {"r13", UC_X86_REG_R13, false},
    {"r14", UC_X86_REG_R14, false},         {"r15", UC_X86_REG_R15, false},
    {"rip", UC_X86_REG_RIP, false},         {"rflags", UC_X86_REG_RFLAGS, false},
    {"fs_base", UC_X86_REG_FS_BASE, false}, {"gs_base", UC_X86_REG_GS_BASE, false},
    {"fcw", UC_X86_REG_FPCW, false},        {"fsw", UC_X86_REG_FPSW, false},
    {"ftw", UC_X86_REG_FPTAG, false},       {"mxcsr", UC_X86_REG_MXCSR, false},
    {"xmm0", UC_X86_REG_XMM0, true},        {"xmm1", UC_X86_REG_XMM1, true},
    {"xmm2", UC_X86_REG_XMM2, true},        {"xmm3", UC_X86_REG_XMM3, true},
    {"xmm4", UC_X86_REG_XMM4, true},        {"xmm5", UC_X86_REG_XMM5, true},
    {"xmm6", UC_X86_REG_XMM6, true},        {"xmm7", UC_X86_REG_XMM7, true},
    {"xmm8", UC_X86_REG_XMM8, true},        {"xmm9", UC_X86_REG_XMM9, true},
    {"xmm10", UC_X86_REG_XMM10, true},      {"xmm11", UC_X86_REG_XMM11, true},
    {"xmm12", UC_X86_REG_XMM12, true},      {"xmm13", UC_X86_REG_XMM13, true},
    {"xmm14", UC_X86_REG_XMM14, true},      {"xmm15", UC_X86_REG_XMM15, true},
};

constexpr std::string_view kGeneral[] = {"rax", "rbx", "rcx", "rdx",    "rsi",     "rdi",    "rbp",
                                         "rsp", "r8",  "r9",  "r10",    "r11",     "r12",    "r13",
                                         "r14", "r15", "rip", "rflags", "fs_base", "gs_base"};

CpuContext save(uc_engine* uc) {
  X86Context c;
  for (std::size_t i = 0; i < kGpr.size(); i++)
    c.gpr[i] = uc_read_u64(uc, kGpr[i]);
  c.rip = uc_read_u64(uc, UC_X86_REG_RIP);
  c.rflags = uc_read_u64(uc, UC_X86_REG_RFLAGS);
  c.fs_base = uc_read_u64(uc, UC_X86_REG_FS_BASE);
  c.gs_base = uc_read_u64(uc, UC_X86_REG_GS_BASE);
  c.fcw = static_cast<std::uint16_t>(uc_read_u64(uc, UC_X86_REG_FPCW));
  c.fsw = static_cast<std::uint16_t>(uc_read_u64(uc, UC_X86_REG_FPSW));
  c.ftw = static_cast<std::uint16_t>(uc_read_u64(uc, UC_X86_REG_FPTAG));
  for (int i = 0; i < 8; i++) {
    // Physical registers R0..R7 (not ST(i)): with FSW's TOP they restore exactly.
    std::uint8_t buf[16] = {};
    uc_reg_read(uc, UC_X86_REG_FP0 + i, buf);
    std::memcpy(c.fpr[static_cast<std::size_t>(i)].data(), buf, 10);
  }
  c.mxcsr = static_cast<std::uint32_t>(uc_read_u64(uc, UC_X86_REG_MXCSR));
  for (std::size_t i = 0; i < kXmm.size(); i++)
    uc_reg_read(uc, kXmm[i], c.xmm[i].data());
  return c;
}

bool restore(uc_engine* uc, const CpuContext& ctx) {
  const auto* c = std::get_if<X86Context>(&ctx);
  if (!c) return false;
  for (std::size_t i = 0; i < kGpr.size(); i++)
    uc_write_u64(uc, kGpr[i], c->gpr[i]);
  uc_write_u64(uc, UC_X86_REG_RIP, c->rip);
  uc_write_u64(uc, UC_X86_REG_RFLAGS, c->rflags);
  uc_write_u64(uc, UC_X86_REG_FS_BASE, c->fs_base);
  uc_write_u64(uc, UC_X86_REG_GS_BASE, c->gs_base);
  for (int i = 0; i < 8; i++) {
    std::uint8_t buf[16] = {};
    std::memcpy(buf, c->fpr[static_cast<std::size_t>(i)].data(), 10);
    uc_reg_write(uc, UC_X86_REG_FP0 + i, buf);
  }
  uc_write_u64(uc, UC_X86_REG_FPCW, c->fcw);
  uc_write_u64(uc, UC_X86_REG_FPSW, c->fsw);
  uc_write_u64(uc, UC_X86_REG_FPTAG, c->ftw);
  uc_write_u64(uc, UC_X86_REG_MXCSR, c->mxcsr);
  for (std::size_t i = 0; i < kXmm.size(); i++)
    uc_reg_write(uc, kXmm[i], c->xmm[i].data());
  return true;
}

const UnicornArchOps kOps = {
    .arch = UC_ARCH_X86,
    .mode = UC_MODE_64,
    .pc = UC_X86_REG_RIP,
    .sp = UC_X86_REG_RSP,
    .nr = UC_X86_REG_RAX,
    .ret = UC_X86_REG_RAX,
    .tls = UC_X86_REG_FS_BASE,
    .args = {UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_R10, UC_X86_REG_R8,
             UC_X86_REG_R9},
    .names = kNames,
    .general = kGeneral,
    .save = save,
    .restore = restore,
};

}  // namespace

const UnicornArchOps& unicorn_x86_ops() {
  return kOps;
}

}  // namespace mmemu
