// System calls: file group. Owned by the syscall helper (see /work/notes/emu-contract.md).
#include "emu/syscall.hpp"

namespace mmemu {

void register_file_syscalls(SyscallTable& t) {
  (void)t;
}

}  // namespace mmemu
