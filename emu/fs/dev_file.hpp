// The character devices a guest may open: /dev/null, /dev/zero, /dev/full, /dev/random
// and /dev/urandom (the last two give bytes from the run's seed, like getrandom).
// mmap of /dev/zero is an anonymous mapping (emu/syscalls/mem.cpp); the others cannot be mapped.
#pragma once

#include <cstdint>

#include "emu/fs/fd.hpp"

namespace mmemu {

enum class CharDevKind : std::uint8_t { Null, Zero, Full, Random, Urandom };

class CharDev final : public OpenFile {
 public:
  CharDev(CharDevKind kind, int flags) : OpenFile(flags), kind_(kind) {}
  CharDevKind dev_kind() const { return kind_; }

  std::string_view kind() const override { return "dev"; }
  std::string path() const override;
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override;

 private:
  CharDevKind kind_;
};

// Fills buf with the run's deterministic random bytes (getrandom, /dev/urandom, AT_RANDOM
// excluded): a counter-mode generator over options().random_seed whose position is the
// kernel-wide count of bytes handed out so far (kept in the stats as "getrandom_bytes").
void guest_random_bytes(Kernel& k, std::span<std::uint8_t> buf);

}  // namespace mmemu
