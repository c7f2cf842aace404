// The ELF loader and the initial stack: segments, bss, brk, the stack VMA, argv/envp and
// the auxiliary vector as static glibc reads them; and the arch pages outside VMAs.
#include <gtest/gtest.h>
#include <sys/auxv.h>

#include <map>

#include "emu/image/arch_pages.hpp"
#include "emu/image/elf.hpp"
#include "emu/kernel/kernel.hpp"
#include "emu_test_util.hpp"
#include "vma/exit_mmap.hpp"
#include "vma/fault.hpp"
#include "vma/mm_syscalls.hpp"

namespace mmemu {
namespace {

std::uint64_t read_u64(Mm& mm, vaddr_t at) {
  std::uint64_t v = 0;
  EXPECT_TRUE(copy_from_user(mm, &v, at, 8)) << std::hex << at;
  return v;
}

std::string read_str(Mm& mm, vaddr_t at) {
  auto s = strncpy_from_user(mm, at, 4096);
  EXPECT_TRUE(s.has_value());
  return s.value_or("");
}

class LoaderTest : public ::testing::TestWithParam<Arch> {};

TEST_P(LoaderTest, InitialStackAndAuxvAsLinuxLaysThemOut) {
  const Arch arch = GetParam();
  Kernel k(KernelOptions{}, unicorn_cpu_factory());
  const std::string path = test::guest_path(arch, "hello");
  auto p = k.spawn(path, {path, "one", "two"}, {"A=1", "BB=22"});
  ASSERT_TRUE(p.has_value()) << p.error().message;
  Process& proc = **p;
  Mm& mm = proc.mm();
  const vaddr_t sp = proc.cpu->sp();
  EXPECT_EQ(sp % 16, 0u);
  EXPECT_EQ(read_u64(mm, sp), 3u);  // argc
  EXPECT_EQ(read_str(mm, read_u64(mm, sp + 8)), path);
  EXPECT_EQ(read_str(mm, read_u64(mm, sp + 16)), "one");
  EXPECT_EQ(read_str(mm, read_u64(mm, sp + 24)), "two");
  EXPECT_EQ(read_u64(mm, sp + 32), 0u);
  EXPECT_EQ(read_str(mm, read_u64(mm, sp + 40)), "A=1");
  EXPECT_EQ(read_str(mm, read_u64(mm, sp + 48)), "BB=22");
  EXPECT_EQ(read_u64(mm, sp + 56), 0u);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> auxv;
  for (vaddr_t a = sp + 64;; a += 16) {
    auxv.emplace_back(read_u64(mm, a), read_u64(mm, a + 8));
    if (auxv.back().first == AT_NULL || auxv.size() > 64) break;
  }
  std::map<std::uint64_t, std::uint64_t> av(auxv.begin(), auxv.end());
  // The order Linux's create_elf_tables writes them in (no vDSO, so no AT_SYSINFO_EHDR).
  std::vector<std::uint64_t> types;
  for (const auto& [t, v] : auxv)
    types.push_back(t);
  EXPECT_EQ(types, (std::vector<std::uint64_t>{AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT,
                                               AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID,
                                               AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM,
                                               AT_HWCAP2, AT_EXECFN, AT_PLATFORM, AT_NULL}));
  auto bytes = read_executable(path);
  ASSERT_TRUE(bytes.has_value());
  auto img = parse_elf(*bytes);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(av[AT_PAGESZ], 4096u);
  EXPECT_EQ(av[AT_CLKTCK], 100u);
  EXPECT_EQ(av[AT_ENTRY], img->entry);
  EXPECT_EQ(proc.cpu->pc(), img->entry);
  EXPECT_EQ(av[AT_PHDR], *img->phdr_vaddr);
  EXPECT_EQ(av[AT_PHNUM], img->phnum);
  EXPECT_EQ(av[AT_PHENT], 56u);
  EXPECT_EQ(av[AT_SECURE], 0u);
  EXPECT_EQ(read_str(mm, av[AT_EXECFN]), path);
  EXPECT_EQ(read_str(mm, av[AT_PLATFORM]), arch == Arch::X86_64 ? "x86_64" : "aarch64");
  // AT_RANDOM: 16 bytes on the stack, below the strings.
  EXPECT_GT(av[AT_RANDOM], sp);
  EXPECT_LT(av[AT_RANDOM], read_u64(mm, sp + 8));
  // The program headers really are at AT_PHDR.
  std::uint32_t first_type = 0;
  ASSERT_TRUE(copy_from_user(mm, &first_type, av[AT_PHDR], 4));
  EXPECT_NE(first_type, 0u);

  // The stack: growsdown, ending at TASK_SIZE, shown as [stack].
  Vma* st = mm.vma_lookup(sp);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->vm_end, mm.params().task_size);
  EXPECT_TRUE(st->vm_flags & VM_GROWSDOWN);
  EXPECT_LE(st->vm_start, mm.start_stack);
  // Segments: one VMA per PT_LOAD page range with its permissions, mapping the executable.
  for (const ElfSegment& s : img->loads) {
    Vma* v = mm.vma_lookup(s.vaddr);
    ASSERT_NE(v, nullptr);
    EXPECT_NE(v->vm_file, nullptr);
    EXPECT_EQ((v->vm_flags & VM_EXEC) != 0, (s.flags & ELF_PF_X) != 0);
    EXPECT_EQ((v->vm_flags & VM_WRITE) != 0, (s.flags & ELF_PF_W) != 0);
  }
  // brk starts page-aligned right after the highest segment (bss included).
  EXPECT_EQ(mm.start_brk, page_align_up(img->loads.back().vaddr + img->loads.back().memsz));
  EXPECT_EQ(mm.brk, mm.start_brk);
  // bss past the file bytes reads as zero.
  const ElfSegment& data = img->loads.back();
  if (data.memsz > data.filesz) {
    std::uint8_t b = 0xff;
    ASSERT_TRUE(copy_from_user(mm, &b, data.vaddr + data.filesz, 1));
    EXPECT_EQ(b, 0);
  }
  const RunSummary s = k.run();
  EXPECT_EQ(s.exit_status, 0);
  EXPECT_TRUE(s.problems.empty());
}

// arm64: the trampoline is the mm's arch mapping, freed by exit_mmap. x86-64 (vsyscall=
// emulate): the page is init_mm's, reached through the shared kernel-half tables; neither
// munmap nor exit_mmap touches them, and the machine frees them last.
TEST_P(LoaderTest, ArchPageSurvivesUnmappingItsNeighboursAndGoesAtExit) {
  const Arch arch = GetParam();
  const bool x86 = arch == Arch::X86_64;
  Machine m(64ULL << 20);
  if (x86) {
    ASSERT_TRUE(setup_vsyscall(m, VsyscallMode::Emulate));
  }
  {
    auto mm = std::move(*Mm::create(m, arch));
    ASSERT_TRUE(map_arch_pages(*mm));
    const vaddr_t page = arch_page_addr(arch);
    const PteFormat& f = mm->fmt();
    auto ref = mm->pt().lookup(page);
    ASSERT_TRUE(ref.has_value());
    const pte_t pte = mm->pt().get(*ref);
    EXPECT_TRUE(f.present(pte));
    EXPECT_EQ(f.prot(pte).exec, !x86);  // x86-64: NX, every fetch is emulated
    EXPECT_TRUE(f.prot(pte).read);
    EXPECT_FALSE(f.prot(pte).write);
    EXPECT_TRUE(mm->pt().arch_mappings().size() == (x86 ? 0U : 1U));
    // The entry code.
    const std::uint8_t* code = m.phys.frame(f.pfn(pte));
    if (arch == Arch::X86_64) {
      const std::uint8_t gettimeofday[] = {0x48, 0xc7, 0xc0, 0x60, 0, 0, 0, 0x0f, 0x05, 0xc3};
      EXPECT_EQ(std::memcmp(code, gettimeofday, sizeof gettimeofday), 0);
      EXPECT_EQ(code[0x400 + 3], 201);
      EXPECT_EQ(code[0x800 + 3], 309 & 0xff);
    } else {
      EXPECT_EQ(sigreturn_trampoline(arch), page);
      std::uint32_t insn[2];
      std::memcpy(insn, code, 8);
      EXPECT_EQ(insn[0], 0xd2801168u);  // mov x8, #139
      EXPECT_EQ(insn[1], 0xd4000001u);  // svc #0
    }
    // Map right up to the end of user space and unmap it again (arm64: the same PMD table
    // as the trampoline's; x86-64: the last user PGD entry).
    const vaddr_t top = mm->params().task_size;
    auto a = do_mmap(*mm, top - 4 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(mm_populate(*mm, *a, 4 * PAGE_SIZE, false));
    auto moved = do_mremap(*mm, *a, 4 * PAGE_SIZE, 4 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED,
                           top - 64 * PAGE_SIZE);
    ASSERT_TRUE(moved.has_value());
    ASSERT_TRUE(do_munmap(*mm, top - 64 * PAGE_SIZE, 4 * PAGE_SIZE));
    ref = mm->pt().lookup(page);
    ASSERT_TRUE(ref.has_value());
    EXPECT_EQ(mm->pt().get(*ref), pte);
    // arm64: only the arch page's table is left; x86-64: its table is init_mm's.
    EXPECT_EQ(mm->pt().nr_tables(Level::Pte), x86 ? 0u : 1u);
    exit_mmap(*mm);
    EXPECT_EQ(mm->pt().nr_tables_total(), 1u);  // the pgd only
    if (x86) {
      EXPECT_TRUE(mm->pt().lookup(page).has_value());  // still init_mm's
    }
  }
  EXPECT_EQ(m.live.live(AllocSite::PgTable), x86 ? 4 : 0);  // init_mm's pgd and 3 tables
  m.init_mm(Arch::X86_64).release();
  EXPECT_EQ(m.live.live(AllocSite::PgTable), 0);
  EXPECT_EQ(m.live.live(AllocSite::Page), 0);
}

INSTANTIATE_TEST_SUITE_P(Arches, LoaderTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         [](const auto& pi) { return std::string(arch_name(pi.param)); });

}  // namespace
}  // namespace mmemu
