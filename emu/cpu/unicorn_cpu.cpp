// The Unicorn 2.1 backend: engine setup, the TLB-fill, block and trap hooks, and the run
// loop with its instruction accounting.
#include "emu/cpu/unicorn_cpu.hpp"

#include <capstone/capstone.h>

#include <cstring>
#include <limits>

#include "emu/cpu/fault_address.hpp"
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

// C entry points for Unicorn's hooks; `slot` points at the CPU using the engine.
struct UnicornHooks {
  static UnicornCpu* cpu(void* slot) { return *static_cast<UnicornCpu**>(slot); }
  static bool tlb_fill(uc_engine*, std::uint64_t va, uc_mem_type type, uc_tlb_entry* e,
                       void* slot) {
    std::uint64_t paddr = 0;
    unsigned perms = 0;
    if (!cpu(slot)->on_tlb_fill(va, static_cast<int>(type), &paddr, &perms)) return false;
    e->paddr = paddr;
    e->perms = static_cast<uc_prot>(perms);
    return true;
  }
  static void block(uc_engine*, std::uint64_t addr, std::uint32_t size, void* slot) {
    cpu(slot)->on_block(addr, size);
  }
  static void syscall(uc_engine*, void* slot) { cpu(slot)->on_syscall_insn(); }
  static void intr(uc_engine*, std::uint32_t intno, void* slot) { cpu(slot)->on_interrupt(intno); }
  static bool invalid(uc_engine*, void* slot) {
    cpu(slot)->on_invalid_insn();
    return false;
  }
};

Result<UnicornEngine> UnicornCpu::open_engine(Arch arch, CodeCoherence& code) {
  const UnicornArchOps& ops = arch == Arch::X86_64 ? unicorn_x86_ops() : unicorn_arm64_ops();
  UnicornEngine e;
  if (uc_open(ops.arch, ops.mode, &e.uc) != UC_ERR_OK) return fail(ENOMEM);
  PhysMem& phys = code.phys();
  bool ok = true;
#if UC_API_MAJOR * 10000 + UC_API_MINOR * 100 + UC_API_PATCH >= 20102
  // From 2.1.2 arm64 can use 4 KiB target pages (one fill per page instead of four).
  if (arch == Arch::Arm64) ok = uc_ctl_set_page_size(e.uc, 4096) == UC_ERR_OK;
#endif
  // The translation buffer first (it is sized when the engine initialises), then the
  // virtual TLB, exits on with none set, and physical memory at 0.
  ok = ok &&
       uc_ctl_set_tcg_buffer_size(e.uc, static_cast<std::uint32_t>(kTcgBufferBytes)) == UC_ERR_OK &&
       uc_ctl_tlb_mode(e.uc, UC_TLB_VIRTUAL) == UC_ERR_OK &&
       uc_ctl_exits_enable(e.uc) == UC_ERR_OK &&
       uc_mem_map_ptr(e.uc, 0, phys.size_bytes(), UC_PROT_ALL, phys.host_base()) == UC_ERR_OK;
  e.slot = std::make_unique<UnicornCpu*>(nullptr);
  uc_hook h;
  void* slot = e.slot.get();
  ok = ok && uc_hook_add(e.uc, &h, UC_HOOK_TLB_FILL,
                         reinterpret_cast<void*>(&UnicornHooks::tlb_fill), slot, 1, 0) == UC_ERR_OK;
  ok = ok && uc_hook_add(e.uc, &h, UC_HOOK_BLOCK, reinterpret_cast<void*>(&UnicornHooks::block),
                         slot, 1, 0) == UC_ERR_OK;
  ok = ok && uc_hook_add(e.uc, &h, UC_HOOK_INTR, reinterpret_cast<void*>(&UnicornHooks::intr), slot,
                         1, 0) == UC_ERR_OK;
  ok = ok && uc_hook_add(e.uc, &h, UC_HOOK_INSN_INVALID,
                         reinterpret_cast<void*>(&UnicornHooks::invalid), slot, 1, 0) == UC_ERR_OK;
  if (arch == Arch::X86_64) {
    ok = ok && uc_hook_add(e.uc, &h, UC_HOOK_INSN, reinterpret_cast<void*>(&UnicornHooks::syscall),
                           slot, 1, 0, UC_X86_INS_SYSCALL) == UC_ERR_OK;
  }
  if (!ok) {
    uc_close(e.uc);
    return fail(ENOMEM);
  }
  e.code_id = code.attach();
  return e;
}

void UnicornCpu::close_engine(UnicornEngine& e, CodeCoherence& code) {
  if (!e.uc) return;
  code.detach(e.code_id);
  uc_close(e.uc);
  e.uc = nullptr;
}

Result<std::unique_ptr<UnicornCpu>> UnicornCpu::create(Arch arch,
                                                       std::shared_ptr<CodeCoherence> code,
                                                       std::shared_ptr<UnicornPool> pool) {
  std::optional<UnicornEngine> pooled;
  if (pool) pooled = pool->take(arch);
  const bool warm = pooled.has_value();
  if (!pooled) {
    auto e = open_engine(arch, *code);
    if (!e) return std::unexpected(e.error());
    pooled = std::move(*e);
  }
  std::unique_ptr<UnicornCpu> cpu(
      new UnicornCpu(arch, std::move(*pooled), std::move(code), std::move(pool)));
  if (warm) {
    // A new process: the registers of a fresh CPU, no translation of the last one.
    cpu->restore_context(arch == Arch::X86_64 ? CpuContext{X86Context{}}
                                              : CpuContext{Arm64Context{}})
        .value();
    cpu->flush_tlb();
  }
  return cpu;
}

UnicornCpu::UnicornCpu(Arch arch, UnicornEngine engine, std::shared_ptr<CodeCoherence> code,
                       std::shared_ptr<UnicornPool> pool)
    : arch_(arch),
      engine_(std::move(engine)),
      ops_(arch == Arch::X86_64 ? &unicorn_x86_ops() : &unicorn_arm64_ops()),
      code_(std::move(code)),
      pool_(std::move(pool)) {
  *engine_.slot = this;
}

UnicornCpu::~UnicornCpu() {
  if (csh_) {
    csh h = csh_;
    cs_close(&h);
  }
  *engine_.slot = nullptr;
  if (pool_ && pool_->put(arch_, engine_)) return;
  close_engine(engine_, *code_);
}

UnicornPool::~UnicornPool() {
  for (auto& engines : free_)
    for (UnicornEngine& e : engines)
      UnicornCpu::close_engine(e, *code_);
}

std::optional<UnicornEngine> UnicornPool::take(Arch arch) {
  std::vector<UnicornEngine>& free = engines(arch);
  if (free.empty()) return std::nullopt;
  UnicornEngine e = std::move(free.back());
  free.pop_back();
  return e;
}

bool UnicornPool::put(Arch arch, UnicornEngine& e) {
  std::vector<UnicornEngine>& free = engines(arch);
  if (free.size() >= kMaxPooled) return false;
  free.push_back(std::move(e));
  return true;
}

CpuFactory unicorn_cpu_factory() {
  std::shared_ptr<UnicornPool> pool;
  return [pool](Arch arch, PhysMem& phys) mutable -> Result<std::unique_ptr<Cpu>> {
    if (!pool || &pool->code()->phys() != &phys)
      pool = std::make_shared<UnicornPool>(std::make_shared<CodeCoherence>(phys));
    auto cpu = UnicornCpu::create(arch, pool->code(), pool);
    if (!cpu) return std::unexpected(cpu.error());
    return std::unique_ptr<Cpu>(std::move(*cpu));
  };
}

// ---- registers ----

std::uint64_t UnicornCpu::read_reg(int id) const {
  return uc_read_u64(engine_.uc, id);
}
void UnicornCpu::write_reg(int id, std::uint64_t v) {
  uc_write_u64(engine_.uc, id, v);
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
      uc_reg_read(engine_.uc, r.id, buf);
      std::memcpy(buf, &v, sizeof v);
      uc_reg_write(engine_.uc, r.id, buf);
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
  return ops_->save(engine_.uc);
}

Result<> UnicornCpu::restore_context(const CpuContext& ctx) {
  if (!ops_->restore(engine_.uc, ctx)) return fail(EINVAL);
  return {};
}

// ---- translation ----

void UnicornCpu::flush_tlb() {
  uc_ctl_flush_tlb(engine_.uc);
  ++stats_.tlb_flushes;
  code_->tlb_flushed(engine_.code_id);
}

void UnicornCpu::pay_coherence() {
  const CodeCoherence::Owed owed = code_->owed(engine_.code_id);
  if (owed.drop_code) {
    uc_ctl_flush_tb(engine_.uc);
    ++stats_.code_drops;
    code_->code_dropped(engine_.code_id);
    icount_cache_.fill(IcountEntry{});
  }
  if (owed.drop_tlb) flush_tlb();
}

bool UnicornCpu::on_tlb_fill(std::uint64_t va, int type, std::uint64_t* paddr, unsigned* perms) {
  const Access access = type == UC_MEM_WRITE   ? Access::Write
                        : type == UC_MEM_FETCH ? Access::Exec
                                               : Access::Read;
  // Code this CPU translated is stale: stop, drop it outside, restart here. Checked again
  // after the miss handler, whose fault handling can free frames that held code.
  const auto code_owed = [this] {
    if (!code_->owed(engine_.code_id).drop_code) return false;
    ++stats_.coherence_stops;
    pending_ = Pending::Coherence;
    return true;
  };
  if (code_owed()) return false;
  if (code_->owed(engine_.code_id).drop_tlb) flush_tlb();
  std::optional<TlbFill> f = miss_ ? miss_->tlb_miss(va, access) : std::nullopt;
  if (code_owed()) return false;
  if (!f) {
    ++stats_.fill_faults;
    fault_ = MemFault{va, access, 0};
    pending_ = Pending::Fault;
    return false;
  }
  ++stats_.fills;
  // Any entry that allows fetching registers the frame as code this CPU may translate: a
  // read or write fill of an executable page serves the later fetches from it too, with
  // no fetch fill of their own (an RWX page written, then run).
  if (f->perms & PERM_X) code_->fetch_filled(engine_.code_id, f->pfn);
  if (f->perms & PERM_W) code_->write_filled(engine_.code_id, f->pfn);
  // arm64 on 2.1.1 fills 1 KiB target pages: the address must carry the page offset.
  *paddr = (f->pfn << PAGE_SHIFT) | (va & (PAGE_SIZE - 1));
  *perms = uc_prot_of(f->perms);
  return true;
}

// ---- instruction accounting ----

std::uint32_t UnicornCpu::block_icount(std::uint64_t addr, std::uint32_t size) {
  if (arch_ == Arch::Arm64) return size / 4;
  IcountEntry& e = icount_cache_[(addr ^ (addr >> 12)) & (icount_cache_.size() - 1)];
  if (e.addr == addr && e.size == size) return e.icount;
  uc_tb tb{};
  std::uint32_t n = uc_ctl_request_cache(engine_.uc, addr, &tb) == UC_ERR_OK && tb.size == size
                        ? tb.icount
                        : static_cast<std::uint32_t>(count_insns(addr, addr + size));
  e = IcountEntry{addr, size, n};
  return n;
}

void UnicornCpu::on_block(std::uint64_t addr, std::uint32_t size) {
  const std::uint32_t n = block_icount(addr, size);
  if (executed_ > 0 && executed_ + n > budget_) {
    block_icount_ = 0;  // the block does not run: stopping here stops before it
    stop_with(Pending::Slice);
    return;
  }
  block_start_ = addr;
  block_size_ = size;
  block_icount_ = n;
  executed_ += n;
}

bool UnicornCpu::read_code(vaddr_t va, std::uint8_t* out, std::size_t n) {
  PhysMem& phys = code_->phys();
  for (std::size_t done = 0; done < n;) {
    const vaddr_t a = va + done;
    const pfn_t pfn = miss_ ? miss_->peek(a) : kNoPfn;
    if (pfn == kNoPfn || !phys.valid_pfn(pfn)) return false;
    const std::size_t off = a & (PAGE_SIZE - 1);
    const std::size_t len = std::min(n - done, PAGE_SIZE - off);
    std::memcpy(out + done, phys.frame(pfn) + off, len);
    done += len;
  }
  return true;
}

std::uint64_t UnicornCpu::count_insns(vaddr_t from, vaddr_t to, bool* last_is_int) {
  if (last_is_int) *last_is_int = false;
  if (to <= from) return 0;
  if (arch_ == Arch::Arm64) return (to - from) / 4;
  if (!csh_) {
    csh h = 0;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) return 0;
    csh_ = h;
  }
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(to - from, 4096));
  std::vector<std::uint8_t> bytes(n + 15);
  if (!read_code(from, bytes.data(), bytes.size()) && !read_code(from, bytes.data(), n)) return 0;
  const std::uint8_t* code = bytes.data();
  std::size_t left = bytes.size();
  std::uint64_t addr = from, count = 0;
  cs_insn* insn = cs_malloc(csh_);
  while (addr < to && cs_disasm_iter(csh_, &code, &left, &addr, insn)) {
    ++count;
    if (last_is_int) *last_is_int = insn->id == X86_INS_INT;
  }
  cs_free(insn, 1);
  return count;
}

vaddr_t UnicornCpu::exact_fault_va(vaddr_t page, Access access, vaddr_t at) {
  if (access == Access::Exec)
    return page_align_down(at) == page_align_down(page) && at >= page ? at : page;
  std::uint8_t code[16] = {};
  std::size_t n = sizeof code;
  while (n > 0 && !read_code(at, code, n))
    n = n > 4 ? n - 4 : 0;  // near an unmapped page
  if (n == 0) return page;
  return exact_fault_address(arch_, std::span<const std::uint8_t>(code, n), at, page,
                             [this](std::string_view name) { return reg(name).value_or(0); });
}

// ---- hooks ----

void UnicornCpu::stop_with(Pending p) {
  pending_ = p;
  uc_emu_stop(engine_.uc);
}

void UnicornCpu::handle_syscall_arrival() {
  SyscallAction a = SyscallAction::Stop;
  if (syscall_handler_) a = syscall_handler_();
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
  const vaddr_t at = pc();
  ExceptionInfo e;
  e.code = intno;
  e.pc = at;
  if (arch_ == Arch::X86_64) {
    // Traps (int3, int N, the debug trap) leave pc past the instruction, faults (#DE, #UD)
    // at it; `int 0`/`int 6` are told from the faults by decoding the block.
    bool is_int = false;
    if (block_icount_ && at > block_start_) count_insns(block_start_, at, &is_int);
    const bool trap = intno == kX86Breakpoint || intno == kX86Debug || is_int ||
                      (intno != kX86DivideError && intno != kX86InvalidOpcode);
    if (trap) {
      e.kind = intno == kX86Breakpoint || intno == kX86Debug ? ExceptionKind::Breakpoint
                                                             : ExceptionKind::SoftwareInterrupt;
    } else if (intno == kX86DivideError) {
      e.kind = ExceptionKind::DivideError;
    } else {
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
        e.pc = at - 4;
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
  executed_ = 0;
  RunResult res;
  for (;;) {
    pay_coherence();
    pending_ = Pending::None;
    block_icount_ = 0;
    const vaddr_t start = pc();
    const std::uint64_t before = executed_;
    const uc_err err = uc_emu_start(engine_.uc, start, 0, 0, 0);
    if (pending_ == Pending::Exception) set_pc(exception_.pc);
    // x86 `hlt` stops Unicorn cleanly with pc past it; Linux reports it at the hlt, which
    // has not completed: back to it before the block is counted, like any other stop there.
    const bool halted = pending_ == Pending::None && err == UC_ERR_OK && arch_ == Arch::X86_64;
    if (halted) set_pc(pc() - 1);
    // The block being executed ran up to the stop pc: count what completed of it.
    if (block_icount_) {
      const vaddr_t at = pc();
      const vaddr_t end = block_start_ + block_size_;
      if (at <= block_start_ || at > end) {
        if (at == block_start_) executed_ -= block_icount_;  // stopped at its first insn
      } else if (at < end) {
        executed_ -= block_icount_;
        executed_ += count_insns(block_start_, at);
      }
    }
    if (pending_ == Pending::Coherence) continue;  // paid at the top, then restarted
    if (pending_ == Pending::None) {
      // Unicorn stopped on its own. x86 `hlt` and arm64 `wfi` halt the CPU with pc past
      // them; wfi is a hint at EL0 on Linux (go on), hlt raises SIGSEGV there (pc is
      // already back at it).
      const bool progressed = executed_ != before || pc() != start;
      if (err == UC_ERR_OK && arch_ == Arch::Arm64 && progressed) continue;
      exception_ = ExceptionInfo{halted ? ExceptionKind::Halt : ExceptionKind::Other, pc(),
                                 static_cast<std::uint32_t>(err)};
      pending_ = Pending::Exception;
      set_pc(exception_.pc);
    }
    break;
  }
  res.executed = executed_;
  total_executed_ += res.executed;
  switch (pending_) {
    case Pending::Syscall:
      res.reason = StopReason::Syscall;
      break;
    case Pending::Fault:
      res.reason = StopReason::MemFault;
      res.fault = fault_;
      res.fault.pc = pc();
      res.fault.va = exact_fault_va(fault_.va, fault_.access, res.fault.pc);
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
