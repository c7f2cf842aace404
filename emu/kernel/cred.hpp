// Credentials and capabilities as Linux (security/commoncap.c, kernel/sys.c) models them in
// the initial user namespace: ids, the five capability sets, and the rules that move them.
// Root (euid 0) holds its permitted set in its effective one; changing away from uid 0 drops
// capabilities (cap_emulate_setxuid), execve recomputes them (cap_bprm_creds_from_file, for
// files without file capabilities and without set-id bits). The mm-level checks (mlock past
// RLIMIT_MEMLOCK, mmap below mmap_min_addr) read a copy of the effective set kept in the mm
// (sync_mm_caps), so vma/ needs no process.
#pragma once

#include <cstdint>
#include <optional>

#include "emu/kernel/process.hpp"

namespace mmemu {

// Capability numbers (linux/capability.h) mmemu checks or names.
enum Cap : int {
  CAP_CHOWN = 0,
  CAP_DAC_OVERRIDE = 1,
  CAP_DAC_READ_SEARCH = 2,
  CAP_FOWNER = 3,
  CAP_FSETID = 4,
  CAP_SETGID = 6,
  CAP_SETUID = 7,
  CAP_SETPCAP = 8,
  CAP_IPC_LOCK = 14,
  CAP_SYS_RAWIO = 17,
  CAP_SYS_NICE = 23,
  CAP_SYS_RESOURCE = 24,
  CAP_MKNOD = 27,
  CAP_MAC_OVERRIDE = 32,
  CAP_LAST_CAP = 40,  // CAP_CHECKPOINT_RESTORE in Linux 6.18
};
constexpr std::uint64_t cap_bit(int cap) {
  return 1ULL << cap;
}
inline constexpr std::uint64_t kCapValidMask = (1ULL << (CAP_LAST_CAP + 1)) - 1;
constexpr bool cap_valid(std::int64_t cap) {
  return cap >= 0 && cap <= CAP_LAST_CAP;
}
inline constexpr std::uint32_t kInvalidId = ~0U;  // (uid_t)-1: "unchanged", never an id

// The initial process's credentials: the given ids (else mmemu's own), mmemu's supplementary
// groups, the host's bounding set (so a guest run as root holds what a native root process
// on this host holds), and the sets a process running as that user has after execve.
Credentials initial_cred(std::optional<std::uint32_t> uid, std::optional<std::uint32_t> gid);

// capable(): the capability is in the effective set.
inline bool capable(const Credentials& c, int cap) {
  return (c.cap_effective & cap_bit(cap)) != 0;
}

// What set*uid does to the capability sets after the ids changed from `old` to `nw`
// (cap_task_fix_setuid for LSM_SETID_ID/RE/RES).
void cap_emulate_setxuid(Credentials& nw, const Credentials& old);
// The same for setfsuid (LSM_SETID_FS): the filesystem capabilities follow fsuid 0.
void cap_fix_setfsuid(Credentials& nw, const Credentials& old);
// execve of a file without file capabilities or set-id bits: saved and filesystem ids take
// the effective ones, permitted/effective are recomputed, SECBIT_KEEP_CAPS is cleared.
void cap_bprm_creds(Credentials& c);

// The mm's copy of the capabilities it checks (vma/mm.hpp MmCap) from p's effective set.
void sync_mm_caps(Process& p);

}  // namespace mmemu
