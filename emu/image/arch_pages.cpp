// The per-architecture pages outside VMAs: x86_64's legacy vsyscall page (init_mm's) and
// arm64's signal-return trampoline (each mm's).
#include "emu/image/arch_pages.hpp"

#include <cstring>

namespace mmemu {

namespace {

// mov $nr, %rax; syscall; ret  (what __vsyscall_page holds at each entry)
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

std::string_view vsyscall_mode_name(VsyscallMode m) {
  switch (m) {
    case VsyscallMode::Xonly:
      return "xonly";
    case VsyscallMode::Emulate:
      return "emulate";
    case VsyscallMode::None:
      break;
  }
  return "none";
}

std::optional<VsyscallMode> parse_vsyscall_mode(std::string_view s) {
  for (VsyscallMode m : {VsyscallMode::Xonly, VsyscallMode::Emulate, VsyscallMode::None})
    if (s == vsyscall_mode_name(m)) return m;
  return std::nullopt;
}

vaddr_t arch_page_addr(Arch arch) {
  return arch == Arch::X86_64 ? kX86VsyscallPage : kArm64SigpagePage;
}

vaddr_t sigreturn_trampoline(Arch arch) {
  return arch == Arch::Arm64 ? kArm64SigpagePage : 0;
}

Result<void> setup_vsyscall(Machine& m, VsyscallMode mode) {
  KernelHalf& k = m.init_mm(Arch::X86_64);
  if (mode == VsyscallMode::None || k.range_at(kX86VsyscallPage)) return {};
  const vaddr_t end = kX86VsyscallPage + PAGE_SIZE;
  if (mode == VsyscallMode::Xonly) {
    // The gate VMA's VM_EXEC: calls are emulated, nothing else is allowed.
    return k.add_unmapped(kX86VsyscallPage, end, PteProt{false, false, true, true}, "[vsyscall]");
  }
  const AllocCaller caller(m.inject, "map_vsyscall", kX86VsyscallPage);
  auto pfn = m.phys.alloc_frame(AllocSite::Page);
  if (!pfn) return std::unexpected(pfn.error());
  fill_x86_vsyscall(m.phys.frame(*pfn));
  // PAGE_KERNEL_VVAR: present, user, read-only, NX. The gate VMA says r-x: fetches fault on
  // NX and are emulated.
  const PteProt pte{true, false, false, true};
  const PteProt user{true, false, true, true};
  if (auto r = k.map(kX86VsyscallPage, {*pfn}, pte, user, "[vsyscall]"); !r) {
    m.phys.put_page(*pfn);
    return r;
  }
  return {};
}

Result<void> map_arch_pages(Mm& mm) {
  if (mm.arch() != Arch::Arm64) return {};
  PhysMem& phys = mm.phys();
  const AllocCaller caller(phys.injector(), "arch_setup_additional_pages", kArm64SigpagePage);
  auto pfn = phys.alloc_frame(AllocSite::Page);
  if (!pfn) return std::unexpected(pfn.error());
  fill_arm64_sigpage(phys.frame(*pfn));
  auto r = mm.pt().map_arch_pages(kArm64SigpagePage, {*pfn}, PteProt{true, false, true, true},
                                  "[sigpage]");
  if (!r) {
    phys.put_page(*pfn);
    return r;
  }
  return {};
}

}  // namespace mmemu
