// Loading a program into a process (spawn and execve: the file looked up as the guest
// sees the file system, #! scripts handed to their interpreter, the ELF image built before
// the old one goes), the CPU/TLB pairing, and giving up an address space.
#include <cstring>

#include <fmt/format.h>

#include "emu/fs/exec_lookup.hpp"
#include "emu/image/arch_pages.hpp"
#include "emu/image/loader.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/kernel/kernel.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/exit_mmap.hpp"
#include "vma/file.hpp"

namespace mmemu {

namespace {

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  std::string b = slash == std::string::npos ? path : path.substr(slash + 1);
  return b.substr(0, 15);  // TASK_COMM_LEN - 1
}

}  // namespace

std::shared_ptr<AddressSpace> Kernel::make_address_space(std::unique_ptr<Mm> mm, int pid) {
  auto as = std::make_shared<AddressSpace>();
  as->mm = std::move(mm);
  as->mm->set_flusher(&as->tlbs);
  as->mm->on_exit_mmap = [this, pid](Mm&, const ExitMmapReport& r) { record("exit_mmap", pid, r); };
  return as;
}

void Kernel::attach_cpu(Process& p, std::unique_ptr<Cpu> cpu) {
  p.mm().set_rlimits(&p.rlimits);
  p.cpu = std::move(cpu);
  p.tlb = std::make_unique<WalkerTlb>(*p.cpu, p.mm());
  p.as->tlbs.attach(p.tlb.get());
  p.tlb->set_tracking(opts_.check);
  Process* proc = &p;
  p.tlb->set_fault_handler([this, proc](const MemFault& f) { return resolve_fault(*proc, f); });
  if (!trace_.on()) return;  // counts go into the stats when the CPU goes (release_tlb)
  const int pid = p.pid;
  p.tlb->on_event = [this, pid](const TlbEvent& e) {
    switch (e.kind) {
      case TlbEvent::Kind::Fill:
        trace_.emit("tlb_fill", pid,
                    {{"addr", fmt::format("{:#x}", e.start)},
                     {"pfn", fmt::format("{:#x}", e.pfn)},
                     {"perms", fmt::format("{}{}{}", (e.perms & PERM_R) ? 'r' : '-',
                                           (e.perms & PERM_W) ? 'w' : '-',
                                           (e.perms & PERM_X) ? 'x' : '-')}});
        break;
      case TlbEvent::Kind::Flush:
        trace_.emit(
            "tlb_flush", pid,
            {{"start", fmt::format("{:#x}", e.start)}, {"end", fmt::format("{:#x}", e.end)}});
        break;
      case TlbEvent::Kind::Dirty:
        trace_.emit("tlb_dirty", pid, {{"addr", fmt::format("{:#x}", e.start)}});
        break;
    }
  };
}

void Kernel::release_tlb(Process& p) {
  if (!p.tlb) return;
  const TlbStats& s = p.tlb->stats();
  stats_.add("tlb_fill", s.fills);
  stats_.add("tlb_dirty", s.dirty_fills);
  stats_.add("tlb_flush", s.flush_calls);
  if (p.as) p.as->tlbs.detach(p.tlb.get());
  p.tlb.reset();
}

void Kernel::release_mm(Process& p) {
  if (!p.as) return;
  release_tlb(p);
  p.cpu.reset();
  std::shared_ptr<AddressSpace> as = std::move(p.as);
  if (!as->mm) return;
  if (as->mm->mm_users == 1) machine_.inject.set_context(fmt::format("pid {}: exit_mmap", p.pid));
  // exit_mm / exec_mmap: mmput; the last user runs exit_mmap (its trace event fires there),
  // and the AddressSpace (with the struct) goes with the last process pointing at it.
  if (mmput(*as->mm)) return;
  // A vfork child leaving (exec or exit) gives the mm back to its parent, or the parent died
  // first: the mm reads the remaining user's limits, never those of p, which may go.
  as->mm->set_rlimits(nullptr);
  for (const auto& [pid, q] : procs_)
    if (q->as == as) as->mm->set_rlimits(&q->rlimits);
}

std::expected<void, ExecError> Kernel::load_program(Process& p, const std::string& path,
                                                    const std::vector<std::string>& argv,
                                                    const std::vector<std::string>& envp) {
  return load_program_at(p, kAtFdcwd, path, 0, argv, envp);
}

std::expected<void, ExecError> Kernel::load_program_at(Process& p, int dirfd,
                                                       const std::string& path, int flags,
                                                       const std::vector<std::string>& argv,
                                                       const std::vector<std::string>& envp) {
  auto err = [&](int e, std::string msg) {
    return std::unexpected(ExecError{e, fmt::format("{}: {}", path, std::move(msg))});
  };
  auto err_errno = [&](int e) { return err(e, std::strerror(e)); };
  // The lookup is the guest's (spawn's process is not in the table yet, its cwd and
  // credentials are set), so /proc/self/exe, descriptors and created files resolve as open.
  SyscallContext ctx{*this, p, Sys::execve, 0, {}, 0};
  auto opened = open_exec(ctx, dirfd, path, flags);
  if (!opened) return err_errno(opened.error().code);
  ExecFile exe = std::move(*opened);
  const std::string filename = exe.filename();  // bprm->filename: AT_EXECFN, comm
  std::vector<std::string> args = argv;
  // exec_binprm: a script's interpreter may be a script, up to this many levels.
  constexpr int kMaxInterpDepth = 5;
  std::string interp = filename;  // bprm->interp: the name a script's interpreter is given
  for (int depth = 0;; ++depth) {
    if (depth > kMaxInterpDepth) return err_errno(ELOOP);
    auto shebang = parse_shebang(exe.head(kBinprmBufSize));
    if (!shebang) break;  // not a script: the ELF loader's turn
    if (!*shebang) return err(ENOEXEC, "bad #! line");
    // The interpreter would open the script by name, and a close-on-exec descriptor's
    // /dev/fd/N is gone by then.
    if (exe.inaccessible()) return err_errno(ENOENT);
    const Shebang& sb = **shebang;
    std::vector<std::string> next{sb.interp};
    if (sb.arg) next.push_back(*sb.arg);
    next.push_back(interp);
    if (!args.empty()) next.insert(next.end(), args.begin() + 1, args.end());
    args = std::move(next);
    // An empty name (a "#!" line cut by the buffer's zeros) is the cwd, as open_exec("").
    auto ie = open_exec(ctx, kAtFdcwd, sb.interp, sb.interp.empty() ? kAtEmptyPath : 0);
    if (!ie)
      return err(ie.error().code,
                 fmt::format("interpreter {}: {}", sb.interp, std::strerror(ie.error().code)));
    // Named through a descriptor, the process takes the name of the file that runs.
    ExecFile next_exe(ExecTarget{ie->release(), ie->path(), ie->stat(), false}, filename,
                      exe.fd_path(), false);
    exe = std::move(next_exe);
    interp = sb.interp;
  }
  auto img = parse_elf(exe.bytes());
  if (!img) return err(img.error().errno_code(), img.error().message);
  if (p.cpu && img->arch != p.arch)
    return err(ENOEXEC, fmt::format("exec format error: {} program in a {} process",
                                    arch_name(img->arch), arch_name(p.arch)));

  // Build the new image completely before touching the process: any failure up to here
  // leaves the caller as it was (execve returns the error).
  machine_.inject.set_context(fmt::format("pid {}: execve", p.pid));
  // map_vsyscall runs at boot in Linux; here before the first x86-64 mm copies init_mm.
  if (img->arch == Arch::X86_64) {
    if (auto r = setup_vsyscall(machine_, opts_.vsyscall); !r)
      return err(ENOMEM, "out of memory setting up the vsyscall page");
  }
  auto mm = Mm::create(machine_, img->arch);
  if (!mm) return err(ENOMEM, "out of memory creating the address space");
  auto as = make_address_space(std::move(*mm), p.pid);
  if (auto r = map_arch_pages(*as->mm); !r) return err(ENOMEM, "out of memory mapping arch pages");
  LoadParams lp;
  lp.execfn = filename;
  lp.argv = std::move(args);
  lp.envp = envp;
  for (std::size_t i = 0; i < lp.random.size(); i += 8) {
    const std::uint64_t r = next_random();
    std::memcpy(lp.random.data() + i, &r, 8);
  }
  lp.uid = p.cred.uid;
  lp.euid = p.cred.euid;
  lp.gid = p.cred.gid;
  lp.egid = p.cred.egid;
  auto loaded = load_elf(*as->mm, *img, exe.file(), lp);
  if (!loaded) {
    const int e = loaded.error().code;
    return err(e, e == E2BIG ? "argument list too long"
                             : "cannot load the image: " + std::string(errno_name(e)));
  }
  auto cpu = make_cpu(img->arch);
  if (!cpu) return err(ENOMEM, "cannot create a CPU");
  (*cpu)->set_pc(loaded->entry);
  (*cpu)->set_sp(loaded->sp);
  if (img->arch == Arch::X86_64) (void)(*cpu)->set_reg("rflags", 0x202);

  // Point of no return.
  if (p.as) {
    if (opts_.dump.exit && p.mm().mm_users == 1) dump(DumpKind::Exit, p.pid, p.mm(), "exec");
    if (p.vfork_parent) {
      if (Process* parent = find(p.vfork_parent)) parent->vfork_done.wake_all();
      p.vfork_parent = 0;
      p.yield = true;  // let the parent go on first, as it usually does on Linux
    }
    release_mm(p);
  }
  as->exe_path = exe.path();
  p.comm = exe.fd_path() ? exe.dentry_name().substr(0, 15) : base_name(filename);
  as->exe_file = exe.release();  // now the address space's
  p.as = std::move(as);
  p.arch = img->arch;
  cap_bprm_creds(p.cred);  // the new image's capabilities, which the new mm checks
  sync_mm_caps(p);
  // The new mm was built against the default RLIMIT_DATA/STACK/MEMLOCK/AS (the stack size
  // and mmap_base come from them), and the process takes those: behaviour kept from when an
  // mm held these four itself. Linux keeps every limit across execve.
  for (Rlim r : {Rlim::Data, Rlim::Stack, Rlim::Memlock, Rlim::As})
    p.rlimits[r] = kDefaultRlimits[r];
  attach_cpu(p, std::move(*cpu));
  return {};
}

std::expected<void, ExecError> Kernel::exec_process(Process& p, const std::string& path,
                                                    const std::vector<std::string>& argv,
                                                    const std::vector<std::string>& envp) {
  return exec_process_at(p, kAtFdcwd, path, 0, argv, envp);
}

std::expected<void, ExecError> Kernel::exec_process_at(Process& p, int dirfd,
                                                       const std::string& path, int flags,
                                                       const std::vector<std::string>& argv,
                                                       const std::vector<std::string>& envp) {
  auto r = load_program_at(p, dirfd, path, flags, argv, envp);
  if (!r) return r;
  p.fds->close_on_exec();
  // flush_signal_handlers: caught signals go back to SIG_DFL, ignored ones stay ignored.
  for (KSigAction& ka : p.sig.action) {
    if (ka.handler != kSigIgn) ka.handler = kSigDfl;
    ka.flags = 0;
    ka.restorer = 0;
    ka.mask = 0;
  }
  p.sig.altstack = AltStack{};
  p.sig.saved_mask.reset();
  p.clear_child_tid = 0;
  p.areas = {};
  p.last_trap = {};
  record("exec", p.pid, {{"path", path}});
  return {};
}

void Kernel::log_once(std::string_view key, std::string_view line) {
  if (logged_once_.emplace(key).second) log_.msg(line);
}

}  // namespace mmemu
