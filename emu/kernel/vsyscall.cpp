// emulate_vsyscall: x86-64's legacy vsyscall page as Linux serves it in vsyscall=xonly and
// vsyscall=emulate modes (arch/x86/entry/vsyscall/vsyscall_64.c). A call to one of the
// three entries faults on the instruction fetch (xonly: no entry; emulate: the entry is NX);
// the kernel runs the system call with the caller's registers and then does what the `ret`
// would: rip from the stack, rsp + 8. Anything else aimed at the page is SIGSEGV.
#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/fault.hpp"

namespace mmemu {

namespace {

constexpr std::int64_t kEfault = 14;

// addr_to_vsyscall_nr: 0, 1, 2 for the entries at +0x0, +0x400, +0x800; -1 otherwise.
int vsyscall_nr(vaddr_t addr) {
  if ((addr & ~0xc00ULL) != kX86VsyscallPage) return -1;
  const int nr = static_cast<int>((addr & 0xc00) >> 10);
  return nr >= 3 ? -1 : nr;
}

struct Entry {
  Sys sys;
  std::uint64_t size0, size1;  // bytes written through rdi and rsi (0: no second pointer)
};
constexpr Entry kEntries[3] = {
    {Sys::gettimeofday, 16, 8},  // struct __kernel_old_timeval, struct timezone
    {Sys::time, 8, 0},           // __kernel_old_time_t
    {Sys::getcpu, 4, 4},         // unsigned cpu, unsigned node
};

SigInfo segv_info(int code, vaddr_t addr) {
  SigInfo info;
  info.signo = 11;
  info.code = code;
  info.addr = addr;
  return info;
}

// access_ok: [ptr, ptr + size) below TASK_SIZE_MAX (NULL passes).
bool user_range_ok(vaddr_t ptr, std::uint64_t size) {
  const std::uint64_t limit = arch_params(Arch::X86_64).task_size_max;
  return size <= limit && ptr <= limit - size;
}

}  // namespace

bool Kernel::emulate_vsyscall(Process& p, const MemFault& f) {
  if (p.arch != Arch::X86_64 || page_align_down(f.va) != kX86VsyscallPage) return false;
  // Data accesses are ordinary faults (no VMA: SEGV_MAPERR), readable or not.
  if (f.access != Access::Exec || opts_.vsyscall == VsyscallMode::None) return false;
  Cpu& cpu = *p.cpu;
  const int nr = vsyscall_nr(f.va);
  auto trace = [&](std::string_view outcome) {
    record("vsyscall", p.pid,
           {{"addr", fmt::format("{:#x}", f.va)}, {"nr", nr}, {"result", outcome}});
  };
  // The fetch's page fault is what the signal context reports.
  const std::uint64_t fetch_err = 0x14;  // X86_PF_USER | X86_PF_INSTR
  auto sigsegv = [&](std::string_view why) {
    trace(why);
    p.last_trap = {true, 14, fetch_err, f.va, 0};
    force_signal(p, segv_info(kSiKernel, 0));
    return true;
  };
  if (nr < 0) return sigsegv("misaligned");
  std::uint64_t caller = 0;
  if (!copy_from_user(p.mm(), &caller, cpu.sp(), sizeof caller)) return sigsegv("bad-stack");

  const Entry& e = kEntries[nr];
  const std::uint64_t di = cpu.syscall_arg(0), si = cpu.syscall_arg(1);
  // write_ok_or_segv: a pointer beyond user space is SEGV_MAPERR at the pointer, as if the
  // write had faulted there; the call is not made and the `ret` not emulated.
  for (const auto& [ptr, size] : {std::pair{di, e.size0}, std::pair{si, e.size1}}) {
    if (size == 0 || user_range_ok(ptr, size)) continue;
    trace("bad-pointer");
    p.last_trap = {true, 14, 0x6 /* X86_PF_USER | X86_PF_WRITE */, ptr, 0};
    force_signal(p, segv_info(kSegvMapErr, ptr));
    return true;
  }

  machine_.inject.set_context(fmt::format("pid {}: vsyscall {}", p.pid, sys_name(e.sys)));
  SyscallContext ctx{*this, p, e.sys, *sys_number(Arch::X86_64, e.sys), {di, si, 0, 0, 0, 0}, 0};
  const SysResult r = syscalls_->find(e.sys)(ctx);
  // A pointer that passed access_ok but could not be written: the kernel's copy failed, and
  // emulate_vsyscall kills the call with SIGSEGV (SI_KERNEL).
  if (r.is_return() && static_cast<std::int64_t>(r.value()) == -kEfault) return sigsegv("fault");
  cpu.set_syscall_ret(static_cast<std::uint64_t>(r.value()));
  cpu.set_pc(caller);
  cpu.set_sp(cpu.sp() + 8);
  trace("ok");
  return true;
}

}  // namespace mmemu
