// /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom.
#include "emu/fs/dev_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "emu/syscalls/syscall.hpp"

namespace mmemu {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct DevInfo {
  const char* path;
  unsigned minor;
  std::uint64_t ino;
};

DevInfo info(CharDevKind k) {
  switch (k) {
    case CharDevKind::Null:
      return {"/dev/null", 3, 4};
    case CharDevKind::Zero:
      return {"/dev/zero", 5, 8};
    case CharDevKind::Full:
      return {"/dev/full", 7, 9};
    case CharDevKind::Random:
      return {"/dev/random", 8, 10};
    case CharDevKind::Urandom:
      return {"/dev/urandom", 9, 11};
  }
  return {"/dev/null", 3, 4};
}

}  // namespace

void guest_random_bytes(Kernel& k, std::span<std::uint8_t> buf) {
  const std::uint64_t seed = splitmix64(k.options().random_seed ^ 0x67657472616e64ULL);
  std::uint64_t pos = k.stats().get("getrandom_bytes");
  for (std::size_t i = 0; i < buf.size(); ++i, ++pos) {
    const std::uint64_t word = splitmix64(seed + (pos >> 3));
    buf[i] = static_cast<std::uint8_t>(word >> ((pos & 7) * 8));
  }
  k.stats().add("getrandom_bytes", buf.size());
}

std::string CharDev::path() const {
  return info(kind_).path;
}

SysResult CharDev::read(SyscallContext& ctx, std::span<std::uint8_t> buf) {
  if (!readable()) return SysResult::err(EBADF);
  switch (kind_) {
    case CharDevKind::Null:
      return SysResult::ok(0);
    case CharDevKind::Zero:
    case CharDevKind::Full:
      std::fill(buf.begin(), buf.end(), 0);
      return SysResult::ok(buf.size());
    case CharDevKind::Random:
    case CharDevKind::Urandom:
      guest_random_bytes(ctx.kernel, buf);
      return SysResult::ok(buf.size());
  }
  return SysResult::ok(0);
}

SysResult CharDev::write(SyscallContext&, std::span<const std::uint8_t> buf) {
  if (!writable()) return SysResult::err(EBADF);
  if (kind_ == CharDevKind::Full) return SysResult::err(ENOSPC);
  return SysResult::ok(buf.size());
}

SysResult CharDev::pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t) {
  return read(ctx, buf);
}

Result<std::uint64_t> CharDev::lseek(std::int64_t, int) {
  // null_lseek (null, zero, full) puts the position at 0; noop_llseek (random) keeps it.
  if (kind_ == CharDevKind::Random || kind_ == CharDevKind::Urandom) return pos_;
  pos_ = 0;
  return 0;
}

Result<FileStat> CharDev::stat() const {
  const DevInfo d = info(kind_);
  FileStat s;
  s.dev = makedev(0, 6);  // devtmpfs, as this machine numbers it
  s.ino = d.ino;
  s.rdev = makedev(1, d.minor);
  s.mode = S_IFCHR | 0666;
  s.nlink = 1;
  s.blksize = 4096;
  return s;
}

}  // namespace mmemu
