// The emulated operating system of one `mmemu run`: the machine (physical memory, injector,
// live-object accounting), the process table, the deterministic scheduler, the system-call
// dispatcher, signals, the trace/log/stats sinks, the page-table dump hooks and the
// end-of-run leak and invariant check.
//
// Scheduling: one process runs at a time, round robin in pid order of becoming runnable;
// a process runs until it blocks in a system call, exits, or completes a slice of
// `slice_instructions` instructions. Nothing depends on host timing except nanosleep-style
// deadlines, so a run with the same inputs replays exactly.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "emu/cpu/cpu.hpp"
#include "emu/fs/created_files.hpp"
#include "emu/fs/sysv_shm.hpp"
#include "emu/image/arch_pages.hpp"
#include "emu/kernel/process.hpp"
#include "emu/kernel/trace.hpp"
#include "emu/signal/signal.hpp"
#include "mmu/fault_inject.hpp"
#include "mmu/machine.hpp"
#include "vma/fork.hpp"

namespace mmemu {

class SyscallTable;
class UnixNames;

// When page tables are dumped (--dump-pgtables WHEN[,WHEN...]).
struct DumpWhen {
  bool exit = false;        // "exit": each process just before its mm is torn down
  bool fork = false;        // "fork": the parent after each fork attempt, and a child that
                            // failed at dup_mmap at the lock-drop point (before exit_mmap)
  bool fork_child = false;  // "fork-child": each new child right after a successful fork
  bool guest = false;       // "guest": when the guest calls the mmemu syscall 0x6d6d
  std::set<std::string, std::less<>> syscalls;  // "syscall:NAME": after each NAME returns
  bool any() const { return exit || fork || fork_child || guest || !syscalls.empty(); }
};
// Parses "exit,fork,syscall:mmap,guest". On error, *error names the bad item.
std::optional<DumpWhen> parse_dump_when(std::string_view spec, std::string* error);

enum class DumpKind : std::uint8_t { Exit, Fork, ForkFailedChild, ForkChild, Syscall, Guest };
std::string_view dump_kind_name(DumpKind k);  // "exit", "fork", "fork-failed-child", ...

struct DumpPoint {
  DumpKind kind;
  int pid;                          // the process whose mm is dumped (the would-be child's pid for
                                    // ForkFailedChild)
  std::string label;                // the guest's label, the syscall name, "fork 1000 -> 1001", ...
  std::vector<std::string> detail;  // lines under the title (a failed fork's report)
  // The same as structured JSON (a failed fork's ForkReport, see trace.hpp's to_json);
  // null when there is none.
  nlohmann::json fork;
};
// Renders a dump (tools/ owns the renderers; emu/ never includes tools/).
using DumpHook = std::function<void(const DumpPoint&, const Mm&, const Machine&)>;

struct KernelOptions {
  std::uint64_t phys_bytes = 1ULL << 30;
  // The overcommit limit in pages (vm.overcommit_memory = 0 refuses one request of more):
  // unset takes the host's RAM + swap (sysinfo), so a guest is refused what it would be
  // natively; Machine::kNoCommitLimit refuses nothing.
  std::optional<std::uint64_t> commit_limit_pages;
  ForkRecovery fork_recovery = ForkRecovery::TreeMax;
  std::uint64_t slice_instructions = 200000;
  bool check = false;  // validate_mm after every mm-changing syscall and fault
  DumpWhen dump;
  int first_pid = 1000;              // the initial process; its ppid is 1 (mmemu as init)
  std::size_t max_processes = 4096;  // fork fails with EAGAIN beyond (RLIMIT_NPROC)
  std::uint64_t random_seed = 0;     // AT_RANDOM bytes and getrandom come from it
  // mmemu's descriptors the initial process gets as its 0, 1, 2 (tests pass files).
  std::array<int, 3> stdio_fds{0, 1, 2};
  // Injection rules (--inject), armed at the start of the run, or when the
  // inject_at_fork-th fork (1-based) begins so counts are relative to that fork.
  std::vector<InjectRule> inject_rules;
  // Walkers run at a failed fork's lock-drop point (vma/walkers.hpp names: unuse_mm,
  // oom_reaper, rmap, each with -nocheck); their outcomes go into the fork dump or the log.
  std::vector<std::string> walkers;
  // Where they run: the lock-drop point, the dying child's exit_mmap unlock window, or both.
  WalkerPoint walker_at = WalkerPoint::LockDrop;
  int inject_at_fork = 0;
  // Linux's vsyscall= boot parameter: how x86-64's legacy vsyscall page is provided (see
  // emu/image/arch_pages.hpp). Set up in init_mm at the first x86-64 exec.
  VsyscallMode vsyscall = VsyscallMode::Xonly;
  // Injection from the initial program's load (--inject-from load): the rules (and the
  // random rate) are armed before spawn loads it. Otherwise (and without inject_at_fork)
  // they are armed once it is loaded, so counts start at its first instruction.
  bool inject_from_load = false;
  // Each allocation fails with this probability (seeded by random_seed), armed with the rules.
  double inject_random = 0;
  // The initial process's user and group ids (real, effective, saved, filesystem): the
  // host's when unset. Its capabilities follow from them (emu/kernel/cred.hpp).
  std::optional<std::uint32_t> uid, gid;
};

// Why a program cannot be started (spawn) or exec'd: errno as execve gives it and a
// message naming what is wrong. mmemu exits 127 for ENOENT, 126 otherwise, like a shell.
struct ExecError {
  int err;
  std::string message;
};

// clone's arguments (fork and vfork are clone with fixed flags).
struct CloneArgs {
  std::uint64_t flags = 0;  // CLONE_* without the exit signal byte
  int exit_signal = 17;     // SIGCHLD
  vaddr_t stack = 0;        // new sp for the child (0: the parent's)
  vaddr_t parent_tid = 0, child_tid = 0, tls = 0;
};

struct RunSummary {
  int exit_status = 0;                // mmemu's: the initial process's code, 128 + signal, or 70
  int wait_status = 0;                // the initial process's Linux wait status
  bool deadlock = false;              // every process blocked forever (reported, status 70)
  std::vector<std::string> problems;  // leaks and broken invariants found at the end
  int host_signal = 0;                // the repeated host signal that ended the run (128 + it)
};

// One of RunSummary::problems with its kind, for structured reports (`mmemu run --stats
// --format json`, `mmemu sweep`): "leak" (objects still allocated, frees never recorded,
// processes left in the table), "invariant" (a broken invariant or a page table freed while
// in use) or "deadlock". The kind follows from how final_check words the line.
struct Problem {
  std::string kind;
  std::string message;
};
Problem classify_problem(const std::string& message);

class Kernel {
 public:
  // make_cpu creates each process's CPU (emu/cpu/cpu.hpp's CpuFactory). The kernel never
  // names a backend: whoever builds the kernel chooses one from emu/cpu/ (`mmemu run` and
  // the tests hand in unicorn_cpu_factory()).
  Kernel(KernelOptions opts, CpuFactory make_cpu);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  Machine& machine() { return machine_; }
  const KernelOptions& options() const { return opts_; }
  Log& log() { return log_; }
  Trace& trace() { return trace_; }
  Stats& stats() { return stats_; }
  void set_dump_hook(DumpHook h) { dump_hook_ = std::move(h); }
  // A traced event: counted in stats under `ev` and written to the trace if it is on.
  void record(std::string_view ev, int pid, nlohmann::json fields = nlohmann::json::object());

  // --- running a program ---
  // Creates the initial process running `path` (execve semantics: argv[0] as given, envp
  // as given; fds 0, 1, 2 are mmemu's own).
  std::expected<Process*, ExecError> spawn(const std::string& path,
                                           const std::vector<std::string>& argv,
                                           const std::vector<std::string>& envp);
  // Runs until every process has exited, then runs final_check().
  RunSummary run();
  // Frees what the kernel itself holds (file cache), then lists leaked objects (with the
  // context they were allocated in) and broken invariants.
  std::vector<std::string> final_check();

  // --- process table ---
  Process* find(int pid) const;
  Process* current() const { return current_; }
  std::vector<Process*> processes() const;  // by pid
  int nr_live() const;                      // not zombies
  // The pid most recently handed out (/proc/loadavg, /proc/stat).
  int last_pid() const { return next_pid_ - 1; }

  // The injector's counts when the --inject rules were armed (the --inject-from point), or
  // nullopt before that: --inject SITE:N counts the attempts after these.
  const std::optional<FaultInjector::Counts>& inject_base() const { return inject_base_; }

  // --- services for system calls ---
  // The host file at `path` with its page cache, one File per path for the whole run
  // (the inode cache: the executable mapped by the loader and an openat of the same path
  // share pages). Returns a new reference (File::put it). ENOENT, EACCES, EISDIR, ...
  Result<File*> open_host_file(const std::string& path);
  // The regular files guests created, kept in memory (emu/fs/created_files.hpp).
  CreatedFiles& created_files() { return created_files_; }
  // The SysV shared memory segments of the run's IPC namespace (emu/fs/sysv_shm.hpp).
  SysvShm& sysv_shm() { return sysv_shm_; }
  // The AF_UNIX names of the run (emu/fs/unix_socket.hpp), made on first use.
  std::shared_ptr<UnixNames>& unix_names() { return unix_names_; }
  // Generates a signal for p (kill, tgkill, SIGPIPE, SIGCHLD...): queued, and p woken if it
  // is blocked and the signal is deliverable. Delivery happens before p next runs.
  void send_signal(Process& p, const SigInfo& info);
  // A synchronous fault signal (SIGSEGV from a bad access...): if blocked or ignored it is
  // unblocked and reset to SIG_DFL first, as force_sig does.
  void force_signal(Process& p, const SigInfo& info);
  // --check: validate_mm of p's mm now; a problem is logged, recorded for the final report
  // (exit status 70), and traced.
  void check_mm(Process& p, std::string_view after);
  void dump(DumpKind kind, int pid, const Mm& mm, std::string label,
            std::vector<std::string> detail = {}, nlohmann::json fork = nullptr);
  void wake(WaitQueue& wq) { wq.wake_all(); }
  // Where pollers of pidfds sleep (struct pid's wait_pidfd, one queue for all pids): woken
  // when any process exits or is reaped (emu/fs/pidfd.hpp).
  WaitQueue& pidfd_wait() { return pidfd_wait_; }

  // --- lifecycle (emu/kernel/fork.cpp, exec.cpp, exit.cpp) ---
  // fork/vfork/clone: the child's pid, or ENOMEM (dup_mm failed: the parent is untouched),
  // EINTR (dup_mmap found SIGKILL pending: the parent dies of it before it runs again),
  // EAGAIN (too many processes), EINVAL (unsupported flags such as CLONE_THREAD).
  Result<int> fork_process(Process& parent, const CloneArgs& args);
  // execve: on success p runs the new image (registers set, no return to the old one).
  std::expected<void, ExecError> exec_process(Process& p, const std::string& path,
                                              const std::vector<std::string>& argv,
                                              const std::vector<std::string>& envp);
  // do_exit: releases the mm (exit dump, exit_mmap), files and CPU, notifies the parent
  // (exit_signal, wake its wait), reparents children; p becomes a zombie (or is reaped at
  // once if nobody will wait for it). wait_status in Linux's encoding.
  void exit_process(Process& p, int wait_status);
  // execveat: `path` relative to dirfd, flags AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW; the
  // file and a script's interpreters are looked up in the guest's name space.
  std::expected<void, ExecError> exec_process_at(Process& p, int dirfd, const std::string& path,
                                                 int flags, const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& envp);
  // A log line written once per run for `key` (a feature the guest asked for and mmemu lacks).
  void log_once(std::string_view key, std::string_view line);
  // Reaps a zombie child for wait4/waitid: removes it from the table.
  void reap(Process& zombie);

 private:
  friend class WaitQueue;
  // Scheduler and run loop (kernel.cpp).
  Process* pick_next();
  bool sleep_until_deadline();  // every process blocked: wait for the earliest deadline
  void fire_itimers();          // SIGALRM/SIGVTALRM/SIGPROF for every expired interval timer
  void run_slice(Process& p);
  void block(Process& p, const BlockedCall& call);
  void make_runnable(Process& p);
  void detach_waiter(Process& p);
  // System calls (syscall_dispatch.cpp): the call the CPU stopped at, or a woken blocked one.
  void handle_syscall(Process& p);
  void retry_blocked(Process& p);
  void finish_syscall(Process& p, std::uint64_t nr, int sys, const SysResult& r,
                      const std::array<std::uint64_t, 6>& args);
  // Faults and traps (fault.cpp). resolve_fault runs handle_mm_fault for p's fault with
  // the trace, stats and --check around it; the TLB calls it from inside the emulator.
  TlbFaultOutcome resolve_fault(Process& p, const MemFault& f);
  void handle_fault(Process& p, const MemFault& f);
  void handle_exception(Process& p, const ExceptionInfo& e);
  // emulate_vsyscall (vsyscall.cpp): an x86-64 fault in the vsyscall page that the kernel
  // takes over (a fetch of an entry: the call and its `ret` are emulated, or SIGSEGV is
  // forced). False: an ordinary fault (data access, vsyscall=none).
  bool emulate_vsyscall(Process& p, const MemFault& f);
  // Signals (signal_delivery.cpp): false when p died.
  bool deliver_signals(Process& p);
  void interrupt_blocked(Process& p);
  // Images (exec.cpp).
  std::expected<void, ExecError> load_program(Process& p, const std::string& path,
                                              const std::vector<std::string>& argv,
                                              const std::vector<std::string>& envp);
  // An address space around a new mm (exec's, or fork's copy) whose exit_mmap is traced
  // under `pid`.
  std::shared_ptr<AddressSpace> make_address_space(std::unique_ptr<Mm> mm, int pid);
  std::expected<void, ExecError> load_program_at(Process& p, int dirfd, const std::string& path,
                                                 int flags, const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& envp);
  Result<std::unique_ptr<Cpu>> make_cpu(Arch arch);  // make_cpu_ over the machine's memory
  // Pairs p's new CPU and a TLB with p.as; the mm reads p's resource limits from then on.
  void attach_cpu(Process& p, std::unique_ptr<Cpu> cpu);
  void release_tlb(Process& p);  // the TLB leaves p's address space; its counts go to stats
  // p gives up its address space: mmput, or, when a vfork partner still uses it, the mm
  // reads that process's limits again.
  void release_mm(Process& p);
  std::uint64_t next_random();
  void arm_injections();

  Machine machine_;  // first: outlives every mm
  KernelOptions opts_;
  CpuFactory make_cpu_;
  Log log_;
  Trace trace_;
  Stats stats_;
  DumpHook dump_hook_;
  std::unique_ptr<SyscallTable> syscalls_;
  std::map<int, std::unique_ptr<Process>> procs_;
  std::vector<std::unique_ptr<Process>> dead_;  // reaped, destroyed between slices
  std::deque<int> runq_;
  Process* current_ = nullptr;
  int next_pid_;
  int init_pid_ = 0;
  std::map<std::string, File*, std::less<>> file_cache_;
  CreatedFiles created_files_;
  SysvShm sysv_shm_{machine_};
  std::shared_ptr<UnixNames> unix_names_;
  std::set<std::uint64_t> unknown_reported_;  // syscall numbers already reported
  // log_once's keys.
  std::set<std::string, std::less<>> logged_once_;
  std::uint64_t rng_state_;
  RunSummary summary_;  // the initial process's status, when known
  bool init_exited_ = false;
  int forks_ = 0;                                     // fork attempts so far (inject_at_fork)
  std::optional<FaultInjector::Counts> inject_base_;  // see inject_base()
  std::vector<std::string> problems_;                 // invariant failures seen during the run
  // Host signals (emu/kernel/host_signals.hpp): sent to the foreground group; a repeat
  // that group would not act on ends the run.
  void forward_host_signals();
  void kill_all(int wait_status);  // every live process exits with wait_status
  int host_signals_taken_ = 0;
  WaitQueue pidfd_wait_;  // see pidfd_wait()
};

}  // namespace mmemu
