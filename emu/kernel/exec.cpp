// Loading a program into a process (spawn and execve), the CPU/TLB pairing, and giving up
// an address space.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "emu/image/arch_pages.hpp"
#include "emu/image/loader.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/kernel/kernel.hpp"
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
  auto err = [&](int e, std::string msg) {
    return std::unexpected(ExecError{e, fmt::format("{}: {}", path, std::move(msg))});
  };
  // Resolve like execve: relative to the process's working directory.
  const std::string host_path = path.starts_with('/') ? path : p.fs.cwd + "/" + path;
  if (path.empty()) return err(ENOENT, "No such file or directory");
  if (::access(host_path.c_str(), F_OK) != 0) return err(errno, std::strerror(errno));
  auto file = open_host_file(host_path);
  if (!file) {
    const int e = file.error().code == EISDIR ? EACCES : file.error().code;
    return err(e, file.error().code == EISDIR ? "is a directory" : std::strerror(e));
  }
  File* exe = *file;
  // From here on `exe` holds a reference that must go with every early return.
  struct ExeRef {
    File* f;
    ~ExeRef() {
      if (f) f->put();
    }
  } exe_ref{exe};
  if (::access(host_path.c_str(), X_OK) != 0) return err(EACCES, "Permission denied");
  auto img = parse_elf(exe->data());
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
  lp.execfn = path;
  lp.argv = argv;
  lp.envp = envp;
  for (std::size_t i = 0; i < lp.random.size(); i += 8) {
    const std::uint64_t r = next_random();
    std::memcpy(lp.random.data() + i, &r, 8);
  }
  lp.uid = p.cred.uid;
  lp.euid = p.cred.euid;
  lp.gid = p.cred.gid;
  lp.egid = p.cred.egid;
  auto loaded = load_elf(*as->mm, *img, *exe, lp);
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
  char resolved[PATH_MAX];
  as->exe_path = ::realpath(host_path.c_str(), resolved) ? resolved : host_path;
  as->exe_file = exe;
  exe_ref.f = nullptr;  // now the address space's
  p.as = std::move(as);
  p.arch = img->arch;
  p.comm = base_name(path);
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
  auto r = load_program(p, path, argv, envp);
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

}  // namespace mmemu
