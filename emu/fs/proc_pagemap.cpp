#include "emu/fs/proc_pagemap.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <vector>

#include "emu/kernel/cred.hpp"
#include "emu/kernel/process.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/access_remote.hpp"
#include "vma/pagemap.hpp"

namespace mmemu {

namespace {

constexpr int kCapSysPtrace = 19;  // CAP_SYS_PTRACE
constexpr std::uint64_t kMaxOff = std::numeric_limits<std::int64_t>::max();

// The mm behind an open file, if it still exists (mmget_not_zero).
Mm* mm_of(const std::weak_ptr<AddressSpace>& w, std::shared_ptr<AddressSpace>& hold) {
  hold = w.lock();
  return hold && hold->mm ? hold->mm.get() : nullptr;
}

// mem_lseek: SEEK_SET and SEEK_CUR to any position; the position is returned as is (a
// "negative" one reaches the guest as a -errno-looking value, as on Linux).
Result<std::uint64_t> mem_lseek(std::uint64_t& pos, std::int64_t off, int whence) {
  switch (whence) {
    case SEEK_CUR:
      pos += static_cast<std::uint64_t>(off);
      return pos;
    case SEEK_SET:
      pos = static_cast<std::uint64_t>(off);
      return pos;
    default:
      return fail(EINVAL);
  }
}

}  // namespace

Result<void> proc_mem_permitted(const Process& opener, const Process& target) {
  if (&opener == &target || opener.pid == target.pid) return {};
  const Credentials& c = opener.cred;
  const Credentials& t = target.cred;
  if (capable(c, kCapSysPtrace)) return {};
  if (c.uid == t.euid && c.uid == t.suid && c.uid == t.uid && c.gid == t.egid && c.gid == t.sgid &&
      c.gid == t.gid)
    return {};
  return fail(EACCES);
}

// ---- pagemap ----

PagemapFile::PagemapFile(int flags, std::weak_ptr<AddressSpace> as, bool show_pfn, FileStat st)
    : OpenFile(flags), as_(std::move(as)), show_pfn_(show_pfn), st_(st) {}

SysResult PagemapFile::read(SyscallContext& ctx, std::span<std::uint8_t> buf) {
  // rw_verify_area: a position that went negative through lseek is refused.
  if (pos_ > kMaxOff) return SysResult::err(EINVAL);
  auto r = pread(ctx, buf, pos_);
  if (r.is_return() && !r.is_error()) pos_ += static_cast<std::uint64_t>(r.value());
  return r;
}

SysResult PagemapFile::pread(SyscallContext&, std::span<std::uint8_t> buf, std::uint64_t off) {
  if (!readable()) return SysResult::err(EBADF);
  // rw_verify_area: pos + count may not overflow loff_t.
  if (off > kMaxOff || buf.size() > kMaxOff - off) return SysResult::err(EINVAL);
  std::shared_ptr<AddressSpace> hold;
  Mm* mm = mm_of(as_, hold);
  if (!mm) return SysResult::ok(0);
  if (off % PM_ENTRY_BYTES || buf.size() % PM_ENTRY_BYTES) return SysResult::err(EINVAL);
  if (buf.empty()) return SysResult::ok(0);
  const std::vector<std::uint64_t> e =
      pagemap_entries(*mm, off / PM_ENTRY_BYTES, buf.size() / PM_ENTRY_BYTES, show_pfn_);
  // Past the last user address there are no entries (and e.data() may be null).
  if (e.empty()) return SysResult::ok(0);
  // Entries are little-endian on both guest architectures, as on the host.
  std::memcpy(buf.data(), e.data(), e.size() * PM_ENTRY_BYTES);
  return SysResult::ok(e.size() * PM_ENTRY_BYTES);
}

Result<std::uint64_t> PagemapFile::lseek(std::int64_t off, int whence) {
  return mem_lseek(pos_, off, whence);
}

SysResult PagemapFile::ioctl(SyscallContext&, std::uint64_t request, std::uint64_t) {
  // PAGEMAP_SCAN (_IOWR('f', 16, struct pm_scan_arg), 96 bytes) is not modelled.
  constexpr std::uint64_t kPagemapScan = 0xc0606610;
  if (request == kPagemapScan) return SysResult::err(ENOTTY);
  return SysResult::err(EINVAL);  // do_pagemap_cmd's default
}

// ---- mem ----

ProcMemFile::ProcMemFile(int flags, std::weak_ptr<AddressSpace> as, FileStat st)
    : OpenFile(flags), as_(std::move(as)), st_(st) {}

SysResult ProcMemFile::rw(std::uint8_t* buf, std::size_t n, std::uint64_t off, bool write) {
  std::shared_ptr<AddressSpace> hold;
  Mm* mm = mm_of(as_, hold);
  if (!mm || n == 0) return SysResult::ok(0);
  const std::size_t done = access_remote_vm(*mm, off, buf, n, write);
  if (done == 0) return SysResult::err(EIO);
  return SysResult::ok(done);
}

SysResult ProcMemFile::read(SyscallContext& ctx, std::span<std::uint8_t> buf) {
  auto r = pread(ctx, buf, pos_);
  if (r.is_return() && !r.is_error()) pos_ += static_cast<std::uint64_t>(r.value());
  return r;
}

SysResult ProcMemFile::write(SyscallContext& ctx, std::span<const std::uint8_t> buf) {
  auto r = pwrite(ctx, buf, pos_);
  if (r.is_return() && !r.is_error()) pos_ += static_cast<std::uint64_t>(r.value());
  return r;
}

SysResult ProcMemFile::pread(SyscallContext&, std::span<std::uint8_t> buf, std::uint64_t off) {
  if (!readable()) return SysResult::err(EBADF);
  return rw(buf.data(), buf.size(), off, false);
}

SysResult ProcMemFile::pwrite(SyscallContext&, std::span<const std::uint8_t> buf,
                              std::uint64_t off) {
  if (!writable()) return SysResult::err(EBADF);
  std::vector<std::uint8_t> copy(buf.begin(), buf.end());
  return rw(copy.data(), copy.size(), off, true);
}

Result<std::uint64_t> ProcMemFile::lseek(std::int64_t off, int whence) {
  return mem_lseek(pos_, off, whence);
}

// ---- PROCMAP_QUERY ----

namespace {

// struct procmap_query (include/uapi/linux/fs.h), 104 bytes.
struct ProcmapQueryArg {
  std::uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
      vma_offset, inode;
  std::uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  std::uint64_t vma_name_addr, build_id_addr;
};
static_assert(sizeof(ProcmapQueryArg) == 104);
constexpr std::uint64_t kProcmapQuery = 0xc0686611;  // _IOWR('f', 17, struct procmap_query)
constexpr std::size_t kPathMax = 4096;

}  // namespace

SysResult procmap_ioctl(SyscallContext& ctx, const std::weak_ptr<AddressSpace>& as,
                        std::uint64_t request, std::uint64_t arg) {
  if (request != kProcmapQuery) return SysResult::err(ENOTTY);  // -ENOIOCTLCMD
  auto usize = ctx.read_obj<std::uint64_t>(arg);
  if (!usize) return SysResult::err(EFAULT);
  if (*usize > PAGE_SIZE) return SysResult::err(E2BIG);
  if (*usize < offsetof(ProcmapQueryArg, query_addr) + 8) return SysResult::err(EINVAL);
  // copy_struct_from_user: a larger struct is fine if its tail is zero.
  ProcmapQueryArg q{};
  const std::size_t n = std::min<std::size_t>(*usize, sizeof q);
  if (!ctx.read(arg, &q, n)) return SysResult::err(EFAULT);
  if (*usize > sizeof q) {
    std::vector<std::uint8_t> tail(*usize - sizeof q);
    if (!ctx.read(arg + sizeof q, tail.data(), tail.size())) return SysResult::err(EFAULT);
    if (std::any_of(tail.begin(), tail.end(), [](std::uint8_t b) { return b != 0; }))
      return SysResult::err(E2BIG);
  }
  if (q.query_flags & ~PROCMAP_QUERY_VALID_FLAGS_MASK) return SysResult::err(EINVAL);
  if ((q.vma_name_size != 0) != (q.vma_name_addr != 0)) return SysResult::err(EINVAL);
  if ((q.build_id_size != 0) != (q.build_id_addr != 0)) return SysResult::err(EINVAL);
  std::shared_ptr<AddressSpace> hold;
  Mm* mm = mm_of(as, hold);
  if (!mm) return SysResult::err(ESRCH);
  auto v = procmap_query_vma(*mm, q.query_addr, q.query_flags);
  if (!v) return SysResult::err(v.error().code);
  q.vma_start = v->start;
  q.vma_end = v->end;
  q.vma_flags = v->vma_flags;
  q.vma_page_size = v->page_size;
  q.vma_offset = v->offset;
  q.dev_major = v->dev_major;
  q.dev_minor = v->dev_minor;
  q.inode = v->inode;
  std::optional<std::vector<std::uint8_t>> build_id;
  if (q.build_id_size) {
    if (const Vma* vma = mm->vma_lookup(v->start)) build_id = vma_build_id(*vma);
    if (!build_id) {
      q.build_id_size = 0;  // build_id_parse failed: no error, no id
    } else {
      if (q.build_id_size < build_id->size()) return SysResult::err(ENAMETOOLONG);
      q.build_id_size = static_cast<std::uint32_t>(build_id->size());
    }
  }
  if (q.vma_name_size) {
    const std::size_t buf_sz = std::min<std::size_t>(kPathMax, q.vma_name_size);
    const std::size_t name_sz = v->name.empty() ? 0 : v->name.size() + 1;
    if (name_sz > buf_sz) return SysResult::err(ENAMETOOLONG);
    q.vma_name_size = static_cast<std::uint32_t>(name_sz);
    if (name_sz && !ctx.write(q.vma_name_addr, v->name.c_str(), name_sz))
      return SysResult::err(EFAULT);
  }
  if (q.build_id_size && !ctx.write(q.build_id_addr, build_id->data(), q.build_id_size))
    return SysResult::err(EFAULT);
  if (!ctx.write(arg, &q, n)) return SysResult::err(EFAULT);
  return SysResult::ok(0);
}

}  // namespace mmemu
