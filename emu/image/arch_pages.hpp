// The per-architecture pages outside VMAs.
//
// x86-64's legacy vsyscall page at 0xffffffffff600000 (gettimeofday at +0x0, time at +0x400,
// getcpu at +0x800) lives in the kernel half, in init_mm (mmu/kernel_half.hpp), never in a
// process's own tables. setup_vsyscall builds it once per machine in the mode of Linux's
// vsyscall= parameter: `xonly` (Linux's default) registers the range with no entry at all,
// so every access faults and the kernel emulates the calls (emu/kernel/vsyscall.cpp);
// `emulate` also maps the page (read-only, no-exec: fetches still fault and are emulated)
// with `mov $nr, %rax; syscall; ret` at each entry, in kernel-half tables every x86-64 mm
// shares; `none` leaves nothing there.
//
// arm64's signal-return trampoline at the last page below 2^48 (`mov x8, #139; svc #0`), the
// return address of handlers installed without SA_RESTORER, is an arch mapping of each mm
// (PageTable::map_arch_pages): it survives any munmap/mremap of its neighbours (arm64's
// USER_PGTABLES_CEILING keeps its tables), fork copies it, and only exit_mmap frees it.
#pragma once

#include <optional>
#include <string_view>

#include "mmu/machine.hpp"
#include "vma/mm.hpp"

namespace mmemu {

inline constexpr vaddr_t kX86VsyscallPage = 0xffffffffff600000ULL;
inline constexpr vaddr_t kArm64SigpagePage = 0xfffffffff000ULL;

enum class VsyscallMode : std::uint8_t { Xonly, Emulate, None };
std::string_view vsyscall_mode_name(VsyscallMode m);  // "xonly", "emulate", "none"
std::optional<VsyscallMode> parse_vsyscall_mode(std::string_view s);

// The arch page's address and the trampoline's (arm64: the sigreturn code).
vaddr_t arch_page_addr(Arch arch);
vaddr_t sigreturn_trampoline(Arch arch);  // 0 on x86_64 (glibc always sets SA_RESTORER)

// map_vsyscall: sets up the x86-64 vsyscall page in the machine's init_mm, once (a machine
// that has it already is left alone). Emulate mode allocates the page (page site) and
// init_mm's tables (pgtable site); ENOMEM leaves nothing set up. Address spaces created
// afterwards share it.
Result<void> setup_vsyscall(Machine& m, VsyscallMode mode);

// arm64: allocates the trampoline page (page site), fills it, and maps it in mm. ENOMEM
// leaves nothing mapped. x86-64: nothing to do (its page is the kernel half's).
Result<void> map_arch_pages(Mm& mm);

}  // namespace mmemu
