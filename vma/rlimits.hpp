// Resource limits (struct rlimit, RLIMIT_*): one set per process, owned by the process and
// copied by fork (Linux's signal->rlim). The mm reads the set of the process using it
// (Mm::set_rlimits) for RLIMIT_AS, DATA, STACK and MEMLOCK, as Linux reads current's; an mm
// no process uses (unit tests, scripts) reads kDefaultRlimits. Resource numbers are the
// same on x86-64 and arm64.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace mmemu {

// struct rlimit as the guest ABI lays it out (two 64-bit words on both architectures).
struct Rlimit {
  std::uint64_t cur;
  std::uint64_t max;
};
inline constexpr std::uint64_t RLIM_INFINITY_ = ~0ULL;

// The RLIMIT_* resources, valued as Linux numbers them.
enum class Rlim : std::uint8_t {
  Cpu,         // RLIMIT_CPU
  Fsize,       // RLIMIT_FSIZE
  Data,        // RLIMIT_DATA
  Stack,       // RLIMIT_STACK
  Core,        // RLIMIT_CORE
  Rss,         // RLIMIT_RSS
  Nproc,       // RLIMIT_NPROC
  Nofile,      // RLIMIT_NOFILE
  Memlock,     // RLIMIT_MEMLOCK
  As,          // RLIMIT_AS
  Locks,       // RLIMIT_LOCKS
  Sigpending,  // RLIMIT_SIGPENDING
  Msgqueue,    // RLIMIT_MSGQUEUE
  Nice,        // RLIMIT_NICE
  Rtprio,      // RLIMIT_RTPRIO
  Rttime,      // RLIMIT_RTTIME
};
inline constexpr std::size_t kRlimNlimits = 16;  // RLIM_NLIMITS
// /proc/sys/fs/nr_open: no RLIMIT_NOFILE (nor descriptor table) goes past it.
inline constexpr std::uint64_t kNrOpen = 1048576;

class Rlimits {
 public:
  // The limits the initial process starts with: unlimited but for a typical host's CORE,
  // NPROC, NOFILE, SIGPENDING, MSGQUEUE, NICE and RTPRIO (0: no raising either without
  // CAP_SYS_NICE), and an 8 MiB STACK and MEMLOCK.
  constexpr Rlimits() {
    lim_.fill(Rlimit{RLIM_INFINITY_, RLIM_INFINITY_});
    (*this)[Rlim::Stack] = {8ULL << 20, RLIM_INFINITY_};
    (*this)[Rlim::Core] = {0, RLIM_INFINITY_};
    (*this)[Rlim::Nproc] = {63431, 63431};
    (*this)[Rlim::Nofile] = {1024, 1024 * 1024};
    (*this)[Rlim::Memlock] = {8ULL << 20, 8ULL << 20};
    (*this)[Rlim::Sigpending] = {63431, 63431};
    (*this)[Rlim::Msgqueue] = {819200, 819200};
    (*this)[Rlim::Nice] = {0, 0};
    (*this)[Rlim::Rtprio] = {0, 0};
  }

  constexpr Rlimit& operator[](Rlim r) { return lim_[static_cast<std::size_t>(r)]; }
  constexpr const Rlimit& operator[](Rlim r) const { return lim_[static_cast<std::size_t>(r)]; }

  // The resource a guest's number names; nullopt (EINVAL) outside [0, RLIM_NLIMITS).
  static constexpr std::optional<Rlim> from_number(std::int64_t res) {
    if (res < 0 || res >= static_cast<std::int64_t>(kRlimNlimits)) return std::nullopt;
    return static_cast<Rlim>(res);
  }

 private:
  std::array<Rlimit, kRlimNlimits> lim_{};
};

inline constexpr Rlimits kDefaultRlimits{};

}  // namespace mmemu
