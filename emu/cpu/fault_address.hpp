// The exact address of an access the TLB refused. Unicorn 2.1's fill hook is told only the
// (target) page of the access; Linux reports the exact address (si_addr, CR2, FAR). It is
// recovered by decoding the faulting instruction: the effective address of one of its
// memory operands (explicit, or implicit: the stack of push/call/ret, the string registers
// of movs/stos) that lies in the refused page, else the page itself, which is exactly what
// hardware reports for an access straddling into the page from below.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "mmu/types.hpp"

namespace mmemu {

// A register's value by its lower-case name ("rax", "x3", "sp", "fs_base").
using RegReader = std::function<std::uint64_t(std::string_view)>;

// code: the instruction bytes at pc (up to 16; fewer near an unreadable page). page: the
// refused page as the fill hook saw it (aligned to the emulator's target page).
vaddr_t exact_fault_address(Arch arch, std::span<const std::uint8_t> code, vaddr_t pc, vaddr_t page,
                            const RegReader& reg);

}  // namespace mmemu
