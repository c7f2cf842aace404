// Process exit, the parent's notification, reparenting and reaping.
#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "vma/fault.hpp"

namespace mmemu {

namespace {

std::string status_text(int st) {
  if (st & 0x7f) return fmt::format("killed by {}", signal_name(st & 0x7f));
  return fmt::format("exited {}", (st >> 8) & 0xff);
}

}  // namespace

void Kernel::exit_process(Process& p, int wait_status) {
  if (p.state == ProcState::Zombie) return;
  record("exit", p.pid, {{"status", status_text(wait_status)}});
  detach_waiter(p);
  p.blocked.reset();
  if (p.vfork_parent) {
    if (Process* parent = find(p.vfork_parent)) parent->vfork_done.wake_all();
    p.vfork_parent = 0;
  }
  // mm_release: with other users of the mm (a vfork parent), clear_child_tid is zeroed.
  if (p.clear_child_tid && p.has_mm() && p.mm().mm_users > 1) {
    const std::uint32_t zero = 0;
    (void)copy_to_user(p.mm(), p.clear_child_tid, &zero, 4);
  }
  if (p.has_mm() && p.mm().mm_users == 1 && opts_.dump.exit)
    dump(DumpKind::Exit, p.pid, p.mm(), fmt::format("exit of {}", p.pid));
  release_mm(p);
  if (p.fds) {
    p.fds->close_all();
    p.fds.reset();
  }
  p.state = ProcState::Zombie;
  p.wait_status = wait_status;
  if (p.pid == init_pid_) {
    summary_.wait_status = wait_status;
    init_exited_ = true;
  }

  // Children go to init (mmemu), which reaps them as they die.
  pidfd_wait_.wake_all();  // pidfd pollers: readable now
  std::vector<int> kids = std::move(p.children);
  p.children.clear();
  for (int k : kids) {
    Process* c = find(k);
    if (!c) continue;
    c->ppid = 1;
    if (c->state == ProcState::Zombie) reap(*c);
  }

  Process* parent = p.ppid != 1 ? find(p.ppid) : nullptr;
  if (!parent || parent->state == ProcState::Zombie) {
    reap(p);
    return;
  }
  // do_notify_parent: SIGCHLD (or the clone exit signal), and auto-reaping when the parent
  // ignores SIGCHLD or set SA_NOCLDWAIT.
  bool autoreap = false;
  int sig = p.exit_signal;
  if (sig == 17) {
    const KSigAction& ka = parent->sig.act(17);
    if (ka.handler == kSigIgn || (ka.flags & kSaNoCldWait)) {
      autoreap = true;
      if (ka.handler == kSigIgn) sig = 0;
    }
  }
  if (sig > 0 && sig <= kNSig) {
    SigInfo info;
    info.signo = sig;
    info.pid = p.pid;
    info.uid = p.cred.uid;
    if (wait_status & 0x7f) {
      info.code = (wait_status & 0x80) ? kCldDumped : kCldKilled;
      info.status = wait_status & 0x7f;
    } else {
      info.code = kCldExited;
      info.status = (wait_status >> 8) & 0xff;
    }
    send_signal(*parent, info);
  }
  parent->child_wait.wake_all();
  if (autoreap) reap(p);
}

void Kernel::reap(Process& zombie) {
  const int pid = zombie.pid;
  if (Process* parent = find(zombie.ppid)) std::erase(parent->children, pid);
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  detach_waiter(*it->second);
  pidfd_wait_.wake_all();  // pidfd pollers: POLLHUP now
  dead_.push_back(std::move(it->second));
  procs_.erase(it);
}

}  // namespace mmemu
