// The emulated machine as the system-wide /proc files and sysinfo(2) describe it, from one
// snapshot so they agree: memory from the emulated physical frames (their descriptors say
// what each holds), time from the host's CLOCK_BOOTTIME (the clock guests read), one CPU
// (as sched_getaffinity says), processes from the kernel's table.
//
// What mmemu does not model is reported as Linux reports an idle machine without it: load
// averages 0 (no load sampling), no swap, no slab or kernel stacks, no interrupts or
// context-switch counts. CPU time is the guests' (one nanosecond per instruction, as their
// CPU clocks) of the processes still in the table; the rest of the uptime is idle.
#pragma once

#include <cstdint>
#include <string>

#include "mmu/types.hpp"

namespace mmemu {

class Kernel;

struct SystemSnapshot {
  // Memory, in pages.
  std::uint64_t total = 0, free = 0;
  std::uint64_t anon = 0;       // PG_anon frames
  std::uint64_t file = 0;       // page cache of regular files (not shmem)
  std::uint64_t shmem = 0;      // page cache of shmem objects (memfd, MAP_SHARED anon, SysV)
  std::uint64_t mapped = 0;     // page cache frames some PTE maps
  std::uint64_t pgtables = 0;   // frames holding page tables
  std::uint64_t mlocked = 0;    // PG_mlocked
  std::uint64_t dirty = 0;      // PG_dirty page cache
  std::uint64_t committed = 0;  // total_vm of the live address spaces (Committed_AS)
  // Time.
  std::uint64_t uptime_ns = 0;   // CLOCK_BOOTTIME
  std::uint64_t busy_ns = 0;     // guest CPU time of the processes in the table
  std::int64_t boot_time_s = 0;  // btime: CLOCK_REALTIME - uptime
  // Processes.
  int procs = 0;            // live (not zombies): sysinfo's procs, loadavg's total
  int running = 0;          // runnable
  int last_pid = 0;         // the pid most recently handed out
  std::uint64_t forks = 0;  // processes created since the run began (/proc/stat "processes")
};

SystemSnapshot system_snapshot(Kernel& k);

// MemAvailable's estimate: free frames plus the file cache that could be dropped.
std::uint64_t available_pages(const SystemSnapshot& s);

// The texts of /proc/meminfo, /proc/stat, /proc/loadavg, /proc/uptime.
std::string proc_meminfo_text(const SystemSnapshot& s);
std::string proc_stat_text(const SystemSnapshot& s);
std::string proc_loadavg_text(const SystemSnapshot& s);
std::string proc_uptime_text(const SystemSnapshot& s);
// /proc/cpuinfo as a process of `arch` reads it: the one CPU Unicorn emulates (qemu64 on
// x86_64, Cortex-A72 on arm64), its flags/Features from the AT_HWCAP the loader gives.
std::string proc_cpuinfo_text(Arch arch);
// /proc/PID/mounts: the host's mounts as mmemu presents them (read-only), with procfs on
// /proc (the host's mounts under /proc are not visible).
std::string proc_mounts_text();
// /proc/PID/mountinfo: the same mounts as proc_mounts_text, in the host's mountinfo form
// (ids, parents and devices the host's; the mount options read-only).
std::string proc_mountinfo_text();

}  // namespace mmemu
