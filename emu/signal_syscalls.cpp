// System calls: signal group (kernel side).
#include "emu/syscall.hpp"

namespace mmemu {

void register_signal_syscalls(SyscallTable& t) {
  (void)t;
}

}  // namespace mmemu
