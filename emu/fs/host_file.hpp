// Host files and directories a guest opened, always read-only: the guest sees the host's
// file system as a read-only mount (writing opens fail with EROFS, see emu/syscalls/fs.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "emu/fs/fd.hpp"

namespace mmemu {

class File;

// A regular host file: reads come from the File's contents (the one File per path the
// kernel keeps, whose page cache mmap maps), so read() and a mapping see the same bytes.
class HostFile final : public OpenFile {
 public:
  // Takes over one reference to `file` (put in the destructor).
  HostFile(int flags, File* file, FileStat st, std::string path);
  ~HostFile() override;

  std::string_view kind() const override { return "file"; }
  std::string path() const override { return path_; }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override { return st_; }
  File* mmap_file() override { return file_; }

 private:
  std::uint64_t copy_at(std::span<std::uint8_t> buf, std::uint64_t off) const;
  File* file_;
  FileStat st_;
  std::string path_;
};

// One directory entry as getdents64 reports it.
struct DirEntry {
  std::uint64_t ino;
  std::uint8_t type;  // DT_*
  std::string name;
};

// A directory (host directory, or a generated /proc one): entries listed at open (or, for
// a generated one, again whenever reading starts at the beginning), read with
// getdents64/getdents; read() is EISDIR. The position is the index of the next entry.
class DirFile final : public OpenFile {
 public:
  using Lister = std::function<std::vector<DirEntry>()>;
  DirFile(int flags, std::vector<DirEntry> entries, FileStat st, std::string path,
          Lister relist = nullptr);

  std::string_view kind() const override { return "dir"; }
  std::string path() const override { return path_; }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override { return st_; }

  // linux_dirent64 records (64 == true) or the old linux_dirent of x86_64's getdents,
  // as many whole records as fit in `max` bytes from the position on (advancing it).
  // EINVAL when not even the first fits; empty at the end.
  Result<std::string> getdents(std::size_t max, bool dirent64);

  // Lists a host directory ("." and ".." included), in the host's readdir order.
  static Result<std::vector<DirEntry>> list_host(const std::string& path);

 private:
  std::vector<DirEntry> entries_;
  FileStat st_;
  std::string path_;
  Lister relist_;
};

// An O_PATH descriptor: names a file without opening it (fstat, *at bases, fchdir).
class PathFile final : public OpenFile {
 public:
  PathFile(int flags, FileStat st, std::string path)
      : OpenFile(flags), st_(st), path_(std::move(path)) {}
  std::string_view kind() const override { return "path"; }
  std::string path() const override { return path_; }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;         // EBADF
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;  // EBADF
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  Result<FileStat> stat() const override { return st_; }
  bool is_dir() const;

 private:
  FileStat st_;
  std::string path_;
};

}  // namespace mmemu
