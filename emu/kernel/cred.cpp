// Credentials and capability transitions (see cred.hpp).
#include "emu/kernel/cred.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>

namespace mmemu {

namespace {

// The host's bounding set: what a process of this host can ever hold.
std::uint64_t host_bset() {
  std::uint64_t bset = 0;
  for (int c = 0; c <= CAP_LAST_CAP; ++c)
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bset |= cap_bit(c);
  return bset;
}

// CAP_FS_MASK: what fsuid 0 historically meant.
constexpr std::uint64_t kCapFsMask = cap_bit(CAP_CHOWN) | cap_bit(CAP_MKNOD) |
                                     cap_bit(CAP_DAC_OVERRIDE) | cap_bit(CAP_DAC_READ_SEARCH) |
                                     cap_bit(CAP_FOWNER) | cap_bit(CAP_FSETID) |
                                     cap_bit(CAP_MAC_OVERRIDE);

}  // namespace

Credentials initial_cred(std::optional<std::uint32_t> uid, std::optional<std::uint32_t> gid) {
  Credentials c;
  c.uid = c.suid = uid.value_or(::getuid());
  c.euid = c.fsuid = uid.value_or(::geteuid());
  c.gid = c.sgid = gid.value_or(::getgid());
  c.egid = c.fsgid = gid.value_or(::getegid());
  const int n = ::getgroups(0, nullptr);
  if (n > 0) {
    std::vector<gid_t> g(static_cast<std::size_t>(n));
    if (::getgroups(n, g.data()) == n) c.groups.assign(g.begin(), g.end());
  }
  std::ranges::sort(c.groups);
  c.cap_bset = host_bset();
  // As if started by a root init: full sets, then what the execve of the shell that ran us
  // as this user leaves.
  c.cap_permitted = c.cap_effective = c.cap_bset;
  if (c.uid != 0 && c.euid != 0) c.cap_permitted = c.cap_effective = 0;
  cap_bprm_creds(c);
  return c;
}

void cap_emulate_setxuid(Credentials& nw, const Credentials& old) {
  const bool had_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
  const bool has_root = nw.uid == 0 || nw.euid == 0 || nw.suid == 0;
  if (had_root && !has_root) {
    if (!nw.keep_caps) nw.cap_permitted = nw.cap_effective = 0;
    nw.cap_ambient = 0;  // setresuid to non-root then execve must drop everything
  }
  if (old.euid == 0 && nw.euid != 0) nw.cap_effective = 0;
  if (old.euid != 0 && nw.euid == 0) nw.cap_effective = nw.cap_permitted;
}

void cap_fix_setfsuid(Credentials& nw, const Credentials& old) {
  if (old.fsuid == 0 && nw.fsuid != 0) nw.cap_effective &= ~kCapFsMask;
  if (old.fsuid != 0 && nw.fsuid == 0) nw.cap_effective |= nw.cap_permitted & kCapFsMask;
}

void cap_bprm_creds(Credentials& c) {
  // No file capabilities: the permitted set starts empty, and root (real or effective)
  // gets the bounding set and its inheritable one; only an effective root runs with them
  // effective.
  std::uint64_t permitted = 0;
  if (c.euid == 0 || c.uid == 0) permitted = c.cap_bset | c.cap_inheritable;
  c.suid = c.fsuid = c.euid;
  c.sgid = c.fsgid = c.egid;
  c.cap_permitted = permitted | c.cap_ambient;
  c.cap_effective = c.euid == 0 ? c.cap_permitted : c.cap_ambient;
  c.keep_caps = false;
}

void sync_mm_caps(Process& p) {
  if (!p.has_mm()) return;
  std::uint32_t& caps = p.mm().caps;
  caps &= ~(CAP_IPC_LOCK_BIT | CAP_SYS_RAWIO_BIT | CAP_SYS_RESOURCE_BIT);
  if (capable(p.cred, CAP_IPC_LOCK)) caps |= CAP_IPC_LOCK_BIT;
  if (capable(p.cred, CAP_SYS_RAWIO)) caps |= CAP_SYS_RAWIO_BIT;
  if (capable(p.cred, CAP_SYS_RESOURCE)) caps |= CAP_SYS_RESOURCE_BIT;
}

}  // namespace mmemu
