// Generated read-only files: /proc/PID/{maps,smaps,smaps_rollup,comm,cmdline,environ,...}
// of guest processes, the system-wide /proc files (emu/fs/proc_system.hpp) and snapshots of
// host pseudo-files (/proc/filesystems, /sys/...). Like a
// seq_file, the text is produced when a read starts at offset 0 (or when nothing has been
// produced yet) and later reads continue in that text; lseek takes SEEK_SET and SEEK_CUR.
// Such files cannot be mapped (ENODEV).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "emu/fs/fd.hpp"

namespace mmemu {

class GeneratedFile final : public OpenFile {
 public:
  // Returns the text, or nullopt when the source is gone (a process that exited: reads
  // then return 0, like a proc file whose mm is gone).
  using Generator = std::function<std::optional<std::string>()>;
  GeneratedFile(int flags, std::string path, Generator gen, FileStat st);

  std::string_view kind() const override { return "proc"; }
  std::string path() const override { return path_; }
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult pread(SyscallContext& ctx, std::span<std::uint8_t> buf, std::uint64_t off) override;
  Result<std::uint64_t> lseek(std::int64_t off, int whence) override;
  Result<FileStat> stat() const override { return st_; }
  // An ioctl handler (/proc/PID/maps answers PROCMAP_QUERY); without one, ENOTTY.
  using Ioctl = std::function<SysResult(SyscallContext&, std::uint64_t, std::uint64_t)>;
  void set_ioctl(Ioctl f) { ioctl_ = std::move(f); }
  SysResult ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) override;

 private:
  const std::string& text_for(std::uint64_t off);
  Ioctl ioctl_;
  std::string path_;
  Generator gen_;
  FileStat st_;
  std::optional<std::string> text_;
};

struct AddressSpace;
class Process;

// The generated /proc/PID texts.
enum class ProcText : std::uint8_t {
  Maps,
  Smaps,
  SmapsRollup,
  Cmdline,
  Environ,
  Comm,
  Status,
  Stat,
  Statm,
  Limits
};
// maps, smaps, smaps_rollup (vma/proc_maps.hpp), cmdline and environ (the argument and
// environment strings in guest memory) of an address space; nullopt when it is gone.
std::optional<std::string> proc_pid_text(const std::shared_ptr<AddressSpace>& as, ProcText what);
// comm, status (Linux's fields in its order, memory ones from the mm counters and page
// tables), stat (52 fields), statm and limits.
std::string proc_process_text(Process& p, ProcText what);

// st of a /proc file: S_IFREG|mode on procfs, size 0 (what this machine shows).
FileStat proc_file_stat(std::uint32_t mode, std::uint64_t ino);

}  // namespace mmemu
