// System calls: file group, name side (open/openat/creat, stat/lstat/newfstatat/statx,
// readlink(at), access/faccessat(2), getcwd, chdir/fchdir, getdents(64)) and the calls that
// change names and attributes: unlink, rename, chmod, truncate, the utimes and chown
// families, symlink, link and mknod (regular files, FIFOs, socket names) work on the files
// guests created (in memory, emu/fs/created_files.hpp) and fail on the host's as on a
// read-only mount, as mkdir does. Path lookup: emu/fs/path_lookup.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <optional>

#include "emu/fs/created_files.hpp"
#include "emu/fs/host_file.hpp"
#include "emu/fs/path_lookup.hpp"
#include "emu/fs/pipe.hpp"
#include "emu/fs/shmem_file.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

namespace {

constexpr int kAtSymlinkNofollow = 0x100, kAtEaccess = 0x200, kAtRemovedir = 0x200,
              kAtNoAutomount = 0x800, kAtEmptyPath = 0x1000, kAtStatxSyncType = 0x6000;
constexpr std::uint32_t kStatxReserved = 0x80000000U;
constexpr std::uint32_t kStatxReturned = 0x7ff | 0x1000;  // BASIC_STATS | MNT_ID

SysResult err(int e) {
  return SysResult::err(e);
}
SysResult err(const Errno& e) {
  return SysResult::err(e.code);
}

// The absolute path of a path argument relative to dirfd.
Result<std::string> path_arg(SyscallContext& ctx, int dirfd, vaddr_t p) {
  auto s = read_path(ctx, p);
  if (!s) return std::unexpected(s.error());
  return resolve_at(ctx, dirfd, *s);
}

// ---- open ----

SysResult do_open(SyscallContext& ctx, int dirfd, vaddr_t path, std::uint64_t guest_flags,
                  std::uint64_t mode) {
  int flags = oflags_from_guest(ctx.arch(), guest_flags & 0xffffffffULL);
  // build_open_flags.
  if ((flags & (O_CREAT | kO_DIRECTORY)) == (O_CREAT | kO_DIRECTORY)) return err(EINVAL);
  if ((flags & kO_TMPFILE) == kO_TMPFILE) {
    if ((flags & O_ACCMODE) == O_RDONLY) return err(EINVAL);
  } else if (flags & (kO_TMPFILE & ~kO_DIRECTORY)) {
    return err(EINVAL);
  }
  if (flags & O_PATH) flags &= kO_DIRECTORY | kO_NOFOLLOW | O_PATH | O_CLOEXEC;
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  const bool cloexec = (flags & O_CLOEXEC) != 0;
  flags &= ~(O_CLOEXEC | O_NOCTTY);
  // Only O_CREAT and O_TMPFILE look at the mode (build_open_how).
  const bool creates = (flags & O_CREAT) || (flags & kO_TMPFILE) == kO_TMPFILE;
  Result<OpenFileRef> f =
      open_path(ctx, *abs, flags, creates ? static_cast<std::uint32_t>(mode & 07777) : 0);
  if (!f) return err(f.error());
  (*f)->set_flags((*f)->flags() & ~(O_CREAT | O_EXCL | O_TRUNC));
  // A FIFO's opener waits for the other side (a pipe from pipe2 never gets here).
  if ((*f)->kind() == "pipe")
    if (SysResult w = fifo_wait(ctx, *f); !w.is_return() || w.is_error()) return w;
  return SysResult::from(ctx.proc.fds->install(std::move(*f), cloexec));
}

SysResult sys_open(SyscallContext& ctx) {
  return do_open(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1), ctx.arg(2));
}
SysResult sys_openat(SyscallContext& ctx) {
  return do_open(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2), ctx.arg(3));
}
SysResult sys_creat(SyscallContext& ctx) {
  return do_open(ctx, kAtFdcwd, ctx.arg(0),
                 oflags_to_guest(ctx.arch(), O_CREAT | O_WRONLY | O_TRUNC), ctx.arg(1));
}

// ---- stat ----

// vfs_fstatat: AT_EMPTY_PATH with an empty (or NULL) path is fstat of dirfd.
Result<FileStat> fstatat_common(SyscallContext& ctx, int dirfd, vaddr_t path, int flags) {
  std::string name;
  if (path == 0 && (flags & kAtEmptyPath)) {
    name.clear();
  } else {
    auto s = read_path(ctx, path);
    if (!s) return std::unexpected(s.error());
    name = std::move(*s);
  }
  if (name.empty() && (flags & kAtEmptyPath)) {
    if (dirfd == kAtFdcwd) return stat_path(ctx, ctx.proc.fs.cwd, true);
    auto f = fd_file(ctx, dirfd, true);
    if (!f) return std::unexpected(f.error());
    return (*f)->stat();
  }
  auto abs = resolve_at(ctx, dirfd, name);
  if (!abs) return std::unexpected(abs.error());
  return stat_path(ctx, *abs, !(flags & kAtSymlinkNofollow));
}

SysResult sys_newfstatat(SyscallContext& ctx) {
  const int flags = ctx.arg_int(3);
  if (flags & ~(kAtSymlinkNofollow | kAtNoAutomount | kAtEmptyPath)) return err(EINVAL);
  auto st = fstatat_common(ctx, ctx.arg_int(0), ctx.arg(1), flags);
  if (!st) return err(st.error());
  return SysResult::from(write_stat(ctx, ctx.arg(2), *st));
}

SysResult stat_common(SyscallContext& ctx, bool follow) {
  auto st = fstatat_common(ctx, kAtFdcwd, ctx.arg(0), follow ? 0 : kAtSymlinkNofollow);
  if (!st) return err(st.error());
  return SysResult::from(write_stat(ctx, ctx.arg(1), *st));
}
SysResult sys_stat(SyscallContext& ctx) {
  return stat_common(ctx, true);
}
SysResult sys_lstat(SyscallContext& ctx) {
  return stat_common(ctx, false);
}

SysResult sys_statx(SyscallContext& ctx) {
  const int flags = ctx.arg_int(2);
  const auto mask = static_cast<std::uint32_t>(ctx.arg(3));
  if (flags & ~(kAtSymlinkNofollow | kAtNoAutomount | kAtEmptyPath | kAtStatxSyncType))
    return err(EINVAL);
  if ((flags & kAtStatxSyncType) == kAtStatxSyncType) return err(EINVAL);
  if (mask & kStatxReserved) return err(EINVAL);
  auto st = fstatat_common(ctx, ctx.arg_int(0), ctx.arg(1), flags);
  if (!st) return err(st.error());
  const std::string b = encode_statx(*st, kStatxReturned);
  return SysResult::from(ctx.write(ctx.arg(4), b.data(), b.size()));
}

// ---- statfs, fstatfs ----

// struct statfs of the 64-bit ABIs (x86_64 and arm64 alike): 120 bytes.
SysResult write_statfs(SyscallContext& ctx, vaddr_t to, const StatFs& s) {
  std::int64_t w[15] = {s.type,
                        s.bsize,
                        static_cast<std::int64_t>(s.blocks),
                        static_cast<std::int64_t>(s.bfree),
                        static_cast<std::int64_t>(s.bavail),
                        static_cast<std::int64_t>(s.files),
                        static_cast<std::int64_t>(s.ffree),
                        0,
                        s.namelen,
                        s.frsize,
                        s.flags,
                        0,
                        0,
                        0,
                        0};
  std::memcpy(&w[7], s.fsid, 8);
  return SysResult::from(ctx.write(to, w, sizeof w));
}

SysResult sys_statfs(SyscallContext& ctx) {
  auto abs = path_arg(ctx, kAtFdcwd, ctx.arg(0));
  if (!abs) return err(abs.error());
  auto s = statfs_path(ctx, *abs);
  if (!s) return err(s.error());
  return write_statfs(ctx, ctx.arg(1), *s);
}

SysResult sys_fstatfs(SyscallContext& ctx) {
  OpenFileRef f = ctx.proc.fds ? ctx.proc.fds->get(ctx.arg_int(0)) : nullptr;
  if (!f) return err(EBADF);
  auto s = statfs_file(ctx, *f);
  if (!s) return err(s.error());
  return write_statfs(ctx, ctx.arg(1), *s);
}

// ---- readlink, access ----

SysResult readlink_common(SyscallContext& ctx, int dirfd, vaddr_t path, vaddr_t buf,
                          std::int64_t size) {
  if (size <= 0) return err(EINVAL);
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  auto target = readlink_path(ctx, *abs);
  if (!target) return err(target.error());
  const std::size_t n = std::min<std::size_t>(target->size(), static_cast<std::size_t>(size));
  if (!ctx.write(buf, target->data(), n)) return err(EFAULT);
  return SysResult::ok(n);
}

SysResult sys_readlink(SyscallContext& ctx) {
  return readlink_common(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1), ctx.arg_int(2));
}
SysResult sys_readlinkat(SyscallContext& ctx) {
  return readlink_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2), ctx.arg_int(3));
}

SysResult access_common(SyscallContext& ctx, int dirfd, vaddr_t path, int mode, int flags) {
  if (mode & ~07) return err(EINVAL);
  if (flags & ~(kAtEaccess | kAtSymlinkNofollow | kAtEmptyPath)) return err(EINVAL);
  auto s = read_path(ctx, path);
  if (!s) return err(s.error());
  std::string abs;
  if (s->empty() && (flags & kAtEmptyPath)) {
    if (dirfd == kAtFdcwd) {
      abs = ctx.proc.fs.cwd;
    } else {
      auto f = fd_file(ctx, dirfd, true);
      if (!f) return err(f.error());
      abs = (*f)->path();
    }
  } else {
    auto r = resolve_at(ctx, dirfd, *s);
    if (!r) return err(r.error());
    abs = std::move(*r);
  }
  return SysResult::from(access_path(ctx, abs, mode, !(flags & kAtSymlinkNofollow)));
}

SysResult sys_access(SyscallContext& ctx) {
  return access_common(ctx, kAtFdcwd, ctx.arg(0), ctx.arg_int(1), 0);
}
SysResult sys_faccessat(SyscallContext& ctx) {
  return access_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg_int(2), 0);
}
SysResult sys_faccessat2(SyscallContext& ctx) {
  return access_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg_int(2), ctx.arg_int(3));
}

// ---- cwd ----

SysResult sys_getcwd(SyscallContext& ctx) {
  const std::string& cwd = ctx.proc.fs.cwd;
  const std::uint64_t len = cwd.size() + 1;
  if (ctx.arg(1) < len) return err(ERANGE);
  if (!ctx.write(ctx.arg(0), cwd.c_str(), len)) return err(EFAULT);
  return SysResult::ok(len);
}

SysResult sys_chdir(SyscallContext& ctx) {
  auto abs = path_arg(ctx, kAtFdcwd, ctx.arg(0));
  if (!abs) return err(abs.error());
  auto dir = chdir_path(ctx, *abs);
  if (!dir) return err(dir.error());
  ctx.proc.fs.cwd = std::move(*dir);
  return SysResult::ok(0);
}

SysResult sys_fchdir(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0), true);
  if (!f) return err(f.error());
  auto st = (*f)->stat();
  if (!st || !S_ISDIR(st->mode)) return err(ENOTDIR);
  auto dir = chdir_path(ctx, (*f)->path());
  if (!dir) return err(dir.error());
  ctx.proc.fs.cwd = std::move(*dir);
  return SysResult::ok(0);
}

// ---- directories ----

SysResult getdents_common(SyscallContext& ctx, bool dirent64) {
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  auto* dir = dynamic_cast<DirFile*>(f->get());
  if (!dir) return err(ENOTDIR);
  const vaddr_t buf = ctx.arg(1);
  const std::uint64_t count = ctx.arg(2) & 0xffffffffULL;
  if (!access_ok(ctx.arch(), buf, count)) return err(EFAULT);
  const std::uint64_t before = dir->pos();
  auto recs = dir->getdents(std::min<std::uint64_t>(count, INT_MAX), dirent64);
  if (!recs) return err(recs.error());
  if (!ctx.write(buf, recs->data(), recs->size())) {
    dir->set_pos(before);
    return err(EFAULT);
  }
  return SysResult::ok(recs->size());
}

SysResult sys_getdents64(SyscallContext& ctx) {
  return getdents_common(ctx, true);
}
SysResult sys_getdents(SyscallContext& ctx) {
  return getdents_common(ctx, false);
}

// ---- changes to the (read-only) file system ----

// Creating a name: EEXIST if it is there, else EROFS when its directory exists.
SysResult create_name(SyscallContext& ctx, int dirfd, vaddr_t path) {
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  if (stat_path(ctx, *abs, false)) return err(EEXIST);
  auto pst = stat_path(ctx, parent_dir(*abs), true);
  if (!pst) return err(pst.error());
  if (!S_ISDIR(pst->mode)) return err(ENOTDIR);
  return err(EROFS);
}

// Changing or removing an existing name: its lookup error, else EROFS.
SysResult change_name(SyscallContext& ctx, int dirfd, vaddr_t path, bool follow) {
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  if (auto st = stat_path(ctx, *abs, follow); !st) return err(st.error());
  return err(EROFS);
}

SysResult sys_mkdir(SyscallContext& ctx) {
  return create_name(ctx, kAtFdcwd, ctx.arg(0));
}
SysResult sys_mkdirat(SyscallContext& ctx) {
  return create_name(ctx, ctx.arg_int(0), ctx.arg(1));
}
// A regular file the guest created (kept in memory), or nullptr; *key is its CreatedFiles
// key. With `follow`, the symbolic links the guest created lead to it.
ShmemInodeRef created_at(SyscallContext& ctx, const std::string& abs, std::string* key,
                         bool follow = false) {
  if (ctx.kernel.created_files().empty()) return nullptr;
  std::string at = abs;
  for (int depth = 0;; ++depth) {
    *key = CreatedFiles::key_of(normalize_path(at));
    auto sp = ctx.kernel.created_files().find_special(*key);
    if (!follow || !sp || (sp->st.mode & S_IFMT) != S_IFLNK || depth == 8) break;
    at = sp->target.starts_with("/") ? sp->target : parent_dir(*key) + "/" + sp->target;
  }
  return ctx.kernel.created_files().find(*key);
}

// Any name the guest created (a regular file, a link, a FIFO); *key as created_at's.
bool created_name(SyscallContext& ctx, const std::string& abs, std::string* key) {
  if (ctx.kernel.created_files().empty()) return false;
  *key = CreatedFiles::key_of(normalize_path(abs));
  return ctx.kernel.created_files().exists(*key);
}

// The guest may change names in the directory of `abs` (root always may).
Result<void> may_change_dir(const std::string& abs) {
  if (::access(parent_dir(normalize_path(abs)).c_str(), W_OK | X_OK) != 0) return fail(errno);
  return {};
}

// unlink / rmdir / unlinkat: a created file loses its name (its pages stay while it is open
// or mapped); anything else is the host's: its lookup error, else EROFS.
SysResult remove_name(SyscallContext& ctx, int dirfd, vaddr_t path, bool dir) {
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  std::string key;
  if (created_name(ctx, *abs, &key)) {
    if (dir || abs->back() == '/') return err(ENOTDIR);
    if (auto r = may_change_dir(*abs); !r) return err(r.error());
    ctx.kernel.created_files().remove(key);
    return SysResult::ok(0);
  }
  return change_name(ctx, dirfd, path, false);
}

SysResult sys_unlink(SyscallContext& ctx) {
  return remove_name(ctx, kAtFdcwd, ctx.arg(0), false);
}
SysResult sys_rmdir(SyscallContext& ctx) {
  return remove_name(ctx, kAtFdcwd, ctx.arg(0), true);
}
SysResult sys_unlinkat(SyscallContext& ctx) {
  if (ctx.arg_int(2) & ~kAtRemovedir) return err(EINVAL);
  return remove_name(ctx, ctx.arg_int(0), ctx.arg(1), (ctx.arg_int(2) & kAtRemovedir) != 0);
}

// rename of a created file to a new name in an existing directory, replacing another
// created file; the host's files can be neither source nor target (EROFS).
SysResult rename_common(SyscallContext& ctx, int olddir, vaddr_t oldp, int newdir, vaddr_t newp,
                        unsigned flags) {
  constexpr unsigned kRenameNoreplace = 1, kRenameExchange = 2, kRenameWhiteout = 4;
  if (flags & ~(kRenameNoreplace | kRenameExchange | kRenameWhiteout)) return err(EINVAL);
  if ((flags & kRenameNoreplace) && (flags & (kRenameExchange | kRenameWhiteout)))
    return err(EINVAL);
  auto from = path_arg(ctx, olddir, oldp);
  if (!from) return err(from.error());
  auto to = path_arg(ctx, newdir, newp);
  if (!to) return err(to.error());
  std::string from_key, to_key;
  if (!created_name(ctx, *from, &from_key)) {
    if (auto st = stat_path(ctx, *from, false); !st) return err(st.error());
    return err(EROFS);
  }
  auto pst = stat_path(ctx, parent_dir(normalize_path(*to)), true);
  if (!pst) return err(pst.error());
  if (!S_ISDIR(pst->mode)) return err(ENOTDIR);
  const bool target_created = created_name(ctx, *to, &to_key);
  if (!target_created && stat_path(ctx, *to, false)) {
    return err((flags & kRenameNoreplace) ? EEXIST : EROFS);
  }
  if (target_created && (flags & kRenameNoreplace)) return err(EEXIST);
  if (flags & (kRenameExchange | kRenameWhiteout)) return err(target_created ? EINVAL : ENOENT);
  if (auto r = may_change_dir(*from); !r) return err(r.error());
  if (auto r = may_change_dir(*to); !r) return err(r.error());
  if (to_key.empty()) to_key = CreatedFiles::key_of(normalize_path(*to));
  if (from_key == to_key) return SysResult::ok(0);
  if (target_created) ctx.kernel.created_files().remove(to_key);
  ctx.kernel.created_files().move(from_key, to_key);
  return SysResult::ok(0);
}

SysResult sys_rename(SyscallContext& ctx) {
  return rename_common(ctx, kAtFdcwd, ctx.arg(0), kAtFdcwd, ctx.arg(1), 0);
}
SysResult sys_renameat(SyscallContext& ctx) {
  return rename_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg_int(2), ctx.arg(3), 0);
}
SysResult sys_renameat2(SyscallContext& ctx) {
  return rename_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg_int(2), ctx.arg(3),
                       static_cast<unsigned>(ctx.arg(4)));
}

// chmod of a created file changes its permission bits; the host's are EROFS.
SysResult chmod_common(SyscallContext& ctx, int dirfd, vaddr_t path, std::uint64_t mode) {
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  std::string key;
  if (auto inode = created_at(ctx, *abs, &key, true)) {
    inode->st.mode = (inode->st.mode & S_IFMT) | static_cast<std::uint32_t>(mode & 07777);
    return SysResult::ok(0);
  }
  return change_name(ctx, dirfd, path, true);
}
SysResult sys_chmod(SyscallContext& ctx) {
  return chmod_common(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1));
}
SysResult sys_fchmodat(SyscallContext& ctx) {
  return chmod_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2));
}

SysResult sys_truncate(SyscallContext& ctx) {
  const auto length = static_cast<std::int64_t>(ctx.arg(1));
  if (length < 0) return err(EINVAL);
  auto abs = path_arg(ctx, kAtFdcwd, ctx.arg(0));
  if (!abs) return err(abs.error());
  std::string key;
  if (auto inode = created_at(ctx, *abs, &key, true)) {
    if (ctx.proc.cred.euid != 0 && !(inode->st.mode & 0200)) return err(EACCES);
    return SysResult::from(shmem_setattr_size(*inode->file, static_cast<std::uint64_t>(length)));
  }
  return change_name(ctx, kAtFdcwd, ctx.arg(0), true);
}

SysResult sys_ftruncate(SyscallContext& ctx) {
  const auto length = static_cast<std::int64_t>(ctx.arg(1));
  if (length < 0) return err(EINVAL);
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  // Only a memfd is both a regular file and open for writing.
  if (!(*f)->writable()) return err(EINVAL);
  return SysResult::from((*f)->truncate(static_cast<std::uint64_t>(length)));
}

SysResult sys_fchmod(SyscallContext& ctx) {
  auto f = fd_file(ctx, ctx.arg_int(0));
  if (!f) return err(f.error());
  if (auto* sf = dynamic_cast<ShmemFile*>(f->get())) {
    ShmemInode& inode = *sf->inode();
    inode.st.mode = (inode.st.mode & S_IFMT) | static_cast<std::uint32_t>(ctx.arg(1) & 07777);
    return SysResult::ok(0);
  }
  const std::string_view k = (*f)->kind();
  return (k == "file" || k == "dir") ? err(EROFS) : SysResult::ok(0);
}

// ---- times and owners (utimensat, utimes, utime, futimesat, chown family) ----

constexpr std::int64_t kUtimeNow = (1LL << 30) - 1, kUtimeOmit = (1LL << 30) - 2;
constexpr std::uint32_t kNoId = 0xffffffffU;

// in_group_p: the filesystem group or a supplementary one.
bool in_group(const Credentials& c, std::uint32_t gid) {
  return c.fsgid == gid || std::binary_search(c.groups.begin(), c.groups.end(), gid);
}

// inode_owner_or_capable: the owner (by fsuid), or CAP_FOWNER.
bool owner_or_capable(const SyscallContext& ctx, const FileStat& st) {
  return ctx.proc.cred.fsuid == st.uid || capable(ctx.proc.cred, CAP_FOWNER);
}

// generic_permission(MAY_WRITE) on an inode in memory.
bool may_write(const SyscallContext& ctx, const FileStat& st) {
  const Credentials& c = ctx.proc.cred;
  if (capable(c, CAP_DAC_OVERRIDE)) return true;
  const std::uint32_t bits = c.fsuid == st.uid     ? st.mode >> 6
                             : in_group(c, st.gid) ? st.mode >> 3
                                                   : st.mode;
  return (bits & 2) != 0;
}

bool nsec_valid(std::int64_t nsec) {
  return nsec == kUtimeNow || nsec == kUtimeOmit || (nsec >= 0 && nsec <= 999999999);
}

void now_into(std::int64_t& sec, std::int64_t& nsec) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  sec = now.tv_sec;
  nsec = now.tv_nsec;
}

// What a utimes-family call asks: nullopt is "both now" (times == NULL).
using Times = std::optional<std::array<GuestTimespec, 2>>;

// vfs_utimes on a file the guest created. Any times given (but "now" for both) need the
// owner (else EPERM), even "now" for one and "omit" for the other; "now" for both needs the
// owner or write access (else EACCES).
SysResult set_times(SyscallContext& ctx, FileStat& st, Times t) {
  if (t && (*t)[0].nsec == kUtimeNow && (*t)[1].nsec == kUtimeNow) t.reset();
  if (!t) {
    if (!owner_or_capable(ctx, st) && !may_write(ctx, st)) return err(EACCES);
  } else if (!owner_or_capable(ctx, st)) {
    return err(EPERM);
  }
  std::int64_t now_s = 0, now_ns = 0;
  now_into(now_s, now_ns);
  const auto apply = [&](int i, std::int64_t& sec, std::int64_t& nsec) {
    if (t && (*t)[i].nsec == kUtimeOmit) return;
    if (!t || (*t)[i].nsec == kUtimeNow) {
      sec = now_s;
      nsec = now_ns;
    } else {
      sec = (*t)[i].sec;
      nsec = (*t)[i].nsec;
    }
  };
  apply(0, st.atime_sec, st.atime_nsec);
  apply(1, st.mtime_sec, st.mtime_nsec);
  st.ctime_sec = now_s;
  st.ctime_nsec = now_ns;
  return SysResult::ok(0);
}

// The attributes an fd-form call changes: a created (or memfd) inode's, or nullptr when
// there is nothing mmemu keeps (pipes, terminals); the host's files are EROFS. The inode
// stays alive through the call (the descriptor or the table of created names holds it).
Result<FileStat*> fd_inode(SyscallContext& ctx, int fd) {
  auto f = fd_file(ctx, fd, true);
  if (!f) return std::unexpected(f.error());
  if (auto* sf = dynamic_cast<ShmemFile*>(f->get())) return &sf->inode()->st;
  const std::string_view k = (*f)->kind();
  if (k == "file" || k == "dir") return fail(EROFS);
  return nullptr;
}

// A path-form target: the created inode, or nullptr when the name is the host's (its
// lookup error comes first, then EROFS).
Result<FileStat*> path_inode(SyscallContext& ctx, int dirfd, const std::string& name, bool follow,
                             bool empty_path) {
  if (name.empty() && empty_path) {
    if (dirfd == kAtFdcwd) {
      if (auto st = stat_path(ctx, ctx.proc.fs.cwd, true); !st) return std::unexpected(st.error());
      return fail(EROFS);
    }
    return fd_inode(ctx, dirfd);
  }
  auto abs = resolve_at(ctx, dirfd, name);
  if (!abs) return std::unexpected(abs.error());
  std::string key;
  if (auto inode = created_at(ctx, *abs, &key, follow)) {
    if (abs->back() == '/') return fail(ENOTDIR);
    return &inode->st;
  }
  if (auto st = stat_path(ctx, *abs, follow); !st) return std::unexpected(st.error());
  // A link or FIFO the guest created: its times and owner are kept with it.
  if (auto sp = ctx.kernel.created_files().find_special(key)) return &sp->st;
  return fail(EROFS);
}

// do_utimes: path NULL with a descriptor is the fd form.
SysResult do_utimes(SyscallContext& ctx, int dirfd, vaddr_t path, const Times& t, int flags) {
  Result<FileStat*> inode;
  if (path == 0 && dirfd != kAtFdcwd) {
    if (flags) return err(EINVAL);
    inode = fd_inode(ctx, dirfd);
  } else {
    if (flags & ~(kAtSymlinkNofollow | kAtEmptyPath)) return err(EINVAL);
    auto s = read_path(ctx, path);
    if (!s) return err(s.error());
    inode = path_inode(ctx, dirfd, *s, !(flags & kAtSymlinkNofollow), flags & kAtEmptyPath);
  }
  if (t && (!nsec_valid((*t)[0].nsec) || !nsec_valid((*t)[1].nsec))) return err(EINVAL);
  if (!inode) return err(inode.error());
  if (!*inode) return SysResult::ok(0);
  return set_times(ctx, **inode, t);
}

SysResult sys_utimensat(SyscallContext& ctx) {
  Times t;
  if (ctx.arg(2) != 0) {
    auto a = read_timespec(ctx, ctx.arg(2));
    auto m = read_timespec(ctx, ctx.arg(2) + sizeof(GuestTimespec));
    if (!a || !m) return err(EFAULT);
    // Nothing to do: the path is not even looked up.
    if (a->nsec == kUtimeOmit && m->nsec == kUtimeOmit) return SysResult::ok(0);
    t = std::array<GuestTimespec, 2>{*a, *m};
  }
  return do_utimes(ctx, ctx.arg_int(0), ctx.arg(1), t, ctx.arg_int(3));
}

// utimes and futimesat take struct timeval[2] (microseconds).
SysResult timeval_utimes(SyscallContext& ctx, int dirfd, vaddr_t path, vaddr_t tv) {
  Times t;
  if (tv != 0) {
    auto a = read_timespec(ctx, tv);
    auto m = read_timespec(ctx, tv + sizeof(GuestTimespec));
    if (!a || !m) return err(EFAULT);
    if (a->nsec < 0 || a->nsec >= 1000000 || m->nsec < 0 || m->nsec >= 1000000) return err(EINVAL);
    t = std::array<GuestTimespec, 2>{GuestTimespec{a->sec, a->nsec * 1000},
                                     GuestTimespec{m->sec, m->nsec * 1000}};
  }
  return do_utimes(ctx, dirfd, path, t, 0);
}

SysResult sys_utimes(SyscallContext& ctx) {
  return timeval_utimes(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1));
}
SysResult sys_futimesat(SyscallContext& ctx) {
  return timeval_utimes(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2));
}

// utime takes struct utimbuf {actime, modtime} in seconds.
SysResult sys_utime(SyscallContext& ctx) {
  Times t;
  if (ctx.arg(1) != 0) {
    auto b = read_timespec(ctx, ctx.arg(1));
    if (!b) return err(EFAULT);
    t = std::array<GuestTimespec, 2>{GuestTimespec{b->sec, 0}, GuestTimespec{b->nsec, 0}};
  }
  return do_utimes(ctx, kAtFdcwd, ctx.arg(0), t, 0);
}

// chown_common on a created inode: only CAP_CHOWN gives a file away; the owner may change
// the group to one of its own; a non-directory loses its setuid bit, and its setgid bit
// when that marks group execution or the caller is outside the file's group without
// CAP_FSETID.
SysResult chown_inode(SyscallContext& ctx, FileStat& st, std::uint32_t uid, std::uint32_t gid) {
  const Credentials& c = ctx.proc.cred;
  const bool cap = capable(c, CAP_CHOWN);
  if (uid != kNoId && !cap && !(c.fsuid == st.uid && uid == st.uid)) return err(EPERM);
  if (gid != kNoId && !cap && !(c.fsuid == st.uid && (gid == st.gid || in_group(c, gid))))
    return err(EPERM);
  if (!S_ISDIR(st.mode)) {
    st.mode &= ~static_cast<std::uint32_t>(S_ISUID);
    if ((st.mode & S_ISGID) &&
        ((st.mode & S_IXGRP) || !(in_group(c, st.gid) || capable(c, CAP_FSETID))))
      st.mode &= ~static_cast<std::uint32_t>(S_ISGID);
  }
  if (uid != kNoId) st.uid = uid;
  if (gid != kNoId) st.gid = gid;
  std::int64_t ns = 0;
  now_into(st.ctime_sec, ns);
  st.ctime_nsec = ns;
  return SysResult::ok(0);
}

SysResult chown_at(SyscallContext& ctx, int dirfd, vaddr_t path, std::uint64_t uid,
                   std::uint64_t gid, int flags) {
  if (flags & ~(kAtSymlinkNofollow | kAtEmptyPath)) return err(EINVAL);
  auto s = read_path(ctx, path);
  if (!s) return err(s.error());
  auto inode = path_inode(ctx, dirfd, *s, !(flags & kAtSymlinkNofollow), flags & kAtEmptyPath);
  if (!inode) return err(inode.error());
  if (!*inode) return SysResult::ok(0);
  return chown_inode(ctx, **inode, static_cast<std::uint32_t>(uid),
                     static_cast<std::uint32_t>(gid));
}

SysResult sys_chown(SyscallContext& ctx) {
  return chown_at(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1), ctx.arg(2), 0);
}
SysResult sys_lchown(SyscallContext& ctx) {
  return chown_at(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1), ctx.arg(2), kAtSymlinkNofollow);
}
SysResult sys_fchownat(SyscallContext& ctx) {
  return chown_at(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg_int(4));
}
SysResult sys_fchown(SyscallContext& ctx) {
  auto inode = fd_inode(ctx, ctx.arg_int(0));
  if (!inode) return err(inode.error());
  if (!*inode) return SysResult::ok(0);
  return chown_inode(ctx, **inode, static_cast<std::uint32_t>(ctx.arg(1)),
                     static_cast<std::uint32_t>(ctx.arg(2)));
}

// ---- new names: symlink, link, mknod ----

constexpr int kAtSymlinkFollow = 0x400;

// The name a symlink, link or mknod creates: EEXIST when it is taken, else its directory
// must exist and let the guest add names. Returns its CreatedFiles key; *dev is the
// directory's device (what stat shows for the new name).
Result<std::string> new_name(SyscallContext& ctx, const std::string& abs, std::uint64_t* dev) {
  if (stat_path(ctx, abs, false)) return fail(EEXIST);
  const std::string norm = normalize_path(abs);
  auto pst = stat_path(ctx, parent_dir(norm), true);
  if (!pst) return std::unexpected(pst.error());
  if (!S_ISDIR(pst->mode)) return fail(ENOTDIR);
  // A missing name with a trailing slash would be a directory.
  if (abs.size() > 1 && abs.back() == '/') return fail(ENOENT);
  // The emulated /proc, /sys and /dev take no new names.
  for (const char* top : {"/proc/", "/sys/", "/dev/"})
    if (norm.starts_with(top)) return fail(EACCES);
  if (auto r = may_change_dir(norm); !r) return std::unexpected(r.error());
  *dev = pst->dev;
  return CreatedFiles::key_of(norm);
}

SpecialNodeRef new_special(SyscallContext& ctx, std::uint32_t mode, std::uint64_t dev) {
  auto sp = std::make_shared<SpecialNode>();
  sp->st = new_shmem_stat(mode, ctx.proc.cred.fsuid, ctx.proc.cred.fsgid, 1);
  sp->st.dev = dev;
  sp->st.blocks = 0;
  ctx.kernel.stats().add("special_inodes");
  sp->st.ino = 0x40000000ULL + ctx.kernel.stats().get("special_inodes");
  return sp;
}

SysResult symlink_common(SyscallContext& ctx, vaddr_t target, int dirfd, vaddr_t path) {
  auto t = read_path(ctx, target);
  if (!t) return err(t.error());
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  if (t->empty()) return err(ENOENT);
  std::uint64_t dev = 0;
  auto key = new_name(ctx, *abs, &dev);
  if (!key) return err(key.error());
  SpecialNodeRef sp = new_special(ctx, S_IFLNK | 0777, dev);
  sp->target = std::move(*t);
  sp->st.size = static_cast<std::int64_t>(sp->target.size());
  ctx.kernel.created_files().add_special(*key, std::move(sp));
  return SysResult::ok(0);
}

SysResult sys_symlink(SyscallContext& ctx) {
  return symlink_common(ctx, ctx.arg(0), kAtFdcwd, ctx.arg(1));
}
SysResult sys_symlinkat(SyscallContext& ctx) {
  return symlink_common(ctx, ctx.arg(0), ctx.arg_int(1), ctx.arg(2));
}

// A hard link: a second name for a file the guest created (a link or FIFO node too, when
// not followed). The host's files cannot get names in memory (EROFS); directories EPERM.
SysResult link_common(SyscallContext& ctx, int olddir, vaddr_t oldp, int newdir, vaddr_t newp,
                      int flags) {
  if (flags & ~(kAtSymlinkFollow | kAtEmptyPath)) return err(EINVAL);
  auto old = read_path(ctx, oldp);
  if (!old) return err(old.error());
  ShmemInodeRef inode;
  SpecialNodeRef sp;
  int old_err = 0;  // what the old name answers once the new one is checked
  if (old->empty() && (flags & kAtEmptyPath)) {
    if (olddir == kAtFdcwd) {
      old_err = EPERM;  // the working directory
    } else {
      auto f = fd_file(ctx, olddir, true);
      if (!f) return err(f.error());
      if (auto* sf = dynamic_cast<ShmemFile*>(f->get())) {
        inode = sf->inode();
      } else {
        auto st = (*f)->stat();
        old_err = st && S_ISDIR(st->mode) ? EPERM : EROFS;
      }
    }
  } else {
    auto abs = resolve_at(ctx, olddir, *old);
    if (!abs) return err(abs.error());
    const bool follow = (flags & kAtSymlinkFollow) != 0;
    auto st = stat_path(ctx, *abs, follow);
    if (!st) return err(st.error());
    std::string key;
    inode = created_at(ctx, *abs, &key, follow);
    if (!inode) sp = ctx.kernel.created_files().find_special(key);
    if (!inode && !sp) old_err = S_ISDIR(st->mode) ? EPERM : EROFS;
  }
  auto abs = path_arg(ctx, newdir, newp);
  if (!abs) return err(abs.error());
  std::uint64_t dev = 0;
  auto key = new_name(ctx, *abs, &dev);
  if (!key) return err(key.error());
  if (old_err) return err(old_err);
  FileStat& st = inode ? inode->st : sp->st;
  // An unlinked file (or an O_TMPFILE one: not modelled as linkable) has no name to add to.
  if (st.nlink == 0) return err(ENOENT);
  ++st.nlink;
  std::int64_t ns = 0;
  now_into(st.ctime_sec, ns);
  st.ctime_nsec = ns;
  if (inode)
    ctx.kernel.created_files().add(*key, std::move(inode));
  else
    ctx.kernel.created_files().add_special(*key, std::move(sp));
  return SysResult::ok(0);
}

SysResult sys_link(SyscallContext& ctx) {
  return link_common(ctx, kAtFdcwd, ctx.arg(0), kAtFdcwd, ctx.arg(1), 0);
}
SysResult sys_linkat(SyscallContext& ctx) {
  return link_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg_int(2), ctx.arg(3), ctx.arg_int(4));
}

// mknod: a regular file (empty), a FIFO, or a socket name in memory. Device nodes need
// CAP_MKNOD, and mmemu makes none even with it: EPERM.
SysResult mknod_common(SyscallContext& ctx, int dirfd, vaddr_t path, std::uint64_t mode_arg) {
  const auto mode = static_cast<std::uint32_t>(mode_arg);
  const std::uint32_t type = mode & S_IFMT;
  switch (type) {
    case 0:
    case S_IFREG:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      break;
    case S_IFDIR:
      return err(EPERM);
    default:
      return err(EINVAL);
  }
  auto abs = path_arg(ctx, dirfd, path);
  if (!abs) return err(abs.error());
  std::uint64_t dev = 0;
  auto key = new_name(ctx, *abs, &dev);
  if (!key) return err(key.error());
  if (type == S_IFCHR || type == S_IFBLK) return err(EPERM);
  if (type == 0 || type == S_IFREG) {
    auto f = open_path(ctx, *abs, O_CREAT | O_EXCL | O_WRONLY, mode & 07777);
    return f ? SysResult::ok(0) : err(f.error());
  }
  SpecialNodeRef sp = new_special(ctx, type | (mode & 07777 & ~ctx.proc.fs.umask), dev);
  if (type == S_IFIFO) sp->fifo = std::make_shared<Pipe>(sp->st.ino);
  ctx.kernel.created_files().add_special(*key, std::move(sp));
  return SysResult::ok(0);
}

SysResult sys_mknod(SyscallContext& ctx) {
  return mknod_common(ctx, kAtFdcwd, ctx.arg(0), ctx.arg(1));
}
SysResult sys_mknodat(SyscallContext& ctx) {
  return mknod_common(ctx, ctx.arg_int(0), ctx.arg(1), ctx.arg(2));
}

}  // namespace

void register_fs_syscalls(SyscallTable& t) {
  t.add(Sys::open, sys_open);
  t.add(Sys::openat, sys_openat);
  t.add(Sys::creat, sys_creat);
  t.add(Sys::stat, sys_stat);
  t.add(Sys::lstat, sys_lstat);
  t.add(Sys::newfstatat, sys_newfstatat);
  t.add(Sys::statx, sys_statx);
  t.add(Sys::statfs, sys_statfs);
  t.add(Sys::fstatfs, sys_fstatfs);
  t.add(Sys::readlink, sys_readlink);
  t.add(Sys::readlinkat, sys_readlinkat);
  t.add(Sys::access, sys_access);
  t.add(Sys::faccessat, sys_faccessat);
  t.add(Sys::faccessat2, sys_faccessat2);
  t.add(Sys::getcwd, sys_getcwd);
  t.add(Sys::chdir, sys_chdir);
  t.add(Sys::fchdir, sys_fchdir);
  t.add(Sys::getdents64, sys_getdents64);
  t.add(Sys::getdents, sys_getdents);
  t.add(Sys::mkdir, sys_mkdir);
  t.add(Sys::mkdirat, sys_mkdirat);
  t.add(Sys::unlink, sys_unlink);
  t.add(Sys::unlinkat, sys_unlinkat);
  t.add(Sys::rmdir, sys_rmdir);
  t.add(Sys::rename, sys_rename);
  t.add(Sys::renameat, sys_renameat);
  t.add(Sys::renameat2, sys_renameat2);
  t.add(Sys::chmod, sys_chmod);
  t.add(Sys::fchmodat, sys_fchmodat);
  t.add(Sys::fchmod, sys_fchmod);
  t.add(Sys::truncate, sys_truncate);
  t.add(Sys::ftruncate, sys_ftruncate);
  t.add(Sys::utimensat, sys_utimensat);
  t.add(Sys::utimes, sys_utimes);
  t.add(Sys::futimesat, sys_futimesat);
  t.add(Sys::utime, sys_utime);
  t.add(Sys::chown, sys_chown);
  t.add(Sys::lchown, sys_lchown);
  t.add(Sys::fchownat, sys_fchownat);
  t.add(Sys::fchown, sys_fchown);
  t.add(Sys::symlink, sys_symlink);
  t.add(Sys::symlinkat, sys_symlinkat);
  t.add(Sys::link, sys_link);
  t.add(Sys::linkat, sys_linkat);
  t.add(Sys::mknod, sys_mknod);
  t.add(Sys::mknodat, sys_mknodat);
}

}  // namespace mmemu
