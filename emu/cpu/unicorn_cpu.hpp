// Cpu over Unicorn 2.1 in virtual-TLB mode: the emulator's own TLB is filled by mmemu's
// page-table walker through the TLB-fill hook, exactly as a hardware walker fills a real
// TLB. Facts this relies on (measured on this project's machines, Unicorn 2.1.1):
// - Emulated physical memory is mapped once, at physical address 0, over the host buffer
//   of PhysMem; every CPU maps the same buffer, so frames are really shared.
// - The fill hook sees READ, WRITE or FETCH and may run the fault handler. Returning false
//   stops the run (UC_ERR_EXCEPTION) with the PC at the exact faulting instruction (for a
//   fetch, its target) and no other hook called: the hook records what faulted.
// - A TLB flush (uc_ctl_flush_tlb) is cheap (~0.35 us) and safe inside the fill hook; it
//   keeps translated code. Dropping translated code (uc_ctl_flush_tb) happens only
//   outside the emulator: a fill that finds code owed a drop stops the run, the drop is
//   done, and the run restarts at the same instruction (see emu/cpu/code_coherence.hpp).
// - arm64 fills use 1 KiB target pages in 2.1.1: the answer carries the page offset.
// - Slices and instruction counts come from a block hook (one call per translation
//   block, ~1 ns) instead of a per-instruction hook; a stop inside a block is counted
//   exactly by decoding the block up to the stop PC (x86-64 with Capstone; arm64
//   instructions are 4 bytes).
// - Exits are enabled with an empty exit list: a non-zero `until` would retranslate the
//   block holding it on every start.
// - Each engine reserves a translation buffer (kTcgBufferBytes instead of Unicorn's 1 GiB)
//   so that a thousand processes fit.
// - Creating an engine costs about 1 ms (x86-64) to 2 ms (arm64): the factory keeps the
//   engines of CPUs that went (exit, execve) in a pool and gives them to the next CPU of
//   the same architecture, with their translated code (still kept coherent: the engine
//   stays a CodeCoherence client while pooled). A forked child usually runs the very frames
//   its parent ran, so it starts warm.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "emu/cpu/code_coherence.hpp"
#include "emu/cpu/cpu.hpp"

struct uc_struct;  // Unicorn's uc_engine

namespace mmemu {

struct UnicornArchOps;  // per-architecture register tables (emu/cpu/unicorn_arch.hpp)
class UnicornCpu;

// One Unicorn engine with its hooks installed. The hooks' user data is `slot`, which
// points at the CPU using the engine, so an engine outlives the CPUs that use it.
struct UnicornEngine {
  uc_struct* uc = nullptr;
  int code_id = -1;  // its CodeCoherence client
  std::unique_ptr<UnicornCpu*> slot;
};

// Engines of CPUs that went, per architecture, for the next CPU (at most kMaxPooled each).
class UnicornPool {
 public:
  static constexpr std::size_t kMaxPooled = 8;
  explicit UnicornPool(std::shared_ptr<CodeCoherence> code) : code_(std::move(code)) {}
  ~UnicornPool();  // closes the pooled engines
  UnicornPool(const UnicornPool&) = delete;
  UnicornPool& operator=(const UnicornPool&) = delete;
  const std::shared_ptr<CodeCoherence>& code() const { return code_; }
  std::optional<UnicornEngine> take(Arch arch);
  bool put(Arch arch, UnicornEngine& e);  // false (e untouched) when full

 private:
  std::vector<UnicornEngine>& engines(Arch arch) { return free_[arch == Arch::X86_64 ? 0 : 1]; }
  std::shared_ptr<CodeCoherence> code_;
  std::array<std::vector<UnicornEngine>, 2> free_;
};

struct UnicornCpuStats {
  std::uint64_t fills = 0, fill_faults = 0;  // TLB misses answered / refused
  std::uint64_t tlb_flushes = 0, code_drops = 0, coherence_stops = 0;
};

class UnicornCpu final : public Cpu {
 public:
  static constexpr std::size_t kTcgBufferBytes = 64ULL << 20;

  // ENOMEM if Unicorn cannot create an engine or map the physical memory. With a pool, a
  // pooled engine is taken when there is one, and the engine goes back to it at the end.
  static Result<std::unique_ptr<UnicornCpu>> create(Arch arch, std::shared_ptr<CodeCoherence> code,
                                                    std::shared_ptr<UnicornPool> pool = nullptr);
  // A new engine of its own (never pooled): for create and the pool.
  static Result<UnicornEngine> open_engine(Arch arch, CodeCoherence& code);
  static void close_engine(UnicornEngine& e, CodeCoherence& code);
  ~UnicornCpu() override;
  UnicornCpu(const UnicornCpu&) = delete;
  UnicornCpu& operator=(const UnicornCpu&) = delete;

  Arch arch() const override { return arch_; }
  vaddr_t pc() const override;
  void set_pc(vaddr_t v) override;
  std::uint64_t sp() const override;
  void set_sp(std::uint64_t v) override;
  std::uint64_t syscall_nr() const override;
  std::uint64_t syscall_arg(unsigned i) const override;
  void set_syscall_arg(unsigned i, std::uint64_t v) override;
  std::uint64_t syscall_ret() const override;
  void set_syscall_ret(std::uint64_t v) override;
  std::uint64_t tls() const override;
  void set_tls(std::uint64_t v) override;
  Result<std::uint64_t> reg(std::string_view name) const override;
  Result<> set_reg(std::string_view name, std::uint64_t v) override;
  std::vector<std::string_view> reg_names() const override;
  CpuContext save_context() const override;
  Result<> restore_context(const CpuContext& ctx) override;

  void set_tlb_miss_handler(TlbMissHandler* h) override { miss_ = h; }
  void flush_tlb() override;
  void set_syscall_handler(SyscallHandler h) override { syscall_handler_ = std::move(h); }

  RunResult run(std::uint64_t max_instructions) override;
  std::uint64_t instructions() const override { return total_executed_; }

  const UnicornCpuStats& stats() const { return stats_; }

 private:
  friend struct UnicornHooks;  // C callbacks in unicorn_cpu.cpp
  enum class Pending : std::uint8_t { None, Syscall, Fault, Slice, Exception, Exited, Coherence };
  struct IcountEntry {
    std::uint64_t addr = ~0ULL;
    std::uint32_t size = 0, icount = 0;
  };

  UnicornCpu(Arch arch, UnicornEngine engine, std::shared_ptr<CodeCoherence> code,
             std::shared_ptr<UnicornPool> pool);
  std::uint64_t read_reg(int id) const;
  void write_reg(int id, std::uint64_t v);
  void stop_with(Pending p);
  void pay_coherence();  // outside the emulator: drop what the CPU owes
  void handle_syscall_arrival();
  bool on_tlb_fill(std::uint64_t va, int type, std::uint64_t* paddr, unsigned* perms);
  void on_block(std::uint64_t addr, std::uint32_t size);
  void on_syscall_insn();
  void on_interrupt(std::uint32_t intno);
  void on_invalid_insn();
  std::uint32_t block_icount(std::uint64_t addr, std::uint32_t size);
  // Instructions in [from, to) of straight-line code, and whether the last one is an x86
  // `int N` (a trap, not a fault, when it stopped the run).
  std::uint64_t count_insns(vaddr_t from, vaddr_t to, bool* last_is_int = nullptr);
  bool read_code(vaddr_t va, std::uint8_t* out, std::size_t n);
  // The fill hook saw only the refused page: the exact address from the instruction at pc.
  vaddr_t exact_fault_va(vaddr_t page, Access access, vaddr_t at);

  Arch arch_;
  UnicornEngine engine_;
  const UnicornArchOps* ops_;
  std::shared_ptr<CodeCoherence> code_;
  std::shared_ptr<UnicornPool> pool_;
  TlbMissHandler* miss_ = nullptr;
  SyscallHandler syscall_handler_;
  std::array<IcountEntry, 4096> icount_cache_{};
  std::size_t csh_ = 0;  // Capstone handle (x86-64), opened on first use

  // State of the current run().
  std::uint64_t budget_ = 0;
  std::uint64_t executed_ = 0;  // instructions of blocks entered, less what a stop left
  vaddr_t block_start_ = 0;     // the block being executed (valid while block_icount_)
  std::uint32_t block_size_ = 0, block_icount_ = 0;
  Pending pending_ = Pending::None;
  MemFault fault_{};
  ExceptionInfo exception_{};
  std::uint64_t total_executed_ = 0;
  UnicornCpuStats stats_;
};

// The Unicorn backend as a CpuFactory: every CPU it makes over one PhysMem shares one
// CodeCoherence (created with the first of them).
CpuFactory unicorn_cpu_factory();

}  // namespace mmemu
