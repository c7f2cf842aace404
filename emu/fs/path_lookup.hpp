// Path lookup for the file system calls: guest paths resolved against the process's cwd or
// a directory descriptor, and the name space a guest sees:
// - /proc lists the guest pids (never the host's) and the host's other names;
//   /proc/self, /proc/thread-self and /proc/PID (guest pids, zombies included) with maps,
//   smaps, smaps_rollup, status, stat, statm, limits, mounts, comm, cmdline, environ, exe,
//   cwd, root, fd/ and task/PID/, owned by the process; /proc/{meminfo,stat,loadavg,uptime,
//   cpuinfo} describe the emulated machine and /proc/mounts -> self/mounts
//   (emu/fs/proc_system.hpp); /sys/devices/system/cpu/{online,possible,present} say "0"
//   (one CPU, as sched_getaffinity); other /proc and /sys files are snapshots of the
//   host's, read-only;
// - /dev/null, zero, full, random, urandom (emulated), /dev/stdin|stdout|stderr and
//   /dev/fd/N (as /proc/self/fd/N);
// - everything else is the host's file system, read-only: opening an existing file for
//   writing or truncating it fails with EROFS (what a read-only mount answers), host device
//   nodes, FIFOs and sockets with EACCES. New regular files (O_CREAT, O_TMPFILE) are made in
//   memory and seen by every guest process (emu/fs/created_files.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "emu/fs/fd.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

inline constexpr int kAtFdcwd = -100;
inline constexpr std::size_t kPathMax = 4096;  // PATH_MAX, the NUL included

// Reads a path argument: EFAULT, ENAMETOOLONG.
Result<std::string> read_path(const SyscallContext& ctx, vaddr_t p);
// The absolute path `path` names relative to dirfd (AT_FDCWD: the cwd). EBADF for a
// descriptor that is not open, ENOTDIR when it is not a directory; an empty path is
// ENOENT unless allow_empty (AT_EMPTY_PATH), which returns "".
Result<std::string> resolve_at(const SyscallContext& ctx, int dirfd, const std::string& path,
                               bool allow_empty = false);
// "/a/./b//../c" -> "/a/c" (lexically; only used to recognise emulated names).
std::string normalize_path(const std::string& abs);

// The directory part of an absolute path ("/" for "/x").
std::string parent_dir(const std::string& abs);

// open(2) of an absolute path with canonical (host-encoded) flags, O_CLOEXEC excluded;
// mode: the permission bits of a file O_CREAT or O_TMPFILE creates (umask applied here).
Result<OpenFileRef> open_path(SyscallContext& ctx, const std::string& abs, int flags,
                              std::uint32_t mode = 0);
// stat/lstat of an absolute path.
Result<FileStat> stat_path(SyscallContext& ctx, const std::string& abs, bool follow);
// readlink: the link's target; EINVAL when it is not a symbolic link.
Result<std::string> readlink_path(SyscallContext& ctx, const std::string& abs);
// faccessat: mode is R_OK|W_OK|X_OK (F_OK = 0).
Result<void> access_path(SyscallContext& ctx, const std::string& abs, int mode, bool follow);
// struct statfs as the emulated mounts answer it (emu/fs/proc_system.hpp's mount list).
struct StatFs {
  std::int64_t type = 0, bsize = 0;
  std::uint64_t blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0;
  std::int32_t fsid[2] = {0, 0};
  std::int64_t namelen = 0, frsize = 0, flags = 0;
};
// statfs of an absolute path: procfs under /proc; otherwise the host file system's numbers
// with ST_RDONLY, as guests see every host mount read-only.
Result<StatFs> statfs_path(SyscallContext& ctx, const std::string& abs);
// fstatfs: by the path of the file, pipefs for a pipe, tmpfs for an unnamed shmem file.
Result<StatFs> statfs_file(SyscallContext& ctx, const OpenFile& f);

// chdir: the directory's canonical absolute path (ENOTDIR, ENOENT, ...).
Result<std::string> chdir_path(SyscallContext& ctx, const std::string& abs);

// The name-side file calls (emu/syscalls/fs.cpp), registered by register_file_syscalls.
void register_fs_syscalls(SyscallTable& t);
// poll, ppoll, select, pselect6 (emu/syscalls/poll.cpp), registered by register_file_syscalls.
void register_poll_syscalls(SyscallTable& t);
// memfd_create (emu/syscalls/memfd.cpp), registered by register_file_syscalls; memfd_fcntl answers
// F_ADD_SEALS (add) and F_GET_SEALS (EINVAL for a file that is not a memfd).
void register_memfd_syscalls(SyscallTable& t);
SysResult memfd_fcntl(OpenFile& f, bool add, std::uint64_t arg);

// ---- execve's lookup (used by emu/fs/exec_lookup.hpp) ----
// The regular file exec would run: its File (a new reference the caller puts), the
// canonical path /proc/PID/exe shows, and its stat. Symbolic links are followed (a last
// component that is a link is ELOOP unless `follow`); /proc/PID/exe is that process's
// executable itself, even if its path now names another file. Not a regular file: EACCES.
// The caller checks the permission bits.
struct ExecTarget {
  File* file = nullptr;
  std::string path;
  FileStat st;
  bool host = false;  // a host file: `path` is the host path (for access(2))
};
Result<ExecTarget> exec_target(SyscallContext& ctx, const std::string& abs, bool follow);
// The same for an open descriptor (fexecve, execveat with AT_EMPTY_PATH).
Result<ExecTarget> exec_target_of(SyscallContext& ctx, const OpenFileRef& f);

}  // namespace mmemu
