// Effective addresses of the faulting instruction's memory operands, with Capstone.
#include "emu/cpu/fault_address.hpp"

#include <capstone/capstone.h>

#include <string>
#include <vector>

namespace mmemu {

namespace {

// The 64-bit register holding a (possibly narrower) register, and the narrowing mask.
std::uint64_t read_named(Arch arch, std::string_view name, const RegReader& reg) {
  std::string n(name);
  if (arch == Arch::Arm64) {
    if (n == "xzr" || n == "wzr") return 0;
    if (n == "wsp") return reg("sp") & 0xffffffffULL;
    if (n.size() > 1 && n[0] == 'w') return reg("x" + n.substr(1)) & 0xffffffffULL;
    if (n == "x29") return reg("x29");
    if (n == "x30") return reg("x30");
    return reg(n);
  }
  if (n == "rip") return reg("rip");
  if (n.size() == 3 && n[0] == 'e') return reg("r" + n.substr(1)) & 0xffffffffULL;  // eax
  if (n.size() >= 3 && n[0] == 'r' && n.back() == 'd') {                            // r8d
    return reg(n.substr(0, n.size() - 1)) & 0xffffffffULL;
  }
  return reg(n);
}

bool same_page(vaddr_t a, vaddr_t page) {
  return page_align_down(a) == page_align_down(page);
}

std::vector<vaddr_t> x86_candidates(csh h, const cs_insn& insn, const RegReader& reg) {
  std::vector<vaddr_t> out;
  const cs_x86& x = insn.detail->x86;
  auto value = [&](x86_reg r) -> std::uint64_t {
    if (r == X86_REG_INVALID) return 0;
    if (r == X86_REG_RIP) return insn.address + insn.size;
    return read_named(Arch::X86_64, cs_reg_name(h, r), reg);
  };
  for (std::uint8_t i = 0; i < x.op_count; ++i) {
    const cs_x86_op& op = x.operands[i];
    if (op.type != X86_OP_MEM) continue;
    std::uint64_t ea = value(op.mem.base) +
                       value(op.mem.index) * static_cast<std::uint64_t>(op.mem.scale) +
                       static_cast<std::uint64_t>(op.mem.disp);
    if (op.mem.segment == X86_REG_FS) ea += reg("fs_base");
    if (op.mem.segment == X86_REG_GS) ea += reg("gs_base");
    out.push_back(ea);
  }
  // Implicit operands: the stack and the string registers.
  const std::uint64_t rsp = reg("rsp");
  switch (insn.id) {
    case X86_INS_PUSH:
    case X86_INS_PUSHFQ:
    case X86_INS_CALL:
      out.push_back(rsp - 8);
      break;
    case X86_INS_POP:
    case X86_INS_POPFQ:
    case X86_INS_RET:
    case X86_INS_LEAVE:
      out.push_back(insn.id == X86_INS_LEAVE ? reg("rbp") : rsp);
      break;
    default:
      break;
  }
  if (out.empty()) {
    out.push_back(reg("rdi"));  // string instructions: movs/stos/scas/cmps destinations
    out.push_back(reg("rsi"));  // movs/lods/cmps sources
  }
  return out;
}

std::vector<vaddr_t> arm64_candidates(csh h, const cs_insn& insn, const RegReader& reg) {
  std::vector<vaddr_t> out;
  const cs_arm64& a = insn.detail->arm64;
  for (std::uint8_t i = 0; i < a.op_count; ++i) {
    const cs_arm64_op& op = a.operands[i];
    if (op.type != ARM64_OP_MEM) continue;
    std::uint64_t ea = op.mem.base != ARM64_REG_INVALID
                           ? read_named(Arch::Arm64, cs_reg_name(h, op.mem.base), reg)
                           : 0;
    if (op.mem.index != ARM64_REG_INVALID) {
      std::uint64_t idx = read_named(Arch::Arm64, cs_reg_name(h, op.mem.index), reg);
      if (op.ext == ARM64_EXT_SXTW)
        idx = static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int32_t>(idx)));
      if (op.shift.type == ARM64_SFT_LSL) idx <<= op.shift.value;
      ea += idx;
    }
    const std::uint64_t base_only = ea;
    ea += static_cast<std::uint64_t>(static_cast<std::int64_t>(op.mem.disp));
    out.push_back(ea);
    out.push_back(base_only);  // post-index forms access the base itself
  }
  return out;
}

}  // namespace

vaddr_t exact_fault_address(Arch arch, std::span<const std::uint8_t> code, vaddr_t pc, vaddr_t page,
                            const RegReader& reg) {
  csh h = 0;
  const bool x86 = arch == Arch::X86_64;
  if (cs_open(x86 ? CS_ARCH_X86 : CS_ARCH_ARM64, x86 ? CS_MODE_64 : CS_MODE_ARM, &h) != CS_ERR_OK)
    return page;
  cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = nullptr;
  vaddr_t result = page;
  if (cs_disasm(h, code.data(), code.size(), pc, 1, &insn) == 1) {
    const std::vector<vaddr_t> cands =
        x86 ? x86_candidates(h, insn[0], reg) : arm64_candidates(h, insn[0], reg);
    for (vaddr_t c : cands) {
      if (same_page(c, page) && c >= page) {
        result = c;
        break;
      }
    }
    cs_free(insn, 1);
  }
  cs_close(&h);
  return result;
}

}  // namespace mmemu
