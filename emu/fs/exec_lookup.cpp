// open_exec and load_script's "#!" parsing.
#include "emu/fs/exec_lookup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "emu/fs/shmem_file.hpp"
#include "emu/kernel/kernel.hpp"
#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

ExecFile::ExecFile(ExecTarget t, std::string filename, bool fd_path, bool inaccessible)
    : file_(t.file),
      path_(std::move(t.path)),
      st_(t.st),
      filename_(std::move(filename)),
      fd_path_(fd_path),
      inaccessible_(inaccessible) {}

ExecFile::~ExecFile() {
  if (file_) file_->put();
}

ExecFile::ExecFile(ExecFile&& o) noexcept
    : file_(std::exchange(o.file_, nullptr)),
      path_(std::move(o.path_)),
      st_(o.st_),
      filename_(std::move(o.filename_)),
      fd_path_(o.fd_path_),
      inaccessible_(o.inaccessible_),
      copy_(std::move(o.copy_)) {}

ExecFile& ExecFile::operator=(ExecFile&& o) noexcept {
  if (this != &o) {
    if (file_) file_->put();
    file_ = std::exchange(o.file_, nullptr);
    path_ = std::move(o.path_);
    st_ = o.st_;
    filename_ = std::move(o.filename_);
    fd_path_ = o.fd_path_;
    inaccessible_ = o.inaccessible_;
    copy_ = std::move(o.copy_);
  }
  return *this;
}

File* ExecFile::release() {
  return std::exchange(file_, nullptr);
}

std::string ExecFile::dentry_name() const {
  std::string name = path_.substr(path_.find_last_of('/') + 1);
  constexpr std::string_view kDeleted = " (deleted)";
  if (name.ends_with(kDeleted)) name.resize(name.size() - kDeleted.size());
  return name;
}

std::vector<std::uint8_t> ExecFile::head(std::size_t n) const {
  if (!file_->shmem()) {
    const auto& d = file_->data();
    return {d.begin(), d.begin() + static_cast<std::ptrdiff_t>(std::min(n, d.size()))};
  }
  std::vector<std::uint8_t> out(std::min<std::uint64_t>(n, file_->size()));
  out.resize(shmem_file_read(*file_, 0, out));
  return out;
}

std::span<const std::uint8_t> ExecFile::bytes() {
  if (!file_->shmem()) return file_->data();
  if (copy_.size() != file_->size()) {
    copy_.resize(file_->size());
    copy_.resize(shmem_file_read(*file_, 0, copy_));
  }
  return copy_;
}

namespace {

// inode_permission(MAY_EXEC) for a regular file: root needs one x bit, others the bit of
// their class. A host file asks the host (mmemu runs with the guest's credentials); a
// file the guest created is its own (the owner's bit).
Result<void> may_exec(SyscallContext& ctx, const ExecTarget& t) {
  if (t.host) {
    if (::access(t.path.c_str(), X_OK) != 0) return fail(EACCES);
    return {};
  }
  const std::uint32_t mode = t.st.mode;
  const Credentials& c = ctx.proc.cred;
  std::uint32_t bit = 0001;
  if (c.euid == 0) {
    bit = 0111;
  } else if (t.st.uid == c.euid) {
    bit = 0100;
  } else if (t.st.gid == c.egid) {
    bit = 0010;
  }
  if (!(mode & bit)) return fail(EACCES);
  return {};
}

// deny_write_access: a file open for writing somewhere cannot run (ETXTBSY). Only files
// the guest created can be written; a memfd's descriptors do not count (memfd_create's file
// takes no write access).
bool open_for_writing(SyscallContext& ctx, const File* file) {
  std::vector<Process*> procs = ctx.kernel.processes();
  if (std::find(procs.begin(), procs.end(), &ctx.proc) == procs.end()) procs.push_back(&ctx.proc);
  for (Process* q : procs) {
    if (!q->fds) continue;
    for (int fd : q->fds->open_fds()) {
      const auto* sf = dynamic_cast<const ShmemFile*>(q->fds->get(fd).get());
      if (sf && sf->inode()->file == file && (sf->flags() & O_ACCMODE) != O_RDONLY && !sf->memfd())
        return true;
    }
  }
  return false;
}

bool blank(std::uint8_t c) {
  return c == ' ' || c == '\t';
}

}  // namespace

Result<ExecFile> open_exec(SyscallContext& ctx, int dirfd, const std::string& path, int flags) {
  if (flags & ~(kAtEmptyPath | kAtSymlinkNofollow)) return fail(EINVAL);
  const bool empty = path.empty() && (flags & kAtEmptyPath);
  auto abs = resolve_at(ctx, dirfd, path, (flags & kAtEmptyPath) != 0);
  if (!abs) return std::unexpected(abs.error());
  Result<ExecTarget> t = fail(ENOENT);
  if (empty && dirfd == kAtFdcwd) {
    t = exec_target(ctx, ctx.proc.fs.cwd, true);  // the working directory: EACCES
  } else if (empty) {
    OpenFileRef f = ctx.proc.fds ? ctx.proc.fds->get(dirfd) : nullptr;
    if (!f) return fail(EBADF);
    t = exec_target_of(ctx, f);
  } else {
    t = exec_target(ctx, *abs, !(flags & kAtSymlinkNofollow));
  }
  if (!t) return std::unexpected(t.error());
  // From here the reference is the ExecFile's (put on every early return).
  const bool fd_relative = dirfd != kAtFdcwd && !path.starts_with('/');
  std::string filename = path;
  if (fd_relative)
    filename = empty ? fmt::format("/dev/fd/{}", dirfd) : fmt::format("/dev/fd/{}/{}", dirfd, path);
  const bool inaccessible = fd_relative && ctx.proc.fds && ctx.proc.fds->cloexec(dirfd);
  ExecTarget target = *t;
  if (auto r = may_exec(ctx, target); !r) {
    target.file->put();
    return std::unexpected(r.error());
  }
  if (target.file->shmem() && open_for_writing(ctx, target.file)) {
    target.file->put();
    return fail(ETXTBSY);
  }
  return ExecFile(std::move(target), std::move(filename), empty, inaccessible);
}

std::optional<Result<Shebang>> parse_shebang(std::span<const std::uint8_t> head) {
  if (head.size() < 2 || head[0] != '#' || head[1] != '!') return std::nullopt;
  // The kernel's buffer: the first kBinprmBufSize bytes, zero-filled, its last byte a NUL.
  std::array<std::uint8_t, kBinprmBufSize> buf{};
  std::copy_n(head.begin(), std::min(head.size(), kBinprmBufSize), buf.begin());
  const std::size_t buf_end = kBinprmBufSize - 1;
  std::size_t end = 0;
  if (auto nl = std::find(buf.begin(), buf.end(), '\n'); nl != buf.end()) {
    end = static_cast<std::size_t>(nl - buf.begin());
  } else {
    // No newline: the name must end (blank or NUL) inside the buffer, or it was cut off.
    std::size_t i = 2;
    while (i < buf_end && blank(buf[i]))
      ++i;
    if (i == buf_end) return Result<Shebang>(fail(ENOEXEC));
    while (i < buf_end && !blank(buf[i]) && buf[i] != 0)
      ++i;
    if (i == buf_end) return Result<Shebang>(fail(ENOEXEC));
    end = buf_end;
  }
  while (end > 2 && blank(buf[end - 1]))
    --end;
  std::size_t name = 2;
  while (name < end && blank(buf[name]))
    ++name;
  if (name >= end) return Result<Shebang>(fail(ENOEXEC));
  // C strings from here: a NUL ends the name or the argument.
  auto cstr = [&](std::size_t from, std::size_t to) {
    std::string s(reinterpret_cast<const char*>(buf.data() + from), to - from);
    return s.substr(0, s.find('\0'));
  };
  std::size_t sep = name;
  while (sep < end && !blank(buf[sep]) && buf[sep] != 0)
    ++sep;
  Shebang out;
  out.interp = cstr(name, sep);
  if (sep < end && buf[sep] != 0) {
    std::size_t arg = sep;
    while (arg < end && blank(buf[arg]))
      ++arg;
    if (arg < end) out.arg = cstr(arg, end);
  }
  return Result<Shebang>(std::move(out));
}

}  // namespace mmemu
