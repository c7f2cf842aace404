// execve's side of the file system (open_exec and binfmt_script's parsing): the file a
// path names, looked up in the guest's name space like open (emu/fs/path_lookup.hpp: the
// cwd or a directory descriptor, /proc/self/exe, /proc/self/fd/N, files guests created in
// memory, memfds through AT_EMPTY_PATH), with exec's checks: a regular file (EACCES
// otherwise, directories included) with an x bit the caller may use (EACCES), not open
// for writing (ETXTBSY, files guests created); the bytes the loader reads; and the "#!"
// line of a script.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "emu/fs/path_lookup.hpp"

namespace mmemu {

inline constexpr int kAtEmptyPath = 0x1000, kAtSymlinkNofollow = 0x100;
inline constexpr std::size_t kBinprmBufSize = 256;  // BINPRM_BUF_SIZE: the bytes #! may use

// An executable file, open: owns one reference to `file`.
class ExecFile {
 public:
  ExecFile(ExecTarget t, std::string filename, bool fd_path, bool inaccessible);
  ~ExecFile();
  ExecFile(ExecFile&& o) noexcept;
  ExecFile& operator=(ExecFile&& o) noexcept;
  ExecFile(const ExecFile&) = delete;
  ExecFile& operator=(const ExecFile&) = delete;

  File& file() const { return *file_; }
  File* release();  // the caller takes the reference
  // Canonical path: what /proc/PID/exe shows.
  const std::string& path() const { return path_; }
  const FileStat& stat() const { return st_; }
  // bprm->filename: the path as given, or "/dev/fd/N[/path]" for a descriptor-relative one
  // (AT_EXECFN, argv of a script's interpreter, comm).
  const std::string& filename() const { return filename_; }
  // Named through a descriptor with an empty path: comm is the file's own name.
  bool fd_path() const { return fd_path_; }
  // "/dev/fd/N" of a close-on-exec descriptor: the interpreter of a script could not open
  // it (BINPRM_FLAGS_PATH_INACCESSIBLE).
  bool inaccessible() const { return inaccessible_; }
  // The file's name as its directory entry has it (comm of an fexecve'd file).
  std::string dentry_name() const;
  // The first `n` bytes (fewer for a shorter file).
  std::vector<std::uint8_t> head(std::size_t n) const;
  // The whole contents (a host file's without a copy).
  std::span<const std::uint8_t> bytes();

 private:
  File* file_;
  std::string path_;
  FileStat st_;
  std::string filename_;
  bool fd_path_;
  bool inaccessible_;
  std::vector<std::uint8_t> copy_;  // a shmem file's contents, read once
};

// open_exec for execveat(dirfd, path, flags): flags other than AT_EMPTY_PATH and
// AT_SYMLINK_NOFOLLOW are EINVAL; ENOENT, ENOTDIR, ELOOP, EACCES, EBADF as Linux.
Result<ExecFile> open_exec(SyscallContext& ctx, int dirfd, const std::string& path, int flags);

// The "#!" line of a script (load_script): the interpreter and its one optional argument
// (the rest of the line, surrounding blanks trimmed).
struct Shebang {
  std::string interp;
  std::optional<std::string> arg;
};
// nullopt: not a script (no "#!"). ENOEXEC: "#!" with no interpreter, or an interpreter
// name running past the kBinprmBufSize bytes with no newline.
std::optional<Result<Shebang>> parse_shebang(std::span<const std::uint8_t> head);

}  // namespace mmemu
