// System calls on credentials (emu/syscalls/cred.cpp): the get/set id calls, the
// supplementary groups, capget/capset, and prctl's capability options. The rules that move
// capability sets with the ids are emu/kernel/cred.hpp's.
#pragma once

#include <optional>

#include "emu/syscalls/syscall.hpp"

namespace mmemu {

void register_cred_syscalls(SyscallTable& t);

// prctl's PR_CAPBSET_READ/DROP, PR_GET/SET_KEEPCAPS, PR_GET_SECUREBITS and PR_CAP_AMBIENT;
// nullopt for any other option.
std::optional<SysResult> prctl_caps(SyscallContext& ctx, int option);

}  // namespace mmemu
