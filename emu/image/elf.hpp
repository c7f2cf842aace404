// Parsing and validating static ELF64 executables (ET_EXEC, and ET_DYN static-pie) for
// x86_64 and AArch64. The loader turns the result into mappings; everything it needs from
// the file is here, already checked, so a malformed file fails with a message naming what
// is wrong instead of reaching the mm with nonsense.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmu/types.hpp"

namespace mmemu {

enum class ElfErrorKind : std::uint8_t {
  Io,                  // the file could not be read
  Truncated,           // shorter than the ELF header
  BadMagic,            // not an ELF file
  BadClass,            // not ELFCLASS64
  BadEndianness,       // not little-endian
  BadVersion,          // EI_VERSION / e_version not EV_CURRENT
  BadType,             // not ET_EXEC or ET_DYN
  BadMachine,          // not EM_X86_64 or EM_AARCH64
  BadHeaderSize,       // e_ehsize or e_phentsize not the ELF64 sizes
  BadPhdrCount,        // no program headers, or more than Linux reads (4 KiB of them)
  PhdrsOutsideFile,    // the program header table runs past the end of the file
  SegmentOutsideFile,  // a segment's file bytes run past the end of the file
  FileszExceedsMemsz,  // p_filesz > p_memsz
  BadAlignment,        // p_align not a power of two, or p_offset/p_vaddr not congruent
  BadSegmentOrder,     // PT_LOAD segments overlap or are not in ascending order
  AddressRange,        // a segment reaches TASK_SIZE or wraps around
  NoLoadSegment,       // nothing to map
  BadEntry,            // the entry point is not in an executable PT_LOAD
  BadTls,              // PT_TLS malformed, duplicated, or outside the loaded file bytes
  Dynamic,             // has PT_INTERP: dynamically linked, not supported
};
std::string_view elf_error_name(ElfErrorKind k);  // "truncated", "bad-magic", ...

struct ElfError {
  ElfErrorKind kind;
  std::string message;  // says what is wrong, with the offending values
  // The errno execve returns for it: EIO for Io, EINVAL for AddressRange (as Linux's
  // load_elf_binary), ENOEXEC for every other malformed or unsupported file.
  int errno_code() const;
};

template <class T>
using ElfResult = std::expected<T, ElfError>;

// Segment flags as in the file.
inline constexpr std::uint32_t ELF_PF_X = 1, ELF_PF_W = 2, ELF_PF_R = 4;

struct ElfSegment {
  std::uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0, align = 0;
  std::uint32_t flags = 0;  // ELF_PF_*
  int prot() const;         // PROT_READ | PROT_WRITE | PROT_EXEC from the flags
  friend bool operator==(const ElfSegment&, const ElfSegment&) = default;
};

struct ElfTls {
  std::uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0, align = 0;
  friend bool operator==(const ElfTls&, const ElfTls&) = default;
};

struct ElfImage {
  Arch arch = Arch::X86_64;
  bool pie = false;  // ET_DYN: every address below is relative to a load bias
  std::uint64_t entry = 0;
  std::vector<ElfSegment> loads;  // PT_LOAD, ascending and non-overlapping
  std::uint64_t phoff = 0;
  std::uint16_t phnum = 0;      // AT_PHNUM
  std::uint16_t phentsize = 0;  // AT_PHENT
  // AT_PHDR before the bias, as Linux computes it: the PT_LOAD whose file bytes contain
  // e_phoff. Empty if none does (Linux then passes the bias alone).
  std::optional<std::uint64_t> phdr_vaddr;
  std::optional<std::uint64_t> pt_phdr;  // PT_PHDR's p_vaddr, if present
  std::optional<ElfTls> tls;
  // PT_GNU_STACK: true if it asks for an executable stack; empty without PT_GNU_STACK.
  std::optional<bool> exec_stack;
  std::uint64_t lo() const;  // page-aligned start of the lowest PT_LOAD
  std::uint64_t hi() const;  // page-aligned end of the highest PT_LOAD (memsz included)
};

// Validates and describes an executable held in memory.
ElfResult<ElfImage> parse_elf(std::span<const std::uint8_t> file);

// Reads a whole host file (the loader keeps the bytes as the executable's contents).
ElfResult<std::vector<std::uint8_t>> read_executable(const std::string& path);

}  // namespace mmemu
