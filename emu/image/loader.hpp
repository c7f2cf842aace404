// execve's image half: maps a parsed static ELF executable into a fresh mm (PT_LOAD
// segments as private file mappings of the executable's File and page cache, bss as
// anonymous memory, the brk start after it), builds the growsdown stack with argv, envp and
// the auxiliary vector static glibc expects, and gives the entry pc and sp.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "emu/image/elf.hpp"
#include "vma/mm.hpp"

namespace mmemu {

class File;

struct LoadParams {
  std::string execfn;  // AT_EXECFN: the path as execve got it
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  std::array<std::uint8_t, 16> random{};  // AT_RANDOM bytes
  std::uint32_t uid = 0, euid = 0, gid = 0, egid = 0;
};

struct LoadedImage {
  vaddr_t entry = 0;  // pc to start at
  vaddr_t sp = 0;     // initial stack pointer (at argc)
  vaddr_t load_bias = 0;
  vaddr_t phdr = 0;                                           // AT_PHDR
  std::vector<std::pair<std::uint64_t, std::uint64_t>> auxv;  // (type, value), AT_NULL last
};

// Stack size reserved at exec (the VMA grows down from there as the guest touches it).
inline constexpr std::uint64_t kInitialStackBytes = 128 * 1024;

// Maps `img` (whose bytes are `exe`'s contents) into `mm`, which must be empty. Sets the
// mm's layout fields (start_code..., start_brk/brk, start_stack, arg/env ranges). ENOMEM
// on allocation failure, also one met while a page is faulted in to be written (the
// caller discards the mm), EFAULT if the stack cannot be written, E2BIG if argv+envp exceed the
// stack limit's quarter (as Linux).
Result<LoadedImage> load_elf(Mm& mm, const ElfImage& img, File& exe, const LoadParams& params);

// AT_HWCAP/AT_HWCAP2/AT_PLATFORM values for the CPU the backend emulates.
std::uint64_t elf_hwcap(Arch arch);
std::uint64_t elf_hwcap2(Arch arch);
const char* elf_platform(Arch arch);  // "x86_64", "aarch64"

}  // namespace mmemu
