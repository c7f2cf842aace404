// Generated read-only files (seq_file-like).
#include "emu/fs/procfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "emu/kernel/process.hpp"
#include "vma/fault.hpp"
#include "vma/proc_maps.hpp"

namespace mmemu {

GeneratedFile::GeneratedFile(int flags, std::string path, Generator gen, FileStat st)
    : OpenFile(flags), path_(std::move(path)), gen_(std::move(gen)), st_(st) {}

const std::string& GeneratedFile::text_for(std::uint64_t off) {
  if (off == 0 || !text_) text_ = gen_().value_or(std::string());
  return *text_;
}

SysResult GeneratedFile::read(SyscallContext& ctx, std::span<std::uint8_t> buf) {
  auto r = pread(ctx, buf, pos_);
  if (r.is_return() && !r.is_error()) pos_ += static_cast<std::uint64_t>(r.value());
  return r;
}

SysResult GeneratedFile::pread(SyscallContext&, std::span<std::uint8_t> buf, std::uint64_t off) {
  if (!readable()) return SysResult::err(EBADF);
  if (buf.empty()) return SysResult::ok(0);
  const std::string& t = text_for(off);
  if (off >= t.size()) return SysResult::ok(0);
  const std::size_t n = std::min<std::size_t>(buf.size(), t.size() - off);
  std::memcpy(buf.data(), t.data() + off, n);
  return SysResult::ok(n);
}

SysResult GeneratedFile::ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) {
  if (!ioctl_) return OpenFile::ioctl(ctx, request, arg);
  return ioctl_(ctx, request, arg);
}

Result<std::uint64_t> GeneratedFile::lseek(std::int64_t off, int whence) {
  return seq_lseek(off, whence);
}

namespace {

// get_mm_cmdline / environ_read: the bytes of [start, end) in the guest, as far as they can
// be read.
std::string guest_range(Mm& mm, vaddr_t start, vaddr_t end) {
  std::string out;
  if (end <= start || end - start > (64u << 20)) return out;
  out.resize(end - start);
  std::size_t done = 0;
  while (done < out.size()) {
    const vaddr_t a = start + done;
    const std::size_t chunk =
        std::min<std::size_t>(out.size() - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
    if (!copy_from_user(mm, out.data() + done, a, chunk)) break;
    done += chunk;
  }
  out.resize(done);
  return out;
}

char state_letter(ProcState s) {
  switch (s) {
    case ProcState::Runnable:
      return 'R';
    case ProcState::Blocked:
      return 'S';
    case ProcState::Stopped:
      return 'T';
    case ProcState::Zombie:
      return 'Z';
  }
  return 'R';
}

const char* state_name(ProcState s) {
  switch (s) {
    case ProcState::Runnable:
      return "R (running)";
    case ProcState::Blocked:
      return "S (sleeping)";
    case ProcState::Stopped:
      return "T (stopped)";
    case ProcState::Zombie:
      return "Z (zombie)";
  }
  return "R (running)";
}

std::uint64_t rss_pages(const Mm& mm, RssType t) {
  const std::int64_t v = mm.rss[static_cast<std::size_t>(t)];
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

std::uint64_t text_kb(const Mm& mm) {
  return ((page_align_up(mm.end_code) - (mm.start_code & PAGE_MASK)) >> 10);
}

// The signal sets of a process: ignored and caught (a handler installed).
struct SigSets {
  std::uint64_t ign = 0, cgt = 0;
};
SigSets sig_sets(Process& p) {
  SigSets r;
  for (int s = 1; s <= kNSig; ++s) {
    const KSigAction& a = p.sig.act(s);
    if (a.handler == kSigIgn)
      r.ign |= 1ULL << (s - 1);
    else if (a.handler != kSigDfl)
      r.cgt |= 1ULL << (s - 1);
  }
  return r;
}

std::uint64_t rss_total(const Mm& mm) {
  return rss_pages(mm, MM_ANONPAGES) + rss_pages(mm, MM_FILEPAGES) + rss_pages(mm, MM_SHMEMPAGES);
}

std::uint64_t pte_bytes(const Mm& mm) {
  // mm_pgtables_bytes: the PTE, PMD and PUD tables the mm allocated (the PGD is not counted).
  return (mm.pt().nr_tables(Level::Pte) + mm.pt().nr_tables(Level::Pmd) +
          mm.pt().nr_tables(Level::Pud)) *
         PAGE_SIZE;
}

// USER_HZ ticks of a nanosecond count.
std::uint64_t to_ticks(std::uint64_t ns) {
  return ns / 10000000ULL;
}

std::string status_text(Process& p) {
  std::string o;
  o += fmt::format("Name:\t{}\nUmask:\t{:04o}\nState:\t{}\n", p.comm, p.fs.umask,
                   state_name(p.state));
  o += fmt::format("Tgid:\t{0}\nNgid:\t0\nPid:\t{0}\nPPid:\t{1}\nTracerPid:\t0\n", p.pid, p.ppid);
  // real, effective, saved and file-system ids; the groups with Linux's trailing space.
  const Credentials& c = p.cred;
  o += fmt::format("Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\n", c.uid, c.euid, c.suid, c.fsuid,
                   c.gid, c.egid, c.sgid, c.fsgid);
  std::string groups;
  for (std::uint32_t g : c.groups)
    groups += fmt::format("{}{}", groups.empty() ? "" : " ", g);
  o += fmt::format(
      "FDSize:\t{0}\nGroups:\t{4} \nNStgid:\t{1}\nNSpid:\t{1}\nNSpgid:\t{2}\nNSsid:\t{3}\n",
      p.fds ? p.fds->table_size() : 0, p.pid, p.pgid, p.sid, groups);
  o += "Kthread:\t0\n";
  if (p.has_mm()) {
    const Mm& mm = p.mm();
    const std::uint64_t anon = rss_pages(mm, MM_ANONPAGES), file = rss_pages(mm, MM_FILEPAGES),
                        shmem = rss_pages(mm, MM_SHMEMPAGES);
    const std::uint64_t text = text_kb(mm);
    const std::uint64_t exec_kb = mm.exec_vm << 2;
    const auto kb = [&o](const char* name, std::uint64_t v) {
      o += fmt::format("{}:\t{:>8} kB\n", name, v);
    };
    // No high-water marks are kept: the peaks are the current values.
    kb("VmPeak", mm.total_vm << 2);
    kb("VmSize", mm.total_vm << 2);
    kb("VmLck", mm.locked_vm << 2);
    kb("VmPin", mm.pinned_vm << 2);
    kb("VmHWM", (anon + file + shmem) << 2);
    kb("VmRSS", (anon + file + shmem) << 2);
    kb("RssAnon", anon << 2);
    kb("RssFile", file << 2);
    kb("RssShmem", shmem << 2);
    kb("VmData", mm.data_vm << 2);
    kb("VmStk", mm.stack_vm << 2);
    kb("VmExe", text);
    kb("VmLib", exec_kb > text ? exec_kb - text : 0);
    kb("VmPTE", pte_bytes(mm) >> 10);
    kb("VmSwap", 0);
    kb("HugetlbPages", 0);
  }
  o += "CoreDumping:\t0\nTHP_enabled:\t0\n";
  if (p.arch == Arch::X86_64) o += "untag_mask:\t0xffffffffffffffff\n";  // no LAM
  o += "Threads:\t1\n";
  o += fmt::format("SigQ:\t{}/{}\n", p.sig.rt_queue.size(), p.rlimits[Rlim::Sigpending].cur);
  const SigSets sets = sig_sets(p);
  o += fmt::format(
      "SigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{:016x}\nSigCgt:\t{:016x}\n",
      0, p.sig.pending_set(), p.sig.blocked, sets.ign, sets.cgt);
  o += fmt::format(
      "CapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\n",
      c.cap_inheritable, c.cap_permitted, c.cap_effective, c.cap_bset, c.cap_ambient);
  o += "NoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";
  // Unicorn does not speculate.
  o += "Speculation_Store_Bypass:\tnot vulnerable\nSpeculationIndirectBranch:\tnot affected\n";
  // One CPU and one memory node (the node mask printed over MAX_NUMNODES = 1024 bits).
  o += "Cpus_allowed:\t1\nCpus_allowed_list:\t0\nMems_allowed:\t";
  for (int i = 0; i < 31; ++i)
    o += "00000000,";
  o += "00000001\nMems_allowed_list:\t0\n";
  o += "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n";
  return o;
}

std::string stat_text(Process& p) {
  // proc_pid_stat: 52 fields.
  std::uint64_t vsize = 0, rss = 0, startcode = 0, endcode = 0, startstack = 0, start_data = 0,
                end_data = 0, start_brk = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  if (p.has_mm()) {
    const Mm& mm = p.mm();
    vsize = mm.total_vm << PAGE_SHIFT;
    rss = rss_total(mm);
    startcode = mm.start_code;
    endcode = mm.end_code;
    startstack = mm.start_stack;
    start_data = mm.start_data;
    end_data = mm.end_data;
    start_brk = mm.start_brk;
    arg_start = mm.arg_start;
    arg_end = mm.arg_end;
    env_start = mm.env_start;
    env_end = mm.env_end;
  }
  const SigSets sets = sig_sets(p);
  // task_prio: -1 - rt_priority under FIFO/RR, 20 + nice otherwise.
  const int prio = p.sched.rt_priority ? -1 - p.sched.rt_priority : 20 + p.sched.nice;
  const int exit_code = p.state == ProcState::Zombie ? p.wait_status : 0;
  // utime: the guest's CPU time (one nanosecond per instruction); mmemu spends none in the
  // kernel on its behalf that it counts.
  return fmt::format(
      "{} ({}) {} {} {} {} 0 -1 4194304 0 0 0 0 {} 0 0 0 {} {} 1 0 {} {} {} {} {} {} {} 0 0 {} {} "
      "{} {} 0 0 0 {} 0 {} {} 0 0 0 {} {} {} {} {} {} {} {}\n",
      p.pid, p.comm, state_letter(p.state), p.ppid, p.pgid, p.sid, to_ticks(p.instructions), prio,
      p.sched.nice, to_ticks(p.start_boottime_ns), vsize, rss,
      p.rlimits[Rlim::Rss].cur == RLIM_INFINITY_ ? std::string("18446744073709551615")
                                                 : std::to_string(p.rlimits[Rlim::Rss].cur),
      startcode, endcode, startstack, p.sig.pending_set() & 0x7fffffff, p.sig.blocked & 0x7fffffff,
      sets.ign & 0x7fffffff, sets.cgt & 0x7fffffff, p.exit_signal, p.sched.rt_priority,
      p.sched.policy, start_data, end_data, start_brk, arg_start, arg_end, env_start, env_end,
      exit_code);
}

std::string limits_text(Process& p) {
  struct Row {
    const char* name;
    Rlim r;
    const char* unit;
  };
  static const Row kRows[] = {{"Max cpu time", Rlim::Cpu, "seconds"},
                              {"Max file size", Rlim::Fsize, "bytes"},
                              {"Max data size", Rlim::Data, "bytes"},
                              {"Max stack size", Rlim::Stack, "bytes"},
                              {"Max core file size", Rlim::Core, "bytes"},
                              {"Max resident set", Rlim::Rss, "bytes"},
                              {"Max processes", Rlim::Nproc, "processes"},
                              {"Max open files", Rlim::Nofile, "files"},
                              {"Max locked memory", Rlim::Memlock, "bytes"},
                              {"Max address space", Rlim::As, "bytes"},
                              {"Max file locks", Rlim::Locks, "locks"},
                              {"Max pending signals", Rlim::Sigpending, "signals"},
                              {"Max msgqueue size", Rlim::Msgqueue, "bytes"},
                              {"Max nice priority", Rlim::Nice, nullptr},
                              {"Max realtime priority", Rlim::Rtprio, nullptr},
                              {"Max realtime timeout", Rlim::Rttime, "us"}};
  const auto val = [](std::uint64_t v) {
    return v == RLIM_INFINITY_ ? std::string("unlimited") : std::to_string(v);
  };
  std::string o =
      fmt::format("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
  for (const Row& row : kRows) {
    const Rlimit& l = p.rlimits[row.r];
    o += fmt::format("{:<25} {:<20} {:<20} ", row.name, val(l.cur), val(l.max));
    o += row.unit ? fmt::format("{:<10}\n", row.unit) : std::string("\n");
  }
  return o;
}

std::string statm_text(Process& p) {
  if (!p.has_mm()) return "0 0 0 0 0 0 0\n";
  const Mm& mm = p.mm();
  const std::uint64_t shared = rss_pages(mm, MM_FILEPAGES) + rss_pages(mm, MM_SHMEMPAGES);
  const std::uint64_t resident = shared + rss_pages(mm, MM_ANONPAGES);
  const std::uint64_t text = text_kb(mm) >> 2;
  return fmt::format("{} {} {} {} 0 {} 0\n", mm.total_vm, resident, shared, text,
                     mm.data_vm + mm.stack_vm);
}

}  // namespace

std::optional<std::string> proc_pid_text(const std::shared_ptr<AddressSpace>& as, ProcText what) {
  if (!as || !as->mm) return std::nullopt;
  Mm& mm = *as->mm;
  switch (what) {
    case ProcText::Maps:
      return proc_maps(mm);
    case ProcText::Smaps:
      return proc_smaps(mm);
    case ProcText::SmapsRollup:
      return proc_smaps_rollup(mm);
    case ProcText::Cmdline:
      return guest_range(mm, mm.arg_start, mm.arg_end);
    case ProcText::Environ:
      return guest_range(mm, mm.env_start, mm.env_end);
    default:
      return std::nullopt;
  }
}

std::string proc_process_text(Process& p, ProcText what) {
  switch (what) {
    case ProcText::Comm:
      return p.comm + "\n";
    case ProcText::Status:
      return status_text(p);
    case ProcText::Stat:
      return stat_text(p);
    case ProcText::Statm:
      return statm_text(p);
    case ProcText::Limits:
      return limits_text(p);
    default:
      return {};
  }
}

FileStat proc_file_stat(std::uint32_t mode, std::uint64_t ino) {
  FileStat s;
  s.dev = makedev(0, 21);  // procfs, as this machine numbers it
  s.ino = ino;
  s.mode = S_IFREG | mode;
  s.nlink = 1;
  s.blksize = 1024;
  return s;
}

}  // namespace mmemu
