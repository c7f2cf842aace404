// The system-call dispatcher: number -> handler, blocking and retrying, -ENOSYS reporting,
// and what follows every call (--check, syscall dumps, the trace).
#include <fmt/format.h>

#include <cerrno>

#include "emu/kernel/kernel.hpp"
#include "emu/syscalls/syscall.hpp"
#include "emu/syscalls/syscall_args.hpp"

namespace mmemu {

namespace {

constexpr std::uint64_t kEnosys = 38;

// Whether a call about to sleep must be interrupted instead: a deliverable signal is
// pending (signal_pending() in every interruptible wait), or SIGKILL for a killable one.
bool wait_interrupted(const Process& p, Restart restart) {
  const bool interruptible = restart != Restart::Uninterruptible || p.sig.is_pending(kSigKill);
  return interruptible && p.sig.next_deliverable() != 0;
}

}  // namespace

void Kernel::handle_syscall(Process& p) {
  Cpu& cpu = *p.cpu;
  const std::uint64_t nr = cpu.syscall_nr();
  std::array<std::uint64_t, 6> args{};
  for (unsigned i = 0; i < 6; ++i)
    args[i] = cpu.syscall_arg(i);
  const auto sys = sys_from_number(p.arch, nr);
  SyscallFn fn = sys ? syscalls_->find(*sys) : nullptr;
  if (!fn) {
    if (unknown_reported_.insert(nr).second) {
      log_.msg(fmt::format("unimplemented system call {} ({} number {}): returning ENOSYS",
                           sys ? sys_name(*sys) : std::string_view("?"), arch_name(p.arch), nr));
    }
    record("syscall_unknown", p.pid,
           {{"nr", nr}, {"name", sys ? sys_name(*sys) : std::string_view("?")}});
    cpu.set_syscall_ret(static_cast<std::uint64_t>(-static_cast<std::int64_t>(kEnosys)));
    return;
  }
  p.syscall_start_seq = trace_.seq();
  machine_.inject.set_context(fmt::format("pid {}: {}", p.pid, sys_name(*sys)));
  SyscallContext ctx{*this, p, *sys, nr, args, 0};
  const SysResult r = fn(ctx);
  finish_syscall(p, nr, static_cast<int>(*sys), r, args);
}

void Kernel::retry_blocked(Process& p) {
  BlockedCall call = *p.blocked;
  detach_waiter(p);
  // As the kernel's wait loops do: look again first (a child that exited, data that
  // arrived wins over the signal that came with it), and only a call that would still
  // wait is interrupted by a pending signal.
  const Sys sys = static_cast<Sys>(call.sys);
  SyscallFn fn = syscalls_->find(sys);
  machine_.inject.set_context(fmt::format("pid {}: {}", p.pid, sys_name(sys)));
  SyscallContext ctx{*this, p, sys, call.nr, call.args, call.retries + 1, call.deadline_ns};
  p.blocked.reset();
  p.state = ProcState::Runnable;
  const SysResult r = fn(ctx);
  if (r.kind() == SysResult::Kind::Block) {
    const BlockedCall again{call.nr,         call.sys,    call.args,       r.queue(),
                            r.deadline_ns(), r.restart(), call.retries + 1};
    if (wait_interrupted(p, again.restart)) {
      p.blocked = again;
      interrupt_blocked(p);
      return;
    }
    block(p, again);
    return;
  }
  finish_syscall(p, call.nr, call.sys, r, call.args);
}

void Kernel::finish_syscall(Process& p, std::uint64_t nr, int sys_i, const SysResult& r,
                            const std::array<std::uint64_t, 6>& args) {
  const Sys sys = static_cast<Sys>(sys_i);
  switch (r.kind()) {
    case SysResult::Kind::Return:
      if (p.cpu) p.cpu->set_syscall_ret(static_cast<std::uint64_t>(r.value()));
      break;
    case SysResult::Kind::Block:
      // A signal the call itself unblocked (sigsuspend, ppoll and pselect6 install their
      // mask first) that was already pending ends the wait before it starts.
      {
        const BlockedCall call{nr, sys_i, args, r.queue(), r.deadline_ns(), r.restart(), 0};
        if (wait_interrupted(p, call.restart)) {
          p.blocked = call;
          interrupt_blocked(p);
          return;
        }
        block(p, call);
        return;
      }
    case SysResult::Kind::NoReturn:
      break;
  }
  const std::string_view name = sys_name(sys);
  stats_.add("syscalls");
  // What a failure-injection sweep (`mmemu sweep`) reads as "the program saw ENOMEM".
  if (r.is_return() && r.value() == -ENOMEM) stats_.add("syscalls_enomem");
  if (trace_.on()) {
    // Once per call, when it is done (a blocked call's retries are not events). Strings
    // are read from the mm the call ran in: not after a successful execve (the old one is
    // gone) or exit (none left).
    const bool strings = r.is_return() && p.state != ProcState::Zombie && p.has_mm();
    nlohmann::json f{{"name", name},
                     {"args", sys_args_json(sys, args, strings ? &p.mm() : nullptr)}};
    if (r.is_return()) {
      f["ret"] = sys_ret_json(sys, r.value());
      if (r.value() < 0 && r.value() >= -4095)
        f["errno"] = errno_name(static_cast<int>(-r.value()));
    }
    f["start_seq"] = p.syscall_start_seq;
    trace_.emit("syscall", p.pid, std::move(f));
  }
  if (p.state == ProcState::Zombie || !p.has_mm()) return;
  if (opts_.check) check_mm(p, name);
  if (r.is_return() && !opts_.dump.syscalls.empty() && opts_.dump.syscalls.contains(name))
    dump(DumpKind::Syscall, p.pid, p.mm(), std::string(name));
}

}  // namespace mmemu
