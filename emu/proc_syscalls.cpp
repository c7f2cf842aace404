// System calls: process group (kernel side).
#include "emu/syscall.hpp"

namespace mmemu {

void register_process_syscalls(SyscallTable& t) {
  (void)t;
}

}  // namespace mmemu
