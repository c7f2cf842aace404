// Process, AddressSpace and WaitQueue basics.
#include "emu/kernel/process.hpp"

#include <time.h>

#include <algorithm>

#include "emu/kernel/kernel.hpp"
#include "vma/exit_mmap.hpp"
#include "vma/file.hpp"

namespace mmemu {

AddressSpace::~AddressSpace() {
  mm.reset();  // mmput: exit_mmap if the kernel did not run it, then the pgd
  if (exe_file) exe_file->put();
}

std::string_view proc_state_name(ProcState s) {
  switch (s) {
    case ProcState::Runnable:
      return "runnable";
    case ProcState::Blocked:
      return "blocked";
    case ProcState::Stopped:
      return "stopped";
    case ProcState::Zombie:
      return "zombie";
  }
  return "?";
}

Process::Process(Kernel& k, int pid_, int ppid_, Arch arch_)
    : kernel(k), pid(pid_), ppid(ppid_), pgid(pid_), sid(pid_), arch(arch_) {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  start_boottime_ns = static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
                      static_cast<std::uint64_t>(ts.tv_nsec);
}

Process::~Process() {
  tlb.reset();
  cpu.reset();
}

WaitQueue::~WaitQueue() {
  wake_all();
}

void WaitQueue::wake_all() {
  std::vector<Process*> w = std::move(waiters_);
  waiters_.clear();
  for (Process* p : w)
    p->kernel.make_runnable(*p);
}

}  // namespace mmemu
