// The per-architecture pages outside VMAs: x86_64's legacy vsyscall page and arm64's
// signal-return trampoline.
#include "emu/image/arch_pages.hpp"

#include <cstring>

namespace mmemu {

namespace {

// mov $nr, %rax; syscall; ret  (the native-mode vsyscall entry points)
void put_x86_entry(std::uint8_t* page, unsigned off, std::uint32_t nr) {
  const std::uint8_t code[] = {
      0x48, 0xc7, 0xc0, static_cast<std::uint8_t>(nr), static_cast<std::uint8_t>(nr >> 8), 0, 0,
      0x0f, 0x05, 0xc3};
  std::memcpy(page + off, code, sizeof code);
}

void fill_x86_vsyscall(std::uint8_t* page) {
  std::memset(page, 0xcc, PAGE_SIZE);  // int3 everywhere else
  put_x86_entry(page, 0x000, 96);      // gettimeofday
  put_x86_entry(page, 0x400, 201);     // time
  put_x86_entry(page, 0x800, 309);     // getcpu
}

void fill_arm64_sigpage(std::uint8_t* page) {
  std::memset(page, 0, PAGE_SIZE);  // udf #0 everywhere else
  const std::uint32_t code[] = {
      0xd2801168,  // mov x8, #139 (rt_sigreturn)
      0xd4000001,  // svc #0
  };
  std::memcpy(page, code, sizeof code);
}

}  // namespace

vaddr_t arch_page_addr(Arch arch) {
  return arch == Arch::X86_64 ? kX86VsyscallPage : kArm64SigpagePage;
}

vaddr_t sigreturn_trampoline(Arch arch) {
  return arch == Arch::Arm64 ? kArm64SigpagePage : 0;
}

Result<void> map_arch_pages(Mm& mm) {
  PhysMem& phys = mm.phys();
  auto pfn = phys.alloc_frame(AllocSite::Page);
  if (!pfn) return std::unexpected(pfn.error());
  std::uint8_t* page = phys.frame(*pfn);
  PteProt prot{true, false, true, true};
  std::string name;
  if (mm.arch() == Arch::X86_64) {
    fill_x86_vsyscall(page);
    name = "[vsyscall]";
  } else {
    fill_arm64_sigpage(page);
    name = "[sigpage]";
  }
  auto r = mm.pt().map_arch_pages(arch_page_addr(mm.arch()), {*pfn}, prot, std::move(name));
  if (!r) {
    phys.put_page(*pfn);
    return r;
  }
  return {};
}

}  // namespace mmemu
