// futex(2) for single-threaded guest processes: FUTEX_WAIT/WAKE and their BITSET forms,
// private and shared (a shared mapping's futex is keyed by its physical address, so a
// parent and a child can wait and wake through MAP_SHARED memory). Other operations
// (requeue, wake-op, PI) answer ENOSYS.
#pragma once

#include <cstdint>

#include "emu/syscalls/syscall.hpp"

namespace mmemu {

// Wakes up to n waiters on the futex at uaddr of mm (at least one, as Linux's loop does);
// returns how many were woken. For the kernel's clear_child_tid wake at exit, too.
int futex_wake(Kernel& k, Mm& mm, vaddr_t uaddr, int n, std::uint32_t bitset = ~0U);

SysResult sys_futex(SyscallContext& ctx);

}  // namespace mmemu
