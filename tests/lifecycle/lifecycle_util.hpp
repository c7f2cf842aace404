// Helpers for the lifecycle tests: a parent address space with every kind of VMA fork has
// to handle, and snapshots that say exactly what a fork changed in it.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "mmu/machine.hpp"
#include "vma/anon_vma.hpp"
#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/fork.hpp"
#include "vma/gup_pin.hpp"
#include "vma/mm.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/validate.hpp"
#include "vma/vma_ops.hpp"
#include "vma/walkers.hpp"

namespace mmemu::test {

inline constexpr std::uint64_t kLifePhys = 64ULL << 20;

inline std::string arch_label(Arch a) {
  return std::string(arch_name(a));
}
inline std::string arch_param_label(const ::testing::TestParamInfo<Arch>& i) {
  return arch_label(i.param);
}

// The page each architecture maps outside VMAs: x86-64's vsyscall page, arm64's signal
// trampoline in the last page below 2^48 (above TASK_SIZE, sharing the stack's PMD table).
inline vaddr_t arch_page_va(Arch a) {
  return a == Arch::X86_64 ? 0xffffffffff600000ULL : 0xfffffffff000ULL;
}

inline void write8(Mm& mm, vaddr_t a, std::uint8_t v) {
  ASSERT_TRUE(copy_to_user(mm, a, &v, 1).has_value()) << std::hex << a;
}
inline std::uint8_t read8(Mm& mm, vaddr_t a) {
  std::uint8_t v = 0xee;
  EXPECT_TRUE(copy_from_user(mm, &v, a, 1).has_value()) << std::hex << a;
  return v;
}
// The invariant checker's findings over mms, and every page table their machine freed while
// in use, joined for a failure message; empty when all is well.
inline std::string problems(std::initializer_list<const Mm*> mms) {
  std::vector<const Mm*> v(mms);
  std::string out;
  for (const auto& s : validate_mms(v))
    out += s + "\n";
  if (!v.empty())
    for (const auto& t : v.front()->machine().freed_in_use)
      out += kasan_report(t);
  return out;
}

// Kinds of VMA the mixed parent holds, one of each per group.
enum class Kind : int {
  AnonWritten,    // private anon, every page written
  AnonMixed,      // private anon: a written page, a zero-page read, an untouched page
  AnonUnwritten,  // private anon, never touched (no anon_vma)
  AnonReadOnly,   // private anon read only: zero pages, no anon_vma
  SharedAnon,     // MAP_SHARED|MAP_ANONYMOUS (shmem): one written page, one read
  FilePrivate,    // private file mapping: a page-cache page and a COW'd anon page
  FileReadOnly,   // PROT_READ file mapping: page-cache pages
  ProtNone,       // PROT_NONE anon
  DontCopy,       // written private anon with VM_DONTCOPY (MADV_DONTFORK)
  WipeOnFork,     // written private anon with VM_WIPEONFORK
  kCount
};
inline constexpr int kKinds = static_cast<int>(Kind::kCount);

struct MixedParent {
  std::unique_ptr<Mm> mm;
  vaddr_t stack_start = 0;  // the growsdown stack after growing
  vaddr_t locked = 0;       // a VM_LOCKED VMA
  vaddr_t pinned = 0;       // a pinned page in an AnonWritten VMA
  pfn_t pinned_pfn = 0;
  pfn_t arch_frame = 0;
  std::vector<std::pair<vaddr_t, Kind>> vmas;  // start of each group VMA and its kind
};

// `groups` groups of kKinds VMAs (plus a locked VMA, a grown stack, an arch page and a
// pinned page). Even groups pack their VMAs 64 KiB apart (sharing PTE tables), odd groups
// 2 MiB apart (a PTE table each); groups are 1 GiB apart (their own PMD tables).
inline MixedParent build_mixed_parent(Machine& m, Arch arch, int groups = 5) {
  MixedParent p;
  auto r = Mm::create(m, arch);
  EXPECT_TRUE(r.has_value());
  p.mm = std::move(*r);
  Mm& mm = *p.mm;
  File* file = File::create(m, "/lib/data.bin", std::vector<std::uint8_t>(16 * PAGE_SIZE, 0x5a));
  const int anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  const int rw = PROT_READ | PROT_WRITE;
  auto must = [](Result<vaddr_t> x) {
    EXPECT_TRUE(x.has_value()) << (x ? "" : errno_name(x.error().code));
    return x ? *x : 0;
  };
  for (int g = 0; g < groups; ++g) {
    const vaddr_t base = 0x10000000ULL + static_cast<vaddr_t>(g) * (1ULL << 30);
    const vaddr_t step = (g % 2) ? PMD_SIZE : 16 * PAGE_SIZE;
    for (int k = 0; k < kKinds; ++k) {
      const vaddr_t a = base + static_cast<vaddr_t>(k) * step;
      const Kind kind = static_cast<Kind>(k);
      p.vmas.emplace_back(a, kind);
      switch (kind) {
        case Kind::AnonWritten:
        case Kind::DontCopy:
        case Kind::WipeOnFork:
          must(sys_mmap(mm, a, 3 * PAGE_SIZE, rw, anon, nullptr, 0));
          for (int i = 0; i < 3; ++i)
            write8(mm, a + i * PAGE_SIZE, static_cast<std::uint8_t>(0x10 + g * 16 + k));
          if (kind != Kind::AnonWritten) {
            const vm_flags_t extra = kind == Kind::DontCopy ? VM_DONTCOPY : VM_WIPEONFORK;
            Vma* v = mm.vma_lookup(a);
            EXPECT_TRUE(vma_modify_flags(mm, *v, a, a + 3 * PAGE_SIZE, v->vm_flags | extra));
          }
          break;
        case Kind::AnonMixed:
          must(sys_mmap(mm, a, 3 * PAGE_SIZE, rw, anon, nullptr, 0));
          write8(mm, a, 0x77);
          (void)read8(mm, a + PAGE_SIZE);
          break;
        case Kind::AnonUnwritten:
          must(sys_mmap(mm, a, 2 * PAGE_SIZE, rw, anon, nullptr, 0));
          break;
        case Kind::AnonReadOnly:
          must(sys_mmap(mm, a, 2 * PAGE_SIZE, PROT_READ, anon, nullptr, 0));
          (void)read8(mm, a);
          break;
        case Kind::SharedAnon:
          must(sys_mmap(mm, a, 2 * PAGE_SIZE, rw, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, nullptr,
                        0));
          write8(mm, a, 0x33);
          (void)read8(mm, a + PAGE_SIZE);
          break;
        case Kind::FilePrivate:
          must(sys_mmap(mm, a, 2 * PAGE_SIZE, rw, MAP_PRIVATE | MAP_FIXED, file,
                        static_cast<std::uint64_t>(g) * PAGE_SIZE));
          (void)read8(mm, a);
          write8(mm, a + PAGE_SIZE, 0x44);
          break;
        case Kind::FileReadOnly:
          must(sys_mmap(mm, a, 2 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 0));
          (void)read8(mm, a);
          (void)read8(mm, a + PAGE_SIZE);
          break;
        case Kind::ProtNone:
          must(sys_mmap(mm, a, 2 * PAGE_SIZE, PROT_NONE, anon, nullptr, 0));
          break;
        case Kind::kCount:
          break;
      }
    }
  }
  file->put();
  // An mlocked VMA (populated by mmap): the child must not inherit VM_LOCKED.
  p.locked = must(sys_mmap(mm, 0x0f000000, 2 * PAGE_SIZE, rw, anon | MAP_LOCKED, nullptr, 0));
  // A growsdown stack ending at TASK_SIZE, grown by touching below it.
  const vaddr_t top = mm.task_size;
  must(sys_mmap(mm, top - 4 * PAGE_SIZE, 4 * PAGE_SIZE, rw, anon | MAP_GROWSDOWN, nullptr, 0));
  write8(mm, top - PAGE_SIZE, 0x5c);
  write8(mm, top - 6 * PAGE_SIZE, 0x5d);
  p.stack_start = mm.vma_lookup(top - PAGE_SIZE)->vm_start;
  // The arch page outside every VMA.
  auto f = m.phys.alloc_frame(AllocSite::Page);
  EXPECT_TRUE(f.has_value());
  p.arch_frame = *f;
  EXPECT_TRUE(mm.pt()
                  .map_arch_pages(arch_page_va(arch), {*f}, PteProt{true, false, true, true},
                                  arch == Arch::X86_64 ? "[vsyscall]" : "[sigpage]")
                  .has_value());
  // A page pinned as a direct-IO buffer (pinned for the whole life of the parent).
  p.pinned = 0x10000000ULL;  // group 0's AnonWritten VMA
  auto pins = pin_user_pages(mm, p.pinned, 1, FOLL_WRITE);
  EXPECT_TRUE(pins.has_value());
  p.pinned_pfn = pins->front();
  return p;
}

// Everything of an mm a fork must not change, the PTE write bits apart (a fork leaves the
// parent's COW entries read-only, as the kernel does; see `writable`).
struct MmSnapshot {
  using VmaRow = std::tuple<vaddr_t, vaddr_t, vm_flags_t, std::uint64_t, const File*,
                            const AnonVma*, std::size_t>;
  using PteRow = std::tuple<pfn_t, bool, bool, bool, bool, bool>;  // pfn young dirty r x protnone
  using FrameRow = std::tuple<std::uint32_t, std::int32_t, std::uint32_t, std::uint32_t>;
  using AvRow = std::tuple<int, unsigned, unsigned, std::size_t>;
  std::vector<VmaRow> vmas;
  std::map<vaddr_t, PteRow> ptes;
  std::map<vaddr_t, bool> writable;
  std::map<pfn_t, FrameRow> frames;
  std::map<std::pair<Level, vaddr_t>, pfn_t> tables;
  std::map<std::uint64_t, AvRow> anon_vmas;
  std::vector<std::int64_t> counters;
  std::string tree;
  std::vector<ArchMapping> arch;

  static MmSnapshot of(const Mm& mm) {
    MmSnapshot s;
    const PteFormat& fmt = mm.fmt();
    const PhysMem& phys = mm.phys();
    for (const Vma* v : mm.vmas()) {
      s.vmas.emplace_back(v->vm_start, v->vm_end, v->vm_flags, v->vm_pgoff, v->vm_file, v->anon_vma,
                          v->anon_vma_chain.size());
      for (const AnonVmaChain* c : v->anon_vma_chain) {
        const AnonVma* av = c->anon_vma;
        s.anon_vmas[av->id] = {av->refcount, av->num_children, av->num_active_vmas,
                               av->chains.size()};
      }
    }
    mm.pt().for_each_pte(0, ~0ULL, [&](vaddr_t va, PteRef, pte_t e) {
      const PteProt p = fmt.prot(e);
      const pfn_t pfn = fmt.pfn(e);
      s.ptes[va] = {pfn, fmt.young(e), fmt.dirty(e), p.read, p.exec, fmt.protnone(e)};
      s.writable[va] = fmt.write(e);
      const PageDesc& d = phys.desc(pfn);
      s.frames[pfn] = {d.refcount, d.mapcount, d.pincount, d.flags};
    });
    mm.pt().for_each_table([&](pfn_t t, Level l, vaddr_t base) { s.tables[{l, base}] = t; });
    s.counters = {mm.map_count,
                  static_cast<std::int64_t>(mm.total_vm),
                  static_cast<std::int64_t>(mm.locked_vm),
                  static_cast<std::int64_t>(mm.pinned_vm),
                  static_cast<std::int64_t>(mm.data_vm),
                  static_cast<std::int64_t>(mm.exec_vm),
                  static_cast<std::int64_t>(mm.stack_vm),
                  mm.rss[0],
                  mm.rss[1],
                  mm.rss[2],
                  mm.rss[3],
                  mm.flags};
    s.tree = mm.mm_mt.dump();
    s.arch = mm.pt().arch_mappings();
    return s;
  }
};

// "" when equal, else which part differs (first difference).
inline std::string snapshot_diff(const MmSnapshot& a, const MmSnapshot& b) {
  if (a.vmas != b.vmas) return "VMAs differ";
  if (a.ptes != b.ptes) {
    for (const auto& [va, row] : a.ptes) {
      auto it = b.ptes.find(va);
      if (it == b.ptes.end()) return "pte " + std::to_string(va) + " gone";
      if (it->second != row) return "pte " + std::to_string(va) + " changed";
    }
    return "ptes added";
  }
  if (a.frames != b.frames) {
    for (const auto& [pfn, row] : a.frames) {
      auto it = b.frames.find(pfn);
      if (it == b.frames.end() || it->second != row) {
        const auto& [r0, m0, p0, f0] = row;
        const auto& [r1, m1, p1, f1] = it == b.frames.end() ? MmSnapshot::FrameRow{} : it->second;
        return "frame " + std::to_string(pfn) + " ref/map/pin/flags " + std::to_string(r0) + "/" +
               std::to_string(m0) + "/" + std::to_string(p0) + "/" + std::to_string(f0) + " -> " +
               std::to_string(r1) + "/" + std::to_string(m1) + "/" + std::to_string(p1) + "/" +
               std::to_string(f1);
      }
    }
    return "frames differ";
  }
  if (a.tables != b.tables) return "page tables differ";
  if (a.anon_vmas != b.anon_vmas) return "anon_vma counts differ";
  if (a.counters != b.counters) return "counters differ";
  if (a.tree != b.tree) return "maple tree differs";
  if (a.arch.size() != b.arch.size()) return "arch mappings differ";
  return "";
}

// Live objects per site.
inline std::array<std::int64_t, kAllocSites> live_now(const Machine& m) {
  return m.live.snapshot();
}

}  // namespace mmemu::test
