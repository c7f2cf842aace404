// Basic vocabulary of the emulated machine: addresses, page geometry, architectures,
// and the error type every fallible operation returns.
#pragma once

#include <cerrno>
#include <cstdint>
#include <expected>
#include <string_view>

namespace mmemu {

using vaddr_t = std::uint64_t;              // guest virtual address
using paddr_t = std::uint64_t;              // emulated physical address
using pfn_t = std::uint64_t;                // emulated physical frame number
inline constexpr pfn_t kNoPfn = ~pfn_t{0};  // "no frame"
using pte_t = std::uint64_t;                // a raw page-table entry in the architecture's format

inline constexpr unsigned PAGE_SHIFT = 12;
inline constexpr std::uint64_t PAGE_SIZE = 1ULL << PAGE_SHIFT;
inline constexpr std::uint64_t PAGE_MASK = ~(PAGE_SIZE - 1);
inline constexpr unsigned PMD_SHIFT = 21;
inline constexpr unsigned PUD_SHIFT = 30;
inline constexpr unsigned PGDIR_SHIFT = 39;
inline constexpr std::uint64_t PMD_SIZE = 1ULL << PMD_SHIFT;
inline constexpr std::uint64_t PUD_SIZE = 1ULL << PUD_SHIFT;
inline constexpr std::uint64_t PGDIR_SIZE = 1ULL << PGDIR_SHIFT;
inline constexpr std::uint64_t PMD_MASK = ~(PMD_SIZE - 1);
inline constexpr std::uint64_t PUD_MASK = ~(PUD_SIZE - 1);
inline constexpr std::uint64_t PGDIR_MASK = ~(PGDIR_SIZE - 1);
inline constexpr unsigned PTRS_PER_TABLE = 512;
inline constexpr vaddr_t ULONG_MAX_ADDR = ~0ULL;

constexpr vaddr_t page_align_down(vaddr_t a) {
  return a & PAGE_MASK;
}
constexpr vaddr_t page_align_up(vaddr_t a) {
  return (a + PAGE_SIZE - 1) & PAGE_MASK;
}
constexpr bool page_aligned(vaddr_t a) {
  return (a & (PAGE_SIZE - 1)) == 0;
}

// Table levels, named as Linux names them for a 4-level layout (p4d folded).
enum class Level : int { Pgd = 0, Pud = 1, Pmd = 2, Pte = 3 };
constexpr unsigned level_shift(Level l) {
  return l == Level::Pgd   ? PGDIR_SHIFT
         : l == Level::Pud ? PUD_SHIFT
         : l == Level::Pmd ? PMD_SHIFT
                           : PAGE_SHIFT;
}
constexpr unsigned table_index(vaddr_t va, Level l) {
  return (va >> level_shift(l)) & 511U;
}
// The level below l (Pgd -> Pud -> Pmd -> Pte).
constexpr Level next_level(Level l) {
  return static_cast<Level>(static_cast<int>(l) + 1);
}
// The span of address space one entry of a level-l table maps.
constexpr std::uint64_t entry_span(Level l) {
  return 1ULL << level_shift(l);
}
constexpr std::string_view level_name(Level l) {
  return l == Level::Pgd ? "pgd" : l == Level::Pud ? "pud" : l == Level::Pmd ? "pmd" : "pte";
}

enum class Arch : std::uint8_t { X86_64, Arm64 };
constexpr std::string_view arch_name(Arch a) {
  return a == Arch::X86_64 ? "x86_64" : "arm64";
}

// Per-architecture constants as Linux defines them (arm64 with 48-bit VA and 4K pages),
// except where mmemu places an arch mapping of its own (see ArchLayout users in emu/).
struct ArchParams {
  vaddr_t first_user_address;  // FIRST_USER_ADDRESS: lowest address page tables may be freed from
  vaddr_t user_pgtables_ceiling;  // USER_PGTABLES_CEILING: 0 means the top of the address space
  vaddr_t task_size;              // TASK_SIZE: first address user mappings may not reach
  vaddr_t mmap_min_addr;          // vm.mmap_min_addr default
  vaddr_t task_size_max;          // TASK_SIZE_MAX: the end of the user range (access_ok)
};
const ArchParams& arch_params(Arch a);

// Errors travel as values. Codes are Linux errno numbers (identical on x86_64 and arm64,
// and equal to the host's <cerrno> values since the host is Linux).
struct Errno {
  int code;
  friend constexpr bool operator==(Errno, Errno) = default;
};
template <class T = void>
using Result = std::expected<T, Errno>;
inline std::unexpected<Errno> fail(int code) {
  return std::unexpected(Errno{code});
}
std::string_view errno_name(int code);  // "ENOMEM", ...

}  // namespace mmemu
