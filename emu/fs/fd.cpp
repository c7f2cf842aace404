// Open-file defaults, the stdio pass-through and the descriptor table.
#include "emu/fs/fd.hpp"

#include <bit>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "emu/kernel/host_signals.hpp"
#include "emu/kernel/process.hpp"
#include "emu/syscalls/abi.hpp"
#include "emu/syscalls/syscall.hpp"

namespace mmemu {

bool OpenFile::readable() const {
  int acc = flags_ & O_ACCMODE;
  return acc == O_RDONLY || acc == O_RDWR;
}

bool OpenFile::writable() const {
  int acc = flags_ & O_ACCMODE;
  return acc == O_WRONLY || acc == O_RDWR;
}

SysResult OpenFile::read(SyscallContext&, std::span<std::uint8_t>) {
  return SysResult::err(readable() ? EINVAL : EBADF);
}

SysResult OpenFile::write(SyscallContext&, std::span<const std::uint8_t>) {
  return SysResult::err(writable() ? EINVAL : EBADF);
}

SysResult OpenFile::pread(SyscallContext&, std::span<std::uint8_t>, std::uint64_t) {
  return SysResult::err(ESPIPE);
}

SysResult OpenFile::pwrite(SyscallContext& ctx, std::span<const std::uint8_t> buf, std::uint64_t) {
  return write(ctx, buf);
}

Result<void> OpenFile::truncate(std::uint64_t) {
  return fail(EINVAL);
}

Result<std::uint64_t> OpenFile::lseek(std::int64_t, int) {
  return fail(ESPIPE);
}

Result<std::uint64_t> OpenFile::seq_lseek(std::int64_t off, int whence) {
  if (whence != SEEK_SET && whence != SEEK_CUR) return fail(EINVAL);
  return file_llseek(off, whence, 0, nullptr);
}

Result<std::uint64_t> OpenFile::file_llseek(
    std::int64_t off, int whence, std::uint64_t size,
    const std::function<Result<std::uint64_t>(std::uint64_t, bool)>& data_hole) {
  std::int64_t base = 0;
  switch (whence) {
    case SEEK_SET:
      break;
    case SEEK_CUR:
      base = static_cast<std::int64_t>(pos_);
      break;
    case SEEK_END:
      base = static_cast<std::int64_t>(size);
      break;
    case SEEK_DATA:
    case SEEK_HOLE: {
      if (off < 0 || static_cast<std::uint64_t>(off) >= size || !data_hole) return fail(ENXIO);
      auto r = data_hole(static_cast<std::uint64_t>(off), whence == SEEK_DATA);
      if (!r) return r;
      pos_ = *r;
      return pos_;
    }
    default:
      return fail(EINVAL);
  }
  std::int64_t target = 0;
  if (__builtin_add_overflow(base, off, &target) || target < 0) return fail(EINVAL);
  pos_ = static_cast<std::uint64_t>(target);
  return pos_;
}

SysResult OpenFile::ioctl(SyscallContext&, std::uint64_t, std::uint64_t) {
  return SysResult::err(ENOTTY);
}

unsigned OpenFile::poll(WaitQueue** wq) {
  *wq = nullptr;
  return 0x1 | 0x4 | 0x40 | 0x100;
}

// ---- HostStdio ----

HostStdio::HostStdio(int host_fd, int flags)
    : OpenFile(flags), host_fd_(host_fd), is_tty_(::isatty(host_fd) == 1) {}

std::string_view HostStdio::kind() const {
  return "tty";
}

std::string HostStdio::path() const {
  char buf[256];
  std::string link = "/proc/self/fd/" + std::to_string(host_fd_);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return "/dev/null";
  return std::string(buf, static_cast<std::size_t>(n));
}

SysResult HostStdio::read(SyscallContext& ctx, std::span<std::uint8_t> buf) {
  if (!readable()) return SysResult::err(EBADF);
  for (;;) {
    // Wait for input beside the host signal pipe. A signal sent to mmemu, or one the guest
    // has pending, ends the wait: the call then sleeps (as a read with no data) so that
    // the kernel can forward the signal and the signal interrupt the read; it reads again
    // when woken.
    const bool guest_signal = ctx.proc.sig.next_deliverable() != 0;
    pollfd w[2] = {{host_fd_, POLLIN, 0}, {host_signals::wake_fd(), POLLIN, 0}};
    const int ready = ::poll(w, w[1].fd >= 0 ? 2 : 1, guest_signal ? 0 : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready >= 0 && !w[0].revents)
      return SysResult::block_until(host_monotonic_ns(), nullptr, Restart::IfSaRestart);
    ssize_t n = ::read(host_fd_, buf.data(), buf.size());
    if (n >= 0) return SysResult::ok(static_cast<std::uint64_t>(n));
    if (errno != EINTR) return SysResult::err(errno);
  }
}

SysResult HostStdio::write(SyscallContext&, std::span<const std::uint8_t> buf) {
  if (!writable()) return SysResult::err(EBADF);
  for (;;) {
    ssize_t n = ::write(host_fd_, buf.data(), buf.size());
    if (n >= 0) return SysResult::ok(static_cast<std::uint64_t>(n));
    if (errno != EINTR) return SysResult::err(errno);
  }
}

Result<FileStat> HostStdio::stat() const {
  struct ::stat st;
  if (::fstat(host_fd_, &st) != 0) return fail(errno);
  return file_stat_from_host(st);
}

SysResult HostStdio::ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) {
  // Only the terminal queries glibc makes (isatty via TCGETS, window size) are answered,
  // and only when the host descriptor really is a terminal.
  if (!is_tty_) return SysResult::err(ENOTTY);
  if (request == TCGETS) {
    struct termios t;
    if (::tcgetattr(host_fd_, &t) != 0) return SysResult::err(errno);
    // The kernel's struct termios (without the speed fields glibc's has at the end).
    std::uint8_t k[36] = {};
    std::memcpy(k, &t, sizeof k);
    return SysResult::from(ctx.write(arg, k, sizeof k));
  }
  if (request == TIOCGWINSZ) {
    struct winsize w;
    if (::ioctl(host_fd_, TIOCGWINSZ, &w) != 0) return SysResult::err(errno);
    return SysResult::from(ctx.write(arg, &w, sizeof w));
  }
  return SysResult::err(ENOTTY);
}

// ---- FdTable ----

namespace {
// alloc_fdtable's size for a table that must hold fd: whole KiB of pointers, rounded up
// to a power of two (128, 256, 512, ... slots on a 64-bit kernel).
int fdtable_size_for(int fd) {
  constexpr int kPerKiB = 1024 / 8;
  const unsigned units = std::bit_ceil(static_cast<unsigned>(fd / kPerKiB) + 1);
  return static_cast<int>(units) * kPerKiB;
}
}  // namespace

void FdTable::expand_files(int fd) {
  if (fd >= table_size_) table_size_ = fdtable_size_for(fd);
}

FdTable FdTable::dup_fd(const FdTable& parent) {
  FdTable t = parent;
  t.table_size_ = kNrOpenDefault;
  // sane_fdtable_size: the open fds' span, rounded up to whole longs of the bitmap.
  const std::vector<int> open = parent.open_fds();
  if (!open.empty()) {
    const int span = (open.back() + 64) / 64 * 64;
    if (span > t.table_size_) t.table_size_ = fdtable_size_for(span - 1);
  }
  return t;
}

Result<int> FdTable::install(OpenFileRef f, bool cloexec, int lowest) {
  if (lowest < 0) return fail(EINVAL);
  for (int fd = lowest; fd < max_fds_; ++fd) {
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 1);
    Entry& e = fds_[static_cast<std::size_t>(fd)];
    if (!e.file) {
      e.file = std::move(f);
      e.cloexec = cloexec;
      expand_files(fd);
      return fd;
    }
  }
  return fail(EMFILE);
}

Result<void> FdTable::install_at(int fd, OpenFileRef f, bool cloexec) {
  if (fd < 0 || fd >= max_fds_) return fail(EBADF);
  if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 1);
  Entry& e = fds_[static_cast<std::size_t>(fd)];
  OpenFileRef old = std::move(e.file);  // released after the slot is updated
  e.file = std::move(f);
  e.cloexec = cloexec;
  expand_files(fd);
  return {};
}

OpenFileRef FdTable::get(int fd) const {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return nullptr;
  return fds_[static_cast<std::size_t>(fd)].file;
}

bool FdTable::cloexec(int fd) const {
  if (!is_open(fd)) return false;
  return fds_[static_cast<std::size_t>(fd)].cloexec;
}

Result<void> FdTable::set_cloexec(int fd, bool on) {
  if (!is_open(fd)) return fail(EBADF);
  fds_[static_cast<std::size_t>(fd)].cloexec = on;
  return {};
}

Result<void> FdTable::close(int fd) {
  if (!is_open(fd)) return fail(EBADF);
  OpenFileRef old = std::move(fds_[static_cast<std::size_t>(fd)].file);
  fds_[static_cast<std::size_t>(fd)].cloexec = false;
  return {};
}

void FdTable::close_on_exec() {
  for (auto& e : fds_)
    if (e.file && e.cloexec) {
      e.file.reset();
      e.cloexec = false;
    }
}

void FdTable::close_all() {
  // Moved out first: an OpenFile's destructor may wake processes that look at this table.
  std::vector<Entry> old = std::move(fds_);
  fds_.clear();
  old.clear();
}

std::vector<int> FdTable::open_fds() const {
  std::vector<int> v;
  for (std::size_t i = 0; i < fds_.size(); ++i)
    if (fds_[i].file) v.push_back(static_cast<int>(i));
  return v;
}

}  // namespace mmemu
