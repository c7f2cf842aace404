// load_elf_binary for static executables: segments, bss, brk, the initial stack.
#include "emu/image/loader.hpp"

#include <sys/auxv.h>

#include <algorithm>
#include <cstring>

#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/mm_syscalls.hpp"

namespace mmemu {

namespace {

// ELF_ET_DYN_BASE without randomisation: where a static-pie is placed.
vaddr_t et_dyn_base(Arch arch) {
  return arch == Arch::X86_64 ? 0x555555554000ULL : 0xaaaaaaaaa000ULL;
}

// copy_to_user for the loader: an allocation that fails while the page is faulted in is
// ENOMEM (get_user_pages' answer to VM_FAULT_OOM), never EFAULT, which is kept for an
// address nothing maps.
Result<void> put_user_bytes(Mm& mm, vaddr_t dst, const void* src, std::size_t n) {
  const auto* in = static_cast<const std::uint8_t*>(src);
  for (std::size_t done = 0; done < n;) {
    const vaddr_t a = dst + done;
    auto t = fault_in(mm, a, Access::Write);
    if (!t) return fail(t.error() == FaultResult::Oom ? ENOMEM : EFAULT);
    const std::size_t off = a & (PAGE_SIZE - 1);
    const std::size_t len = std::min<std::size_t>(n - done, PAGE_SIZE - off);
    if (auto r = copy_to_user(mm, a, in + done, len); !r) return r;
    done += len;
  }
  return {};
}

// The pieces of the initial stack as Linux lays them out, top down: an 8-byte zero word,
// the execfn string, then the argv and envp strings (argv[0] lowest); below them (after
// 16-byte alignment) the platform string, the 16 AT_RANDOM bytes, and then argc, argv[],
// NULL, envp[], NULL, auxv pairs, 16-byte aligned at argc.
struct StackBuilder {
  Mm& mm;
  vaddr_t p;
  Result<vaddr_t> push_bytes(const void* data, std::size_t n) {
    p -= n;
    if (auto r = put_user_bytes(mm, p, data, n); !r) return std::unexpected(r.error());
    return p;
  }
  Result<vaddr_t> push_string(const std::string& s) { return push_bytes(s.c_str(), s.size() + 1); }
};

}  // namespace

std::uint64_t elf_hwcap(Arch arch) {
  // x86_64: CPUID.1:EDX of the emulated CPU (FPU..SSE2, as Unicorn's qemu64-class model).
  // arm64: FP, ASIMD, AES, PMULL, SHA1, SHA2, CRC32 (what Unicorn's Cortex-A72 implements).
  return arch == Arch::X86_64 ? 0x178bfbffULL : 0xfbULL;
}

std::uint64_t elf_hwcap2(Arch) {
  return 0;  // x86: no FSGSBASE (wrfsbase is #UD under Unicorn); arm64: none of HWCAP2
}

const char* elf_platform(Arch arch) {
  return arch == Arch::X86_64 ? "x86_64" : "aarch64";
}

Result<LoadedImage> load_elf(Mm& mm, const ElfImage& img, File& exe, const LoadParams& params) {
  LoadedImage out;
  const vaddr_t bias = img.pie ? et_dyn_base(img.arch) - img.lo() : 0;
  out.load_bias = bias;

  vaddr_t elf_brk = 0;
  vaddr_t start_code = ~0ULL, end_code = 0, start_data = ~0ULL, end_data = 0;
  for (const ElfSegment& s : img.loads) {
    const int prot = s.prot();
    const vaddr_t vaddr = s.vaddr + bias;
    const std::uint64_t pgoff_in_page = vaddr & (PAGE_SIZE - 1);
    const vaddr_t map_addr = page_align_down(vaddr);
    vaddr_t zero_start, zero_end;
    if (s.filesz) {
      const std::uint64_t size = page_align_up(s.filesz + pgoff_in_page);
      auto m = do_mmap(mm, map_addr, size, prot, MAP_PRIVATE | MAP_FIXED, &exe,
                       (s.offset - pgoff_in_page) >> PAGE_SHIFT);
      if (!m) return std::unexpected(m.error());
      zero_start = map_addr + pgoff_in_page + s.filesz;
      zero_end = map_addr + pgoff_in_page + s.memsz;
      // padzero: the rest of the last file page belongs to bss and must read as zero.
      if (s.memsz > s.filesz && (zero_start & (PAGE_SIZE - 1)) != 0) {
        static const std::uint8_t zeros[PAGE_SIZE] = {};
        const std::size_t n = PAGE_SIZE - (zero_start & (PAGE_SIZE - 1));
        if (auto r = put_user_bytes(mm, zero_start, zeros, n); !r && (prot & PROT_WRITE))
          return std::unexpected(r.error());
      }
    } else {
      zero_start = map_addr;
      zero_end = map_addr + pgoff_in_page + s.memsz;
    }
    if (s.memsz > s.filesz) {
      zero_start = page_align_up(zero_start);
      zero_end = page_align_up(zero_end);
      if (zero_end > zero_start) {
        // vm_brk_flags: anonymous read-write memory (+ exec if the segment is).
        auto b = do_mmap(mm, zero_start, zero_end - zero_start,
                         PROT_READ | PROT_WRITE | (prot & PROT_EXEC),
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
        if (!b) return std::unexpected(b.error());
      }
    }
    const vaddr_t seg_end = vaddr + s.memsz;
    if (seg_end > elf_brk) elf_brk = seg_end;
    if (prot & PROT_EXEC) {
      start_code = std::min(start_code, vaddr);
      end_code = std::max(end_code, vaddr + s.filesz);
    } else {
      start_data = std::min(start_data, vaddr);
      end_data = std::max(end_data, vaddr + s.filesz);
    }
  }
  mm.start_code = start_code == ~0ULL ? 0 : start_code;
  mm.end_code = end_code;
  mm.start_data = start_data == ~0ULL ? end_code : start_data;
  mm.end_data = std::max(end_data, mm.start_data);
  mm.start_brk = mm.brk = page_align_up(elf_brk);

  // --- the stack ---
  const vaddr_t top = mm.params().task_size;
  std::uint64_t strings = 8 + params.execfn.size() + 1;
  for (const auto& a : params.argv)
    strings += a.size() + 1;
  for (const auto& e : params.envp)
    strings += e.size() + 1;
  // Linux refuses arguments over a quarter of the stack limit (and keeps a minimum).
  if (strings > std::max<std::uint64_t>(mm.rlimit(Rlim::Stack) / 4, 128 * 1024)) return fail(E2BIG);
  const std::uint64_t string_pages = page_align_up(strings);
  std::uint64_t stack_size = std::min<std::uint64_t>(mm.rlimit(Rlim::Stack) & PAGE_MASK,
                                                     string_pages + kInitialStackBytes);
  stack_size = std::max(stack_size, string_pages);
  const int stack_prot = PROT_READ | PROT_WRITE | (img.exec_stack.value_or(false) ? PROT_EXEC : 0);
  auto st = do_mmap(mm, top - stack_size, stack_size, stack_prot,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, nullptr, 0);
  if (!st) return std::unexpected(st.error());

  StackBuilder sb{mm, top - 8};
  std::uint64_t zero = 0;
  if (auto r = put_user_bytes(mm, top - 8, &zero, 8); !r) return std::unexpected(r.error());
  auto execfn = sb.push_string(params.execfn);
  if (!execfn) return std::unexpected(execfn.error());
  // Strings: envp then argv pushed last-first, so argv[0] ends up lowest.
  std::vector<vaddr_t> envp_at(params.envp.size()), argv_at(params.argv.size());
  for (std::size_t i = params.envp.size(); i-- > 0;) {
    auto a = sb.push_string(params.envp[i]);
    if (!a) return std::unexpected(a.error());
    envp_at[i] = *a;
  }
  for (std::size_t i = params.argv.size(); i-- > 0;) {
    auto a = sb.push_string(params.argv[i]);
    if (!a) return std::unexpected(a.error());
    argv_at[i] = *a;
  }
  mm.start_stack = sb.p;
  mm.arg_start = argv_at.empty() ? sb.p : argv_at.front();
  mm.arg_end = envp_at.empty() ? *execfn : envp_at.front();
  mm.env_start = mm.arg_end;
  mm.env_end = *execfn;

  sb.p &= ~0xfULL;  // arch_align_stack without randomisation
  auto platform = sb.push_string(elf_platform(img.arch));
  if (!platform) return std::unexpected(platform.error());
  auto random = sb.push_bytes(params.random.data(), params.random.size());
  if (!random) return std::unexpected(random.error());

  out.phdr = bias + img.phdr_vaddr.value_or(0);
  auto& av = out.auxv;
  av = {
      {AT_HWCAP, elf_hwcap(img.arch)},
      {AT_PAGESZ, PAGE_SIZE},
      {AT_CLKTCK, 100},
      {AT_PHDR, out.phdr},
      {AT_PHENT, img.phentsize},
      {AT_PHNUM, img.phnum},
      {AT_BASE, 0},
      {AT_FLAGS, 0},
      {AT_ENTRY, img.entry + bias},
      {AT_UID, params.uid},
      {AT_EUID, params.euid},
      {AT_GID, params.gid},
      {AT_EGID, params.egid},
      {AT_SECURE, 0},
      {AT_RANDOM, *random},
      {AT_HWCAP2, elf_hwcap2(img.arch)},
      {AT_EXECFN, *execfn},
      {AT_PLATFORM, *platform},
      {AT_NULL, 0},
  };

  // argc, argv[], NULL, envp[], NULL, auxv: laid out in one block, 16-aligned at argc.
  std::vector<std::uint64_t> block;
  block.push_back(params.argv.size());
  for (vaddr_t a : argv_at)
    block.push_back(a);
  block.push_back(0);
  for (vaddr_t e : envp_at)
    block.push_back(e);
  block.push_back(0);
  for (const auto& [type, value] : av) {
    block.push_back(type);
    block.push_back(value);
  }
  const vaddr_t sp = (sb.p - block.size() * 8) & ~0xfULL;
  if (auto r = put_user_bytes(mm, sp, block.data(), block.size() * 8); !r)
    return std::unexpected(r.error());
  out.sp = sp;
  out.entry = img.entry + bias;
  return out;
}

}  // namespace mmemu
