// Every allocation attempt (and fatal_signal check) names the kernel function asking and the
// address it was for (FaultInjector::Event::function/addr, set by AllocCaller scopes): over
// the mixed parent of the lifecycle tests (mmap of every kind, faults, file and shmem pages,
// a pinned page), a fork of it, COW faults in the child, mprotect, mremap and munmap. During
// the fork, each attempt agrees with the dup_mmap step and VMA the context label names.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>
#include <set>
#include <sstream>

#include "lifecycle/lifecycle_util.hpp"

namespace mmemu::test {
namespace {

struct Seen {
  InjectSite site;
  std::string function;
  std::optional<std::uint64_t> addr;
  std::string context;
};

class Recorder {
 public:
  explicit Recorder(Machine& m) : m_(m) {
    m_.inject.on_attempt = [this](const FaultInjector::Event& e) {
      seen.push_back(Seen{e.site, std::string(e.function), e.addr, m_.inject.context()});
    };
  }
  ~Recorder() { m_.inject.on_attempt = nullptr; }
  std::vector<Seen> seen;

 private:
  Machine& m_;
};

std::string show(const Seen& s) {
  return fmt::format("{} {} {} [{}]", site_name(s.site), s.function,
                     s.addr ? fmt::format("{:#x}", *s.addr) : "-", s.context);
}

// The functions each site may name: what mmemu models at its allocation points.
const std::map<InjectSite, std::set<std::string>>& allowed() {
  static const std::map<InjectSite, std::set<std::string>> a{
      {InjectSite::Vma, {"vm_area_alloc", "vm_area_dup"}},
      {InjectSite::AnonVma, {"anon_vma_prepare", "anon_vma_clone", "anon_vma_fork"}},
      {InjectSite::MapleNode, {"mas_alloc_nodes", "mas_preallocate", "mt_dup"}},
      {InjectSite::PgTable, {"pgd_alloc", "__pud_alloc", "__pmd_alloc", "__pte_alloc"}},
      {InjectSite::Page,
       {"do_anonymous_page", "wp_page_copy", "copy_present_page", "filemap_alloc_folio",
        "shmem_alloc_folio"}},
      {InjectSite::FatalSignal, {"dup_mmap"}}};
  return a;
}

// "fork: STEP 0xVMA" -> (STEP, VMA); the VMA is 0 when the step names none.
std::pair<std::string, vaddr_t> fork_step(const std::string& ctx) {
  std::istringstream in(ctx);
  std::string fork_word, step, addr;
  in >> fork_word >> step >> addr;
  return {step, addr.empty() ? 0 : std::stoull(addr, nullptr, 16)};
}

class AllocAttribution : public ::testing::TestWithParam<Arch> {};

TEST_P(AllocAttribution, EveryAttemptNamesItsFunctionAndAddress) {
  const Arch arch = GetParam();
  Machine m(kLifePhys);
  Recorder rec(m);
  MixedParent p = build_mixed_parent(m, arch);
  Mm& parent = *p.mm;

  const std::size_t fork_from = rec.seen.size();
  ForkReport rep;
  auto child = dup_mm(parent, ForkRecovery::TreeMax, &rep);
  ASSERT_TRUE(child.has_value());
  ASSERT_TRUE(rep.ok);
  const std::size_t fork_to = rec.seen.size();
  Mm& c = **child;
  const int copied = c.map_count;
  // COW in the child (an anonymous page and a private file page), then a fresh fault.
  const std::size_t cow_from = rec.seen.size();
  write8(c, 0x10000000ULL + PAGE_SIZE, 0x99);
  const vaddr_t file_cow = p.vmas[static_cast<int>(Kind::FilePrivate)].first;
  write8(c, file_cow, 0x98);
  const std::size_t cow_to = rec.seen.size();
  auto fresh = sys_mmap(c, 0x50000000, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
  ASSERT_TRUE(fresh.has_value());
  const std::size_t fault_from = rec.seen.size();
  write8(c, 0x50000000 + 2 * PAGE_SIZE + 5, 1);
  const std::size_t fault_to = rec.seen.size();
  ASSERT_TRUE(do_mprotect(c, 0x50000000 + PAGE_SIZE, PAGE_SIZE, PROT_READ).has_value());
  ASSERT_TRUE(do_mremap(c, 0x50000000, PAGE_SIZE, 2 * PAGE_SIZE, MREMAP_MAYMOVE, 0).has_value());
  ASSERT_TRUE(do_munmap(c, 0x50000000 + 2 * PAGE_SIZE, PAGE_SIZE).has_value());

  // Every attempt names an allowed function of its site, but one: the arch page the test
  // helper allocates itself with no caller (the allocator's own default).
  int fallback = 0;
  std::set<std::string> functions;
  for (const Seen& s : rec.seen) {
    functions.insert(s.function);
    if (s.function == "alloc_pages") {
      ++fallback;
      EXPECT_EQ(s.site, InjectSite::Page) << show(s);
      continue;
    }
    EXPECT_TRUE(allowed().at(s.site).contains(s.function)) << show(s);
    // Only the tree's nodes, a new pgd and page-cache fills outside a fault may lack an
    // address (none of them is for one VA).
    if (s.site != InjectSite::MapleNode && s.function != "pgd_alloc" &&
        s.function != "filemap_alloc_folio" && s.function != "shmem_alloc_folio") {
      EXPECT_TRUE(s.addr.has_value()) << show(s);
    }
  }
  EXPECT_EQ(fallback, 1);
  for (const char* f : {"vm_area_alloc", "vm_area_dup", "anon_vma_prepare", "anon_vma_fork",
                        "mas_preallocate", "mt_dup", "pgd_alloc", "__pud_alloc", "__pmd_alloc",
                        "__pte_alloc", "do_anonymous_page", "wp_page_copy", "copy_present_page",
                        "filemap_alloc_folio", "shmem_alloc_folio", "dup_mmap"})
    EXPECT_TRUE(functions.contains(f)) << f;

  // The fork: each attempt agrees with the step and the VMA the context names.
  int dups = 0, checks = 0;
  for (std::size_t i = fork_from; i < fork_to; ++i) {
    const Seen& s = rec.seen[i];
    const auto [step, vma] = fork_step(s.context);
    if (step == "vm_area_dup") {
      ++dups;
      EXPECT_EQ(s.function, "vm_area_dup") << show(s);
      EXPECT_EQ(s.addr, vma) << show(s);
    } else if (step == "fatal_signal") {
      ++checks;
      EXPECT_EQ(s.function, "dup_mmap") << show(s);
      EXPECT_EQ(s.addr, vma) << show(s);
    } else if (step == "anon_vma_fork") {
      EXPECT_TRUE(s.function == "anon_vma_fork" || s.function == "anon_vma_clone") << show(s);
      EXPECT_EQ(s.addr, vma) << show(s);
    } else if (step == "copy_page_range") {
      const Vma* v = parent.vma_lookup(vma);
      ASSERT_NE(v, nullptr) << show(s);
      EXPECT_TRUE(s.function == "__pte_alloc" || s.function == "__pmd_alloc" ||
                  s.function == "__pud_alloc" || s.function == "copy_present_page")
          << show(s);
      ASSERT_TRUE(s.addr.has_value()) << show(s);
      EXPECT_GE(*s.addr, v->vm_start) << show(s);
      EXPECT_LT(*s.addr, v->vm_end) << show(s);
    } else if (step == "mt_dup") {
      EXPECT_EQ(s.function, "mt_dup") << show(s);
    }
  }
  // One dup and one check per VMA copied (the VM_DONTCOPY ones get neither).
  EXPECT_EQ(dups, copied);
  EXPECT_EQ(checks, dups);
  // The pinned page is copied at fork, at its own address.
  bool pinned_copy = false;
  for (std::size_t i = fork_from; i < fork_to; ++i)
    pinned_copy |= rec.seen[i].function == "copy_present_page" && rec.seen[i].addr == p.pinned;
  EXPECT_TRUE(pinned_copy);

  // COW faults: wp_page_copy at the written page (both VMAs have their anon_vma from fork).
  std::vector<std::string> cow;
  for (std::size_t i = cow_from; i < cow_to; ++i)
    cow.push_back(show(rec.seen[i]));
  EXPECT_EQ(cow, (std::vector<std::string>{
                     fmt::format("page wp_page_copy {:#x} []", 0x10000000ULL + PAGE_SIZE),
                     fmt::format("page wp_page_copy {:#x} []", file_cow)}));
  // A fresh fault in a new region: its tables, anon_vma and page, all at the fault.
  std::vector<std::string> fault;
  for (std::size_t i = fault_from; i < fault_to; ++i)
    fault.push_back(show(rec.seen[i]));
  const vaddr_t fa = 0x50000000 + 2 * PAGE_SIZE;
  EXPECT_EQ(fault,
            (std::vector<std::string>{fmt::format("pgtable __pte_alloc {:#x} []", fa + 5),
                                      fmt::format("anon_vma anon_vma_prepare {:#x} []", 0x50000000),
                                      fmt::format("anon_vma anon_vma_prepare {:#x} []", 0x50000000),
                                      fmt::format("page do_anonymous_page {:#x} []", fa)}));
}

INSTANTIATE_TEST_SUITE_P(Arches, AllocAttribution, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
