// Helpers shared by the page-table tests: a small machine, populating and zapping pages the
// way the vma layer will (map a data frame per page; zap clears the PTE and gathers the
// frame), and snapshots of which table frames exist.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "mmu/machine.hpp"
#include "mmu/mmu_gather.hpp"
#include "mmu/page_table.hpp"

namespace mmemu::test {

inline constexpr std::uint64_t kTestPhys = 16ULL << 20;  // 16 MiB: fast to set up

inline std::string arch_param_name(const ::testing::TestParamInfo<Arch>& info) {
  return std::string(arch_name(info.param));
}

// Where each architecture keeps its page mapped outside VMAs: x86-64's vsyscall page, and
// the arm64 signal trampoline mmemu keeps in the 2 MiB above TASK_SIZE (see types.cpp).
inline vaddr_t arch_page_va(Arch a) {
  return a == Arch::X86_64 ? 0xffffffffff600000ULL : arch_params(a).task_size;
}

struct PtFixture {
  explicit PtFixture(Arch arch) : m(kTestPhys) {
    auto r = PageTable::create(m.phys, arch);
    EXPECT_TRUE(r.has_value());
    pt = std::move(*r);
  }
  // Maps one fresh data frame at va (tables allocated as needed); returns the frame.
  pfn_t map_page(vaddr_t va, PteProt prot = {true, true, false, true}) {
    auto ref = pt->alloc(va);
    EXPECT_TRUE(ref.has_value());
    auto f = m.phys.alloc_frame(AllocSite::Page);
    EXPECT_TRUE(f.has_value());
    pt->set(*ref, pt->fmt().mk_pte(*f, prot));
    m.phys.desc(*f).mapcount++;
    return *f;
  }
  // zap: clears every present PTE in [start, end) and hands the frames to the gather.
  void zap(MmuGather& tlb, vaddr_t start, vaddr_t end) {
    pt->for_each_pte(start, end, [&](vaddr_t va, PteRef ref, pte_t e) {
      pt->set(ref, 0);
      const pfn_t f = pt->fmt().pfn(e);
      m.phys.desc(f).mapcount--;
      tlb.remove_page(f, va);
    });
  }
  // (level, first va) -> table pfn, for every table that exists.
  std::map<std::pair<Level, vaddr_t>, pfn_t> tables() const {
    std::map<std::pair<Level, vaddr_t>, pfn_t> out;
    pt->for_each_table([&](pfn_t t, Level l, vaddr_t base) { out[{l, base}] = t; });
    return out;
  }
  std::size_t count(Level l) const { return pt->nr_tables(l); }

  Machine m;
  std::unique_ptr<PageTable> pt;
};

}  // namespace mmemu::test
