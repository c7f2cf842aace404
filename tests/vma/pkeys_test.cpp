// x86-64 protection keys as Linux uses them for PROT_EXEC-only memory: the execute-only key
// (the lowest free one, access-disabled in PKRU) in the VMA's flags and its PTEs, data
// accesses refused with SEGV_PKUERR while execution goes on, mprotect moving VMAs on and
// off the key, GUP refusing the VMA, fork keeping it all. arm64 has no keys.
#include "vma/pkeys.hpp"
#include "syscall_test_util.hpp"
#include "vma/fork.hpp"
#include "vma/gup.hpp"
#include "vma/proc_maps.hpp"

namespace mmemu::test {
namespace {

class PkeysTest : public SyscallTest {
 protected:
  bool x86() const { return GetParam() == Arch::X86_64; }
};

TEST_P(PkeysTest, ExecOnlyMemoryGetsTheExecuteOnlyKey) {
  const vaddr_t x = map_at(0, 2, PROT_EXEC);
  EXPECT_EQ(vma_pkey(flags_at(x)), x86() ? 1U : 0U);
  EXPECT_EQ(f.mm->execute_only_pkey, x86() ? 1 : -1);
  if (x86()) {
    EXPECT_EQ(f.mm->pt().pkru, 0x55555554U);  // key 1 was access-disabled already
  }
  // Fetching works and maps the page with the key in its PTE.
  ASSERT_EQ(f.touch(x, Access::Exec), FaultResult::Ok);
  const PteProt prot = f.mm->fmt().prot(*pte(x));
  EXPECT_EQ(prot.pkey, x86() ? 1 : 0);
  EXPECT_TRUE(prot.exec);
  // Data accesses: SEGV_PKUERR on x86-64 (the walker refuses too); arm64 reads.
  EXPECT_EQ(f.touch(x, Access::Read), x86() ? FaultResult::SegvPkuErr : FaultResult::Ok);
  EXPECT_EQ(f.touch(x, Access::Write), x86() ? FaultResult::SegvPkuErr : FaultResult::SegvAccErr);
  auto w = walk(f.mm->pt(), x, Access::Read, false);
  EXPECT_EQ(w.has_value(), !x86());
  if (x86()) {
    EXPECT_EQ(w.error().reason, ProtReason::Pkey);
  }
  // Other memory is untouched by the key.
  const vaddr_t rw = map_at(8, 1);
  EXPECT_EQ(vma_pkey(flags_at(rw)), 0U);
  EXPECT_EQ(f.touch(rw, Access::Write), FaultResult::Ok);
  EXPECT_EQ(ok(), "");
}

TEST_P(PkeysTest, MprotectMovesVmasOnAndOffTheKey) {
  const vaddr_t a = map_at(0, 4);
  ASSERT_EQ(f.touch(a, Access::Write), FaultResult::Ok);
  ASSERT_TRUE(do_mprotect(*f.mm, a, 2 * PAGE_SIZE, PROT_EXEC));
  EXPECT_EQ(area_layout(), (Layout{{0, 2}, {2, 4}}));
  EXPECT_EQ(vma_pkey(flags_at(a)), x86() ? 1U : 0U);
  EXPECT_EQ(f.mm->fmt().prot(*pte(a)).pkey, x86() ? 1 : 0);  // the present PTE changed too
  EXPECT_EQ(f.touch(a, Access::Read), x86() ? FaultResult::SegvPkuErr : FaultResult::Ok);
  // GUP is a data access: mlock cannot populate exec-only memory (x86-64: the key; arm64
  // keeps the answer measured on x86-64).
  EXPECT_FALSE(get_user_pages_range(*f.mm, a, 1, FOLL_FORCE).has_value());
  // Leaving execute-only drops the key, and the VMAs merge again.
  ASSERT_TRUE(do_mprotect(*f.mm, a, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE));
  EXPECT_EQ(vma_pkey(flags_at(a)), 0U);
  EXPECT_EQ(area_layout(), (Layout{{0, 4}}));
  EXPECT_EQ(f.mm->fmt().prot(*pte(a)).pkey, 0);
  EXPECT_EQ(f.read8(a), 0);
  EXPECT_EQ(ok(), "");
}

TEST_P(PkeysTest, SmapsShowsTheKeyAndForkKeepsIt) {
  const vaddr_t x = map_at(0, 1, PROT_EXEC);
  const std::string smaps = proc_smaps(*f.mm);
  if (x86()) {
    EXPECT_NE(smaps.find("ProtectionKey:         1"), std::string::npos) << smaps;
  } else {
    EXPECT_EQ(smaps.find("ProtectionKey"), std::string::npos);
  }
  ForkReport rep;
  auto child = dup_mm(*f.mm, ForkRecovery::TreeMax, &rep);
  ASSERT_TRUE(child);
  Mm& c = **child;
  EXPECT_EQ(c.execute_only_pkey, f.mm->execute_only_pkey);
  EXPECT_EQ(c.pt().pkru, f.mm->pt().pkru);
  EXPECT_EQ(vma_pkey(c.vma_lookup(x)->vm_flags), x86() ? 1U : 0U);
  auto t = fault_in(c, x, Access::Read);
  EXPECT_EQ(t.has_value(), !x86());
}

INSTANTIATE_ARCHES(PkeysTest);

}  // namespace
}  // namespace mmemu::test
