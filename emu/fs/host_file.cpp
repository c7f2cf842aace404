// Read-only host files, directories and O_PATH descriptors.
#include "emu/fs/host_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "vma/file.hpp"

namespace mmemu {

// ---- HostFile ----

HostFile::HostFile(int flags, File* file, FileStat st, std::string path)
    : OpenFile(flags), file_(file), st_(st), path_(std::move(path)) {
  st_.size = static_cast<std::int64_t>(file_->size());
}

HostFile::~HostFile() {
  file_->put();
}

std::uint64_t HostFile::copy_at(std::span<std::uint8_t> buf, std::uint64_t off) const {
  const auto& data = file_->data();
  if (buf.empty() || off >= data.size()) return 0;
  const std::uint64_t n = std::min<std::uint64_t>(buf.size(), data.size() - off);
  std::memcpy(buf.data(), data.data() + off, n);
  return n;
}

SysResult HostFile::read(SyscallContext&, std::span<std::uint8_t> buf) {
  if (!readable()) return SysResult::err(EBADF);
  const std::uint64_t n = copy_at(buf, pos_);
  pos_ += n;
  return SysResult::ok(n);
}

SysResult HostFile::pread(SyscallContext&, std::span<std::uint8_t> buf, std::uint64_t off) {
  if (!readable()) return SysResult::err(EBADF);
  return SysResult::ok(copy_at(buf, off));
}

Result<std::uint64_t> HostFile::lseek(std::int64_t off, int whence) {
  // A host file has no holes as far as the guest can tell: data up to the end.
  return file_llseek(off, whence, file_->size(), [this](std::uint64_t o, bool data) {
    return Result<std::uint64_t>(data ? o : file_->size());
  });
}

// ---- DirFile ----

DirFile::DirFile(int flags, std::vector<DirEntry> entries, FileStat st, std::string path,
                 Lister relist)
    : OpenFile(flags),
      entries_(std::move(entries)),
      st_(st),
      path_(std::move(path)),
      relist_(std::move(relist)) {}

SysResult DirFile::read(SyscallContext&, std::span<std::uint8_t>) {
  return SysResult::err(EISDIR);
}

SysResult DirFile::pread(SyscallContext&, std::span<std::uint8_t>, std::uint64_t) {
  return SysResult::err(EISDIR);
}

Result<std::uint64_t> DirFile::lseek(std::int64_t off, int whence) {
  return seq_lseek(off, whence);
}

Result<std::string> DirFile::getdents(std::size_t max, bool dirent64) {
  if (pos_ == 0 && relist_) entries_ = relist_();
  std::string out;
  while (pos_ < entries_.size()) {
    const DirEntry& e = entries_[pos_];
    // linux_dirent64: ino, off, reclen, type, name, NUL; linux_dirent: ino, off, reclen,
    // name, NUL, pad, type in the last byte. Both 8-byte aligned.
    const std::size_t head = dirent64 ? 19 : 18;
    const std::size_t reclen = (head + e.name.size() + (dirent64 ? 1 : 2) + 7) & ~std::size_t{7};
    if (out.size() + reclen > max) {
      if (out.empty()) return fail(EINVAL);
      break;
    }
    std::string rec(reclen, '\0');
    const std::uint64_t next = pos_ + 1;
    std::memcpy(rec.data(), &e.ino, 8);
    std::memcpy(rec.data() + 8, &next, 8);
    const auto rl = static_cast<std::uint16_t>(reclen);
    std::memcpy(rec.data() + 16, &rl, 2);
    if (dirent64) {
      rec[18] = static_cast<char>(e.type);
      std::memcpy(rec.data() + 19, e.name.data(), e.name.size());
    } else {
      std::memcpy(rec.data() + 18, e.name.data(), e.name.size());
      rec[reclen - 1] = static_cast<char>(e.type);
    }
    out += rec;
    ++pos_;
  }
  return out;
}

Result<std::vector<DirEntry>> DirFile::list_host(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return fail(errno);
  std::vector<DirEntry> v;
  while (const dirent* e = ::readdir(d))
    v.push_back(DirEntry{e->d_ino, e->d_type, e->d_name});
  ::closedir(d);
  return v;
}

// ---- PathFile ----

SysResult PathFile::read(SyscallContext&, std::span<std::uint8_t>) {
  return SysResult::err(EBADF);
}

SysResult PathFile::write(SyscallContext&, std::span<const std::uint8_t>) {
  return SysResult::err(EBADF);
}

SysResult PathFile::pread(SyscallContext&, std::span<std::uint8_t>, std::uint64_t) {
  return SysResult::err(EBADF);
}

bool PathFile::is_dir() const {
  return S_ISDIR(st_.mode);
}

}  // namespace mmemu
