// What differs between the x86_64 and arm64 system-call ABIs in the calls of the syscall
// helper (open flags, struct stat), plus the small pieces of guest-memory plumbing those
// calls share: user-range checks, timespecs, chunked copies that report how far they got.
//
// Open flags are kept in OpenFile in one canonical encoding, the x86_64 kernel's (the
// asm-generic values); the four bits whose values differ on arm64 (O_DIRECT, O_LARGEFILE,
// O_DIRECTORY, O_NOFOLLOW) are translated at the system-call boundary. They are named
// kO_* below because the host's <fcntl.h> cannot be used for them: glibc defines
// O_LARGEFILE as 0 on 64-bit hosts, and an arm64 host has the other values.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "emu/fs/fd.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

inline constexpr int kO_DIRECT = 0x4000, kO_LARGEFILE = 0x8000, kO_DIRECTORY = 0x10000,
                     kO_NOFOLLOW = 0x20000, kO_TMPFILE = 0x400000 | kO_DIRECTORY;

// fdget: the open file at fd. EBADF when it is not open, and for an O_PATH descriptor
// unless allow_opath (fstat, dup, fcntl's descriptor commands, *at bases accept those).
Result<OpenFileRef> fd_file(const SyscallContext& ctx, int fd, bool allow_opath = false);

// open(2) flags: guest ABI <-> canonical (host) encoding.
int oflags_from_guest(Arch arch, std::uint64_t guest_flags);
std::uint64_t oflags_to_guest(Arch arch, int flags);

// access_ok: [addr, addr + len) lies below the architecture's TASK_SIZE_MAX (x86_64:
// 2^47 - 4 KiB, arm64: 2^48) without wrapping.
bool access_ok(Arch arch, vaddr_t addr, std::uint64_t len);

// MAX_RW_COUNT: what one read/write moves at most (INT_MAX rounded down to a page).
inline constexpr std::uint64_t kMaxRwCount = 0x7ffff000;

// Copies that stop at the first page the guest cannot access: the number of bytes moved
// (0 when the very first byte faults). Linux's copy_to_user/copy_from_user tail semantics.
std::uint64_t copy_out_partial(const SyscallContext& ctx, vaddr_t dst, const std::uint8_t* src,
                               std::uint64_t n);
std::uint64_t copy_in_partial(const SyscallContext& ctx, std::uint8_t* dst, vaddr_t src,
                              std::uint64_t n);

// A guest buffer list (struct iovec array): (address, length) pairs adding up to total.
inline constexpr std::uint64_t kUioMaxIov = 1024;  // UIO_MAXIOV
struct Segments {
  std::vector<std::pair<vaddr_t, std::uint64_t>> seg;
  std::uint64_t total = 0;
};
// import_iovec: EFAULT for an unreadable array or a segment outside the user range, EINVAL
// for a negative length or more than UIO_MAXIOV segments; MAX_RW_COUNT caps the sum.
Result<Segments> import_iovec(const SyscallContext& ctx, vaddr_t iov, std::uint64_t cnt);
// Walks n bytes of the segments from logical offset `at` on: move(address, offset within
// the n bytes, length) copies one piece and returns the bytes it moved; the walk stops at
// the first short piece. Returns the bytes moved.
template <class Move>
std::uint64_t walk_segments(const Segments& s, std::uint64_t at, std::uint64_t n, Move move) {
  std::uint64_t done = 0;
  for (const auto& [base, len] : s.seg) {
    if (done == n) break;
    if (at >= len) {
      at -= len;
      continue;
    }
    const std::uint64_t k = len - at < n - done ? len - at : n - done;
    const std::uint64_t c = move(base + at, done, k);
    done += c;
    if (c < k) break;
    at = 0;
  }
  return done;
}
// Copies n bytes to the segments from logical offset `at` on; stops at the first byte the
// guest cannot take. Returns the bytes copied.
std::uint64_t scatter(const SyscallContext& ctx, const Segments& s, std::uint64_t at,
                      const std::uint8_t* src, std::uint64_t n);

// struct stat as the guest ABI lays it out (x86_64: 144 bytes, arm64 generic: 128 bytes).
std::size_t stat_size(Arch arch);
std::string encode_stat(Arch arch, const FileStat& st);
Result<void> write_stat(const SyscallContext& ctx, vaddr_t dst, const FileStat& st);
// struct statx (256 bytes, the same on both ABIs), every basic field filled.
std::string encode_statx(const FileStat& st, std::uint32_t mask);

// struct timespec / timeval (two 64-bit words on both ABIs).
struct GuestTimespec {
  std::int64_t sec;
  std::int64_t nsec;
};
Result<GuestTimespec> read_timespec(const SyscallContext& ctx, vaddr_t src);
Result<void> write_timespec(const SyscallContext& ctx, vaddr_t dst, std::int64_t sec,
                            std::int64_t nsec);
// The host's clock as nanoseconds (CLOCK_MONOTONIC deadlines of SysResult::block_until).
std::uint64_t host_monotonic_ns();

// A FileStat from a host struct stat.
FileStat file_stat_from_host(const struct ::stat& st);

}  // namespace mmemu
