// An open memfd: a shmem file (vma/shmem.hpp) with no name in any directory. read/write
// and mappings share its page cache; ftruncate and F_ADD_SEALS change it for every
// descriptor and mapping at once.
#pragma once

#include <string>

#include "emu/fd.hpp"

namespace mmemu {

class MemFdFile final : public OpenFile {
 public:
  // Takes over one reference to `file` (put in the destructor). mode: st_mode's permission
  // bits (0777, or 0666 under MFD_NOEXEC_SEAL).
  MemFdFile(int flags, File* file, FileStat st);
  ~MemFdFile() override;

  std::string_view kind() const override { return "file"; }
  std::string path() const override;  // "/memfd:NAME (deleted)"
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  SysResult pwrite(SyscallContext& ctx, std::span<const std::uint8_t> buf,
                   std::uint64_t off) override;
  Result<void> truncate(std::uint64_t length) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override;
  File* mmap_file() override { return file_; }
  File& file() { return *file_; }

 private:
  File* file_;
  FileStat st_;  // identity, mode and times; size and blocks come from the file
};

}  // namespace mmemu
