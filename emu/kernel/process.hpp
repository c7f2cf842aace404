// A guest process: pid and parent, credentials, working directory and umask, resource
// limits, address space (Mm, shared only by a vfork child), CPU and the walker behind its
// TLB, descriptor table, signal state, wait state and exit status, and the per-thread words
// glibc registers (clear_child_tid, robust list, rseq). One thread per process (no
// CLONE_THREAD): pid == tid == tgid.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "emu/cpu/cpu.hpp"
#include "emu/cpu/walker_tlb.hpp"
#include "emu/fs/fd.hpp"
#include "emu/signal/signal.hpp"
#include "emu/syscalls/sys_result.hpp"
#include "vma/mm.hpp"

namespace mmemu {

class File;
class Kernel;

// An mm and the TLBs caching it. Shared (shared_ptr) by a vfork child and its parent.
struct AddressSpace {
  TlbGroup tlbs;             // declared first so it outlives mm: exit_mmap flushes through it
  std::unique_ptr<Mm> mm;    // its flusher is `tlbs`
  File* exe_file = nullptr;  // the executable's File (one reference), /proc/self/exe
  std::string exe_path;      // absolute host path of the executable
  ~AddressSpace();           // drops exe_file; exit_mmap runs if the kernel did not run it
};

enum class ProcState : std::uint8_t {
  Runnable,  // on the run queue
  Blocked,   // waiting in a system call (see Process::blocked)
  Stopped,   // SIGSTOP/SIGTSTP...: not scheduled until SIGCONT
  Zombie,    // exited; holds only its wait status until the parent reaps it
};
std::string_view proc_state_name(ProcState s);

// The system call a blocked process retries when woken (registers are left untouched
// while it waits, so the retry sees exactly the original arguments).
struct BlockedCall {
  std::uint64_t nr = 0;  // the architecture's number
  int sys = 0;           // the generic Sys value (emu/syscalls/syscall.hpp)
  std::array<std::uint64_t, 6> args{};
  WaitQueue* wq = nullptr;
  std::uint64_t deadline_ns = 0;
  Restart restart = Restart::IfSaRestart;
  unsigned retries = 0;  // wake-ups so far (SyscallContext::retry)
};

// What a forked child inherits comes in groups fork copies whole: the three below, the
// Rlimits (vma/rlimits.hpp) and SignalState's SigInherited (emu/signal/signal.hpp).

// struct cred: user and group ids, supplementary groups and capability sets
// (emu/kernel/cred.hpp has the rules that change them).
struct Credentials {
  std::uint32_t uid = 0, euid = 0, gid = 0, egid = 0;
  std::uint32_t suid = 0, fsuid = 0, sgid = 0, fsgid = 0;
  std::vector<std::uint32_t> groups;  // supplementary groups, sorted (groups_sort)
  std::uint64_t cap_inheritable = 0, cap_permitted = 0, cap_effective = 0, cap_bset = 0,
                cap_ambient = 0;
  bool keep_caps = false;  // SECBIT_KEEP_CAPS (prctl PR_SET_KEEPCAPS), cleared by execve
};

// struct fs_struct: the working directory (a host path relative opens resolve against,
// getcwd) and the umask.
struct FsContext {
  std::string cwd = "/";
  std::uint32_t umask = 022;
};

// Guest memory a thread registered with the kernel: its robust futex list
// (set_robust_list) and its rseq area. Kept by fork, dropped by execve.
struct RegisteredAreas {
  vaddr_t robust_list = 0;
  std::uint64_t robust_list_len = 0;
  vaddr_t rseq_area = 0;
  std::uint32_t rseq_len = 0, rseq_sig = 0;  // rseq_sig only means something with an area
};

// What sched_setscheduler, setpriority and ioprio_set set. One CPU runs every process in
// turn whatever these say: they are kept, reported and checked as Linux does.
struct SchedParams {
  int nice = 0;                // -20..19
  int policy = 0;              // SCHED_OTHER, FIFO, RR, BATCH, IDLE
  int rt_priority = 0;         // 1..99 under FIFO and RR, else 0
  bool reset_on_fork = false;  // SCHED_RESET_ON_FORK
  std::uint16_t ioprio = 0;    // IOPRIO_PRIO_VALUE(class, data); 0: none set
};

class Process {
 public:
  Process(Kernel& k, int pid, int ppid, Arch arch);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  Kernel& kernel;

  // --- identity ---
  const int pid;  // == tid == tgid
  int ppid;       // the parent's pid; 1 once orphaned (mmemu reaps those)
  int pgid, sid;  // process group and session (the initial process leads both)
  Arch arch;
  std::string comm;  // /proc/self/comm: the executable's base name, 15 bytes at most
  Credentials cred;
  SchedParams sched;  // nice, policy, I/O priority: inherited by fork, kept by execve
  FsContext fs;
  Rlimits rlimits;  // the mm the process runs on reads them (Kernel::attach_cpu)
  ProcState state = ProcState::Runnable;

  // --- machine state; null once the process is a zombie ---
  // Destroyed in reverse order: tlb (stops being cpu's miss handler) before cpu; the
  // address space is released explicitly at exit (exit_mm), after the tlb left its group.
  std::unique_ptr<Cpu> cpu;
  std::unique_ptr<WalkerTlb> tlb;
  std::shared_ptr<AddressSpace> as;
  Mm& mm() const { return *as->mm; }
  bool has_mm() const { return as && as->mm; }

  std::unique_ptr<FdTable> fds;
  SignalState sig;

  // --- thread words (set_tid_address, clone's CLONE_CHILD_SETTID/CLEARTID, ...) ---
  vaddr_t clear_child_tid = 0;  // at exit: write 0 there and futex-wake it (if mapped)
  RegisteredAreas areas;

  // --- the last trap, for the signal frame: x86 sigcontext trapno/err/cr2, arm64
  // sigcontext fault_address and the ESR record. Cleared once a frame used it. ---
  struct TrapInfo {
    bool valid = false;
    std::uint64_t trapno = 0, err = 0, addr = 0, esr = 0;
  } last_trap;

  // --- scheduling ---
  std::optional<BlockedCall> blocked;  // set while state == Blocked
  std::uint64_t instructions = 0;      // completed over the process's life
  std::uint64_t oom_retries = 0;       // consecutive OOM answers from the fault handler
  bool yield = false;                  // sched_yield: end the slice after this call
  // The trace's seq when the current system call began (the events after it, up to its
  // "syscall" event, happened inside the call, a blocked call's wait included).
  std::uint64_t syscall_start_seq = 0;

  // CLOCK_BOOTTIME when the process was created (/proc/PID/stat starttime).
  std::uint64_t start_boottime_ns = 0;

  // --- interval timers (setitimer, alarm); not inherited by fork, kept across exec ---
  // ITIMER_REAL expires on the host's CLOCK_MONOTONIC; ITIMER_VIRTUAL and ITIMER_PROF on
  // the process's CPU time (one nanosecond per instruction, as its CPU-time clocks).
  struct ITimer {
    std::uint64_t expires = 0;   // absolute, in the timer's clock; 0: disarmed
    std::uint64_t interval = 0;  // reload in nanoseconds; 0: one-shot
  };
  std::array<ITimer, 3> itimers{};  // indexed by ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  // poll/select waiting on several queues re-check on a short tick; this is the call's own
  // deadline (0: none) while it does.
  std::uint64_t poll_deadline_ns = 0;

  // --- family and wait state ---
  std::vector<int> children;  // live or zombie children, in creation order
  int exit_signal = 17;       // SIGCHLD, from clone's low byte: sent to the parent at exit
  // Linux's wait status once a zombie: (code << 8) for exit, signo (| 0x80 core) if killed.
  int wait_status = 0;
  bool killed_by_signal() const { return (wait_status & 0x7f) != 0; }
  WaitQueue child_wait;  // the parent's wait4/waitid sleep here; a child's exit wakes it
  int vfork_parent = 0;  // a vfork child: the parent's pid until it execs or exits
  int vfork_child = 0;   // a vfork parent: the child it waits for
  WaitQueue vfork_done;  // a vfork parent sleeps here until the child releases the mm
};

}  // namespace mmemu
