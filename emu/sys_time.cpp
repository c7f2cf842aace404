// System calls: time group. Owned by the syscall helper (see /work/notes/emu-contract.md).
#include "emu/syscall.hpp"

namespace mmemu {

void register_time_syscalls(SyscallTable& t) {
  (void)t;
}

}  // namespace mmemu
