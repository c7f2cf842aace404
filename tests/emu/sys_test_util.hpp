// A small kernel/process fixture for the system-call group tests: a Kernel, one guest
// process with an empty address space and a descriptor table (not started, no CPU), a
// scratch area of guest memory for arguments, and the syscall table of the groups under
// test. Calls go through the registered handlers exactly as the dispatcher calls them.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "emu/cpu/unicorn_cpu.hpp"
#include "emu/kernel/kernel.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/fault.hpp"
#include "vma/mm_syscalls.hpp"

namespace mmemu::test {

inline std::string arch_param_name(const ::testing::TestParamInfo<Arch>& info) {
  return std::string(arch_name(info.param));
}

// A built guest program: ${MMEMU_GUEST_DIR}/ARCH/NAME, or the guests directory found
// above the test binary.
inline std::string sys_guest_path(Arch a, const std::string& name) {
  namespace fs = std::filesystem;
  std::string dir = "guests";
  if (const char* d = std::getenv("MMEMU_GUEST_DIR")) {
    dir = d;
  } else {
    const fs::path exe = fs::read_symlink("/proc/self/exe");
    for (fs::path q = exe.parent_path(); !q.empty() && q != q.root_path(); q = q.parent_path())
      if (fs::exists(q / "guests" / "guests.txt")) {
        dir = (q / "guests").string();
        break;
      }
  }
  return dir + "/" + std::string(arch_name(a)) + "/" + name;
}

// A host directory with a few files for open/stat/read tests, removed afterwards.
class HostTree {
 public:
  HostTree() {
    char tmpl[] = "/tmp/mmemu-sys-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    write("hello.txt", "hello, world\n");
    std::string big(3 * 4096 + 100, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>('a' + i % 26);
    write("big.bin", big);
    std::filesystem::create_directory(dir_ + "/sub");
    write("sub/inner", "x");
    std::filesystem::create_symlink("hello.txt", dir_ + "/link");
  }
  ~HostTree() { std::filesystem::remove_all(dir_); }
  HostTree(const HostTree&) = delete;
  HostTree& operator=(const HostTree&) = delete;
  void write(const std::string& rel, const std::string& data) {
    std::ofstream(dir_ + "/" + rel, std::ios::binary) << data;
  }
  std::string path(const std::string& rel = "") const {
    return rel.empty() ? dir_ : dir_ + "/" + rel;
  }

 private:
  std::string dir_;
};

class SysTest : public ::testing::TestWithParam<Arch> {
 public:
  static constexpr vaddr_t kScratch = 0x10000000;  // 64 KiB of guest memory for arguments
  static constexpr std::uint64_t kScratchSize = 16 * 4096;
  static constexpr std::int64_t kBlocked = INT64_MIN;

  static KernelOptions options() {
    KernelOptions o;
    o.phys_bytes = 64ULL << 20;
    o.random_seed = 42;
    return o;
  }

  SysTest() : k(options(), unicorn_cpu_factory()), p(k, 1000, 1, GetParam()) {
    p.as = std::make_shared<AddressSpace>();
    auto mm = Mm::create(k.machine(), GetParam());
    EXPECT_TRUE(mm.has_value());
    p.as->mm = std::move(*mm);
    p.as->mm->set_rlimits(&p.rlimits);
    p.fds = std::make_unique<FdTable>();
    p.cred.uid = static_cast<std::uint32_t>(::getuid());
    p.cred.euid = static_cast<std::uint32_t>(::geteuid());
    p.comm = "systest";
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) p.fs.cwd = cwd;
    register_mem_syscalls(table);
    register_file_syscalls(table);
    register_time_syscalls(table);
    register_misc_syscalls(table);
    register_sched_syscalls(table);
    auto r = sys_mmap(mm_(), kScratch, kScratchSize, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
    EXPECT_TRUE(r.has_value());
  }

  Mm& mm_() { return p.mm(); }
  Arch arch() const { return GetParam(); }

  // The handler's answer: the return value (-errno on failure), or kBlocked.
  SysResult raw(Sys s, std::array<std::uint64_t, 6> a, unsigned retry = 0) {
    SyscallFn fn = table.find(s);
    EXPECT_NE(fn, nullptr) << sys_name(s) << " has no handler";
    if (!fn) return SysResult::err(38);
    auto nr = sys_number(arch(), s);
    SyscallContext ctx{k, p, s, nr.value_or(0), a, retry};
    return fn(ctx);
  }
  template <class... A>
  std::int64_t call(Sys s, A... args) {
    std::array<std::uint64_t, 6> a{static_cast<std::uint64_t>(args)...};
    SysResult r = raw(s, a);
    return r.is_return() ? r.value() : kBlocked;
  }
  // Old x86_64-only calls exist only there.
  bool has(Sys s) const { return sys_number(arch(), s).has_value(); }

  // Guest memory helpers (scratch area).
  vaddr_t str(const std::string& s, std::uint64_t off = 0) {
    const vaddr_t a = kScratch + off;
    EXPECT_TRUE(copy_to_user(mm_(), a, s.c_str(), s.size() + 1));
    return a;
  }
  std::string bytes(vaddr_t a, std::size_t n) {
    std::string s(n, '\0');
    EXPECT_TRUE(copy_from_user(mm_(), s.data(), a, n));
    return s;
  }
  template <class T>
  T get(vaddr_t a) {
    T v{};
    EXPECT_TRUE(copy_from_user(mm_(), &v, a, sizeof v));
    return v;
  }
  template <class T>
  void put(vaddr_t a, const T& v) {
    EXPECT_TRUE(copy_to_user(mm_(), a, &v, sizeof v));
  }
  void fill(vaddr_t a, std::size_t n, std::uint8_t v) {
    std::vector<std::uint8_t> b(n, v);
    EXPECT_TRUE(copy_to_user(mm_(), a, b.data(), n));
  }
  // open(path, flags) through openat(AT_FDCWD, ...), flags in the guest's encoding.
  std::int64_t open(const std::string& path, std::uint64_t flags = 0, std::uint64_t off = 8192) {
    return call(Sys::openat, static_cast<std::uint64_t>(-100), str(path, off), flags, 0);
  }
  // The guest ABI's value of O_DIRECTORY / O_LARGEFILE / O_NOFOLLOW / O_DIRECT.
  std::uint64_t o_directory() const { return arch() == Arch::X86_64 ? 0x10000 : 0x4000; }
  std::uint64_t o_largefile() const { return arch() == Arch::X86_64 ? 0x8000 : 0x20000; }
  std::uint64_t o_nofollow() const { return arch() == Arch::X86_64 ? 0x20000 : 0x8000; }
  std::uint64_t o_direct() const { return arch() == Arch::X86_64 ? 0x4000 : 0x10000; }

  Kernel k;
  Process p;
  SyscallTable table;
};

#define INSTANTIATE_SYS_ARCHES(suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(Arches, suite, ::testing::Values(Arch::X86_64, Arch::Arm64), \
                           arch_param_name)

inline constexpr std::int64_t E(int e) {
  return -static_cast<std::int64_t>(e);
}

}  // namespace mmemu::test
