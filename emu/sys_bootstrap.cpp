// System calls: bootstrap group (kernel side).
#include "emu/syscall.hpp"

namespace mmemu {

void register_bootstrap_syscalls(SyscallTable& t) {
  (void)t;
}

}  // namespace mmemu
