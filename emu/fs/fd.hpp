// Open files and file-descriptor tables. An OpenFile is Linux's struct file: one open of
// something (a host file read-only, a memfd, a pipe end, the terminal/stdio pass-through, a
// generated /proc file), with its flags and position, shared by dup'ed descriptors and across fork
// (std::shared_ptr: the last reference going away is the final fput). Implementations move
// bytes between host buffers; the syscall layer copies them to and from guest memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "emu/syscalls/sys_result.hpp"
#include "mmu/types.hpp"

namespace mmemu {

class File;
struct SyscallContext;

// What fstat reports, architecture-neutral; the syscall layer lays it out as the guest
// ABI's struct stat (x86_64 and arm64 differ).
struct FileStat {
  std::uint64_t dev = 0, ino = 0, rdev = 0;
  std::uint32_t mode = 0;  // S_IFREG | 0644, S_IFIFO | 0600, S_IFCHR | 0620, ...
  std::uint32_t nlink = 1, uid = 0, gid = 0;
  std::int64_t size = 0, blksize = 4096, blocks = 0;
  std::int64_t atime_sec = 0, atime_nsec = 0, mtime_sec = 0, mtime_nsec = 0, ctime_sec = 0,
               ctime_nsec = 0;
};

class OpenFile {
 public:
  // flags: the open(2) flags that stay with the file (O_ACCMODE bits, O_APPEND,
  // O_NONBLOCK, ...), as fcntl(F_GETFL) reports them. O_CLOEXEC belongs to the descriptor.
  explicit OpenFile(int flags) : flags_(flags) {}
  virtual ~OpenFile() = default;
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  // "file", "pipe", "tty", "proc", "dir": for traces and /proc/self/fd.
  virtual std::string_view kind() const = 0;
  // What readlink("/proc/self/fd/N") shows: "/etc/hostname", "pipe:[12]", "/dev/pts/0".
  virtual std::string path() const = 0;

  // At the file position (advancing it). Return bytes transferred, 0 at end of file,
  // SysResult::err(...), or SysResult::block(...) to wait (the call is retried from the
  // start when woken). Defaults: EBADF if the file was not opened for it, else EINVAL.
  virtual SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf);
  virtual SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf);
  // At an explicit offset, not moving the position. Default: ESPIPE.
  virtual SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off);
  // Called only for a file open for writing that allows positioned I/O. Default: write()
  // (a device ignores the offset).
  virtual SysResult pwrite(SyscallContext& ctx, std::span<const std::uint8_t> buf,
                           std::uint64_t off);
  // ftruncate on a descriptor open for writing. Default: EINVAL (not a regular file).
  virtual Result<void> truncate(std::uint64_t length);
  // New position or errno. Default: ESPIPE.
  virtual Result<std::uint64_t> lseek(std::int64_t off, int whence);
  virtual Result<FileStat> stat() const = 0;
  // Default: ENOTTY.
  virtual SysResult ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg);
  // The page cache mmap maps (a reference is NOT taken here: mmap takes its own), or
  // nullptr when the file cannot be mapped (ENODEV).
  virtual File* mmap_file() { return nullptr; }
  // poll/select: the ready events (POLLIN 0x1, POLLOUT 0x4, POLLERR 0x8, POLLHUP 0x10,
  // POLLRDNORM 0x40, POLLWRNORM 0x100) and, in *wq, the queue woken when they may change
  // (nullptr: they never do). Default: always readable and writable (DEFAULT_POLLMASK).
  virtual unsigned poll(WaitQueue** wq);

  int flags() const { return flags_; }
  void set_flags(int f) { flags_ = f; }
  bool readable() const;  // O_RDONLY or O_RDWR
  bool writable() const;  // O_WRONLY or O_RDWR
  std::uint64_t pos() const { return pos_; }
  void set_pos(std::uint64_t p) { pos_ = p; }

 protected:
  // seq_lseek: SEEK_SET and SEEK_CUR only (else EINVAL), never to a negative position.
  Result<std::uint64_t> seq_lseek(std::int64_t off, int whence);
  // generic_file_llseek_size for a regular file of `size` bytes: SEEK_SET, SEEK_CUR and
  // SEEK_END, and SEEK_DATA/SEEK_HOLE (ENXIO for an offset < 0 or at/past the end) through
  // data_hole(offset, want_data), which returns the position found.
  Result<std::uint64_t> file_llseek(
      std::int64_t off, int whence, std::uint64_t size,
      const std::function<Result<std::uint64_t>(std::uint64_t, bool)>& data_hole);

  int flags_;
  std::uint64_t pos_ = 0;
};

using OpenFileRef = std::shared_ptr<OpenFile>;

// The standard streams passed through to mmemu's own descriptor `host_fd` (0, 1, 2): bytes
// go to the host untouched, in the order the guest writes them. Reads block the whole
// emulator (acceptable: stdin is a terminal or a file in every use) until input comes, a
// signal is sent to mmemu or the reader has a signal pending. ioctl answers TCGETS
// like a terminal only if the host fd is one, else ENOTTY.
class HostStdio final : public OpenFile {
 public:
  HostStdio(int host_fd, int flags);
  std::string_view kind() const override;
  std::string path() const override;
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  Result<FileStat> stat() const override;
  SysResult ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) override;
  int host_fd() const { return host_fd_; }

 private:
  int host_fd_;
  bool is_tty_;
};

// A process's descriptor table (files_struct). Not shared between processes (no
// CLONE_FILES): fork copies it, so both tables refer to the same OpenFiles.
class FdTable {
 public:
  static constexpr int kDefaultMaxFds = 1024;  // RLIMIT_NOFILE's usual soft limit

  // The lowest free descriptor >= lowest, or EMFILE when it would reach max_fds().
  Result<int> install(OpenFileRef f, bool cloexec, int lowest = 0);
  // dup2/dup3: puts f at fd, closing what was there. EBADF when fd is out of range.
  Result<void> install_at(int fd, OpenFileRef f, bool cloexec);
  OpenFileRef get(int fd) const;  // nullptr: not open (EBADF)
  bool is_open(int fd) const { return get(fd) != nullptr; }
  bool cloexec(int fd) const;
  Result<void> set_cloexec(int fd, bool on);  // EBADF
  Result<void> close(int fd);                 // EBADF
  void close_on_exec();                       // execve
  void close_all();                           // exit
  std::vector<int> open_fds() const;          // ascending

  int max_fds() const { return max_fds_; }
  void set_max_fds(int n) { max_fds_ = n; }  // prlimit(RLIMIT_NOFILE)

  // The size of Linux's struct fdtable (fdt->max_fds, not the rlimit): 64 slots at first,
  // grown by expand_files to a power-of-two multiple of 128 when a higher fd is installed,
  // never shrunk, kept across execve. select() silently ignores fds at or above it.
  static constexpr int kNrOpenDefault = 64;
  int table_size() const { return table_size_; }
  // fork: the child's table is sized for the parent's open fds only (Linux dup_fd).
  static FdTable dup_fd(const FdTable& parent);

 private:
  struct Entry {
    OpenFileRef file;
    bool cloexec = false;
  };
  void expand_files(int fd);

  std::vector<Entry> fds_;
  int max_fds_ = kDefaultMaxFds;
  int table_size_ = kNrOpenDefault;
};

}  // namespace mmemu
