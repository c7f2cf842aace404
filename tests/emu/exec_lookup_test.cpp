// execve's lookup and #! scripts: parse_shebang as binfmt_script reads the first 256 bytes,
// open_exec's errnos (measured natively: ENOENT, ENOTDIR, EACCES for a directory or a file
// without an x bit, ELOOP for link loops and AT_SYMLINK_NOFOLLOW, EINVAL for unknown
// flags), exec of a script the guest created in memory, an injected allocation failure at
// every point of an exec leaving the caller as it was, busybox sh running its applets
// through /proc/self/exe, and the one log line for a thread-creating clone.
#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "emu/fs/exec_lookup.hpp"
#include "emu_test_util.hpp"
#include "sys_test_util.hpp"
#include "vma/file.hpp"

namespace mmemu::test {
namespace {

std::optional<Result<Shebang>> parse(const std::string& s) {
  return parse_shebang(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

TEST(ParseShebang, InterpreterAndOneArgument) {
  EXPECT_FALSE(parse("\x7f"
                     "ELF")
                   .has_value());
  EXPECT_FALSE(parse("echo hi\n").has_value());
  EXPECT_FALSE(parse("#").has_value());
  auto a = parse("#!/bin/sh\n");
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((*a)->interp, "/bin/sh");
  EXPECT_FALSE((*a)->arg);
  auto b = parse("#! \t/bin/x   -a  b \t \nrest\n");
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->interp, "/bin/x");
  EXPECT_EQ((*b)->arg, "-a  b");  // the rest of the line, one argument
  auto c = parse("#!/bin/sh");    // no newline, the file ends: fine
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->interp, "/bin/sh");
}

TEST(ParseShebang, LimitsAndENOEXEC) {
  for (const char* bad : {"#!\n", "#!  \t\n"}) {
    auto r = parse(bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(*r, std::unexpected(Errno{ENOEXEC})) << bad;
  }
  // Without a newline the buffer's zeros end an empty name (exec then opens "": EACCES).
  for (const char* empty : {"#!", "#!  \t"}) {
    auto r = parse(empty);
    ASSERT_TRUE(r && *r) << empty;
    EXPECT_EQ((*r)->interp, "") << empty;
  }
  // A name that runs past byte 255 with no newline was cut off: ENOEXEC.
  auto longname = parse("#!/" + std::string(300, 'a'));
  ASSERT_TRUE(longname);
  EXPECT_FALSE(*longname);
  // An argument past byte 255 is cut there.
  auto longarg = parse("#!/x " + std::string(300, 'b') + "\n");
  ASSERT_TRUE(longarg && *longarg);
  EXPECT_EQ((*longarg)->arg, std::string(255 - 5, 'b'));
  // A NUL ends the name.
  auto nul = parse(std::string("#!/bin/sh\0junk x\n", 17));
  ASSERT_TRUE(nul && *nul);
  EXPECT_EQ((*nul)->interp, "/bin/sh");
  EXPECT_FALSE((*nul)->arg);
}

class ExecLookupTest : public SysTest {
 protected:
  ExecLookupTest() {
    namespace fs = std::filesystem;
    tree.write("prog", "#!/bin/sh\n");
    fs::permissions(tree.path("prog"), fs::perms(0755));
    fs::create_symlink("loop2", tree.path() + "/loop1");
    fs::create_symlink("loop1", tree.path() + "/loop2");
    fs::create_symlink("prog", tree.path() + "/proglink");
  }
  int open_errno(int dirfd, const std::string& path, int flags = 0) {
    SyscallContext ctx{k, p, Sys::execve, 0, {}, 0};
    auto r = open_exec(ctx, dirfd, path, flags);
    return r ? 0 : r.error().code;
  }
  // After a successful exec the process has a CPU and TLB on its new address space; the
  // fixture's process is torn down without the kernel, so they go first (as release_tlb).
  void drop_cpu() {
    if (p.tlb) p.as->tlbs.detach(p.tlb.get());
    p.tlb.reset();
    p.cpu.reset();
  }
  HostTree tree;
};

TEST_P(ExecLookupTest, ErrnosLikeLinux) {
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("nope")), ENOENT);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("hello.txt/x")), ENOTDIR);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("hello.txt")), EACCES);  // no x bit
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("sub")), EACCES);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("loop1")), ELOOP);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("proglink")), 0);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("proglink"), kAtSymlinkNofollow), ELOOP);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("prog"), kAtSymlinkNofollow), 0);
  EXPECT_EQ(open_errno(kAtFdcwd, tree.path("prog"), 0x2), EINVAL);
  EXPECT_EQ(open_errno(kAtFdcwd, ""), ENOENT);
  EXPECT_EQ(open_errno(kAtFdcwd, "", kAtEmptyPath), EACCES);  // the cwd, a directory
  EXPECT_EQ(open_errno(77, "x"), EBADF);
  EXPECT_EQ(open_errno(kAtFdcwd, "/dev/null"), EACCES);
  EXPECT_EQ(open_errno(kAtFdcwd, "/proc/self/status"), EACCES);
}

TEST_P(ExecLookupTest, CanonicalPathAndFilename) {
  SyscallContext ctx{k, p, Sys::execve, 0, {}, 0};
  auto r = open_exec(ctx, kAtFdcwd, tree.path("proglink"), 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path(), std::filesystem::canonical(tree.path("prog")).string());
  EXPECT_EQ(r->filename(), tree.path("proglink"));
  EXPECT_EQ(r->head(2), (std::vector<std::uint8_t>{'#', '!'}));
}

// A script the guest wrote (in memory, never on the host) runs its interpreter: argv
// [interp, script, args...], /proc/PID/exe the interpreter, comm the script's name.
TEST_P(ExecLookupTest, CreatedScriptRunsItsInterpreter) {
  const std::string hello = sys_guest_path(arch(), "hello");
  const std::string script = tree.path("made-by-guest");
  SyscallContext ctx{k, p, Sys::openat, 0, {}, 0};
  auto f = open_path(ctx, script, O_CREAT | O_WRONLY, 0755);
  ASSERT_TRUE(f) << f.error().code;
  const std::string text = "#!" + hello + " opt\n";
  auto w =
      (*f)->write(ctx, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  ASSERT_TRUE(w.is_return());
  f->reset();
  EXPECT_FALSE(std::filesystem::exists(script));
  auto r = k.exec_process_at(p, kAtFdcwd, script, 0, {"ignored", "a1"}, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(p.as->exe_path, std::filesystem::canonical(hello).string());
  EXPECT_EQ(p.comm, "made-by-guest");
  const Mm& mm = p.mm();
  std::string args(mm.arg_end - mm.arg_start, '\0');
  ASSERT_TRUE(copy_from_user(p.mm(), args.data(), mm.arg_start, args.size()));
  EXPECT_EQ(args, hello + '\0' + "opt" + '\0' + script + '\0' + "a1" + '\0');
  drop_cpu();
}

// Every allocation an exec makes fails in turn: each failure is an error and the caller keeps
// its address space, name and executable; past the last one the exec succeeds.
TEST_P(ExecLookupTest, InjectedFailureLeavesTheCallerAsItWas) {
  const std::string hello = sys_guest_path(arch(), "hello");
  const auto before_as = p.as;
  bool done = false;
  for (std::uint64_t n = 1; n < 500 && !done; ++n) {
    k.machine().inject.fail_nth_any(n);
    auto r = k.exec_process_at(p, kAtFdcwd, hello, 0, {"hello"}, {});
    k.machine().inject.disarm();
    if (r) {
      done = true;
      EXPECT_NE(p.as, before_as);
      EXPECT_EQ(p.comm, "hello");
      drop_cpu();
      break;
    }
    // ENOMEM, or EFAULT when a stack page cannot be had while the strings are copied.
    EXPECT_TRUE(r.error().err == ENOMEM || r.error().err == EFAULT)
        << "allocation " << n << ": " << r.error().message;
    EXPECT_EQ(p.as, before_as) << "allocation " << n;
    EXPECT_EQ(p.comm, "systest");
  }
  EXPECT_TRUE(done);
}

// Threads are not there yet: clone with CLONE_VM without CLONE_VFORK is EINVAL, and the
// log names the flags once per run (pthread_create would otherwise fail silently).
TEST_P(ExecLookupTest, ThreadCloneIsEinvalAndLoggedOnce) {
  register_process_syscalls(table);
  std::ostringstream log;
  k.log().set_stream(&log);
  constexpr std::uint64_t kThreadFlags = 0x3d0f00;  // what glibc's pthread_create passes
  EXPECT_EQ(call(Sys::clone, kThreadFlags, 0, 0, 0, 0), -EINVAL);
  EXPECT_EQ(call(Sys::clone, kThreadFlags, 0, 0, 0, 0), -EINVAL);
  EXPECT_EQ(log.str(),
            "mmemu: clone flags CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|"
            "CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID not supported "
            "(threads): returning EINVAL\n");
}

INSTANTIATE_TEST_SUITE_P(Arch, ExecLookupTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_name);

// busybox sh runs applets by execve("/proc/self/exe", ...): the lookup must be the guest's.
TEST(BusyboxExec, PipelineOfApplets) {
  if (!std::filesystem::exists("/bin/busybox"))
    GTEST_SKIP() << "/bin/busybox is absent (apt-get install busybox-static)";
  const GuestRun r = run_path("/bin/busybox", {"sh", "-c", "seq 1 100000 | tail -1"});
  EXPECT_TRUE(r.spawn_error.empty()) << r.spawn_error;
  EXPECT_EQ(r.out, "100000\n") << r.err << r.log;
  EXPECT_EQ(r.status, 0) << r.err << r.log;
}

}  // namespace
}  // namespace mmemu::test
