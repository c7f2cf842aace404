// /proc describes the emulated machine: the listing holds the guest pids only; meminfo,
// loadavg, stat and cpuinfo agree with sysinfo and the kernel's tables; /proc/PID files of
// a live process and of a zombie; limits in Linux's table; statfs and fstatfs answers.
#include <sys/mman.h>

#include <fmt/format.h>

#include <cmath>
#include <set>
#include <sstream>

#include "emu/fs/proc_system.hpp"
#include "sys_test_util.hpp"

namespace mmemu::test {
namespace {

// A spawned guest (not run) the kernel knows, so /proc finds it by pid, with a 64 KiB
// scratch mapping touched up front (reads into it must not allocate frames).
class ProcfsTest : public ::testing::TestWithParam<Arch> {
 protected:
  ProcfsTest() : k(SysTest::options(), unicorn_cpu_factory()) {
    auto r = k.spawn(sys_guest_path(GetParam(), "hello"), {"hello", "arg1"}, {"E=1"});
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    if (!r) return;
    p = *r;
    register_file_syscalls(table);
    register_mem_syscalls(table);
    register_misc_syscalls(table);
    auto m = sys_mmap(p->mm(), 0, kScratch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      nullptr, 0);
    EXPECT_TRUE(m.has_value());
    buf = *m;
    const std::string zeros(kScratch, '\1');
    EXPECT_TRUE(copy_to_user(p->mm(), buf, zeros.data(), zeros.size()));
  }
  ~ProcfsTest() override {
    for (Process* q : k.processes())
      if (q->state != ProcState::Zombie) k.exit_process(*q, 0);
  }
  static constexpr std::uint64_t kScratch = 1 << 16;
  std::int64_t call(Sys s, std::array<std::uint64_t, 6> a) {
    SyscallContext ctx{k, *p, s, 0, a, 0};
    const SysResult r = table.find(s)(ctx);
    return r.is_return() ? r.value() : INT64_MIN;
  }
  vaddr_t str(const std::string& s) {
    EXPECT_TRUE(copy_to_user(p->mm(), buf, s.c_str(), s.size() + 1));
    return buf;
  }
  std::string bytes(vaddr_t a, std::size_t n) {
    std::string s(n, '\0');
    EXPECT_TRUE(copy_from_user(p->mm(), s.data(), a, n));
    return s;
  }
  std::uint64_t get_u64(vaddr_t a) {
    std::uint64_t v = 0;
    EXPECT_TRUE(copy_from_user(p->mm(), &v, a, 8));
    return v;
  }
  std::int64_t open(const std::string& path, std::uint64_t flags = 0) {
    return call(Sys::openat, {static_cast<std::uint64_t>(-100), str(path), flags, 0, 0, 0});
  }
  std::string slurp(const std::string& path) {
    const std::int64_t fd = open(path);
    EXPECT_GE(fd, 0) << path;
    std::string out;
    for (;;) {
      const std::int64_t n =
          call(Sys::read, {static_cast<std::uint64_t>(fd), buf + 4096, 4096, 0, 0, 0});
      if (n <= 0) break;
      out += bytes(buf + 4096, static_cast<std::size_t>(n));
    }
    call(Sys::close, {static_cast<std::uint64_t>(fd), 0, 0, 0, 0, 0});
    return out;
  }
  std::vector<std::string> listing(const std::string& dir) {
    const std::int64_t fd = open(dir);
    EXPECT_GE(fd, 0);
    std::vector<std::string> out;
    for (;;) {
      const std::int64_t n =
          call(Sys::getdents64, {static_cast<std::uint64_t>(fd), buf + 8192, 16384, 0, 0, 0});
      if (n <= 0) break;
      const std::string b = bytes(buf + 8192, static_cast<std::size_t>(n));
      for (std::size_t off = 0; off < b.size();) {
        std::uint16_t reclen;
        std::memcpy(&reclen, b.data() + off + 16, 2);
        out.emplace_back(b.data() + off + 19);
        off += reclen;
      }
    }
    call(Sys::close, {static_cast<std::uint64_t>(fd), 0, 0, 0, 0, 0});
    return out;
  }
  // The value in kB of a "Name:   N kB" line.
  static std::uint64_t kb(const std::string& text, const std::string& name) {
    const std::size_t at = text.find("\n" + name + ":");
    EXPECT_NE(at, std::string::npos) << name;
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(at + name.size() + 2));
  }
  static std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;)
      out.push_back(w);
    return out;
  }
  Process* fork_child() {
    auto c = k.fork_process(*p, CloneArgs{});
    EXPECT_TRUE(c.has_value());
    return c ? k.find(*c) : nullptr;
  }

  Kernel k;
  Process* p = nullptr;
  SyscallTable table;
  vaddr_t buf = 0;
};

TEST_P(ProcfsTest, MeminfoIsTheEmulatedMachineAsSysinfoSaysIt) {
  ASSERT_NE(p, nullptr);
  const std::string mi = "\n" + slurp("/proc/meminfo");
  ASSERT_EQ(call(Sys::sysinfo, {buf + 60000, 0, 0, 0, 0, 0}), 0);
  const auto total = get_u64(buf + 60000 + 32), freeram = get_u64(buf + 60000 + 40);
  EXPECT_EQ(total, 64ULL << 20);
  EXPECT_NE(mi.find("\nMemTotal:          65536 kB\n"), std::string::npos) << mi;
  EXPECT_EQ(kb(mi, "MemFree") * 1024, freeram);
  EXPECT_EQ(freeram, k.machine().phys.nr_free() << 12);
  EXPECT_EQ(kb(mi, "SwapTotal"), 0u);
  EXPECT_EQ(kb(mi, "CommitLimit"), 32768u);
  // The loaded image is page cache; the scratch area is anonymous memory.
  const SystemSnapshot s = system_snapshot(k);
  EXPECT_GE(s.anon, kScratch / 4096);
  EXPECT_GT(s.file, 0u);
  EXPECT_EQ(kb(mi, "AnonPages"), s.anon * 4);
  EXPECT_EQ(kb(mi, "Cached"), (s.file + s.shmem) * 4);
  EXPECT_EQ(kb(mi, "PageTables"), s.pgtables * 4);
  EXPECT_EQ(kb(mi, "MemAvailable"), (s.free + s.file) * 4);
  // Touching 16 more pages shows up as 64 kB more AnonPages and 64 kB less MemFree.
  auto m = sys_mmap(p->mm(), 0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    nullptr, 0);
  ASSERT_TRUE(m.has_value());
  const std::string ones(16 * 4096, '\1');
  const std::uint64_t anon0 = kb(mi, "AnonPages"), free0 = kb(mi, "MemFree");
  ASSERT_TRUE(copy_to_user(p->mm(), *m, ones.data(), ones.size()));
  const std::string mi2 = "\n" + slurp("/proc/meminfo");
  EXPECT_EQ(kb(mi2, "AnonPages"), anon0 + 64);
  EXPECT_LE(kb(mi2, "MemFree"), free0 - 64);  // and the page table under them, if new
}

TEST_P(ProcfsTest, ListingHoldsTheGuestPidsAndAZombieShowsAsOne) {
  ASSERT_NE(p, nullptr);
  Process* c = fork_child();
  ASSERT_NE(c, nullptr);
  const int cpid = c->pid;
  EXPECT_EQ(slurp("/proc/loadavg"), fmt::format("0.00 0.00 0.00 2/2 {}\n", cpid));
  k.exit_process(*c, 3 << 8);  // p will wait for it: it stays a zombie
  std::set<std::string> pids, others;
  for (const std::string& n : listing("/proc"))
    (n[0] >= '0' && n[0] <= '9' ? pids : others).insert(n);
  EXPECT_EQ(pids, (std::set<std::string>{std::to_string(p->pid), std::to_string(cpid)}));
  for (const char* want : {".", "..", "self", "thread-self", "meminfo", "stat", "cpuinfo", "uptime",
                           "loadavg", "mounts", "sys"})
    EXPECT_TRUE(others.contains(want)) << want;
  EXPECT_EQ(slurp("/proc/loadavg"), fmt::format("0.00 0.00 0.00 1/1 {}\n", cpid));

  const std::string zs = slurp(fmt::format("/proc/{}/stat", cpid));
  const auto f = words(zs.substr(zs.find(')') + 2));
  ASSERT_EQ(f.size(), 50u) << zs;  // fields 3..52
  EXPECT_EQ(f[0], "Z");
  EXPECT_EQ(f[1], std::to_string(p->pid));
  EXPECT_EQ(f[20], "0");    // vsize
  EXPECT_EQ(f[49], "768");  // exit_code
  const std::string st = slurp(fmt::format("/proc/{}/status", cpid));
  EXPECT_NE(st.find("\nState:\tZ (zombie)\n"), std::string::npos) << st;
  EXPECT_EQ(st.find("VmSize"), std::string::npos);
  EXPECT_EQ(slurp(fmt::format("/proc/{}/cmdline", cpid)), "");
  EXPECT_EQ(open(fmt::format("/proc/{}/exe", cpid)), -ENOENT);
  EXPECT_EQ(open(fmt::format("/proc/{}/cwd", cpid)), -ENOENT);
  // The stat of /proc/PID carries the owner ps shows.
  ASSERT_EQ(call(Sys::newfstatat, {static_cast<std::uint64_t>(-100),
                                   str(fmt::format("/proc/{}", p->pid)), buf + 60000, 0, 0, 0}),
            0);
  const auto uid = bytes(buf + 60000 + (GetParam() == Arch::X86_64 ? 28 : 24), 4);
  std::uint32_t u;
  std::memcpy(&u, uid.data(), 4);
  EXPECT_EQ(u, p->cred.euid);
  k.reap(*c);
  EXPECT_EQ(open(fmt::format("/proc/{}/stat", cpid)), -ENOENT);
}

TEST_P(ProcfsTest, StatStatusAndLimitsText) {
  ASSERT_NE(p, nullptr);
  const std::string s = slurp("/proc/self/stat");
  EXPECT_EQ(s.substr(0, s.find(')') + 1), fmt::format("{} (hello)", p->pid));
  const auto f = words(s.substr(s.find(')') + 2));
  ASSERT_EQ(f.size(), 50u) << s;
  EXPECT_EQ(f[0], "R");
  EXPECT_EQ(f[1], "1");                                               // ppid
  EXPECT_EQ(f[17], "1");                                              // num_threads
  EXPECT_EQ(f[19], std::to_string(p->start_boottime_ns / 10000000));  // starttime
  EXPECT_EQ(f[20], std::to_string(p->mm().total_vm * 4096));          // vsize
  EXPECT_EQ(f[35], "17");                                             // exit_signal

  const std::string st = slurp("/proc/self/status");
  const std::size_t pte = st.find("\nVmPTE:\t");
  ASSERT_NE(pte, std::string::npos);
  const std::uint64_t tables = p->mm().pt().nr_tables(Level::Pte) +
                               p->mm().pt().nr_tables(Level::Pmd) +
                               p->mm().pt().nr_tables(Level::Pud);
  EXPECT_EQ(st.substr(pte, 20), fmt::format("\nVmPTE:\t{:>8} kB\n", tables * 4));
  EXPECT_NE(st.find("\nThreads:\t1\nSigQ:\t0/63431\n"), std::string::npos) << st;
  EXPECT_NE(st.find("\nCpus_allowed:\t1\nCpus_allowed_list:\t0\n"), std::string::npos);
  EXPECT_EQ(st.find("untag_mask") != std::string::npos, GetParam() == Arch::X86_64);
  EXPECT_TRUE(st.ends_with("voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n"));

  p->rlimits[Rlim::Nofile] = {100, 200};
  EXPECT_EQ(slurp("/proc/self/limits"),
            "Limit                     Soft Limit           Hard Limit           Units     \n"
            "Max cpu time              unlimited            unlimited            seconds   \n"
            "Max file size             unlimited            unlimited            bytes     \n"
            "Max data size             unlimited            unlimited            bytes     \n"
            "Max stack size            8388608              unlimited            bytes     \n"
            "Max core file size        0                    unlimited            bytes     \n"
            "Max resident set          unlimited            unlimited            bytes     \n"
            "Max processes             63431                63431                processes \n"
            "Max open files            100                  200                  files     \n"
            "Max locked memory         8388608              8388608              bytes     \n"
            "Max address space         unlimited            unlimited            bytes     \n"
            "Max file locks            unlimited            unlimited            locks     \n"
            "Max pending signals       63431                63431                signals   \n"
            "Max msgqueue size         819200               819200               bytes     \n"
            "Max nice priority         0                    0                    \n"
            "Max realtime priority     0                    0                    \n"
            "Max realtime timeout      unlimited            unlimited            us        \n");
}

TEST_P(ProcfsTest, StatCpuinfoAndUptimeDescribeOneCpu) {
  ASSERT_NE(p, nullptr);
  const std::string st = slurp("/proc/stat");
  const auto lines = words(st);
  EXPECT_EQ(lines[0], "cpu");
  EXPECT_NE(st.find("\ncpu0 "), std::string::npos);
  EXPECT_EQ(st.find("\ncpu1 "), std::string::npos);
  EXPECT_NE(st.find("\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n"), std::string::npos) << st;
  const std::string ci = slurp("/proc/cpuinfo");
  EXPECT_TRUE(ci.starts_with("processor\t: 0\n"));
  EXPECT_EQ(ci.find("processor\t: 1"), std::string::npos);
  if (GetParam() == Arch::Arm64) {
    EXPECT_NE(ci.find("\nFeatures\t: fp asimd aes pmull sha1 sha2 crc32\n"), std::string::npos)
        << ci;
    EXPECT_NE(ci.find("\nCPU part\t: 0xd08\n"), std::string::npos);
  } else {
    EXPECT_NE(ci.find("\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca "
                      "cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm\n"),
              std::string::npos)
        << ci;
  }
  // uptime and sysinfo read the same clock.
  ASSERT_EQ(call(Sys::sysinfo, {buf + 60000, 0, 0, 0, 0, 0}), 0);
  const double up = std::stod(slurp("/proc/uptime"));
  EXPECT_LE(std::abs(up - static_cast<double>(get_u64(buf + 60000))), 2.0);
}

TEST_P(ProcfsTest, StatfsAnswersForTheEmulatedMounts) {
  ASSERT_NE(p, nullptr);
  const vaddr_t out = buf + 60000;
  ASSERT_EQ(call(Sys::statfs, {str("/proc/self/status"), out, 0, 0, 0, 0}), 0);
  EXPECT_EQ(get_u64(out), 0x9fa0u);       // PROC_SUPER_MAGIC
  EXPECT_EQ(get_u64(out + 8), 4096u);     // f_bsize
  EXPECT_EQ(get_u64(out + 16), 0u);       // f_blocks
  EXPECT_EQ(get_u64(out + 56), 21u);      // f_fsid: procfs's device 0:21
  EXPECT_EQ(get_u64(out + 64), 255u);     // f_namelen
  EXPECT_EQ(get_u64(out + 80), 0x1020u);  // ST_VALID | ST_RELATIME
  ASSERT_EQ(call(Sys::statfs, {str("/"), out, 0, 0, 0, 0}), 0);
  EXPECT_EQ(get_u64(out + 80) & 1, 1u);  // ST_RDONLY: the host is read-only to guests
  EXPECT_EQ(call(Sys::statfs, {str("/nonexistent/x"), out, 0, 0, 0, 0}), -ENOENT);
  EXPECT_EQ(call(Sys::statfs, {str("/proc"), 8, 0, 0, 0, 0}), -EFAULT);
  ASSERT_EQ(call(Sys::pipe2, {out, 0, 0, 0, 0, 0}), 0);
  const auto rfd = static_cast<std::uint32_t>(get_u64(out) & 0xffffffff);
  ASSERT_EQ(call(Sys::fstatfs, {rfd, out, 0, 0, 0, 0}), 0);
  EXPECT_EQ(get_u64(out), 0x50495045u);  // PIPEFS_MAGIC
  EXPECT_EQ(call(Sys::fstatfs, {999, out, 0, 0, 0, 0}), -EBADF);
  const std::string mounts = slurp("/proc/mounts");
  EXPECT_NE(mounts.find("proc /proc proc rw,relatime 0 0\n"), std::string::npos) << mounts;
  // Every other mount is read-only to guests.
  std::istringstream in(mounts);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("proc /proc ")) continue;
    const auto w = words(line);
    ASSERT_GE(w.size(), 4u) << line;
    EXPECT_TRUE(w[3].starts_with("ro")) << line;
  }
}

INSTANTIATE_TEST_SUITE_P(Arches, ProcfsTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_name);

}  // namespace
}  // namespace mmemu::test
