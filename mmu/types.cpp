#include "mmu/types.hpp"

namespace mmemu {

const ArchParams& arch_params(Arch a) {
  // x86_64: TASK_SIZE = TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE; FIRST_USER_ADDRESS 0;
  // ceiling 0 (top).
  static constexpr ArchParams x86{0, 0, (1ULL << 47) - PAGE_SIZE, 65536, (1ULL << 47) - PAGE_SIZE};
  // arm64: TASK_SIZE is the 48-bit space minus its last 2 MiB, where mmemu keeps the
  // signal-return trampoline mapped with no VMA. USER_PGTABLES_CEILING = TASK_SIZE (as 32-bit
  // ARM with LPAE does for its shared pmd), so munmap of the stack below it never frees the
  // PMD table the trampoline's PTE table hangs from; only exit frees them. TASK_SIZE_MAX is
  // the whole 48-bit space (1 << VA_BITS).
  static constexpr ArchParams arm{0, (1ULL << 48) - PMD_SIZE, (1ULL << 48) - PMD_SIZE, 65536,
                                  1ULL << 48};
  return a == Arch::X86_64 ? x86 : arm;
}

std::string_view errno_name(int code) {
  switch (code) {
    case 0:
      return "OK";
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case ESRCH:
      return "ESRCH";
    case EINTR:
      return "EINTR";
    case EIO:
      return "EIO";
    case E2BIG:
      return "E2BIG";
    case ENOEXEC:
      return "ENOEXEC";
    case EBADF:
      return "EBADF";
    case ECHILD:
      return "ECHILD";
    case EAGAIN:
      return "EAGAIN";
    case ENOMEM:
      return "ENOMEM";
    case EACCES:
      return "EACCES";
    case EFAULT:
      return "EFAULT";
    case EBUSY:
      return "EBUSY";
    case EEXIST:
      return "EEXIST";
    case ENODEV:
      return "ENODEV";
    case ENOTDIR:
      return "ENOTDIR";
    case EISDIR:
      return "EISDIR";
    case EINVAL:
      return "EINVAL";
    case ENFILE:
      return "ENFILE";
    case EMFILE:
      return "EMFILE";
    case ENOTTY:
      return "ENOTTY";
    case EFBIG:
      return "EFBIG";
    case ENOSPC:
      return "ENOSPC";
    case ESPIPE:
      return "ESPIPE";
    case EPIPE:
      return "EPIPE";
    case ERANGE:
      return "ERANGE";
    case ENOSYS:
      return "ENOSYS";
    case ENAMETOOLONG:
      return "ENAMETOOLONG";
    case EOVERFLOW:
      return "EOVERFLOW";
    case EHWPOISON:
      return "EHWPOISON";
    default:
      return "E?";
  }
}

}  // namespace mmemu
