// The kernel object: construction, the initial process, the scheduler and run loop, the
// host-file cache, dumps, --check, and the end-of-run leak check.
#include "emu/kernel/kernel.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include <fmt/format.h>

#include "emu/kernel/cred.hpp"
#include "emu/kernel/host_signals.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/file.hpp"
#include "vma/validate.hpp"

namespace mmemu {

namespace {

// totalram_pages() + total_swap_pages of the host, in guest pages: what its overcommit
// heuristic compares a request with. No limit if sysinfo fails.
std::uint64_t host_commit_limit_pages() {
  struct sysinfo si = {};
  if (::sysinfo(&si) != 0) return Machine::kNoCommitLimit;
  const std::uint64_t unit = si.mem_unit ? si.mem_unit : 1;
  return (static_cast<std::uint64_t>(si.totalram) + si.totalswap) * unit >> PAGE_SHIFT;
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

std::uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

// ---- options ----

std::optional<DumpWhen> parse_dump_when(std::string_view spec, std::string* error) {
  DumpWhen w;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    std::size_t comma = spec.find(',', pos);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string_view item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (item == "exit") {
      w.exit = true;
    } else if (item == "fork") {
      w.fork = true;
    } else if (item == "fork-child" || item == "child") {
      w.fork_child = true;
    } else if (item == "guest") {
      w.guest = true;
    } else if (item.starts_with("syscall:") && item.size() > 8) {
      std::string_view name = item.substr(8);
      if (!sys_from_name(name)) {
        if (error) *error = fmt::format("unknown system call '{}' in '{}'", name, item);
        return std::nullopt;
      }
      w.syscalls.emplace(name);
    } else {
      if (error)
        *error = fmt::format("'{}': expected exit, fork, fork-child, guest or syscall:NAME", item);
      return std::nullopt;
    }
    if (comma == spec.size()) break;
  }
  return w;
}

std::string_view dump_kind_name(DumpKind k) {
  switch (k) {
    case DumpKind::Exit:
      return "exit";
    case DumpKind::Fork:
      return "fork";
    case DumpKind::ForkFailedChild:
      return "fork-failed-child";
    case DumpKind::ForkChild:
      return "fork-child";
    case DumpKind::Syscall:
      return "syscall";
    case DumpKind::Guest:
      return "guest";
  }
  return "?";
}

// ---- kernel ----

Kernel::Kernel(KernelOptions opts, CpuFactory make_cpu)
    : machine_(opts.phys_bytes),
      opts_(std::move(opts)),
      make_cpu_(std::move(make_cpu)),
      next_pid_(opts_.first_pid),
      rng_state_(opts_.random_seed ^ 0x9e3779b97f4a7c15ULL) {
  machine_.commit_limit_pages = opts_.commit_limit_pages.value_or(host_commit_limit_pages());
  syscalls_ = make_syscall_table();
  if (opts_.inject_at_fork == 0 && opts_.inject_from_load) arm_injections();
  machine_.inject.on_attempt = [this](const FaultInjector::Event& e) {
    const int pid = current_ ? current_->pid : 0;
    const nlohmann::json addr = e.addr ? nlohmann::json(hex(*e.addr)) : nlohmann::json();
    const nlohmann::json function = std::string(e.function);
    if (trace_.on()) {
      // Every attempt and check, numbered as --inject counts them from its --inject-from
      // point (null before it); not counted in the stats.
      nlohmann::json alloc, nth;
      if (inject_base_) {
        const auto site = static_cast<std::size_t>(e.site);
        if (alloc_site(e.site)) alloc = e.global - inject_base_->total;
        nth = e.attempt - inject_base_->attempts[site];
      }
      trace_.emit("alloc", pid,
                  {{"alloc", alloc},
                   {"site", site_name(e.site)},
                   {"nth", nth},
                   {"function", function},
                   {"addr", addr},
                   {"context", machine_.inject.context()},
                   {"failed", e.failed}});
    }
    if (!e.failed) return;
    record("inject", pid,
           {{"site", site_name(e.site)},
            {"attempt", e.attempt},
            {"global", e.global},
            {"function", function},
            {"addr", addr},
            {"context", machine_.inject.context()}});
  };
  machine_.live.on_created = [this](AllocSite s, std::uint64_t key) {
    if (s == AllocSite::PgTable)
      record("pgtable_alloc", current_ ? current_->pid : 0, {{"pfn", hex(key)}});
  };
  machine_.live.on_destroyed = [this](AllocSite s, std::uint64_t key) {
    if (s == AllocSite::PgTable)
      record("pgtable_free", current_ ? current_->pid : 0, {{"pfn", hex(key)}});
  };
  machine_.on_freed_in_use = [this](const FreedInUseTable& t) {
    log_.stream() << kasan_report(t);
    record("pgtable_use_after_free", current_ ? current_->pid : 0, t);
  };
}

Kernel::~Kernel() {
  // Whatever is left (a test that stopped early): tear down without waking anyone.
  for (auto& [pid, p] : procs_)
    detach_waiter(*p);
  for (auto& [pid, p] : procs_) {
    release_tlb(*p);
    p->cpu.reset();
    p->as.reset();
    if (p->fds) p->fds->close_all();
  }
  procs_.clear();
  dead_.clear();
  for (auto& [path, f] : file_cache_)
    f->put();
  file_cache_.clear();
  machine_.inject.on_attempt = nullptr;
  machine_.live.on_created = nullptr;
  machine_.live.on_destroyed = nullptr;
  machine_.on_freed_in_use = nullptr;
}

void Kernel::arm_injections() {
  inject_base_ = machine_.inject.counts();
  for (const InjectRule& r : opts_.inject_rules) {
    if (r.site) {
      machine_.inject.fail_nth(*r.site, r.nth, r.persistent);
    } else {
      machine_.inject.fail_nth_any(r.nth, r.persistent);
    }
  }
  if (opts_.inject_random > 0) machine_.inject.fail_random(opts_.inject_random, opts_.random_seed);
}

void Kernel::record(std::string_view ev, int pid, nlohmann::json fields) {
  stats_.add(ev);
  if (trace_.on()) trace_.emit(ev, pid, std::move(fields));
}

std::uint64_t Kernel::next_random() {
  // splitmix64: deterministic per seed.
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Process* Kernel::find(int pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : it->second.get();
}

std::vector<Process*> Kernel::processes() const {
  std::vector<Process*> v;
  for (const auto& [pid, p] : procs_)
    v.push_back(p.get());
  return v;
}

int Kernel::nr_live() const {
  int n = 0;
  for (const auto& [pid, p] : procs_)
    if (p->state != ProcState::Zombie) ++n;
  return n;
}

Result<File*> Kernel::open_host_file(const std::string& path) {
  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved)) return fail(errno);
  std::string key(resolved);
  if (auto it = file_cache_.find(key); it != file_cache_.end()) {
    it->second->get();
    return it->second;
  }
  struct ::stat st;
  if (::stat(resolved, &st) != 0) return fail(errno);
  if (S_ISDIR(st.st_mode)) return fail(EISDIR);
  if (!S_ISREG(st.st_mode)) return fail(EACCES);
  std::ifstream in(resolved, std::ios::binary);
  if (!in) return fail(EACCES);
  std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  const std::uint64_t dev =
      (static_cast<std::uint64_t>(major(st.st_dev)) << 8) | (minor(st.st_dev) & 0xff);
  File* f = File::create(machine_, key, std::move(data), true, false, dev, st.st_ino);
  file_cache_.emplace(key, f);  // the cache's reference
  f->get();                     // the caller's
  return f;
}

void Kernel::dump(DumpKind kind, int pid, const Mm& mm, std::string label,
                  std::vector<std::string> detail, nlohmann::json fork) {
  record("dump", pid, {{"when", dump_kind_name(kind)}, {"label", label}});
  if (dump_hook_)
    dump_hook_(DumpPoint{kind, pid, std::move(label), std::move(detail), std::move(fork)}, mm,
               machine_);
}

Result<std::unique_ptr<Cpu>> Kernel::make_cpu(Arch arch) {
  if (!make_cpu_) return fail(ENOSYS);
  return make_cpu_(arch, machine_.phys);
}

void Kernel::check_mm(Process& p, std::string_view after) {
  if (!opts_.check || !p.has_mm()) return;
  std::vector<std::string> found = validate_mm(p.mm());
  if (p.tlb) {
    auto stale = p.tlb->verify();
    found.insert(found.end(), stale.begin(), stale.end());
  }
  for (const std::string& f : found) {
    std::string line = fmt::format("pid {} after {}: {}", p.pid, after, f);
    log_.msg("invariant broken: " + line);
    record("invariant", p.pid, {{"after", after}, {"problem", f}});
    if (problems_.size() < 1000) problems_.push_back("invariant broken: " + line);
  }
}

// ---- the initial process ----

namespace {

// The initial process inherits mmemu's own limits, as a program inherits its parent's,
// except those that shape the emulated address space (STACK, DATA, AS, MEMLOCK, RSS): these
// keep the emulated machine's defaults so that layouts do not depend on the host's shell.
void inherit_host_rlimits(Rlimits& lim) {
  static constexpr std::pair<Rlim, int> kInherited[] = {
      {Rlim::Cpu, RLIMIT_CPU},           {Rlim::Fsize, RLIMIT_FSIZE},
      {Rlim::Core, RLIMIT_CORE},         {Rlim::Nproc, RLIMIT_NPROC},
      {Rlim::Nofile, RLIMIT_NOFILE},     {Rlim::Sigpending, RLIMIT_SIGPENDING},
      {Rlim::Msgqueue, RLIMIT_MSGQUEUE}, {Rlim::Nice, RLIMIT_NICE},
      {Rlim::Rtprio, RLIMIT_RTPRIO},     {Rlim::Rttime, RLIMIT_RTTIME}};
  for (const auto& [r, host] : kInherited) {
    ::rlimit h{};
    if (::getrlimit(host, &h) != 0) continue;
    Rlimit v{h.rlim_cur == RLIM_INFINITY ? RLIM_INFINITY_ : h.rlim_cur,
             h.rlim_max == RLIM_INFINITY ? RLIM_INFINITY_ : h.rlim_max};
    // The descriptor table is sized from NOFILE: /proc/sys/fs/nr_open bounds it on Linux.
    if (r == Rlim::Nofile) v = {std::min(v.cur, kNrOpen), std::min(v.max, kNrOpen)};
    lim[r] = v;
  }
}

}  // namespace

std::expected<Process*, ExecError> Kernel::spawn(const std::string& path,
                                                 const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& envp) {
  const int pid = next_pid_;
  auto p = std::make_unique<Process>(*this, pid, 1, Arch::X86_64);
  p->cred = initial_cred(opts_.uid, opts_.gid);
  inherit_host_rlimits(p->rlimits);
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd)) p->fs.cwd = cwd;
  p->fds = std::make_unique<FdTable>();
  p->fds->set_max_fds(static_cast<int>(p->rlimits[Rlim::Nofile].cur));
  for (int fd = 0; fd < 3; ++fd) {
    const int host = opts_.stdio_fds[static_cast<std::size_t>(fd)];
    const int fl = ::fcntl(host, F_GETFL);
    if (fl < 0) continue;  // closed in mmemu: closed in the guest too
    (void)p->fds->install_at(fd, std::make_shared<HostStdio>(host, fl & (O_ACCMODE | O_APPEND)),
                             false);
  }
  current_ = p.get();
  auto r = load_program(*p, path, argv, envp);
  current_ = nullptr;
  if (!r) {
    if (p->fds) p->fds->close_all();
    return std::unexpected(r.error());
  }
  if (opts_.inject_at_fork == 0 && !opts_.inject_from_load) arm_injections();
  ++next_pid_;
  init_pid_ = pid;
  Process* raw = p.get();
  procs_.emplace(pid, std::move(p));
  runq_.push_back(pid);
  record("exec", pid, {{"path", path}});
  return raw;
}

// ---- scheduling ----

void Kernel::make_runnable(Process& p) {
  if (p.state == ProcState::Zombie || p.state == ProcState::Runnable) return;
  detach_waiter(p);
  p.state = ProcState::Runnable;
  runq_.push_back(p.pid);
}

void Kernel::detach_waiter(Process& p) {
  if (p.blocked && p.blocked->wq) std::erase(p.blocked->wq->waiters_, &p);
  if (p.blocked) p.blocked->wq = nullptr;
}

void Kernel::block(Process& p, const BlockedCall& call) {
  p.blocked = call;
  p.state = ProcState::Blocked;
  if (call.wq) call.wq->waiters_.push_back(&p);
}

Process* Kernel::pick_next() {
  while (!runq_.empty()) {
    const int pid = runq_.front();
    runq_.pop_front();
    Process* p = find(pid);
    if (p && p->state == ProcState::Runnable) {
      // A pid may sit in the queue twice after block + wake in one slice: drop the rest.
      std::erase(runq_, pid);
      return p;
    }
  }
  return nullptr;
}

void Kernel::fire_itimers() {
  std::uint64_t now = 0;
  for (const auto& [pid, p] : procs_) {
    if (p->state == ProcState::Zombie) continue;
    for (int which = 0; which < 3; ++which) {
      Process::ITimer& t = p->itimers[static_cast<std::size_t>(which)];
      if (!t.expires) continue;
      std::uint64_t clock = p->instructions;
      if (which == 0) {
        if (!now) now = monotonic_ns();
        clock = now;
      }
      if (clock < t.expires) continue;
      // it_real_fn / check_cpu_itimer: reload (skipping missed periods) or disarm.
      if (t.interval)
        t.expires += ((clock - t.expires) / t.interval + 1) * t.interval;
      else
        t.expires = 0;
      SigInfo info;
      info.signo = which == 0 ? 14 /* SIGALRM */ : which == 1 ? 26 /* SIGVTALRM */ : 27;
      info.code = kSiKernel;
      send_signal(*p, info);
    }
  }
}

bool Kernel::sleep_until_deadline() {
  std::uint64_t earliest = 0;
  for (const auto& [pid, p] : procs_) {
    if (p->state == ProcState::Blocked && p->blocked && p->blocked->deadline_ns &&
        (!earliest || p->blocked->deadline_ns < earliest))
      earliest = p->blocked->deadline_ns;
    // A pending ITIMER_REAL expiry wakes the machine as a deadline does.
    const std::uint64_t real = p->itimers[0].expires;
    if (p->state != ProcState::Zombie && real && (!earliest || real < earliest)) earliest = real;
  }
  if (!earliest) return false;
  // Sleeps on the host signal pipe: a signal sent to mmemu ends the sleep early (the run
  // loop forwards it and comes back here if nobody can run).
  pollfd wake{host_signals::wake_fd(), POLLIN, 0};
  for (std::uint64_t now = monotonic_ns(); now < earliest; now = monotonic_ns()) {
    const std::uint64_t left = earliest - now;
    const timespec ts{static_cast<time_t>(left / 1000000000ULL),
                      static_cast<long>(left % 1000000000ULL)};
    if (::ppoll(&wake, wake.fd >= 0 ? 1 : 0, &ts, nullptr) > 0) return true;
  }
  const std::uint64_t after = monotonic_ns();
  for (const auto& [pid, p] : procs_)
    if (p->state == ProcState::Blocked && p->blocked && p->blocked->deadline_ns &&
        p->blocked->deadline_ns <= after)
      make_runnable(*p);
  fire_itimers();
  return true;
}

void Kernel::run_slice(Process& p) {
  current_ = &p;
  if (p.blocked) retry_blocked(p);
  if (p.state == ProcState::Runnable && deliver_signals(p)) {
    std::uint64_t budget = opts_.slice_instructions;
    while (budget > 0 && p.state == ProcState::Runnable && p.cpu) {
      const RunResult r = p.cpu->run(budget);
      budget -= std::min(budget, r.executed);
      p.instructions += r.executed;
      switch (r.reason) {
        case StopReason::Syscall:
          handle_syscall(p);
          break;
        case StopReason::MemFault:
          handle_fault(p, r.fault);
          break;
        case StopReason::Exception:
          handle_exception(p, r.exception);
          break;
        case StopReason::SliceEnd:
          budget = 0;
          break;
        case StopReason::Exited:
          break;
      }
      if (p.state != ProcState::Runnable) break;
      if (!deliver_signals(p)) break;
      if (p.yield) {
        p.yield = false;
        break;
      }
    }
  }
  if (p.state == ProcState::Runnable) runq_.push_back(p.pid);
  current_ = nullptr;
}

void Kernel::kill_all(int wait_status) {
  std::vector<Process*> live;
  for (const auto& [pid, q] : procs_)
    if (q->state != ProcState::Zombie) live.push_back(q.get());
  for (Process* q : live)
    if (q->state != ProcState::Zombie) exit_process(*q, wait_status);
  dead_.clear();
}

void Kernel::forward_host_signals() {
  while (const int sig = host_signals::take()) {
    record("host_signal", 0, {{"sig", sig}});
    // A terminal's signal (tty's kill_pgrp): from the kernel, no sender, to the foreground
    // process group. The terminal's foreground group is not modelled (no TIOCSPGRP): it is
    // the group the run started in, led by the initial process.
    std::vector<Process*> fg;
    for (Process* q : processes())
      if (q->state != ProcState::Zombie && q->pgid == init_pid_) fg.push_back(q);
    const bool taken =
        std::ranges::any_of(fg, [sig](const Process* q) { return q->sig.would_act_on(sig); });
    if (host_signals_taken_++ > 0 && !taken) {
      // A repeat the guest would not act on (it ignores or blocks the signal): end the run
      // as a hung one is ended by hand. One still pending unblocked (not run since) merges.
      log_.msg(
          fmt::format("{} received again and not taken by the guest: killing every guest "
                      "process",
                      signal_name(sig)));
      summary_.host_signal = sig;
      kill_all(9);
      continue;
    }
    SigInfo info;
    info.signo = sig;
    info.code = kSiKernel;
    for (Process* q : fg)
      send_signal(*q, info);
  }
}

RunSummary Kernel::run() {
  for (;;) {
    fire_itimers();
    forward_host_signals();
    Process* p = pick_next();
    if (!p) {
      if (nr_live() == 0) break;
      if (sleep_until_deadline()) continue;
      // Nobody can ever run again: report it and end everyone, as a hung run would be
      // ended by hand.
      summary_.deadlock = true;
      std::string who;
      for (const auto& [pid, q] : procs_)
        if (q->state != ProcState::Zombie)
          who += fmt::format(
              " {}({}{})", pid, proc_state_name(q->state),
              q->blocked ? fmt::format(" in {}", sys_name(static_cast<Sys>(q->blocked->sys)))
                         : std::string());
      log_.msg("deadlock: every process is blocked for good:" + who + "; killing them");
      record("deadlock", 0, {{"processes", who}});
      problems_.push_back("deadlock:" + who);
      kill_all(9);
      continue;
    }
    run_slice(*p);
    dead_.clear();
  }
  // Zombies nobody reaped (their parent is gone too) go with the run.
  std::vector<Process*> left;
  for (const auto& [pid, q] : procs_)
    left.push_back(q.get());
  for (Process* q : left)
    reap(*q);
  dead_.clear();

  RunSummary s = summary_;
  s.problems = final_check();
  if (!s.problems.empty()) {
    s.exit_status = 70;
  } else if (s.host_signal) {
    s.exit_status = 128 + s.host_signal;
  } else if (s.wait_status & 0x7f) {
    s.exit_status = 128 + (s.wait_status & 0x7f);
  } else {
    s.exit_status = (s.wait_status >> 8) & 0xff;
  }
  return s;
}

std::vector<std::string> Kernel::final_check() {
  created_files_.clear();  // the in-memory file system goes with the run
  sysv_shm_.clear();       // and so do segments nobody removed (ipcrm at shutdown)
  for (auto& [path, f] : file_cache_)
    f->put();
  file_cache_.clear();
  // init_mm's kernel half (the vsyscall page) outlives every mm; only the run's end frees it.
  if (procs_.empty()) {
    for (Arch a : {Arch::X86_64, Arch::Arm64})
      machine_.init_mm(a).release();
  }
  std::vector<std::string> out = problems_;
  for (const FreedInUseTable& t : machine_.freed_in_use)
    out.push_back(freed_in_use_summary(t));
  if (!procs_.empty())
    out.push_back(fmt::format("{} process(es) still in the table at the end", procs_.size()));
  const LiveObjects& live = machine_.live;
  std::size_t listed = 0;
  for (AllocSite s : kAllAllocSites) {
    const auto recs = live.records(s);
    if (recs.empty()) continue;
    out.push_back(fmt::format("leak: {} {} object(s) still allocated", recs.size(), site_name(s)));
    for (const auto& r : recs) {
      if (++listed > 40) break;
      const bool frame = s == AllocSite::Page || s == AllocSite::PgTable;
      out.push_back(fmt::format("leak:   {} {} {} allocated at attempt {} in '{}'", site_name(s),
                                frame ? "pfn" : "at", hex(r.key), r.attempt,
                                r.context.empty() ? "?" : r.context));
    }
  }
  if (listed > 40) out.push_back(fmt::format("leak:   ... {} more not listed", listed - 40));
  if (live.unknown_frees())
    out.push_back(fmt::format("accounting: {} object(s) freed that were never recorded",
                              live.unknown_frees()));
  return out;
}

Problem classify_problem(const std::string& message) {
  // The prefixes final_check, check_mm and the deadlock report write (above), and
  // freed_in_use_summary's (mmu/freed_in_use.cpp).
  std::string kind = "leak";
  if (message.starts_with("invariant broken:") || message.starts_with("page-table use-after-free"))
    kind = "invariant";
  else if (message.starts_with("deadlock:"))
    kind = "deadlock";
  return {kind, message};
}

}  // namespace mmemu
