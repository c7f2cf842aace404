// The system-call contract. Both ABIs' numbers map to one generic `Sys` (the table in
// emu/syscalls/syscall_table.inc lists every Linux call of x86_64 and arm64); a handler is written
// once against a SyscallContext and registered for that Sys. The dispatcher (kernel side):
// - stops the CPU at every system call: handlers run outside the emulator's hooks and may
//   do anything (mm operations flush the TLB, copy_to_user faults pages in, ...);
// - reads the number and six arguments, finds the handler, calls it, and acts on the
//   SysResult: Return -> the value goes to rax/x0; Block -> the process sleeps and the
//   handler is called again with the same arguments (ctx.retry > 0) when woken;
//   NoReturn -> registers are left alone;
// - answers -ENOSYS for a number without a handler and logs it once per number;
// - after the call: --check validation, `syscall:NAME` dumps, the trace event, and
//   delivery of pending signals (a blocked call interrupted by a caught signal returns
//   -EINTR or is restarted per SysResult's Restart).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "emu/kernel/kernel.hpp"
#include "emu/kernel/process.hpp"
#include "emu/syscalls/sys_result.hpp"

namespace mmemu {

enum class Sys : std::uint16_t {
#define X(name, x86_64_nr, arm64_nr) name,
#include "emu/syscalls/syscall_table.inc"
#undef X
  mmemu_dump,  // mmemu's reserved call 0x6d6d (both ABIs): dump with the guest's label
  kCount
};
inline constexpr std::uint64_t kMmemuDumpNr = 0x6d6d;

std::string_view sys_name(Sys s);                      // "openat"
std::optional<Sys> sys_from_name(std::string_view n);  // inverse of sys_name
// The generic call for an architecture's number; nullopt when the ABI has no such number.
std::optional<Sys> sys_from_number(Arch arch, std::uint64_t nr);
std::optional<std::uint64_t> sys_number(Arch arch, Sys s);  // nullopt: not in this ABI

struct SyscallContext {
  Kernel& kernel;
  Process& proc;
  Sys sys;
  std::uint64_t nr;  // the architecture's number
  std::array<std::uint64_t, 6> args;
  unsigned retry = 0;             // 0 on the first attempt, n after n wake-ups of a blocked call
  std::uint64_t deadline_ns = 0;  // on a retry: the deadline the call blocked with (0: none)

  Arch arch() const { return proc.arch; }
  Mm& mm() const { return proc.mm(); }
  std::uint64_t arg(unsigned i) const { return args[i]; }
  int arg_int(unsigned i) const { return static_cast<int>(args[i]); }  // C int arguments

  // Guest memory through the page tables (faulting pages in like the kernel's uaccess).
  // EFAULT where the guest could not access it; a write that faults part-way has written
  // the bytes before the fault.
  Result<void> read(vaddr_t src, void* dst, std::size_t n) const;
  Result<void> write(vaddr_t dst, const void* src, std::size_t n) const;
  // A NUL-terminated string of at most max bytes before the NUL: EFAULT, or ENAMETOOLONG
  // when no NUL is found within max.
  Result<std::string> read_string(vaddr_t src, std::size_t max = 4096) const;
  template <class T>
  Result<T> read_obj(vaddr_t src) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    if (auto r = read(src, &v, sizeof v); !r) return std::unexpected(r.error());
    return v;
  }
  template <class T>
  Result<void> write_obj(vaddr_t dst, const T& v) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(dst, &v, sizeof v);
  }
};

// The process a pid argument names: 0 or the caller's own pid is the caller; zombies
// included (they keep their pid until reaped); nullptr (ESRCH) for no such process.
Process* pid_or_self(SyscallContext& ctx, int pid);

using SyscallFn = SysResult (*)(SyscallContext&);

class SyscallTable {
 public:
  // Registers fn for s. A call has one handler: a second registration is refused (false),
  // the first handler stays, and the call is listed in duplicates() so that
  // make_syscall_table can stop rather than let one group silently win over another.
  bool add(Sys s, SyscallFn fn);
  SyscallFn find(Sys s) const { return fns_[static_cast<std::size_t>(s)]; }
  std::size_t size() const;  // calls with a handler
  const std::vector<Sys>& duplicates() const { return duplicates_; }

 private:
  std::array<SyscallFn, static_cast<std::size_t>(Sys::kCount)> fns_{};
  std::vector<Sys> duplicates_;
};

// Handlers live in several files, one per group; each registers its group here. No two
// groups register the same call: make_syscall_table stops mmemu with the call's name if
// they do (a defect in mmemu, caught by every test that starts a kernel).
void register_process_syscalls(SyscallTable& t);  // emu/syscalls/process.cpp
void register_signal_syscalls(SyscallTable& t);   // emu/syscalls/signal.cpp
void register_mem_syscalls(SyscallTable& t);      // emu/syscalls/mem.cpp
void register_shm_syscalls(SyscallTable& t);    // emu/syscalls/shm.cpp, from register_mem_syscalls
void register_file_syscalls(SyscallTable& t);   // emu/syscalls/file.cpp
void register_time_syscalls(SyscallTable& t);   // emu/syscalls/time.cpp
void register_misc_syscalls(SyscallTable& t);   // emu/syscalls/misc.cpp
void register_sched_syscalls(SyscallTable& t);  // emu/syscalls/sched.cpp

// AF_UNIX sockets (emu/syscalls/socket.cpp); sendfile, copy_file_range (emu/syscalls/sendfile.cpp).
void register_socket_syscalls(SyscallTable& t);
void register_sendfile_syscalls(SyscallTable& t);
// pidfd_open, pidfd_send_signal, pidfd_getfd, process_mrelease, process_madvise
// (emu/syscalls/pidfd.cpp).
void register_pidfd_syscalls(SyscallTable& t);
std::unique_ptr<SyscallTable> make_syscall_table();

}  // namespace mmemu
