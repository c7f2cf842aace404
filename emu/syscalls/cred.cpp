// System calls on credentials (see cred.hpp): kernel/sys.c's set*id family, groups.c's
// getgroups/setgroups, capability.c's capget/capset and commoncap.c's prctl options, in the
// initial user namespace (every 32-bit id but (uid_t)-1 is valid).
#include "emu/syscalls/cred.hpp"

#include <algorithm>
#include <cerrno>
#include <vector>

#include "emu/kernel/cred.hpp"
#include "emu/kernel/kernel.hpp"

namespace mmemu {

namespace {

SysResult err(int e) {
  return SysResult::err(e);
}

std::uint32_t id_arg(SyscallContext& ctx, unsigned i) {
  return static_cast<std::uint32_t>(ctx.arg(i));
}

// commit_creds: the new credentials take effect, and the mm checks what they allow.
SysResult commit(SyscallContext& ctx, const Credentials& nw) {
  ctx.proc.cred = nw;
  sync_mm_caps(ctx.proc);
  return SysResult::ok(0);
}

// ---- reading ids ----

SysResult sys_getuid(SyscallContext& ctx) {
  return SysResult::ok(ctx.proc.cred.uid);
}
SysResult sys_geteuid(SyscallContext& ctx) {
  return SysResult::ok(ctx.proc.cred.euid);
}
SysResult sys_getgid(SyscallContext& ctx) {
  return SysResult::ok(ctx.proc.cred.gid);
}
SysResult sys_getegid(SyscallContext& ctx) {
  return SysResult::ok(ctx.proc.cred.egid);
}

// put_user one after the other: an earlier id stays written when a later one faults.
SysResult put_three(SyscallContext& ctx, std::uint32_t r, std::uint32_t e, std::uint32_t s) {
  const std::uint32_t v[3] = {r, e, s};
  for (unsigned i = 0; i < 3; ++i)
    if (!ctx.write_obj(ctx.arg(i), v[i])) return err(EFAULT);
  return SysResult::ok(0);
}
SysResult sys_getresuid(SyscallContext& ctx) {
  const Credentials& c = ctx.proc.cred;
  return put_three(ctx, c.uid, c.euid, c.suid);
}
SysResult sys_getresgid(SyscallContext& ctx) {
  const Credentials& c = ctx.proc.cred;
  return put_three(ctx, c.gid, c.egid, c.sgid);
}

// ---- user ids: CAP_SETUID, then cap_emulate_setxuid ----

SysResult sys_setuid(SyscallContext& ctx) {
  const std::uint32_t uid = id_arg(ctx, 0);
  if (uid == kInvalidId) return err(EINVAL);
  const Credentials& old = ctx.proc.cred;
  Credentials nw = old;
  if (capable(old, CAP_SETUID)) {
    nw.uid = nw.suid = uid;
  } else if (uid != old.uid && uid != old.suid) {
    return err(EPERM);
  }
  nw.euid = nw.fsuid = uid;
  cap_emulate_setxuid(nw, old);
  return commit(ctx, nw);
}

SysResult sys_setreuid(SyscallContext& ctx) {
  const std::uint32_t ruid = id_arg(ctx, 0), euid = id_arg(ctx, 1);
  const Credentials& old = ctx.proc.cred;
  if ((ruid == kInvalidId || ruid == old.uid) &&
      (euid == kInvalidId || (euid == old.euid && euid == old.fsuid)))
    return SysResult::ok(0);
  const bool priv = capable(old, CAP_SETUID);
  Credentials nw = old;
  if (ruid != kInvalidId) {
    if (ruid != old.uid && ruid != old.euid && !priv) return err(EPERM);
    nw.uid = ruid;
  }
  if (euid != kInvalidId) {
    if (euid != old.uid && euid != old.euid && euid != old.suid && !priv) return err(EPERM);
    nw.euid = euid;
  }
  if (ruid != kInvalidId || (euid != kInvalidId && euid != old.uid)) nw.suid = nw.euid;
  nw.fsuid = nw.euid;
  cap_emulate_setxuid(nw, old);
  return commit(ctx, nw);
}

// One of setresuid/setresgid's three ids: an unprivileged caller may only pick among its
// current real, effective and saved ids.
bool res_id_allowed(std::uint32_t id, std::uint32_t r, std::uint32_t e, std::uint32_t s) {
  return id == kInvalidId || id == r || id == e || id == s;
}

SysResult sys_setresuid(SyscallContext& ctx) {
  const std::uint32_t ruid = id_arg(ctx, 0), euid = id_arg(ctx, 1), suid = id_arg(ctx, 2);
  const Credentials& old = ctx.proc.cred;
  if ((ruid == kInvalidId || ruid == old.uid) &&
      (euid == kInvalidId || (euid == old.euid && euid == old.fsuid)) &&
      (suid == kInvalidId || suid == old.suid))
    return SysResult::ok(0);
  const bool allowed = res_id_allowed(ruid, old.uid, old.euid, old.suid) &&
                       res_id_allowed(euid, old.uid, old.euid, old.suid) &&
                       res_id_allowed(suid, old.uid, old.euid, old.suid);
  if (!allowed && !capable(old, CAP_SETUID)) return err(EPERM);
  Credentials nw = old;
  if (ruid != kInvalidId) nw.uid = ruid;
  if (euid != kInvalidId) nw.euid = euid;
  if (suid != kInvalidId) nw.suid = suid;
  nw.fsuid = nw.euid;
  cap_emulate_setxuid(nw, old);
  return commit(ctx, nw);
}

// setfsuid/setfsgid answer the old id whether or not they changed it.
SysResult sys_setfsuid(SyscallContext& ctx) {
  const std::uint32_t uid = id_arg(ctx, 0);
  const Credentials& old = ctx.proc.cred;
  const std::uint32_t old_fsuid = old.fsuid;
  if (uid == kInvalidId || uid == old.fsuid) return SysResult::ok(old_fsuid);
  if (uid != old.uid && uid != old.euid && uid != old.suid && !capable(old, CAP_SETUID))
    return SysResult::ok(old_fsuid);
  Credentials nw = old;
  nw.fsuid = uid;
  cap_fix_setfsuid(nw, old);
  (void)commit(ctx, nw);
  return SysResult::ok(old_fsuid);
}

// ---- group ids: CAP_SETGID, no capability changes ----

SysResult sys_setgid(SyscallContext& ctx) {
  const std::uint32_t gid = id_arg(ctx, 0);
  if (gid == kInvalidId) return err(EINVAL);
  const Credentials& old = ctx.proc.cred;
  Credentials nw = old;
  if (capable(old, CAP_SETGID)) {
    nw.gid = nw.egid = nw.sgid = nw.fsgid = gid;
  } else if (gid == old.gid || gid == old.sgid) {
    nw.egid = nw.fsgid = gid;
  } else {
    return err(EPERM);
  }
  return commit(ctx, nw);
}

SysResult sys_setregid(SyscallContext& ctx) {
  const std::uint32_t rgid = id_arg(ctx, 0), egid = id_arg(ctx, 1);
  const Credentials& old = ctx.proc.cred;
  if ((rgid == kInvalidId || rgid == old.gid) &&
      (egid == kInvalidId || (egid == old.egid && egid == old.fsgid)))
    return SysResult::ok(0);
  const bool priv = capable(old, CAP_SETGID);
  Credentials nw = old;
  if (rgid != kInvalidId) {
    if (rgid != old.gid && rgid != old.egid && !priv) return err(EPERM);
    nw.gid = rgid;
  }
  if (egid != kInvalidId) {
    if (egid != old.gid && egid != old.egid && egid != old.sgid && !priv) return err(EPERM);
    nw.egid = egid;
  }
  if (rgid != kInvalidId || (egid != kInvalidId && egid != old.gid)) nw.sgid = nw.egid;
  nw.fsgid = nw.egid;
  return commit(ctx, nw);
}

SysResult sys_setresgid(SyscallContext& ctx) {
  const std::uint32_t rgid = id_arg(ctx, 0), egid = id_arg(ctx, 1), sgid = id_arg(ctx, 2);
  const Credentials& old = ctx.proc.cred;
  if ((rgid == kInvalidId || rgid == old.gid) &&
      (egid == kInvalidId || (egid == old.egid && egid == old.fsgid)) &&
      (sgid == kInvalidId || sgid == old.sgid))
    return SysResult::ok(0);
  const bool allowed = res_id_allowed(rgid, old.gid, old.egid, old.sgid) &&
                       res_id_allowed(egid, old.gid, old.egid, old.sgid) &&
                       res_id_allowed(sgid, old.gid, old.egid, old.sgid);
  if (!allowed && !capable(old, CAP_SETGID)) return err(EPERM);
  Credentials nw = old;
  if (rgid != kInvalidId) nw.gid = rgid;
  if (egid != kInvalidId) nw.egid = egid;
  if (sgid != kInvalidId) nw.sgid = sgid;
  nw.fsgid = nw.egid;
  return commit(ctx, nw);
}

SysResult sys_setfsgid(SyscallContext& ctx) {
  const std::uint32_t gid = id_arg(ctx, 0);
  const Credentials& old = ctx.proc.cred;
  const std::uint32_t old_fsgid = old.fsgid;
  if (gid == kInvalidId || gid == old.fsgid) return SysResult::ok(old_fsgid);
  if (gid != old.gid && gid != old.egid && gid != old.sgid && !capable(old, CAP_SETGID))
    return SysResult::ok(old_fsgid);
  Credentials nw = old;
  nw.fsgid = gid;
  (void)commit(ctx, nw);
  return SysResult::ok(old_fsgid);
}

// ---- supplementary groups ----

constexpr std::int64_t kNgroupsMax = 65536;

SysResult sys_getgroups(SyscallContext& ctx) {
  const int size = ctx.arg_int(0);
  if (size < 0) return err(EINVAL);
  const std::vector<std::uint32_t>& g = ctx.proc.cred.groups;
  if (size == 0) return SysResult::ok(g.size());
  if (g.size() > static_cast<std::size_t>(size)) return err(EINVAL);
  if (!g.empty() && !ctx.write(ctx.arg(1), g.data(), g.size() * 4)) return err(EFAULT);
  return SysResult::ok(g.size());
}

SysResult sys_setgroups(SyscallContext& ctx) {
  const int size = ctx.arg_int(0);
  if (!capable(ctx.proc.cred, CAP_SETGID)) return err(EPERM);
  if (size < 0 || size > kNgroupsMax) return err(EINVAL);
  std::vector<std::uint32_t> g(static_cast<std::size_t>(size));
  if (size > 0 && !ctx.read(ctx.arg(1), g.data(), g.size() * 4)) return err(EFAULT);
  // groups_from_user rejects an id with no mapping: only (gid_t)-1 in the initial namespace.
  if (std::ranges::find(g, kInvalidId) != g.end()) return err(EINVAL);
  std::ranges::sort(g);
  Credentials nw = ctx.proc.cred;
  nw.groups = std::move(g);
  return commit(ctx, nw);
}

// ---- capget/capset ----

constexpr std::uint32_t kCapV1 = 0x19980330, kCapV2 = 0x20071026, kCapV3 = 0x20080522;

Process* pid_or_self(SyscallContext& ctx, int pid) {
  if (pid == 0 || pid == ctx.proc.pid) return &ctx.proc;
  Process* p = ctx.kernel.find(pid);
  return p && p->state != ProcState::Zombie ? p : nullptr;
}

// cap_validate_magic: the number of 32-bit words the version carries (1 or 2), or EINVAL
// with the preferred version written back.
Result<unsigned> cap_version(SyscallContext& ctx) {
  auto version = ctx.read_obj<std::uint32_t>(ctx.arg(0));
  if (!version) return fail(EFAULT);
  if (*version == kCapV1) return 1U;
  if (*version == kCapV2 || *version == kCapV3) return 2U;
  if (!ctx.write_obj(ctx.arg(0), kCapV3)) return fail(EFAULT);
  return fail(EINVAL);
}

SysResult sys_capget(SyscallContext& ctx) {
  auto words = cap_version(ctx);
  if (!words) {
    // A version probe: capget(&hdr, NULL) learns the preferred version and succeeds.
    if (words.error().code == EINVAL && ctx.arg(1) == 0) return SysResult::ok(0);
    return err(words.error().code);
  }
  auto pid = ctx.read_obj<std::int32_t>(ctx.arg(0) + 4);
  if (!pid) return err(EFAULT);
  if (*pid < 0) return err(EINVAL);
  if (!ctx.arg(1)) return SysResult::ok(0);
  const Process* p = pid_or_self(ctx, *pid);
  if (!p) return err(ESRCH);
  const Credentials& c = p->cred;
  std::uint32_t data[6] = {};  // {effective, permitted, inheritable} per 32-bit word
  for (unsigned w = 0; w < *words; ++w) {
    data[w * 3] = static_cast<std::uint32_t>(c.cap_effective >> (32 * w));
    data[w * 3 + 1] = static_cast<std::uint32_t>(c.cap_permitted >> (32 * w));
    data[w * 3 + 2] = static_cast<std::uint32_t>(c.cap_inheritable >> (32 * w));
  }
  return SysResult::from(ctx.write(ctx.arg(1), data, *words * 12));
}

SysResult sys_capset(SyscallContext& ctx) {
  auto words = cap_version(ctx);
  if (!words) return err(words.error().code);
  auto pid = ctx.read_obj<std::int32_t>(ctx.arg(0) + 4);
  if (!pid) return err(EFAULT);
  if (*pid != 0 && *pid != ctx.proc.pid) return err(EPERM);  // only one's own
  std::uint32_t data[6] = {};
  if (!ctx.read(ctx.arg(1), data, *words * 12)) return err(EFAULT);
  std::uint64_t eff = 0, perm = 0, inh = 0;
  for (unsigned w = 0; w < *words; ++w) {
    eff |= static_cast<std::uint64_t>(data[w * 3]) << (32 * w);
    perm |= static_cast<std::uint64_t>(data[w * 3 + 1]) << (32 * w);
    inh |= static_cast<std::uint64_t>(data[w * 3 + 2]) << (32 * w);
  }
  eff &= kCapValidMask;
  perm &= kCapValidMask;
  inh &= kCapValidMask;
  const Credentials& old = ctx.proc.cred;
  // cap_capset: the inheritable set grows only within permitted (unless CAP_SETPCAP) and
  // the bounding set; permitted never grows; effective stays within permitted.
  if (!capable(old, CAP_SETPCAP) && (inh & ~(old.cap_inheritable | old.cap_permitted)))
    return err(EPERM);
  if (inh & ~(old.cap_inheritable | old.cap_bset)) return err(EPERM);
  if (perm & ~old.cap_permitted) return err(EPERM);
  if (eff & ~perm) return err(EPERM);
  Credentials nw = old;
  nw.cap_effective = eff;
  nw.cap_permitted = perm;
  nw.cap_inheritable = inh;
  nw.cap_ambient &= perm & inh;
  return commit(ctx, nw);
}

}  // namespace

// ---- prctl ----

constexpr int kPrCapbsetRead = 23, kPrCapbsetDrop = 24, kPrGetKeepcaps = 7, kPrSetKeepcaps = 8,
              kPrGetSecurebits = 27, kPrCapAmbient = 47;
constexpr std::uint64_t kAmbientIsSet = 1, kAmbientRaise = 2, kAmbientLower = 3,
                        kAmbientClearAll = 4;
constexpr int kSecureKeepCaps = 4;

std::optional<SysResult> prctl_caps(SyscallContext& ctx, int option) {
  const Credentials& old = ctx.proc.cred;
  const std::uint64_t a2 = ctx.arg(1), a3 = ctx.arg(2), a4 = ctx.arg(3), a5 = ctx.arg(4);
  Credentials nw = old;
  switch (option) {
    case kPrCapbsetRead:
      if (!cap_valid(static_cast<std::int64_t>(a2))) return err(EINVAL);
      return SysResult::ok((old.cap_bset >> a2) & 1);
    case kPrCapbsetDrop:
      if (!capable(old, CAP_SETPCAP)) return err(EPERM);
      if (!cap_valid(static_cast<std::int64_t>(a2))) return err(EINVAL);
      nw.cap_bset &= ~cap_bit(static_cast<int>(a2));
      return commit(ctx, nw);
    case kPrGetKeepcaps:
      return SysResult::ok(old.keep_caps ? 1 : 0);
    case kPrSetKeepcaps:
      if (a2 > 1) return err(EINVAL);
      nw.keep_caps = a2 == 1;
      return commit(ctx, nw);
    case kPrGetSecurebits:
      return SysResult::ok(old.keep_caps ? 1U << kSecureKeepCaps : 0);
    case kPrCapAmbient:
      if (a2 == kAmbientClearAll) {
        if (a3 | a4 | a5) return err(EINVAL);
        nw.cap_ambient = 0;
        return commit(ctx, nw);
      }
      if (!cap_valid(static_cast<std::int64_t>(a3)) || a4 || a5) return err(EINVAL);
      if (a2 == kAmbientIsSet) return SysResult::ok((old.cap_ambient >> a3) & 1);
      if (a2 == kAmbientRaise) {
        // Only what is both permitted and inheritable can become ambient.
        if (!((old.cap_permitted & old.cap_inheritable) & cap_bit(static_cast<int>(a3))))
          return err(EPERM);
        nw.cap_ambient |= cap_bit(static_cast<int>(a3));
        return commit(ctx, nw);
      }
      if (a2 == kAmbientLower) {
        nw.cap_ambient &= ~cap_bit(static_cast<int>(a3));
        return commit(ctx, nw);
      }
      return err(EINVAL);
    default:
      return std::nullopt;
  }
}

void register_cred_syscalls(SyscallTable& t) {
  t.add(Sys::getuid, sys_getuid);
  t.add(Sys::geteuid, sys_geteuid);
  t.add(Sys::getgid, sys_getgid);
  t.add(Sys::getegid, sys_getegid);
  t.add(Sys::getresuid, sys_getresuid);
  t.add(Sys::getresgid, sys_getresgid);
  t.add(Sys::setuid, sys_setuid);
  t.add(Sys::setreuid, sys_setreuid);
  t.add(Sys::setresuid, sys_setresuid);
  t.add(Sys::setfsuid, sys_setfsuid);
  t.add(Sys::setgid, sys_setgid);
  t.add(Sys::setregid, sys_setregid);
  t.add(Sys::setresgid, sys_setresgid);
  t.add(Sys::setfsgid, sys_setfsgid);
  t.add(Sys::getgroups, sys_getgroups);
  t.add(Sys::setgroups, sys_setgroups);
  t.add(Sys::capget, sys_capget);
  t.add(Sys::capset, sys_capset);
}

}  // namespace mmemu
