// Raw entry bits for both formats, checked against literal values worked out by hand from
// Linux's definitions (x86 pgtable_types.h; arm64 pgtable-hwdef.h / pgtable-prot.h).
#include "mmu/pte_format.hpp"

#include <gtest/gtest.h>

namespace mmemu {
namespace {

constexpr pfn_t kPfn = 0x12345;
constexpr PteProt R{true, false, false, true};
constexpr PteProt RW{true, true, false, true};
constexpr PteProt RX{true, false, true, true};
constexpr PteProt RWX{true, true, true, true};
constexpr PteProt W{false, true, false, true};
constexpr PteProt X{false, false, true, true};
constexpr PteProt NONE{false, false, false, true};
constexpr PteProt KR{true, false, false, false};
constexpr PteProt KRWX{true, true, true, false};

// ---------------- x86-64 ----------------

TEST(PteX86, LeafBitsForEveryProt) {
  const PteFormat& f = pte_format(Arch::X86_64);
  EXPECT_EQ(f.arch(), Arch::X86_64);
  EXPECT_EQ(f.mk_pte(kPfn, R), 0x8000000012345005ULL);     // P US NX
  EXPECT_EQ(f.mk_pte(kPfn, RW), 0x8000000012345007ULL);    // P RW US NX
  EXPECT_EQ(f.mk_pte(kPfn, RX), 0x0000000012345005ULL);    // P US
  EXPECT_EQ(f.mk_pte(kPfn, RWX), 0x0000000012345007ULL);   // P RW US
  EXPECT_EQ(f.mk_pte(kPfn, W), 0x8000000012345007ULL);     // write implies read
  EXPECT_EQ(f.mk_pte(kPfn, X), 0x0000000012345005ULL);     // exec implies read
  EXPECT_EQ(f.mk_pte(kPfn, NONE), 0x0000000012345100ULL);  // _PAGE_PROTNONE, P clear
  EXPECT_EQ(f.mk_pte(kPfn, KR), 0x8000000012345101ULL);    // P G NX
  EXPECT_EQ(f.mk_pte(kPfn, KRWX), 0x0000000012345103ULL);  // P RW G
  // Made young, they equal Linux's protection_map values (which carry _PAGE_ACCESSED).
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, RW)), 0x8000000012345027ULL);    // PAGE_SHARED
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, RX)), 0x0000000012345025ULL);    // PAGE_READONLY_EXEC
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, NONE)), 0x0000000012345120ULL);  // PAGE_NONE
}

TEST(PteX86, TableEntryIsPageTable) {
  const PteFormat& f = pte_format(Arch::X86_64);
  const pte_t t = f.mk_table(0x777);
  EXPECT_EQ(t, 0x777067ULL);  // _PAGE_TABLE = P RW US A D
  EXPECT_TRUE(f.is_table(t));
  EXPECT_EQ(f.pfn(t), 0x777U);
  EXPECT_FALSE(f.is_table(t | x86_bits::PS));
  EXPECT_FALSE(f.is_table(0));
}

TEST(PteX86, PresentProtnoneAndPfn) {
  const PteFormat& f = pte_format(Arch::X86_64);
  const pte_t none = f.mk_pte(kPfn, NONE);
  EXPECT_TRUE(f.present(none));
  EXPECT_TRUE(f.protnone(none));
  EXPECT_EQ(f.pfn(none), kPfn);
  EXPECT_EQ(f.prot(none), NONE);  // modify(e, prot(e)) round-trips
  const pte_t rw = f.mk_pte(kPfn, RW);
  EXPECT_TRUE(f.present(rw));
  EXPECT_FALSE(f.protnone(rw));
  EXPECT_EQ(f.prot(rw), RW);
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, RWX)), RWX);
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, KR)), KR);
  EXPECT_FALSE(f.present(0));
  EXPECT_TRUE(f.none(0));
  // A global kernel page is present, not PROT_NONE, though G is the PROTNONE bit.
  EXPECT_FALSE(f.protnone(f.mk_pte(kPfn, KR)));
  // The highest frame bits 12-51 survive; bits above are not frame.
  const pfn_t big = (1ULL << 40) - 1;
  EXPECT_EQ(f.pfn(f.mk_pte(big, R)), big);
  EXPECT_EQ(f.mk_pte(big, RWX), 0x000ffffffffff007ULL);
}

TEST(PteX86, AccessedDirtyWriteTransitions) {
  const PteFormat& f = pte_format(Arch::X86_64);
  const pte_t e = f.mk_pte(kPfn, RW);
  EXPECT_FALSE(f.young(e));
  EXPECT_FALSE(f.dirty(e));
  EXPECT_TRUE(f.write(e));
  EXPECT_EQ(f.mkyoung(e), e | 0x20);
  EXPECT_EQ(f.mkdirty(e), e | 0x40);
  EXPECT_EQ(f.mkold(f.mkyoung(e)), e);
  EXPECT_EQ(f.mkclean(f.mkdirty(e)), e);
  const pte_t wp = f.wrprotect(f.mkdirty(e));
  EXPECT_EQ(wp, 0x8000000012345045ULL);  // RW gone, D kept (no shadow stacks modelled)
  EXPECT_FALSE(f.write(wp));
  EXPECT_TRUE(f.dirty(wp));
  EXPECT_EQ(f.mkwrite(wp), 0x8000000012345047ULL);
}

TEST(PteX86, ModifyKeepsFrameAccessedDirty) {
  const PteFormat& f = pte_format(Arch::X86_64);
  const pte_t e = f.mkdirty(f.mkyoung(f.mk_pte(kPfn, RW)));
  ASSERT_EQ(e, 0x8000000012345067ULL);
  EXPECT_EQ(f.modify(e, R), 0x8000000012345065ULL);
  EXPECT_EQ(f.modify(e, RWX), 0x0000000012345067ULL);
  const pte_t pn = f.modify(e, NONE);
  EXPECT_EQ(pn, 0x0000000012345160ULL);  // PROTNONE A D, P clear
  EXPECT_TRUE(f.present(pn));
  EXPECT_TRUE(f.protnone(pn));
  EXPECT_TRUE(f.dirty(pn));
  EXPECT_EQ(f.modify(pn, RW), e);  // back again, nothing lost
}

TEST(PteX86, Decode) {
  const PteFormat& f = pte_format(Arch::X86_64);
  EXPECT_EQ(f.decode(0x8000000012345067ULL, Level::Pte), "P RW US A D NX");
  EXPECT_EQ(f.decode(0x0000000012345005ULL, Level::Pte), "P US");
  EXPECT_EQ(f.decode(0x0000000012345160ULL, Level::Pte), "A D PROTNONE");
  EXPECT_EQ(f.decode(0x8000000012345101ULL, Level::Pte), "P G NX");
  EXPECT_EQ(f.decode(0x777067ULL, Level::Pmd), "P RW US A D");
  EXPECT_EQ(f.decode(0x777087ULL, Level::Pmd), "P RW US PS");
  EXPECT_EQ(f.decode(0x777087ULL, Level::Pte), "P RW US PAT");
  EXPECT_EQ(f.decode(0x18ULL, Level::Pte), "PWT PCD");
  EXPECT_EQ(f.decode(0x12345000ULL, Level::Pte), "NP");
  EXPECT_EQ(f.decode(0, Level::Pte), "none");
}

// ---------------- AArch64 ----------------

TEST(PteArm64, LeafBitsForEveryProt) {
  const PteFormat& f = pte_format(Arch::Arm64);
  EXPECT_EQ(f.arch(), Arch::Arm64);
  // PAGE bits[1:0]=11, SH=IS (0x300), AP[1] 0x40, AP[2] 0x80, nG 0x800, DBM 51, PXN 53, UXN 54.
  EXPECT_EQ(f.mk_pte(kPfn, R), 0x0060000012345bc3ULL);
  EXPECT_EQ(f.mk_pte(kPfn, RW), 0x0068000012345bc3ULL);  // clean writable: DBM + RDONLY
  EXPECT_EQ(f.mk_pte(kPfn, RX), 0x0020000012345bc3ULL);
  EXPECT_EQ(f.mk_pte(kPfn, RWX), 0x0028000012345bc3ULL);
  EXPECT_EQ(f.mk_pte(kPfn, W), 0x0068000012345bc3ULL);
  EXPECT_EQ(f.mk_pte(kPfn, X), 0x0020000012345bc3ULL);
  // PAGE_NONE: valid clear, PTE_PROT_NONE (58), RDONLY, nG, PXN, UXN.
  EXPECT_EQ(f.mk_pte(kPfn, NONE), 0x0460000012345b82ULL);
  // Kernel-only: no AP[1], no nG, UXN always, PXN unless executable.
  EXPECT_EQ(f.mk_pte(kPfn, KR), 0x0060000012345383ULL);
  EXPECT_EQ(f.mk_pte(kPfn, KRWX), 0x0048000012345383ULL);
  // Made young, they equal Linux's protection_map values (which carry PTE_AF).
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, RW)), 0x0068000012345fc3ULL);    // PAGE_SHARED
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, R)), 0x0060000012345fc3ULL);     // PAGE_READONLY
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, RX)), 0x0020000012345fc3ULL);    // PAGE_READONLY_EXEC
  EXPECT_EQ(f.mkyoung(f.mk_pte(kPfn, NONE)), 0x0460000012345f82ULL);  // PAGE_NONE
}

TEST(PteArm64, TableDescriptor) {
  const PteFormat& f = pte_format(Arch::Arm64);
  const pte_t t = f.mk_table(0x777);
  EXPECT_EQ(t, 0x777003ULL);
  EXPECT_TRUE(f.is_table(t));
  EXPECT_EQ(f.pfn(t), 0x777U);
  EXPECT_FALSE(f.is_table(0x777001ULL));  // block descriptor
  EXPECT_FALSE(f.is_table(0));
}

TEST(PteArm64, PresentProtnoneAndPfn) {
  const PteFormat& f = pte_format(Arch::Arm64);
  const pte_t none = f.mk_pte(kPfn, NONE);
  EXPECT_TRUE(f.present(none));
  EXPECT_TRUE(f.protnone(none));
  EXPECT_EQ(f.pfn(none), kPfn);
  EXPECT_EQ(f.prot(none), NONE);  // modify(e, prot(e)) round-trips
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, R)), R);
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, RW)), RW);
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, RWX)), RWX);
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, KR)), KR);
  EXPECT_EQ(f.prot(f.mk_pte(kPfn, KRWX)), KRWX);
  EXPECT_FALSE(f.present(0x12345b82ULL));  // invalid without PROT_NONE: not present
  const pfn_t big = (1ULL << 36) - 1;      // output address bits 12-47
  EXPECT_EQ(f.pfn(f.mk_pte(big, R)), big);
}

TEST(PteArm64, DirtyFollowsDbmAndSoftwareBit) {
  const PteFormat& f = pte_format(Arch::Arm64);
  const pte_t clean = f.mk_pte(kPfn, RW);  // DBM | RDONLY
  EXPECT_TRUE(f.write(clean));
  EXPECT_FALSE(f.dirty(clean));
  // mkdirty: sw DIRTY set, and a writable entry becomes hardware-dirty (RDONLY cleared).
  EXPECT_EQ(f.mkdirty(clean), 0x00e8000012345b43ULL);
  // Hardware-dirty (what a DBM write leaves): DBM set, RDONLY clear, no sw bit.
  const pte_t hw = clean & ~arm64_bits::RDONLY;
  EXPECT_EQ(hw, 0x0068000012345b43ULL);
  EXPECT_TRUE(f.dirty(hw));
  // wrprotect of a hw-dirty entry moves the dirtiness into the software bit.
  const pte_t wp = f.wrprotect(hw);
  EXPECT_EQ(wp, 0x00e0000012345bc3ULL);
  EXPECT_FALSE(f.write(wp));
  EXPECT_TRUE(f.dirty(wp));
  // mkwrite of a sw-dirty entry makes it hw-dirty again; of a clean one, it stays RDONLY.
  EXPECT_EQ(f.mkwrite(wp), 0x00e8000012345b43ULL);
  EXPECT_EQ(f.mkwrite(f.mk_pte(kPfn, R)), 0x0068000012345bc3ULL);
  EXPECT_FALSE(f.dirty(f.mkwrite(f.mk_pte(kPfn, R))));
  // mkclean clears both kinds.
  EXPECT_EQ(f.mkclean(hw), clean);
  EXPECT_EQ(f.mkclean(f.mkdirty(clean)), clean);
  EXPECT_FALSE(f.dirty(f.mkclean(wp)));
  // mkdirty on a read-only entry: sw bit only, RDONLY stays.
  EXPECT_EQ(f.mkdirty(f.mk_pte(kPfn, R)), 0x00e0000012345bc3ULL);
  EXPECT_EQ(f.mkyoung(clean), clean | 0x400);
  EXPECT_EQ(f.mkold(f.mkyoung(clean)), clean);
  EXPECT_TRUE(f.young(f.mkyoung(clean)));
}

TEST(PteArm64, ModifyPreservesDirtiness) {
  const PteFormat& f = pte_format(Arch::Arm64);
  const pte_t hw = f.mkyoung(f.mk_pte(kPfn, RW)) & ~arm64_bits::RDONLY;  // young, hw-dirty
  ASSERT_EQ(hw, 0x0068000012345f43ULL);
  // To read-only: hw dirtiness saved in PTE_DIRTY.
  const pte_t ro = f.modify(hw, R);
  EXPECT_EQ(ro, 0x00e0000012345fc3ULL);
  EXPECT_TRUE(f.dirty(ro));
  // Back to writable: sw-dirty makes it hw-dirty again.
  EXPECT_EQ(f.modify(ro, RW), 0x00e8000012345f43ULL);
  // To PROT_NONE: valid cleared, PROT_NONE set, AP[1] cleared, frame, AF, dirt kept.
  const pte_t pn = f.modify(hw, NONE);
  EXPECT_EQ(pn, 0x04e0000012345f82ULL);
  EXPECT_TRUE(f.present(pn));
  EXPECT_TRUE(f.protnone(pn));
  EXPECT_TRUE(f.dirty(pn));
  EXPECT_TRUE(f.young(pn));
  // A clean entry stays clean through modify.
  EXPECT_EQ(f.modify(f.mk_pte(kPfn, R), RW), f.mk_pte(kPfn, RW));
  EXPECT_EQ(f.modify(f.mk_pte(kPfn, RW), RX), f.mk_pte(kPfn, RX));
}

TEST(PteArm64, Decode) {
  const PteFormat& f = pte_format(Arch::Arm64);
  EXPECT_EQ(f.decode(0x00e8000012345f43ULL, Level::Pte),
            "PAGE AF nG AP=rw-el0 SH=IS DBM PXN UXN DIRTY");
  EXPECT_EQ(f.decode(0x0060000012345bc3ULL, Level::Pte), "PAGE nG AP=ro-el0 SH=IS PXN UXN");
  EXPECT_EQ(f.decode(0x0460000012345b82ULL, Level::Pte), "PROT_NONE nG AP=ro-el1 SH=IS PXN UXN");
  EXPECT_EQ(f.decode(0x0048000012345383ULL, Level::Pte), "PAGE AP=ro-el1 SH=IS DBM UXN");
  EXPECT_EQ(f.decode(0x777003ULL, Level::Pmd), "TABLE");
  EXPECT_EQ(f.decode(0x777401ULL, Level::Pmd), "BLOCK AF AP=rw-el1");
  EXPECT_EQ(f.decode(0x12345008ULL, Level::Pte), "INVALID ATTR=2 AP=rw-el1");
  EXPECT_EQ(f.decode(0, Level::Pte), "none");
}

}  // namespace
}  // namespace mmemu
