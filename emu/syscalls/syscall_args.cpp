// The argument table of the traced system calls and its JSON rendering.
#include "emu/syscalls/syscall_args.hpp"

#include <fmt/format.h>

#include <cstring>

#include "mmu/walker.hpp"
#include "vma/mm.hpp"

namespace mmemu {

namespace {

// One row per implemented call: its arguments, one letter each, in the order of the C
// prototype (both ABIs), and whether it returns an address.
//   a address/pointer   x flags/mode/cmd (hex)   f fd   i int   u size/count   o offset
//   s string (path)
struct Row {
  Sys sys;
  const char* args;
  bool ret_addr = false;
};

// clang-format off
constexpr Row kRows[] = {
    {Sys::read, "fau"}, {Sys::write, "fau"}, {Sys::open, "sxx"}, {Sys::close, "f"},
    {Sys::stat, "sa"}, {Sys::fstat, "fa"}, {Sys::lstat, "sa"}, {Sys::poll, "aui"},
    {Sys::lseek, "foi"}, {Sys::mmap, "auxxfo", true}, {Sys::mprotect, "aux"},
    {Sys::munmap, "au"}, {Sys::brk, "a", true}, {Sys::rt_sigaction, "iaau"},
    {Sys::rt_sigprocmask, "iaau"}, {Sys::rt_sigreturn, ""}, {Sys::ioctl, "fxa"},
    {Sys::pread64, "fauo"}, {Sys::pwrite64, "fauo"}, {Sys::readv, "fau"}, {Sys::writev, "fau"},
    {Sys::access, "sx"}, {Sys::pipe, "a"}, {Sys::select, "iaaaa"}, {Sys::sched_yield, ""},
    {Sys::mremap, "auuxa", true}, {Sys::msync, "aux"}, {Sys::mincore, "aua"},
    {Sys::madvise, "aui"}, {Sys::shmget, "xux"}, {Sys::shmat, "iax", true},
    {Sys::shmctl, "iia"}, {Sys::dup, "f"}, {Sys::dup2, "ff"}, {Sys::pause, ""},
    {Sys::nanosleep, "aa"}, {Sys::getitimer, "ia"}, {Sys::alarm, "u"}, {Sys::setitimer, "iaa"},
    {Sys::getpid, ""}, {Sys::sendfile, "ffau"}, {Sys::socket, "ixi"}, {Sys::connect, "fau"},
    {Sys::accept, "faa"}, {Sys::sendto, "fauxau"}, {Sys::recvfrom, "fauxaa"},
    {Sys::sendmsg, "fax"}, {Sys::recvmsg, "fax"}, {Sys::shutdown, "fi"}, {Sys::bind, "fau"},
    {Sys::listen, "fi"}, {Sys::getsockname, "faa"}, {Sys::getpeername, "faa"},
    {Sys::socketpair, "ixia"}, {Sys::setsockopt, "fiiau"}, {Sys::getsockopt, "fiiaa"},
    // x86_64: flags, stack, parent_tid, child_tid, tls; arm64: ..., tls, child_tid.
    {Sys::clone, "xaaaa"}, {Sys::fork, ""}, {Sys::vfork, ""}, {Sys::execve, "saa"},
    {Sys::exit, "i"}, {Sys::wait4, "iaxa"}, {Sys::kill, "ii"}, {Sys::uname, "a"},
    {Sys::shmdt, "a"}, {Sys::fcntl, "fix"}, {Sys::fsync, "f"}, {Sys::fdatasync, "f"},
    {Sys::truncate, "so"}, {Sys::ftruncate, "fo"}, {Sys::getdents, "fau"}, {Sys::getcwd, "au"},
    {Sys::chdir, "s"}, {Sys::fchdir, "f"}, {Sys::rename, "ss"}, {Sys::mkdir, "sx"},
    {Sys::rmdir, "s"}, {Sys::creat, "sx"}, {Sys::link, "ss"}, {Sys::unlink, "s"},
    {Sys::symlink, "ss"}, {Sys::readlink, "sau"}, {Sys::chmod, "sx"}, {Sys::fchmod, "fx"},
    {Sys::chown, "sii"}, {Sys::fchown, "fii"}, {Sys::lchown, "sii"}, {Sys::umask, "x"},
    {Sys::gettimeofday, "aa"}, {Sys::getrlimit, "ia"}, {Sys::getrusage, "ia"},
    {Sys::sysinfo, "a"}, {Sys::times, "a"}, {Sys::getuid, ""}, {Sys::getgid, ""},
    {Sys::setuid, "i"}, {Sys::setgid, "i"}, {Sys::geteuid, ""}, {Sys::getegid, ""},
    {Sys::setpgid, "ii"}, {Sys::getppid, ""}, {Sys::getpgrp, ""}, {Sys::setsid, ""},
    {Sys::setreuid, "ii"}, {Sys::setregid, "ii"}, {Sys::getgroups, "ia"},
    {Sys::setgroups, "ia"}, {Sys::setresuid, "iii"}, {Sys::getresuid, "aaa"},
    {Sys::setresgid, "iii"}, {Sys::getresgid, "aaa"}, {Sys::getpgid, "i"},
    {Sys::setfsuid, "i"}, {Sys::setfsgid, "i"}, {Sys::getsid, "i"}, {Sys::capget, "aa"},
    {Sys::capset, "aa"}, {Sys::rt_sigpending, "au"}, {Sys::rt_sigtimedwait, "aaau"},
    {Sys::rt_sigqueueinfo, "iia"}, {Sys::rt_sigsuspend, "au"}, {Sys::sigaltstack, "aa"},
    {Sys::utime, "sa"}, {Sys::mknod, "sxx"}, {Sys::personality, "x"}, {Sys::statfs, "sa"},
    {Sys::fstatfs, "fa"}, {Sys::getpriority, "ii"}, {Sys::setpriority, "iii"},
    {Sys::sched_setparam, "ia"}, {Sys::sched_getparam, "ia"},
    {Sys::sched_setscheduler, "iia"}, {Sys::sched_getscheduler, "i"},
    {Sys::sched_get_priority_max, "i"}, {Sys::sched_get_priority_min, "i"},
    {Sys::mlock, "au"}, {Sys::munlock, "au"}, {Sys::mlockall, "x"}, {Sys::munlockall, ""},
    {Sys::prctl, "ixxxx"}, {Sys::arch_prctl, "xa"}, {Sys::setrlimit, "ia"}, {Sys::gettid, ""},
    {Sys::time, "a"}, {Sys::futex, "axuaau"}, {Sys::sched_setaffinity, "iua"},
    {Sys::sched_getaffinity, "iua"}, {Sys::getdents64, "fau"}, {Sys::set_tid_address, "a"},
    {Sys::clock_gettime, "ia"}, {Sys::clock_getres, "ia"}, {Sys::clock_nanosleep, "ixaa"},
    {Sys::exit_group, "i"}, {Sys::tgkill, "iii"}, {Sys::tkill, "ii"}, {Sys::utimes, "sa"},
    {Sys::waitid, "iiaxa"}, {Sys::ioprio_set, "iix"}, {Sys::ioprio_get, "ii"},
    {Sys::openat, "fsxx"}, {Sys::mkdirat, "fsx"}, {Sys::mknodat, "fsxx"},
    {Sys::fchownat, "fsiix"}, {Sys::futimesat, "fsa"}, {Sys::newfstatat, "fsax"},
    {Sys::unlinkat, "fsx"}, {Sys::renameat, "fsfs"}, {Sys::linkat, "fsfsx"},
    {Sys::symlinkat, "sfs"}, {Sys::readlinkat, "fsau"}, {Sys::fchmodat, "fsx"},
    {Sys::faccessat, "fsx"}, {Sys::pselect6, "iaaaaa"}, {Sys::ppoll, "auaau"},
    {Sys::set_robust_list, "au"}, {Sys::get_robust_list, "iaa"}, {Sys::splice, "fafaux"},
    {Sys::tee, "ffux"}, {Sys::utimensat, "fsax"}, {Sys::accept4, "faax"}, {Sys::dup3, "ffx"},
    {Sys::pipe2, "ax"}, {Sys::preadv, "fauoo"}, {Sys::pwritev, "fauoo"},
    {Sys::prlimit64, "iiaa"}, {Sys::getcpu, "aaa"}, {Sys::sched_setattr, "iax"},
    {Sys::sched_getattr, "iaux"}, {Sys::renameat2, "fsfsx"}, {Sys::getrandom, "aux"},
    {Sys::memfd_create, "sx"}, {Sys::execveat, "fsaax"}, {Sys::mlock2, "aux"},
    {Sys::copy_file_range, "fafaux"}, {Sys::preadv2, "fauoox"}, {Sys::pwritev2, "fauoox"},
    {Sys::statx, "fsxxa"}, {Sys::rseq, "auxx"}, {Sys::clone3, "au"},
    {Sys::close_range, "uux"}, {Sys::faccessat2, "fsxx"},
    // process file descriptors (emu/syscalls/pidfd.cpp)
    {Sys::pidfd_open, "ix"}, {Sys::pidfd_send_signal, "fiax"}, {Sys::pidfd_getfd, "ffx"},
    {Sys::process_mrelease, "fx"}, {Sys::process_madvise, "faiix"},
    // mmemu's own: dump(label, length); the label is not NUL-terminated.
    {Sys::mmemu_dump, "au"},
    {Sys::mseal, "aux"},
};
// clang-format on

ArgKind kind_of(char c) {
  switch (c) {
    case 'a':
      return ArgKind::Addr;
    case 'x':
      return ArgKind::Flags;
    case 'f':
      return ArgKind::Fd;
    case 'i':
      return ArgKind::Int;
    case 'u':
      return ArgKind::Size;
    case 'o':
      return ArgKind::Off;
    default:
      return ArgKind::String;
  }
}

struct Specs {
  std::array<SysArgSpec, static_cast<std::size_t>(Sys::kCount)> by_sys{};
  Specs() {
    for (const Row& r : kRows) {
      SysArgSpec& s = by_sys[static_cast<std::size_t>(r.sys)];
      s.known = true;
      s.ret_addr = r.ret_addr;
      s.count = static_cast<std::uint8_t>(std::strlen(r.args));
      for (std::size_t i = 0; i < s.count && i < 6; ++i)
        s.kinds[i] = kind_of(r.args[i]);
    }
  }
};

const Specs& specs() {
  static const Specs s;
  return s;
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

// Bytes as strace shows them: printable ASCII as is, anything else as \xNN (the trace is
// JSON: every string in it must be valid UTF-8).
std::string printable(std::string_view raw) {
  std::string s;
  for (const char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7f && b != '\\')
      s.push_back(c);
    else
      s += fmt::format("\\x{:02x}", b);
  }
  return s;
}

}  // namespace

const SysArgSpec& sys_arg_spec(Sys s) {
  return specs().by_sys[static_cast<std::size_t>(s)];
}

std::optional<std::string> peek_user_string(Mm& mm, std::uint64_t va, std::size_t max,
                                            bool* truncated) {
  std::string s;
  if (truncated) *truncated = false;
  while (s.size() < max) {
    const vaddr_t a = va + s.size();
    if (a < va) break;  // wrapped around the address space
    // Read access, no accessed-bit update, no fault: the guest's state stays as it was.
    const auto t = walk(mm.pt(), page_align_down(a), Access::Read, /*set_ad=*/false);
    if (!t) break;
    const std::uint8_t* page = mm.phys().frame(t->pfn);
    for (std::size_t off = a & (PAGE_SIZE - 1); off < PAGE_SIZE && s.size() < max; ++off) {
      if (page[off] == 0) return s;
      s.push_back(static_cast<char>(page[off]));
    }
  }
  if (s.empty() && max > 0) return std::nullopt;
  if (truncated) *truncated = true;
  return s;
}

nlohmann::json sys_args_json(Sys s, const std::array<std::uint64_t, 6>& args, Mm* mm) {
  const SysArgSpec& spec = sys_arg_spec(s);
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < spec.count; ++i) {
    const std::uint64_t v = args[i];
    switch (spec.kinds[i]) {
      case ArgKind::Addr:
      case ArgKind::Flags:
        out.push_back(hex(v));
        break;
      case ArgKind::Fd:
      case ArgKind::Int:
        out.push_back(static_cast<std::int32_t>(static_cast<std::uint32_t>(v)));
        break;
      case ArgKind::Size:
        out.push_back(v);
        break;
      case ArgKind::Off:
        out.push_back(static_cast<std::int64_t>(v));
        break;
      case ArgKind::String: {
        bool truncated = false;
        std::optional<std::string> str;
        if (mm && v != 0) str = peek_user_string(*mm, v, kTraceStringMax, &truncated);
        if (!str) {
          out.push_back(hex(v));
          break;
        }
        nlohmann::json j{{"addr", hex(v)}, {"str", printable(*str)}};
        if (truncated) j["truncated"] = true;
        out.push_back(std::move(j));
        break;
      }
    }
  }
  return out;
}

nlohmann::json sys_ret_json(Sys s, std::int64_t ret) {
  const bool error = ret < 0 && ret >= -4095;
  if (sys_arg_spec(s).ret_addr && !error) return hex(static_cast<std::uint64_t>(ret));
  return ret;
}

}  // namespace mmemu
