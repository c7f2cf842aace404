// /proc/PID/pagemap, /proc/PID/mem and the PROCMAP_QUERY ioctl of /proc/PID/maps (Linux
// 6.18's fs/proc/task_mmu.c and fs/proc/base.c). Each open file holds the address space
// it was opened on (proc_mem_open), not the process: after the process execs or exits,
// reads see the old mm, or nothing once it is gone (pagemap and mem read 0 bytes,
// PROCMAP_QUERY answers ESRCH). The entries, the forced accesses and the VMA look-up are in
// vma/pagemap.hpp and vma/access_remote.hpp; these classes add Linux's file semantics:
// - pagemap: 8-byte entries, offset and count multiples of 8 (else EINVAL), pos + count
//   must not overflow (EINVAL), the PFN only if the opener had CAP_SYS_ADMIN, lseek as
//   mem_lseek (SEEK_SET/SEEK_CUR to any position, the raw value returned), ioctl EINVAL
//   (PAGEMAP_SCAN is not modelled: ENOTTY, what a kernel without it answers).
// - mem: read/write/pread/pwrite at guest addresses through access_remote_vm with
//   FOLL_FORCE; EIO when nothing could be done, a short count when a later page fails;
//   positions are unsigned (FMODE_UNSIGNED_OFFSET).
// Failures are errno values; nothing here can crash on a guest's offset or argument.
#pragma once

#include <cstdint>
#include <memory>

#include "emu/fs/fd.hpp"

namespace mmemu {

struct AddressSpace;
class Process;

// proc_mem_open's permission check (ptrace_may_access, simplified): a process may open its
// own files; another process's only with the same real, effective and saved uid, or with
// CAP_SYS_PTRACE. EACCES otherwise.
Result<void> proc_mem_permitted(const Process& opener, const Process& target);

class PagemapFile final : public OpenFile {
 public:
  PagemapFile(int flags, std::weak_ptr<AddressSpace> as, bool show_pfn, FileStat st);
  std::string_view kind() const override { return "proc"; }
  std::string path() const override { return path_; }
  void set_path(std::string p) { path_ = std::move(p); }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override { return st_; }
  SysResult ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) override;

 private:
  std::weak_ptr<AddressSpace> as_;
  bool show_pfn_;
  FileStat st_;
  std::string path_;
};

class ProcMemFile final : public OpenFile {
 public:
  ProcMemFile(int flags, std::weak_ptr<AddressSpace> as, FileStat st);
  std::string_view kind() const override { return "proc"; }
  std::string path() const override { return path_; }
  void set_path(std::string p) { path_ = std::move(p); }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  SysResult pwrite(SyscallContext& ctx, std::span<const std::uint8_t> buf,
                   std::uint64_t off) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override { return st_; }

 private:
  SysResult rw(std::uint8_t* buf, std::size_t n, std::uint64_t off, bool write);
  std::weak_ptr<AddressSpace> as_;
  FileStat st_;
  std::string path_;
};

// The PROCMAP_QUERY ioctl (_IOWR('f', 17, struct procmap_query)) on an open maps file of
// `as`: do_procmap_query with its argument checks, the build id (vma_build_id) and the name
// copied out. ENOTTY for any other request.
SysResult procmap_ioctl(SyscallContext& ctx, const std::weak_ptr<AddressSpace>& as,
                        std::uint64_t request, std::uint64_t arg);

}  // namespace mmemu
