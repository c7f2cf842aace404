// Helpers for the address-space tests: an mm on a small machine, its invariants checked
// after every step, and short ways to map and touch memory.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmu/machine.hpp"
#include "vma/fault.hpp"
#include "vma/mm.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/validate.hpp"

namespace mmemu::test {

inline std::string arch_test_name(const ::testing::TestParamInfo<Arch>& info) {
  return std::string(arch_name(info.param));
}

inline constexpr std::uint64_t kMmTestPhys = 64ULL << 20;

struct MmFixture {
  explicit MmFixture(Arch arch, std::uint64_t phys = kMmTestPhys) : m(phys) {
    auto r = Mm::create(m, arch);
    EXPECT_TRUE(r.has_value());
    mm = std::move(*r);
    mm->set_rlimits(&rlimits);
  }
  // The invariant checker must stay green and no page table may have been freed while in
  // use; returns the findings joined for a failure message.
  std::string problems() const {
    std::string out;
    const Mm* p = mm.get();
    for (const auto& s : validate_mms(std::span<const Mm* const>(&p, 1)))
      out += s + "\n";
    for (const auto& t : m.freed_in_use)
      out += kasan_report(t);
    return out;
  }
  vaddr_t map_anon(std::uint64_t len, int prot = PROT_READ | PROT_WRITE, int flags = 0,
                   vaddr_t addr = 0) {
    auto r = sys_mmap(*mm, addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, nullptr, 0);
    EXPECT_TRUE(r.has_value()) << (r ? "" : errno_name(r.error().code));
    return r ? *r : 0;
  }
  FaultResult touch(vaddr_t a, Access acc = Access::Write) {
    auto t = fault_in(*mm, a, acc);
    return t ? FaultResult::Ok : t.error();
  }
  void write8(vaddr_t a, std::uint8_t v) { ASSERT_TRUE(copy_to_user(*mm, a, &v, 1).has_value()); }
  std::uint8_t read8(vaddr_t a) {
    std::uint8_t v = 0xee;
    EXPECT_TRUE(copy_from_user(*mm, &v, a, 1).has_value());
    return v;
  }
  // [start, end) of every VMA, in order.
  std::vector<std::pair<vaddr_t, vaddr_t>> layout() const {
    std::vector<std::pair<vaddr_t, vaddr_t>> out;
    for (const Vma* v : mm->vmas())
      out.emplace_back(v->vm_start, v->vm_end);
    return out;
  }
  // (level, first va) -> table pfn of every table that exists.
  std::map<std::pair<Level, vaddr_t>, pfn_t> tables() const {
    std::map<std::pair<Level, vaddr_t>, pfn_t> out;
    mm->pt().for_each_table([&](pfn_t t, Level l, vaddr_t base) { out[{l, base}] = t; });
    return out;
  }

  Machine m;
  Rlimits rlimits;  // the mm's resource limits, as a process's would be
  std::unique_ptr<Mm> mm;
};

}  // namespace mmemu::test
