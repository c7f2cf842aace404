// Open files over shmem (vma/shmem.hpp): a memfd, or a regular file the guest created by
// name or with O_TMPFILE (kept in memory by the kernel, see Kernel::created_file). read,
// write and every MAP_SHARED mapping share the page cache; ftruncate and F_ADD_SEALS change
// it for every descriptor and mapping at once.
#pragma once

#include <memory>
#include <string>

#include "emu/fs/fd.hpp"

namespace mmemu {

// The inode: the File with its page cache, and what stat shows (size and blocks come from
// the File). Shared by every open file description of it and by the kernel's table of
// created names; the last owner puts the File.
struct ShmemInode {
  ShmemInode(File* file, FileStat st, std::string path);  // takes over a File reference
  ~ShmemInode();
  ShmemInode(const ShmemInode&) = delete;
  ShmemInode& operator=(const ShmemInode&) = delete;

  FileStat stat() const;
  // unlink of the last name: nlink 0, and /proc/PID/maps and fd links say "(deleted)".
  void unlinked();
  void renamed(std::string path);

  File* file;
  FileStat st;
  std::string path;  // "/memfd:NAME (deleted)", "/tmp/x", "/tmp/x (deleted)"
};
using ShmemInodeRef = std::shared_ptr<ShmemInode>;

class ShmemFile final : public OpenFile {
 public:
  ShmemFile(int flags, ShmemInodeRef inode) : OpenFile(flags), inode_(std::move(inode)) {}

  std::string_view kind() const override { return "file"; }
  std::string path() const override { return inode_->path; }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  SysResult pwrite(SyscallContext& ctx, std::span<const std::uint8_t> buf,
                   std::uint64_t off) override;
  Result<void> truncate(std::uint64_t length) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override { return inode_->stat(); }
  File* mmap_file() override { return inode_->file; }

  File& file() { return *inode_->file; }
  const ShmemInodeRef& inode() const { return inode_; }
  bool memfd() const;  // created by memfd_create (sealable), not by name

 private:
  ShmemInodeRef inode_;
};

// A FileStat for a new shmem inode of `mode` (type and permission bits) owned by uid/gid,
// with the times set to now.
FileStat new_shmem_stat(std::uint32_t mode, std::uint32_t uid, std::uint32_t gid,
                        std::uint32_t nlink);

}  // namespace mmemu
