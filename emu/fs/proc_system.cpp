// System-wide /proc texts and the snapshot sysinfo shares with them.
#include "emu/fs/proc_system.hpp"

#include <time.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "emu/image/loader.hpp"
#include "emu/kernel/kernel.hpp"
#include "vma/file.hpp"

namespace mmemu {

namespace {

std::uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// USER_HZ ticks.
std::uint64_t ticks(std::uint64_t ns) {
  return ns / 10000000ULL;
}

}  // namespace

SystemSnapshot system_snapshot(Kernel& k) {
  SystemSnapshot s;
  const PhysMem& phys = k.machine().phys;
  s.total = phys.nr_frames();
  s.free = phys.nr_free();
  for (pfn_t pfn = 0; pfn < phys.nr_frames(); ++pfn) {
    const PageDesc& d = phys.desc(pfn);
    if (d.refcount == 0) continue;
    if (d.flags & PG_pgtable) {
      ++s.pgtables;
      continue;
    }
    if (d.flags & PG_anon) ++s.anon;
    if ((d.flags & PG_pagecache) && d.mapping) {
      if (static_cast<const File*>(d.mapping)->shmem())
        ++s.shmem;
      else
        ++s.file;
      if (d.mapcount > 0) ++s.mapped;
      if (d.flags & PG_dirty) ++s.dirty;
    }
    if (d.flags & PG_mlocked) ++s.mlocked;
  }
  s.uptime_ns = clock_ns(CLOCK_BOOTTIME);
  s.boot_time_s =
      static_cast<std::int64_t>((clock_ns(CLOCK_REALTIME) - s.uptime_ns) / 1000000000ULL);
  const void* last_mm = nullptr;
  for (Process* p : k.processes()) {
    s.busy_ns += p->instructions;
    if (p->state == ProcState::Zombie) continue;
    ++s.procs;
    if (p->state == ProcState::Runnable) ++s.running;
    // A vfork child shares its parent's mm: counted once.
    if (p->has_mm() && p->as->mm.get() != last_mm) {
      s.committed += p->mm().total_vm;
      last_mm = p->as->mm.get();
    }
  }
  if (s.busy_ns > s.uptime_ns) s.busy_ns = s.uptime_ns;
  s.last_pid = k.last_pid();
  s.forks = static_cast<std::uint64_t>(k.last_pid() - k.options().first_pid + 1);
  return s;
}

std::uint64_t available_pages(const SystemSnapshot& s) {
  return s.free + s.file;
}

std::string proc_meminfo_text(const SystemSnapshot& s) {
  std::string o;
  const auto kb = [&o](const char* name, std::uint64_t pages) {
    o += fmt::format("{:<16}{:>8} kB\n", name, pages << (PAGE_SHIFT - 10));
  };
  kb("MemTotal:", s.total);
  kb("MemFree:", s.free);
  kb("MemAvailable:", available_pages(s));
  kb("Buffers:", 0);
  kb("Cached:", s.file + s.shmem);
  kb("SwapCached:", 0);
  // No LRU aging: every page counts as active, mlocked ones as unevictable.
  kb("Active:", s.anon + s.file + s.shmem);
  kb("Inactive:", 0);
  kb("Active(anon):", s.anon + s.shmem);
  kb("Inactive(anon):", 0);
  kb("Active(file):", s.file);
  kb("Inactive(file):", 0);
  kb("Unevictable:", s.mlocked);
  kb("Mlocked:", s.mlocked);
  kb("SwapTotal:", 0);
  kb("SwapFree:", 0);
  kb("Zswap:", 0);
  kb("Zswapped:", 0);
  kb("Dirty:", s.dirty);
  kb("Writeback:", 0);
  kb("AnonPages:", s.anon);
  kb("Mapped:", s.mapped);
  kb("Shmem:", s.shmem);
  kb("KReclaimable:", 0);
  kb("Slab:", 0);
  kb("SReclaimable:", 0);
  kb("SUnreclaim:", 0);
  kb("KernelStack:", 0);
  kb("PageTables:", s.pgtables);
  kb("SecPageTables:", 0);
  kb("NFS_Unstable:", 0);
  kb("Bounce:", 0);
  kb("WritebackTmp:", 0);
  // vm_commit_limit with overcommit_ratio 50 and no swap.
  kb("CommitLimit:", s.total / 2);
  kb("Committed_AS:", s.committed);
  o += fmt::format("{:<16}{:>8} kB\n", "VmallocTotal:", 34359738367ULL);
  kb("VmallocUsed:", 0);
  kb("VmallocChunk:", 0);
  kb("Percpu:", 0);
  kb("AnonHugePages:", 0);
  kb("ShmemHugePages:", 0);
  kb("ShmemPmdMapped:", 0);
  kb("FileHugePages:", 0);
  kb("FilePmdMapped:", 0);
  kb("Balloon:", 0);
  o += "HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n"
       "HugePages_Surp:        0\n";
  o += fmt::format("{:<16}{:>8} kB\n", "Hugepagesize:", 2048);
  kb("Hugetlb:", 0);
  return o;
}

std::string proc_stat_text(const SystemSnapshot& s) {
  const std::uint64_t user = ticks(s.busy_ns);
  const std::uint64_t idle = ticks(s.uptime_ns) > user ? ticks(s.uptime_ns) - user : 0;
  const std::string cpu = fmt::format("{} 0 0 {} 0 0 0 0 0 0\n", user, idle);
  std::string o = "cpu  " + cpu + "cpu0 " + cpu;
  o += "intr 0\nctxt 0\n";
  o += fmt::format("btime {}\nprocesses {}\nprocs_running {}\nprocs_blocked 0\n", s.boot_time_s,
                   s.forks, s.running);
  o += "softirq 0 0 0 0 0 0 0 0 0 0 0\n";
  return o;
}

std::string proc_loadavg_text(const SystemSnapshot& s) {
  return fmt::format("0.00 0.00 0.00 {}/{} {}\n", s.running, s.procs, s.last_pid);
}

std::string proc_uptime_text(const SystemSnapshot& s) {
  const std::uint64_t idle = s.uptime_ns - s.busy_ns;
  return fmt::format("{}.{:02} {}.{:02}\n", s.uptime_ns / 1000000000ULL,
                     (s.uptime_ns / 10000000ULL) % 100, idle / 1000000000ULL,
                     (idle / 10000000ULL) % 100);
}

std::string proc_cpuinfo_text(Arch arch) {
  const std::uint64_t hwcap = elf_hwcap(arch);
  std::string features;
  const auto add = [&features](const char* f) {
    if (!features.empty()) features += ' ';
    features += f;
  };
  if (arch == Arch::Arm64) {
    static const char* const kNames[] = {"fp",    "asimd", "evtstrm", "aes",
                                         "pmull", "sha1",  "sha2",    "crc32"};
    for (unsigned b = 0; b < std::size(kNames); ++b)
      if (hwcap & (1ULL << b)) add(kNames[b]);
    // MIDR_EL1 of Unicorn's Cortex-A72: 0x410fd083.
    return fmt::format(
        "processor\t: 0\nBogoMIPS\t: 100.00\nFeatures\t: {}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n",
        features);
  }
  // CPUID.1:EDX bit names, then the long-mode ones the CPU needs to run x86_64 code.
  static const char* const kEdx[32] = {
      "fpu",  "vme",  "de",   "pse", "tsc",  "msr", "pae",   "mce", "cx8",     "apic",  nullptr,
      "sep",  "mtrr", "pge",  "mca", "cmov", "pat", "pse36", "pn",  "clflush", nullptr, "dts",
      "acpi", "mmx",  "fxsr", "sse", "sse2", "ss",  "ht",    "tm",  "ia64",    "pbe"};
  for (unsigned b = 0; b < 32; ++b)
    if ((hwcap & (1ULL << b)) && kEdx[b]) add(kEdx[b]);
  add("syscall");
  add("nx");
  add("lm");
  return fmt::format(
      "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 15\nmodel\t\t: 107\n"
      "model name\t: QEMU Virtual CPU version 2.5+\nstepping\t: 1\ncpu MHz\t\t: 1000.000\n"
      "cache size\t: 512 KB\nphysical id\t: 0\nsiblings\t: 1\ncore id\t\t: 0\ncpu cores\t: 1\n"
      "apicid\t\t: 0\ninitial apicid\t: 0\nfpu\t\t: yes\nfpu_exception\t: yes\n"
      "cpuid level\t: 13\nwp\t\t: yes\nflags\t\t: {}\nbugs\t\t:\nbogomips\t: 2000.00\n"
      "clflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 40 bits physical, 48 bits "
      "virtual\npower management:\n\n",
      features);
}

std::string proc_mounts_text() {
  std::ifstream in("/proc/self/mounts");
  std::string o, line;
  bool proc_done = false;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string dev, dir, type, opts, rest;
    if (!(f >> dev >> dir >> type >> opts)) continue;
    std::getline(f, rest);
    if (dir == "/proc" || dir.starts_with("/proc/")) {
      if (!proc_done) o += "proc /proc proc rw,relatime 0 0\n";
      proc_done = true;
      continue;
    }
    // Every host file system is read-only to guests (writes answer EROFS).
    if (opts.starts_with("rw")) opts.replace(0, 2, "ro");
    o += dev + ' ' + dir + ' ' + type + ' ' + opts + rest + '\n';
  }
  if (!proc_done) o += "proc /proc proc rw,relatime 0 0\n";
  return o;
}

std::string proc_mountinfo_text() {
  std::ifstream in("/proc/self/mountinfo");
  std::string o, line;
  bool proc_done = false;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
    std::istringstream f(line);
    std::string id, parent, dev, root, dir, opts, rest;
    if (!(f >> id >> parent >> dev >> root >> dir >> opts)) continue;
    std::getline(f, rest);
    if (dir == "/proc" || dir.starts_with("/proc/")) {
      if (!proc_done) o += id + ' ' + parent + " 0:21 / /proc rw,relatime - proc proc rw\n";
      proc_done = true;
      continue;
    }
    if (opts.starts_with("rw")) opts.replace(0, 2, "ro");
    o += id + ' ' + parent + ' ' + dev + ' ' + root + ' ' + dir + ' ' + opts + rest + '\n';
  }
  if (!proc_done) o += "1 1 0:21 / /proc rw,relatime - proc proc rw\n";
  return o;
}

}  // namespace mmemu
