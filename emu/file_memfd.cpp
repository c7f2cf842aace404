#include "emu/file_memfd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

MemFdFile::MemFdFile(int flags, File* file, FileStat st) : OpenFile(flags), file_(file), st_(st) {
  st_.dev = file_->dev();
  st_.ino = file_->ino();
}

MemFdFile::~MemFdFile() {
  file_->put();
}

std::string MemFdFile::path() const {
  return file_->name();
}

SysResult MemFdFile::read(SyscallContext&, std::span<std::uint8_t> buf) {
  const std::size_t n = shmem_file_read(*file_, pos_, buf);
  pos_ += n;
  return SysResult::ok(n);
}

SysResult MemFdFile::pread(SyscallContext&, std::span<std::uint8_t> buf, std::uint64_t off) {
  return SysResult::ok(shmem_file_read(*file_, off, buf));
}

SysResult MemFdFile::write(SyscallContext&, std::span<const std::uint8_t> buf) {
  const std::uint64_t at = (flags_ & O_APPEND) ? file_->size() : pos_;
  auto n = shmem_file_write(*file_, at, buf);
  if (!n) return SysResult::err(n.error().code);
  pos_ = at + *n;
  return SysResult::ok(*n);
}

SysResult MemFdFile::pwrite(SyscallContext&, std::span<const std::uint8_t> buf, std::uint64_t off) {
  // With O_APPEND, Linux's pwrite appends too (generic_write_checks).
  const std::uint64_t at = (flags_ & O_APPEND) ? file_->size() : off;
  return SysResult::from(shmem_file_write(*file_, at, buf));
}

Result<void> MemFdFile::truncate(std::uint64_t length) {
  return shmem_setattr_size(*file_, length);
}

Result<std::uint64_t> MemFdFile::lseek(std::int64_t off, int whence) {
  // shmem_file_llseek: generic rules, SEEK_DATA/SEEK_HOLE over the cached pages.
  const auto size = static_cast<std::int64_t>(file_->size());
  std::int64_t target = 0;
  switch (whence) {
    case SEEK_SET:
      target = off;
      break;
    case SEEK_CUR:
      if (__builtin_add_overflow(static_cast<std::int64_t>(pos_), off, &target))
        return fail(EINVAL);
      break;
    case SEEK_END:
      if (__builtin_add_overflow(size, off, &target)) return fail(EINVAL);
      break;
    case SEEK_DATA:
    case SEEK_HOLE: {
      if (off < 0) return fail(ENXIO);
      auto r = shmem_seek_data_hole(*file_, static_cast<std::uint64_t>(off), whence == SEEK_DATA);
      if (!r) return r;
      target = static_cast<std::int64_t>(*r);
      break;
    }
    default:
      return fail(EINVAL);
  }
  if (target < 0) return fail(EINVAL);
  pos_ = static_cast<std::uint64_t>(target);
  return pos_;
}

Result<FileStat> MemFdFile::stat() const {
  FileStat s = st_;
  s.size = static_cast<std::int64_t>(file_->size());
  s.blocks = static_cast<std::int64_t>(file_->page_cache().size() * (PAGE_SIZE / 512));
  return s;
}

}  // namespace mmemu
