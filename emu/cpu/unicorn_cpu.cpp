// The Unicorn 2.0.1 backend: engine setup, hooks, regions and the run loop.
#include "emu/cpu/unicorn_cpu.hpp"

#include <cstring>
#include <limits>

#include "emu/cpu/unicorn_arch.hpp"

namespace mmemu {

std::uint64_t uc_read_u64(uc_engine* uc, int id) {
  std::uint8_t buf[16] = {};  // vector registers fill 16 bytes; narrower ones fewer
  uc_reg_read(uc, id, buf);
  std::uint64_t v;
  std::memcpy(&v, buf, sizeof v);
  return v;
}

void uc_write_u64(uc_engine* uc, int id, std::uint64_t v) {
  std::uint8_t buf[16] = {};
  std::memcpy(buf, &v, sizeof v);
  uc_reg_write(uc, id, buf);
}

namespace {

constexpr std::uint32_t kUcProt[8] = {
    UC_PROT_NONE,
    UC_PROT_READ,
    UC_PROT_WRITE,
    UC_PROT_READ | UC_PROT_WRITE,
    UC_PROT_EXEC,
    UC_PROT_READ | UC_PROT_EXEC,
    UC_PROT_WRITE | UC_PROT_EXEC,
    UC_PROT_ALL,
};

// Unicorn (QEMU) exception numbers seen in UC_HOOK_INTR.
constexpr std::uint32_t kX86DivideError = 0;
constexpr std::uint32_t kX86Debug = 1;
constexpr std::uint32_t kX86Breakpoint = 3;
constexpr std::uint32_t kX86InvalidOpcode = 6;
constexpr std::uint32_t kArmUdef = 1;
constexpr std::uint32_t kArmSvc = 2;
constexpr std::uint32_t kArmBkpt = 7;
constexpr std::uint32_t kArmHvc = 11;
constexpr std::uint32_t kArmSmc = 13;

}  // namespace

// C entry points for Unicorn's hooks; they forward to the private members.
struct UnicornHooks {
  static void code(uc_engine*, std::uint64_t addr, std::uint32_t, void* self) {
    static_cast<UnicornCpu*>(self)->on_code(addr);
  }
  static bool mem(uc_engine*, uc_mem_type type, std::uint64_t addr, int size, std::int64_t,
                  void* self) {
    return static_cast<UnicornCpu*>(self)->on_mem_invalid(static_cast<int>(type), addr, size);
  }
  static void syscall(uc_engine*, void* self) { static_cast<UnicornCpu*>(self)->on_syscall_insn(); }
  static void intr(uc_engine*, std::uint32_t intno, void* self) {
    static_cast<UnicornCpu*>(self)->on_interrupt(intno);
  }
  static bool invalid(uc_engine*, void* self) {
    static_cast<UnicornCpu*>(self)->on_invalid_insn();
    return false;
  }
};

Result<std::unique_ptr<UnicornCpu>> UnicornCpu::create(Arch arch) {
  const UnicornArchOps& ops = arch == Arch::X86_64 ? unicorn_x86_ops() : unicorn_arm64_ops();
  uc_engine* uc = nullptr;
  if (uc_open(ops.arch, ops.mode, &uc) != UC_ERR_OK) return fail(ENOMEM);
  // Exits on, with none set: no address ends a run, and no stop invalidates code.
  if (uc_ctl_exits_enable(uc) != UC_ERR_OK) {
    uc_close(uc);
    return fail(ENOMEM);
  }
  std::unique_ptr<UnicornCpu> cpu(new UnicornCpu(arch, uc));
  uc_hook h;
  bool ok = uc_hook_add(uc, &h, UC_HOOK_CODE, reinterpret_cast<void*>(&UnicornHooks::code),
                        cpu.get(), 1, 0) == UC_ERR_OK;
  ok = ok && uc_hook_add(uc, &h, UC_HOOK_MEM_INVALID, reinterpret_cast<void*>(&UnicornHooks::mem),
                         cpu.get(), 1, 0) == UC_ERR_OK;
  ok = ok && uc_hook_add(uc, &h, UC_HOOK_INTR, reinterpret_cast<void*>(&UnicornHooks::intr),
                         cpu.get(), 1, 0) == UC_ERR_OK;
  ok = ok &&
       uc_hook_add(uc, &h, UC_HOOK_INSN_INVALID, reinterpret_cast<void*>(&UnicornHooks::invalid),
                   cpu.get(), 1, 0) == UC_ERR_OK;
  if (arch == Arch::X86_64) {
    ok = ok && uc_hook_add(uc, &h, UC_HOOK_INSN, reinterpret_cast<void*>(&UnicornHooks::syscall),
                           cpu.get(), 1, 0, UC_X86_INS_SYSCALL) == UC_ERR_OK;
  }
  if (!ok) return fail(ENOMEM);
  return cpu;
}

UnicornCpu::UnicornCpu(Arch arch, uc_struct* uc)
    : arch_(arch),
      uc_(uc),
      ops_(arch == Arch::X86_64 ? &unicorn_x86_ops() : &unicorn_arm64_ops()) {}

UnicornCpu::~UnicornCpu() {
  uc_close(uc_);
}

Result<std::unique_ptr<Cpu>> make_unicorn_cpu(Arch arch) {
  auto cpu = UnicornCpu::create(arch);
  if (!cpu) return std::unexpected(cpu.error());
  return std::unique_ptr<Cpu>(std::move(*cpu));
}

// ---- registers ----

std::uint64_t UnicornCpu::read_reg(int id) const {
  return uc_read_u64(uc_, id);
}
void UnicornCpu::write_reg(int id, std::uint64_t v) {
  uc_write_u64(uc_, id, v);
}

vaddr_t UnicornCpu::pc() const {
  return read_reg(ops_->pc);
}
void UnicornCpu::set_pc(vaddr_t v) {
  write_reg(ops_->pc, v);
}
std::uint64_t UnicornCpu::sp() const {
  return read_reg(ops_->sp);
}
void UnicornCpu::set_sp(std::uint64_t v) {
  write_reg(ops_->sp, v);
}
std::uint64_t UnicornCpu::syscall_nr() const {
  return read_reg(ops_->nr);
}
std::uint64_t UnicornCpu::syscall_arg(unsigned i) const {
  return i < 6 ? read_reg(ops_->args[i]) : 0;
}
void UnicornCpu::set_syscall_arg(unsigned i, std::uint64_t v) {
  if (i < 6) write_reg(ops_->args[i], v);
}
std::uint64_t UnicornCpu::syscall_ret() const {
  return read_reg(ops_->ret);
}
void UnicornCpu::set_syscall_ret(std::uint64_t v) {
  write_reg(ops_->ret, v);
}
std::uint64_t UnicornCpu::tls() const {
  return read_reg(ops_->tls);
}
void UnicornCpu::set_tls(std::uint64_t v) {
  write_reg(ops_->tls, v);
}

Result<std::uint64_t> UnicornCpu::reg(std::string_view name) const {
  for (const auto& r : ops_->names)
    if (r.name == name) return read_reg(r.id);
  return fail(ENOENT);
}

Result<> UnicornCpu::set_reg(std::string_view name, std::uint64_t v) {
  for (const auto& r : ops_->names) {
    if (r.name != name) continue;
    if (r.vector) {
      std::uint8_t buf[16] = {};  // keep the high half
      uc_reg_read(uc_, r.id, buf);
      std::memcpy(buf, &v, sizeof v);
      uc_reg_write(uc_, r.id, buf);
    } else {
      write_reg(r.id, v);
    }
    return {};
  }
  return fail(ENOENT);
}

std::vector<std::string_view> UnicornCpu::reg_names() const {
  return {ops_->general.begin(), ops_->general.end()};
}

CpuContext UnicornCpu::save_context() const {
  return ops_->save(uc_);
}

Result<> UnicornCpu::restore_context(const CpuContext& ctx) {
  if (!ops_->restore(uc_, ctx)) return fail(EINVAL);
  return {};
}

// ---- regions ----

bool UnicornCpu::covered(vaddr_t va, std::uint64_t len) const {
  vaddr_t end = va + len;
  auto it = regions_.upper_bound(va);
  if (it == regions_.begin()) return false;
  --it;
  while (va < end) {
    if (it == regions_.end() || it->first > va || it->second.end <= va) return false;
    va = it->second.end;
    ++it;
  }
  return true;
}

bool UnicornCpu::allows(vaddr_t va, Access access) const {
  auto it = regions_.upper_bound(va);
  if (it == regions_.begin()) return false;
  --it;
  if (it->second.end <= va) return false;
  unsigned need = access == Access::Read ? PERM_R : access == Access::Write ? PERM_W : PERM_X;
  return (it->second.perms & need) != 0;
}

// Inside a hook, Unicorn must not lose the region under the running code (measured: on
// x86, unmapping the region holding both the running code and the faulting address
// crashes; protecting the region being fetched inside FETCH_PROT crashes). Refuse changes
// that re-create or change X of any region near the current instruction: its page with one
// page either side (a block or an instruction may straddle a page boundary).
Result<> UnicornCpu::check_in_hook(vaddr_t va, std::uint64_t len, bool remaps,
                                   unsigned perms) const {
  if (!in_hook_) return {};
  vaddr_t page = page_align_down(hook_pc_);
  vaddr_t lo = page >= PAGE_SIZE ? page - PAGE_SIZE : 0;
  vaddr_t hi = page + 2 * PAGE_SIZE;
  // Splitting a region unmaps and maps it whole, so the whole regions count.
  auto first = std::prev(regions_.upper_bound(va));
  vaddr_t end = va + len;
  for (auto it = first; it != regions_.end() && it->first < end; ++it) {
    bool split = it->first < va || it->second.end > end;
    bool touches = it->first < hi && lo < it->second.end;
    if (touches && (remaps || split || ((it->second.perms ^ perms) & PERM_X))) return fail(EBUSY);
  }
  return {};
}

static bool valid_range(vaddr_t va, std::uint64_t len) {
  return len > 0 && page_aligned(va) && page_aligned(len) && va + len > va;
}

Result<> UnicornCpu::map(vaddr_t va, std::uint64_t len, std::uint8_t* host, unsigned perms) {
  if (!valid_range(va, len) || !page_aligned(reinterpret_cast<std::uintptr_t>(host)) ||
      perms > PERM_RWX)
    return fail(EINVAL);
  auto next = regions_.lower_bound(va);
  if (next != regions_.end() && next->first < va + len) return fail(EEXIST);
  if (next != regions_.begin() && std::prev(next)->second.end > va) return fail(EEXIST);
  uc_err e = uc_mem_map_ptr(uc_, va, len, kUcProt[perms], host);
  if (e == UC_ERR_NOMEM) return fail(ENOMEM);
  if (e != UC_ERR_OK) return fail(EINVAL);
  regions_.emplace(va, Region{va + len, host, perms});
  return {};
}

// Splits the region containing addr (if any, and if addr is inside it) into two regions
// meeting at addr, in Unicorn and in the mirror.
Result<> UnicornCpu::split_at(vaddr_t addr) {
  auto it = regions_.upper_bound(addr);
  if (it == regions_.begin()) return {};
  --it;
  if (it->first == addr || it->second.end <= addr) return {};
  vaddr_t start = it->first;
  Region r = it->second;
  if (uc_mem_unmap(uc_, start, r.end - start) != UC_ERR_OK) return fail(EINVAL);
  regions_.erase(it);
  std::uint8_t* host2 = r.host + (addr - start);
  if (uc_mem_map_ptr(uc_, start, addr - start, kUcProt[r.perms], r.host) != UC_ERR_OK ||
      uc_mem_map_ptr(uc_, addr, r.end - addr, kUcProt[r.perms], host2) != UC_ERR_OK)
    return fail(ENOMEM);
  regions_.emplace(start, Region{addr, r.host, r.perms});
  regions_.emplace(addr, Region{r.end, host2, r.perms});
  return {};
}

Result<> UnicornCpu::unmap(vaddr_t va, std::uint64_t len) {
  if (!valid_range(va, len)) return fail(EINVAL);
  if (!covered(va, len)) return fail(ENOENT);
  if (auto r = check_in_hook(va, len, true, PERM_NONE); !r) return r;
  if (auto r = split_at(va); !r) return r;
  if (auto r = split_at(va + len); !r) return r;
  for (auto it = regions_.lower_bound(va); it != regions_.end() && it->first < va + len;) {
    if (uc_mem_unmap(uc_, it->first, it->second.end - it->first) != UC_ERR_OK) return fail(EINVAL);
    it = regions_.erase(it);
  }
  return {};
}

Result<> UnicornCpu::protect(vaddr_t va, std::uint64_t len, unsigned perms) {
  if (!valid_range(va, len) || perms > PERM_RWX) return fail(EINVAL);
  if (!covered(va, len)) return fail(ENOENT);
  if (auto r = check_in_hook(va, len, false, perms); !r) return r;
  if (auto r = split_at(va); !r) return r;
  if (auto r = split_at(va + len); !r) return r;
  for (auto it = regions_.lower_bound(va); it != regions_.end() && it->first < va + len; ++it) {
    if (it->second.perms == perms) continue;
    if (uc_mem_protect(uc_, it->first, it->second.end - it->first, kUcProt[perms]) != UC_ERR_OK)
      return fail(EINVAL);
    it->second.perms = perms;
  }
  return {};
}

// ---- hooks ----

void UnicornCpu::stop_with(Pending p) {
  pending_ = p;
  uc_emu_stop(uc_);
}

void UnicornCpu::on_code(std::uint64_t addr) {
  last_insn_pc_ = addr;
  if (++started_ > budget_) stop_with(Pending::Slice);  // stops before this instruction
}

bool UnicornCpu::on_mem_invalid(int type, std::uint64_t addr, int size) {
  // Already stopping: a store straddling into a missing page calls this once per byte.
  if (pending_ != Pending::None) return false;
  MemFault f;
  f.va = addr;
  f.size = static_cast<unsigned>(size);
  switch (type) {
    case UC_MEM_READ_UNMAPPED:
      f.access = Access::Read;
      break;
    case UC_MEM_WRITE_UNMAPPED:
      f.access = Access::Write;
      break;
    case UC_MEM_FETCH_UNMAPPED:
      f.access = Access::Exec;
      break;
    case UC_MEM_READ_PROT:
      f.access = Access::Read, f.unmapped = false;
      break;
    case UC_MEM_WRITE_PROT:
      f.access = Access::Write, f.unmapped = false;
      break;
    default:
      f.access = Access::Exec, f.unmapped = false;
      break;
  }
  f.pc = pc();
  if (fault_handler_) {
    in_hook_ = true;
    hook_pc_ = f.pc;
    FaultAction a = fault_handler_(f);
    in_hook_ = false;
    // A Retry that left the access unserved would make Unicorn perform it regardless of
    // the region's permissions (protection faults) or fail with UC_ERR_MAP: stop instead.
    if (a == FaultAction::Retry && allows(addr, f.access)) return true;
  }
  fault_ = f;
  stop_with(Pending::Fault);
  return false;
}

void UnicornCpu::handle_syscall_arrival() {
  SyscallAction a = SyscallAction::Stop;
  if (syscall_handler_) {
    in_hook_ = true;
    hook_pc_ = last_insn_pc_;
    a = syscall_handler_();
    in_hook_ = false;
  }
  if (a == SyscallAction::Stop) stop_with(Pending::Syscall);
  if (a == SyscallAction::Exit) stop_with(Pending::Exited);
}

void UnicornCpu::on_syscall_insn() {
  // What the hardware does on `syscall`: rcx = return address, r11 = rflags. Unicorn's
  // hook sees rip at the syscall itself; emulation resumes after it.
  write_reg(UC_X86_REG_RCX, pc() + 2);
  write_reg(UC_X86_REG_R11, read_reg(UC_X86_REG_RFLAGS));
  handle_syscall_arrival();
}

void UnicornCpu::on_interrupt(std::uint32_t intno) {
  vaddr_t at = pc();
  ExceptionInfo e;
  e.code = intno;
  e.pc = at;
  if (arch_ == Arch::X86_64) {
    // Traps (int N) leave pc past the instruction, faults leave it at the instruction.
    bool trap = at != last_insn_pc_;
    if (trap) {
      // int3 and the single-step trap (TF) raise SIGTRAP on Linux.
      e.kind = intno == kX86Breakpoint || intno == kX86Debug ? ExceptionKind::Breakpoint
                                                             : ExceptionKind::SoftwareInterrupt;
    } else if (intno == kX86DivideError) {
      e.kind = ExceptionKind::DivideError;
    } else if (intno == kX86InvalidOpcode) {
      e.kind = ExceptionKind::IllegalInstruction;
    }
  } else {
    switch (intno) {
      case kArmSvc:
        handle_syscall_arrival();
        return;
      case kArmBkpt:
        e.kind = ExceptionKind::Breakpoint;
        break;
      case kArmUdef:
        e.kind = ExceptionKind::IllegalInstruction;
        break;
      case kArmHvc:
      case kArmSmc:
        // Undefined at EL0 on Linux; Unicorn reports them with pc past the instruction.
        e.kind = ExceptionKind::IllegalInstruction;
        if (at != last_insn_pc_) e.pc = at - 4;
        break;
      default:
        break;
    }
  }
  exception_ = e;
  stop_with(Pending::Exception);
}

void UnicornCpu::on_invalid_insn() {
  exception_ = ExceptionInfo{ExceptionKind::IllegalInstruction, pc(), 0};
  pending_ = Pending::Exception;  // Unicorn stops by itself after this hook
}

// ---- run loop ----

RunResult UnicornCpu::run(std::uint64_t max_instructions) {
  budget_ = max_instructions ? max_instructions : std::numeric_limits<std::uint64_t>::max();
  started_ = 0;
  last_insn_pc_ = ~0ULL;
  RunResult res;
  for (;;) {
    pending_ = Pending::None;
    vaddr_t start = pc();
    std::uint64_t started_before = started_;
    uc_err err = uc_emu_start(uc_, start, 0, 0, 0);
    if (pending_ == Pending::None) {
      // Unicorn stopped on its own. x86 `hlt` and arm64 `wfi` halt the CPU with pc past
      // them; wfi is a hint at EL0 on Linux (go on), hlt raises SIGSEGV there.
      bool progressed = started_ != started_before || pc() != start;
      if (err == UC_ERR_OK && arch_ == Arch::Arm64 && progressed) continue;
      bool halt = err == UC_ERR_OK && arch_ == Arch::X86_64;
      exception_ = ExceptionInfo{halt ? ExceptionKind::Halt : ExceptionKind::Other,
                                 halt ? pc() - 1 : pc(), static_cast<std::uint32_t>(err)};
      pending_ = Pending::Exception;
    }
    break;
  }
  if (pending_ == Pending::Exception) set_pc(exception_.pc);
  // The instruction at the stop pc was started (its hook fired) but did not complete.
  res.executed = started_ - (started_ > 0 && pc() == last_insn_pc_ ? 1 : 0);
  if (res.executed > budget_) res.executed = budget_;
  total_executed_ += res.executed;
  switch (pending_) {
    case Pending::Syscall:
      res.reason = StopReason::Syscall;
      break;
    case Pending::Fault:
      res.reason = StopReason::MemFault;
      res.fault = fault_;
      break;
    case Pending::Slice:
      res.reason = StopReason::SliceEnd;
      break;
    case Pending::Exited:
      res.reason = StopReason::Exited;
      break;
    default:
      res.reason = StopReason::Exception;
      res.exception = exception_;
      break;
  }
  return res;
}

// ---- names ----

std::string_view access_name(Access a) {
  return a == Access::Read ? "read" : a == Access::Write ? "write" : "fetch";
}

std::string_view stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Syscall:
      return "syscall";
    case StopReason::MemFault:
      return "memfault";
    case StopReason::SliceEnd:
      return "slice-end";
    case StopReason::Exception:
      return "exception";
    case StopReason::Exited:
      return "exited";
  }
  return "?";
}

std::string_view exception_kind_name(ExceptionKind k) {
  switch (k) {
    case ExceptionKind::IllegalInstruction:
      return "illegal-instruction";
    case ExceptionKind::Breakpoint:
      return "breakpoint";
    case ExceptionKind::DivideError:
      return "divide-error";
    case ExceptionKind::SoftwareInterrupt:
      return "software-interrupt";
    case ExceptionKind::Halt:
      return "halt";
    case ExceptionKind::Other:
      return "other";
  }
  return "?";
}

}  // namespace mmemu
