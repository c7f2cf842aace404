#include "emu/fs/shmem_file.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

ShmemInode::ShmemInode(File* f, FileStat s, std::string p) : file(f), st(s), path(std::move(p)) {
  if (!st.dev) st.dev = file->dev();  // memfd: the internal shm mount's 0:1
  st.ino = file->ino();
}

ShmemInode::~ShmemInode() {
  file->put();
}

FileStat ShmemInode::stat() const {
  FileStat s = st;
  s.size = static_cast<std::int64_t>(file->size());
  s.blocks = static_cast<std::int64_t>(file->page_cache().size() * (PAGE_SIZE / 512));
  return s;
}

void ShmemInode::unlinked() {
  st.nlink = 0;
  path += " (deleted)";
  file->set_name(path);
}

void ShmemInode::renamed(std::string p) {
  path = std::move(p);
  file->set_name(path);
}

FileStat new_shmem_stat(std::uint32_t mode, std::uint32_t uid, std::uint32_t gid,
                        std::uint32_t nlink) {
  FileStat st;
  st.mode = mode;
  st.nlink = nlink;
  st.uid = uid;
  st.gid = gid;
  st.blksize = PAGE_SIZE;
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  st.atime_sec = st.mtime_sec = st.ctime_sec = now.tv_sec;
  st.atime_nsec = st.mtime_nsec = st.ctime_nsec = now.tv_nsec;
  return st;
}

bool ShmemFile::memfd() const {
  return inode_->path.starts_with("/memfd:");
}

SysResult ShmemFile::read(SyscallContext&, std::span<std::uint8_t> buf) {
  const std::size_t n = shmem_file_read(*inode_->file, pos_, buf);
  pos_ += n;
  return SysResult::ok(n);
}

SysResult ShmemFile::pread(SyscallContext&, std::span<std::uint8_t> buf, std::uint64_t off) {
  return SysResult::ok(shmem_file_read(*inode_->file, off, buf));
}

SysResult ShmemFile::write(SyscallContext&, std::span<const std::uint8_t> buf) {
  const std::uint64_t at = (flags_ & O_APPEND) ? inode_->file->size() : pos_;
  auto n = shmem_file_write(*inode_->file, at, buf);
  if (!n) return SysResult::err(n.error().code);
  pos_ = at + *n;
  return SysResult::ok(*n);
}

SysResult ShmemFile::pwrite(SyscallContext&, std::span<const std::uint8_t> buf, std::uint64_t off) {
  // With O_APPEND, Linux's pwrite appends too (generic_write_checks).
  const std::uint64_t at = (flags_ & O_APPEND) ? inode_->file->size() : off;
  return SysResult::from(shmem_file_write(*inode_->file, at, buf));
}

Result<void> ShmemFile::truncate(std::uint64_t length) {
  return shmem_setattr_size(*inode_->file, length);
}

Result<std::uint64_t> ShmemFile::lseek(std::int64_t off, int whence) {
  // shmem_file_llseek: SEEK_DATA/SEEK_HOLE see the pages that are really there.
  File& f = *inode_->file;
  return file_llseek(off, whence, f.size(),
                     [&f](std::uint64_t o, bool data) { return shmem_seek_data_hole(f, o, data); });
}

}  // namespace mmemu
