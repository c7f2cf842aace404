// ABI differences and guest-memory plumbing shared by the syscall groups.
#include "emu/syscalls/abi.hpp"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace mmemu {

namespace {

// The open flags whose values differ between the two ABIs: {canonical, x86_64, arm64}.
struct FlagRow {
  int host;
  std::uint64_t x86;
  std::uint64_t arm;
};
constexpr std::array<FlagRow, 4> kDiffering{{
    {kO_DIRECT, 0x4000, 0x10000},
    {kO_LARGEFILE, 0x8000, 0x20000},
    {kO_DIRECTORY, 0x10000, 0x4000},
    {kO_NOFOLLOW, 0x20000, 0x8000},
}};
constexpr std::uint64_t kGuestMask = 0x4000 | 0x8000 | 0x10000 | 0x20000;  // same set on both
constexpr int kHostMask = kO_DIRECT | kO_LARGEFILE | kO_DIRECTORY | kO_NOFOLLOW;

template <class T>
void put(std::string& out, std::size_t off, T v) {
  std::memcpy(out.data() + off, &v, sizeof v);
}

}  // namespace

Result<OpenFileRef> fd_file(const SyscallContext& ctx, int fd, bool allow_opath) {
  OpenFileRef f = ctx.proc.fds ? ctx.proc.fds->get(fd) : nullptr;
  if (!f) return fail(EBADF);
  if (!allow_opath && (f->flags() & O_PATH)) return fail(EBADF);
  return f;
}

int oflags_from_guest(Arch arch, std::uint64_t guest) {
  int out = static_cast<int>(guest & ~kGuestMask & 0xffffffffULL);
  for (const FlagRow& r : kDiffering)
    if (guest & (arch == Arch::X86_64 ? r.x86 : r.arm)) out |= r.host;
  return out;
}

std::uint64_t oflags_to_guest(Arch arch, int flags) {
  std::uint64_t out = static_cast<std::uint32_t>(flags & ~kHostMask);
  for (const FlagRow& r : kDiffering)
    if (flags & r.host) out |= arch == Arch::X86_64 ? r.x86 : r.arm;
  return out;
}

bool access_ok(Arch arch, vaddr_t addr, std::uint64_t len) {
  const std::uint64_t limit = arch_params(arch).task_size_max;
  return len <= limit && addr <= limit - len;
}

std::uint64_t copy_out_partial(const SyscallContext& ctx, vaddr_t dst, const std::uint8_t* src,
                               std::uint64_t n) {
  std::uint64_t done = 0;
  while (done < n) {
    const vaddr_t a = dst + done;
    const std::uint64_t chunk = std::min(n - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
    if (!ctx.write(a, src + done, chunk)) break;
    done += chunk;
  }
  return done;
}

std::uint64_t copy_in_partial(const SyscallContext& ctx, std::uint8_t* dst, vaddr_t src,
                              std::uint64_t n) {
  std::uint64_t done = 0;
  while (done < n) {
    const vaddr_t a = src + done;
    const std::uint64_t chunk = std::min(n - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
    if (!ctx.read(a, dst + done, chunk)) break;
    done += chunk;
  }
  return done;
}

std::size_t stat_size(Arch arch) {
  return arch == Arch::X86_64 ? 144 : 128;
}

std::string encode_stat(Arch arch, const FileStat& st) {
  std::string b(stat_size(arch), '\0');
  put<std::uint64_t>(b, 0, st.dev);
  put<std::uint64_t>(b, 8, st.ino);
  if (arch == Arch::X86_64) {
    put<std::uint64_t>(b, 16, st.nlink);
    put<std::uint32_t>(b, 24, st.mode);
    put<std::uint32_t>(b, 28, st.uid);
    put<std::uint32_t>(b, 32, st.gid);
    put<std::uint64_t>(b, 40, st.rdev);
    put<std::int64_t>(b, 48, st.size);
    put<std::int64_t>(b, 56, st.blksize);
  } else {
    put<std::uint32_t>(b, 16, st.mode);
    put<std::uint32_t>(b, 20, st.nlink);
    put<std::uint32_t>(b, 24, st.uid);
    put<std::uint32_t>(b, 28, st.gid);
    put<std::uint64_t>(b, 32, st.rdev);
    put<std::int64_t>(b, 48, st.size);
    put<std::int32_t>(b, 56, static_cast<std::int32_t>(st.blksize));
  }
  put<std::int64_t>(b, 64, st.blocks);
  put<std::int64_t>(b, 72, st.atime_sec);
  put<std::int64_t>(b, 80, st.atime_nsec);
  put<std::int64_t>(b, 88, st.mtime_sec);
  put<std::int64_t>(b, 96, st.mtime_nsec);
  put<std::int64_t>(b, 104, st.ctime_sec);
  put<std::int64_t>(b, 112, st.ctime_nsec);
  return b;
}

Result<void> write_stat(const SyscallContext& ctx, vaddr_t dst, const FileStat& st) {
  const std::string b = encode_stat(ctx.arch(), st);
  return ctx.write(dst, b.data(), b.size());
}

std::string encode_statx(const FileStat& st, std::uint32_t mask) {
  std::string b(256, '\0');
  put<std::uint32_t>(b, 0, mask);
  put<std::uint32_t>(b, 4, static_cast<std::uint32_t>(st.blksize));
  put<std::uint32_t>(b, 16, st.nlink);
  put<std::uint32_t>(b, 20, st.uid);
  put<std::uint32_t>(b, 24, st.gid);
  put<std::uint16_t>(b, 28, static_cast<std::uint16_t>(st.mode));
  put<std::uint64_t>(b, 32, st.ino);
  put<std::int64_t>(b, 40, st.size);
  put<std::int64_t>(b, 48, st.blocks);
  const auto ts = [&](std::size_t off, std::int64_t sec, std::int64_t nsec) {
    put<std::int64_t>(b, off, sec);
    put<std::uint32_t>(b, off + 8, static_cast<std::uint32_t>(nsec));
  };
  ts(64, st.atime_sec, st.atime_nsec);
  ts(96, st.ctime_sec, st.ctime_nsec);
  ts(112, st.mtime_sec, st.mtime_nsec);
  put<std::uint32_t>(b, 128, major(st.rdev));
  put<std::uint32_t>(b, 132, minor(st.rdev));
  put<std::uint32_t>(b, 136, major(st.dev));
  put<std::uint32_t>(b, 140, minor(st.dev));
  return b;
}

Result<GuestTimespec> read_timespec(const SyscallContext& ctx, vaddr_t src) {
  return ctx.read_obj<GuestTimespec>(src);
}

Result<void> write_timespec(const SyscallContext& ctx, vaddr_t dst, std::int64_t sec,
                            std::int64_t nsec) {
  return ctx.write_obj(dst, GuestTimespec{sec, nsec});
}

std::uint64_t host_monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

FileStat file_stat_from_host(const struct ::stat& st) {
  FileStat s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.rdev = st.st_rdev;
  s.mode = st.st_mode;
  s.nlink = static_cast<std::uint32_t>(st.st_nlink);
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.size = st.st_size;
  s.blksize = st.st_blksize;
  s.blocks = st.st_blocks;
  s.atime_sec = st.st_atim.tv_sec;
  s.atime_nsec = st.st_atim.tv_nsec;
  s.mtime_sec = st.st_mtim.tv_sec;
  s.mtime_nsec = st.st_mtim.tv_nsec;
  s.ctime_sec = st.st_ctim.tv_sec;
  s.ctime_nsec = st.st_ctim.tv_nsec;
  return s;
}

Result<Segments> import_iovec(const SyscallContext& ctx, vaddr_t iov, std::uint64_t cnt) {
  Segments s;
  if (cnt > kUioMaxIov) return fail(EINVAL);
  if (cnt == 0) return s;
  std::vector<std::uint64_t> raw(cnt * 2);
  if (!ctx.read(iov, raw.data(), raw.size() * 8)) return fail(EFAULT);
  for (std::uint64_t i = 0; i < cnt; ++i)
    if (static_cast<std::int64_t>(raw[2 * i + 1]) < 0) return fail(EINVAL);
  for (std::uint64_t i = 0; i < cnt; ++i) {
    const vaddr_t base = raw[2 * i];
    std::uint64_t len = raw[2 * i + 1];
    if (!access_ok(ctx.arch(), base, len)) return fail(EFAULT);
    len = std::min(len, kMaxRwCount - s.total);
    s.seg.emplace_back(base, len);
    s.total += len;
  }
  return s;
}

std::uint64_t scatter(const SyscallContext& ctx, const Segments& s, std::uint64_t at,
                      const std::uint8_t* src, std::uint64_t n) {
  return walk_segments(s, at, n, [&](vaddr_t dst, std::uint64_t off, std::uint64_t k) {
    return copy_out_partial(ctx, dst, src + off, k);
  });
}

}  // namespace mmemu
