// Process file descriptors (pidfd_open, the pidfs file of Linux 6.18): an OpenFile that names
// one process by pid. mmemu never reuses a pid within a run, so the number is the identity
// (what struct pid is to Linux); the process it names may be running, a zombie, or reaped
// (gone from the kernel's table). Nothing here allocates guest-visible memory; a pidfd holds
// no reference on the process, so closing it or the process going away leaves nothing behind.
//  - fstat: mode 0700 with no file type bits, as pidfs reports; readlink of /proc/self/fd/N:
//    "anon_inode:[pidfd]". read/write EINVAL, lseek ESPIPE, mmap ENODEV, ioctl ENOTTY.
//  - poll (pidfd_poll): nothing while the process runs; POLLIN|POLLRDNORM once it is a
//    zombie; POLLIN|POLLRDNORM|POLLHUP once reaped. Woken through Kernel::pidfd_wait(),
//    which exit and reap wake.
#pragma once

#include "emu/fs/fd.hpp"

namespace mmemu {

class Kernel;
class Process;

inline constexpr int kPidfdNonblock = 0x800;  // O_NONBLOCK (x86_64 and arm64)
inline constexpr int kPidfdThread = 0x80;     // O_EXCL: PIDFD_THREAD (6.9+)

class PidfdFile final : public OpenFile {
 public:
  // flags: O_RDWR plus PIDFD_NONBLOCK / PIDFD_THREAD as pidfd_open got them.
  PidfdFile(Kernel& k, int pid, int flags);
  std::string_view kind() const override;
  std::string path() const override;
  Result<FileStat> stat() const override;
  unsigned poll(WaitQueue** wq) override;

  int pid() const { return pid_; }
  // The process while it is in the kernel's table (zombies included), else nullptr.
  Process* process() const;

 private:
  Kernel& kernel_;
  int pid_;
};

// The pidfd behind descriptor fd of p: EBADF when fd is not open or not a pidfd
// (pidfd_get_pid's answers).
Result<std::shared_ptr<PidfdFile>> pidfd_of(const Process& p, int fd);

}  // namespace mmemu
