// Cpu over Unicorn 2.0.1 in flat mode (its paging off): Unicorn's memory regions are the
// software TLB, its unmapped/protection hooks are the TLB misses. Facts this relies on
// (measured on this project's machines with Unicorn 2.0.1):
// - An instruction hook is always installed. Only with it does Unicorn 2.0.1 keep the PC
//   exact at a faulting load/store (without it the PC is the start of the translation
//   block while earlier instructions of the block have already run), and it provides the
//   exact instruction count for slices.
// - Exits are enabled with an empty exit list: passing an `until` address to
//   uc_emu_start makes every stop invalidate the block holding until-1 (17 us/restart).
// - Unmapping, inside a hook, the region holding the running code and the faulting
//   address crashes on x86, and protecting the region being fetched inside FETCH_PROT
//   crashes; hence unmap/protect refuse (EBUSY) pages near the current pc inside hooks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "emu/cpu/cpu.hpp"

struct uc_struct;  // Unicorn's uc_engine

namespace mmemu {

struct UnicornArchOps;  // per-architecture register tables (emu/cpu/unicorn_arch.hpp)

class UnicornCpu final : public Cpu {
 public:
  // ENOMEM if Unicorn cannot create an engine.
  static Result<std::unique_ptr<UnicornCpu>> create(Arch arch);
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

  Result<> map(vaddr_t va, std::uint64_t len, std::uint8_t* host, unsigned perms) override;
  Result<> unmap(vaddr_t va, std::uint64_t len) override;
  Result<> protect(vaddr_t va, std::uint64_t len, unsigned perms) override;
  std::size_t region_count() const override { return regions_.size(); }

  void set_fault_handler(FaultHandler h) override { fault_handler_ = std::move(h); }
  void set_syscall_handler(SyscallHandler h) override { syscall_handler_ = std::move(h); }

  RunResult run(std::uint64_t max_instructions) override;
  std::uint64_t instructions() const override { return total_executed_; }

 private:
  friend struct UnicornHooks;  // C callbacks in unicorn_cpu.cpp
  struct Region {
    vaddr_t end;
    std::uint8_t* host;
    unsigned perms;
  };
  enum class Pending : std::uint8_t { None, Syscall, Fault, Slice, Exception, Exited };

  UnicornCpu(Arch arch, uc_struct* uc);
  std::uint64_t read_reg(int id) const;
  void write_reg(int id, std::uint64_t v);
  bool covered(vaddr_t va, std::uint64_t len) const;
  bool allows(vaddr_t va, Access access) const;
  Result<> split_at(vaddr_t addr);  // make addr a region boundary
  Result<> check_in_hook(vaddr_t va, std::uint64_t len, bool remaps, unsigned perms) const;
  void stop_with(Pending p);
  void handle_syscall_arrival();
  void on_code(std::uint64_t addr);
  bool on_mem_invalid(int type, std::uint64_t addr, int size);
  void on_syscall_insn();
  void on_interrupt(std::uint32_t intno);
  void on_invalid_insn();

  Arch arch_;
  uc_struct* uc_;
  const UnicornArchOps* ops_;
  std::map<vaddr_t, Region> regions_;  // keyed by start; mirrors Unicorn's region list
  FaultHandler fault_handler_;
  SyscallHandler syscall_handler_;

  // State of the current run().
  std::uint64_t budget_ = 0;   // instructions allowed to start
  std::uint64_t started_ = 0;  // instruction hooks fired
  vaddr_t last_insn_pc_ = ~0ULL;
  Pending pending_ = Pending::None;
  MemFault fault_{};
  ExceptionInfo exception_{};
  bool in_hook_ = false;
  vaddr_t hook_pc_ = 0;
  std::uint64_t total_executed_ = 0;
};

// The default backend for an architecture.
Result<std::unique_ptr<Cpu>> make_unicorn_cpu(Arch arch);

}  // namespace mmemu
