// memfd_create and the seal fcntls (F_ADD_SEALS, F_GET_SEALS). The file is shmem: its pages
// come from the `page` site, are shared by every mapping and descriptor, and go when the
// last of them does.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "emu/fs/path_lookup.hpp"
#include "emu/fs/shmem_file.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

namespace {

constexpr unsigned kMfdCloexec = 0x1, kMfdAllowSealing = 0x2, kMfdHugetlb = 0x4,
                   kMfdNoexecSeal = 0x8, kMfdExec = 0x10;
constexpr unsigned kMfdAllFlags =
    kMfdCloexec | kMfdAllowSealing | kMfdHugetlb | kMfdNoexecSeal | kMfdExec;
constexpr unsigned kMfdHugeMask = 0x3fU << 26;   // MFD_HUGE_MASK << MFD_HUGE_SHIFT
constexpr std::size_t kMfdNameMaxLen = 255 - 6;  // NAME_MAX - strlen("memfd:")

SysResult sys_memfd_create(SyscallContext& ctx) {
  const auto flags = static_cast<unsigned>(ctx.arg(1));
  const unsigned allowed = (flags & kMfdHugetlb) ? kMfdAllFlags | kMfdHugeMask : kMfdAllFlags;
  if (flags & ~allowed) return SysResult::err(EINVAL);
  if ((flags & kMfdExec) && (flags & kMfdNoexecSeal)) return SysResult::err(EINVAL);
  auto name = ctx.read_string(ctx.arg(0), kMfdNameMaxLen + 1);
  if (!name) return SysResult::err(name.error().code == EFAULT ? EFAULT : EINVAL);
  // hugetlbfs memfds are not modelled (no huge pages are reserved here either).
  if (flags & kMfdHugetlb) return SysResult::err(ENOMEM);

  unsigned seals = kSealSeal;
  std::uint32_t mode = S_IFREG | 0777;
  if (flags & kMfdNoexecSeal) {
    mode = S_IFREG | 0666;
    seals = kSealExec;
  } else if (flags & kMfdAllowSealing) {
    seals = 0;
  }
  const std::string path = "/memfd:" + *name + " (deleted)";
  auto inode = std::make_shared<ShmemInode>(
      File::create_shmem_file(ctx.kernel.machine(), path, seals),
      new_shmem_stat(mode, ctx.proc.cred.euid, ctx.proc.cred.egid, 0), path);
  auto of = std::make_shared<ShmemFile>(O_RDWR | kO_LARGEFILE, std::move(inode));
  return SysResult::from(ctx.proc.fds->install(std::move(of), (flags & kMfdCloexec) != 0));
}

}  // namespace

SysResult memfd_fcntl(OpenFile& f, bool add, std::uint64_t arg) {
  auto* mf = dynamic_cast<ShmemFile*>(&f);
  if (!mf || !mf->memfd()) return SysResult::err(EINVAL);
  File& file = mf->file();
  if (!add) return SysResult::ok(file.seals());
  if (!f.writable()) return SysResult::err(EPERM);
  auto seals = static_cast<unsigned>(arg);
  if (seals & ~kAllSeals) return SysResult::err(EINVAL);
  // kSealExec on an executable memfd seals writes too: W^X from then on.
  if ((seals & kSealExec) && (mf->inode()->st.mode & 0111))
    seals |= kSealShrink | kSealGrow | kSealWrite | kSealFutureWrite;
  return SysResult::from(memfd_add_seals(file, seals));
}

void register_memfd_syscalls(SyscallTable& t) {
  t.add(Sys::memfd_create, sys_memfd_create);
}

}  // namespace mmemu
