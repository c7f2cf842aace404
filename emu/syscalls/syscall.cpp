// The generic system-call names and the per-architecture number tables.
#include "emu/syscalls/syscall.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include <fmt/format.h>

#include "emu/kernel/kernel.hpp"
#include "vma/fault.hpp"

namespace mmemu {

namespace {

struct SysRow {
  std::string_view name;
  int x86_64;
  int arm64;
};

constexpr SysRow kRows[] = {
#define X(name, x86_64_nr, arm64_nr) {#name, x86_64_nr, arm64_nr},
#include "emu/syscalls/syscall_table.inc"
#undef X
    {"mmemu_dump", static_cast<int>(kMmemuDumpNr), static_cast<int>(kMmemuDumpNr)},
};
static_assert(std::size(kRows) == static_cast<std::size_t>(Sys::kCount));

// Number -> Sys for one ABI.
struct NumberMap {
  explicit NumberMap(Arch arch) {
    for (std::size_t i = 0; i < std::size(kRows); ++i) {
      int nr = arch == Arch::X86_64 ? kRows[i].x86_64 : kRows[i].arm64;
      if (nr >= 0) map.emplace(static_cast<std::uint64_t>(nr), static_cast<Sys>(i));
    }
  }
  std::unordered_map<std::uint64_t, Sys> map;
};

const NumberMap& number_map(Arch arch) {
  static const NumberMap x86(Arch::X86_64), arm(Arch::Arm64);
  return arch == Arch::X86_64 ? x86 : arm;
}

}  // namespace

std::string_view sys_name(Sys s) {
  auto i = static_cast<std::size_t>(s);
  return i < std::size(kRows) ? kRows[i].name : "?";
}

std::optional<Sys> sys_from_name(std::string_view n) {
  for (std::size_t i = 0; i < std::size(kRows); ++i)
    if (kRows[i].name == n) return static_cast<Sys>(i);
  return std::nullopt;
}

std::optional<Sys> sys_from_number(Arch arch, std::uint64_t nr) {
  const auto& m = number_map(arch).map;
  auto it = m.find(nr);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<std::uint64_t> sys_number(Arch arch, Sys s) {
  auto i = static_cast<std::size_t>(s);
  if (i >= std::size(kRows)) return std::nullopt;
  int nr = arch == Arch::X86_64 ? kRows[i].x86_64 : kRows[i].arm64;
  if (nr < 0) return std::nullopt;
  return static_cast<std::uint64_t>(nr);
}

Process* pid_or_self(SyscallContext& ctx, int pid) {
  if (pid == 0 || pid == ctx.proc.pid) return &ctx.proc;
  return ctx.kernel.find(pid);
}

Result<void> SyscallContext::read(vaddr_t src, void* dst, std::size_t n) const {
  if (n == 0) return {};
  return copy_from_user(mm(), dst, src, n);
}

Result<void> SyscallContext::write(vaddr_t dst, const void* src, std::size_t n) const {
  if (n == 0) return {};
  return copy_to_user(mm(), dst, src, n);
}

Result<std::string> SyscallContext::read_string(vaddr_t src, std::size_t max) const {
  return strncpy_from_user(mm(), src, max);
}

std::size_t SyscallTable::size() const {
  return static_cast<std::size_t>(
      std::count_if(fns_.begin(), fns_.end(), [](SyscallFn f) { return f != nullptr; }));
}

bool SyscallTable::add(Sys s, SyscallFn fn) {
  SyscallFn& slot = fns_[static_cast<std::size_t>(s)];
  if (slot != nullptr) {
    duplicates_.push_back(s);
    return false;
  }
  slot = fn;
  return true;
}

std::unique_ptr<SyscallTable> make_syscall_table() {
  auto t = std::make_unique<SyscallTable>();
  register_process_syscalls(*t);
  register_signal_syscalls(*t);
  register_mem_syscalls(*t);
  register_file_syscalls(*t);
  register_time_syscalls(*t);
  register_misc_syscalls(*t);
  register_sched_syscalls(*t);
  register_socket_syscalls(*t);
  register_sendfile_syscalls(*t);
  register_pidfd_syscalls(*t);
  if (!t->duplicates().empty()) {
    std::string names;
    for (Sys s : t->duplicates())
      names += fmt::format(" {}", sys_name(s));
    std::fprintf(stderr, "mmemu: internal error: system calls registered twice:%s\n",
                 names.c_str());
    std::abort();
  }
  return t;
}

}  // namespace mmemu
