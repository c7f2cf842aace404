// Reclaim of MADV_FREE'd memory: a clean lazy-free page is dropped and reads back as zero;
// a page written after MADV_FREE is kept; a clean one a direct-IO request has pinned is
// skipped while pinned and stays lazy-free, and the data the device writes into it survives
// because the unpin marks it dirty (the MADV_FREE vs direct-IO race the refcount check
// closes).
#include <gtest/gtest.h>

#include <cstring>

#include "lifecycle_util.hpp"
#include "vma/reclaim.hpp"

namespace mmemu::test {
namespace {

constexpr vaddr_t kBuf = 0x30000000;

class LazyFree : public ::testing::TestWithParam<Arch> {
 protected:
  void SetUp() override {
    auto r = Mm::create(m, GetParam());
    ASSERT_TRUE(r.has_value());
    mm = std::move(*r);
    mm->set_flusher(&flusher);
    ASSERT_TRUE(sys_mmap(*mm, kBuf, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
    for (int i = 0; i < 4; ++i)
      write8(*mm, kBuf + i * PAGE_SIZE, static_cast<std::uint8_t>(0xa0 + i));
    for (int i = 0; i < 4; ++i)
      frames[i] = pfn_at(kBuf + i * PAGE_SIZE);
    ASSERT_TRUE(do_madvise(*mm, kBuf, 4 * PAGE_SIZE, MADV_FREE));
    for (pfn_t f : frames)
      ASSERT_TRUE(m.phys.desc(f).flags & PG_lazyfree);
  }
  pfn_t pfn_at(vaddr_t va) const {
    const auto ref = mm->pt().lookup(va);
    const pte_t e = mm->pt().get(*ref);
    return mm->fmt().present(e) ? mm->fmt().pfn(e) : 0;
  }
  Machine m{kLifePhys};
  RecordingFlusher flusher;  // outlives mm, whose exit flushes through it
  std::unique_ptr<Mm> mm;
  std::array<pfn_t, 4> frames{};
};

TEST_P(LazyFree, CleanPagesAreDroppedAndReadAsZero) {
  const std::int64_t pages_before = m.live.live(AllocSite::Page);
  const ReclaimReport r = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r.scanned, 4U);
  EXPECT_EQ(r.dropped, 4U);
  EXPECT_EQ(r.dropped_frames, std::vector<pfn_t>(frames.begin(), frames.end()));
  EXPECT_EQ(m.live.live(AllocSite::Page), pages_before - 4);
  EXPECT_EQ(mm->rss[MM_ANONPAGES], 0);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pfn_at(kBuf + i * PAGE_SIZE), 0U);
    EXPECT_TRUE(flusher.covers(kBuf + i * PAGE_SIZE, kBuf + (i + 1) * PAGE_SIZE));
  }
  EXPECT_EQ(read8(*mm, kBuf), 0);  // the zero page now
  EXPECT_EQ(pfn_at(kBuf), m.phys.zero_pfn());
  EXPECT_EQ(problems({mm.get()}), "");
}

TEST_P(LazyFree, PageWrittenAfterFreeIsKept) {
  write8(*mm, kBuf + PAGE_SIZE, 0x5e);     // redirtied
  (void)read8(*mm, kBuf + 2 * PAGE_SIZE);  // used again: referenced
  const ReclaimReport r = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r.scanned, 4U);
  EXPECT_EQ(r.referenced, 2U);  // both touched pages are young
  EXPECT_EQ(r.dropped, 2U);
  // The next pass: the written page is dirty and kept for good; the read one goes.
  const ReclaimReport r2 = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r2.redirtied, 1U);
  EXPECT_EQ(r2.dropped, 1U);
  EXPECT_EQ(pfn_at(kBuf + PAGE_SIZE), frames[1]);
  EXPECT_FALSE(m.phys.desc(frames[1]).flags & PG_lazyfree);
  EXPECT_EQ(read8(*mm, kBuf + PAGE_SIZE), 0x5e);
  EXPECT_EQ(read8(*mm, kBuf + 2 * PAGE_SIZE), 0);
  EXPECT_EQ(reclaim_lazyfree(m.phys).scanned, 0U);
  EXPECT_EQ(problems({mm.get()}), "");
}

// A pin taken on a clean lazy-free page (gup_fast: no fault, not dirtied yet) keeps reclaim
// from dropping it, but only for that pass: the page is mapped back and stays lazy-free
// (mainline, since the fix to 6c8e2a256915: only a dirty page becomes swap-backed again).
// Once the pin is gone, with nothing written, the next pass drops it.
TEST_P(LazyFree, PinnedCleanPageStaysLazyFreeForTheNextReclaim) {
  auto pins = pin_user_pages_fast(*mm, kBuf + 3 * PAGE_SIZE, 1, FOLL_WRITE);
  ASSERT_TRUE(pins.has_value());
  ASSERT_EQ(*pins, std::vector<pfn_t>{frames[3]});
  const PageDesc& d = m.phys.desc(frames[3]);
  EXPECT_EQ(d.pincount, 1U);
  EXPECT_EQ(d.refcount, 2U);
  EXPECT_FALSE(d.flags & PG_dirty);

  const ReclaimReport r = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r.scanned, 4U);
  EXPECT_EQ(r.extra_refs, 1U);
  EXPECT_EQ(r.redirtied, 0U);
  EXPECT_EQ(r.dropped, 3U);
  EXPECT_EQ(r.dropped_frames, (std::vector<pfn_t>{frames[0], frames[1], frames[2]}));
  EXPECT_EQ(pfn_at(kBuf + 3 * PAGE_SIZE), frames[3]);  // mapped back
  EXPECT_EQ(d.flags & (PG_lazyfree | PG_dirty), PG_lazyfree);
  EXPECT_EQ(d.refcount, 2U);
  EXPECT_EQ(d.mapcount, 1);
  EXPECT_EQ(mm->rss[MM_ANONPAGES], 1);

  unpin_user_pages(m.phys, *pins);
  EXPECT_EQ(d.pincount, 0U);
  EXPECT_EQ(d.refcount, 1U);
  const ReclaimReport r2 = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r2.scanned, 1U);
  EXPECT_EQ(r2.extra_refs, 0U);
  EXPECT_EQ(r2.dropped, 1U);
  EXPECT_EQ(r2.dropped_frames, std::vector<pfn_t>{frames[3]});
  EXPECT_EQ(pfn_at(kBuf + 3 * PAGE_SIZE), 0U);
  EXPECT_EQ(mm->rss[MM_ANONPAGES], 0);
  EXPECT_EQ(read8(*mm, kBuf + 3 * PAGE_SIZE), 0);
  EXPECT_EQ(problems({mm.get()}), "");
}

// A direct-IO read into the lazy-free buffer: the buffer is pinned, reclaim runs before the
// device has written (the pin's reference keeps the page, still lazy-free), then the device
// writes and the pin is released dirty. The next pass sees a redirtied page and keeps it
// for good, so the data lands where the program will read it (the MADV_FREE vs direct-IO
// race the refcount check closes).
TEST_P(LazyFree, PinnedPageRedirtiedByTheDeviceIsKept) {
  auto pins = pin_user_pages_fast(*mm, kBuf + 3 * PAGE_SIZE, 1, FOLL_WRITE);
  ASSERT_TRUE(pins.has_value());
  const PageDesc& d = m.phys.desc(frames[3]);
  const ReclaimReport r = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r.extra_refs, 1U);
  EXPECT_EQ(r.dropped, 3U);
  EXPECT_TRUE(d.flags & PG_lazyfree);

  const char data[] = "block 7 from disk";
  std::memcpy(m.phys.frame(frames[3]), data, sizeof data);  // the device's DMA
  unpin_user_pages(m.phys, *pins, /*make_dirty=*/true);
  EXPECT_EQ(d.pincount, 0U);
  EXPECT_EQ(d.refcount, 1U);
  const ReclaimReport r2 = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r2.scanned, 1U);
  EXPECT_EQ(r2.redirtied, 1U);
  EXPECT_EQ(r2.dropped, 0U);
  EXPECT_EQ(pfn_at(kBuf + 3 * PAGE_SIZE), frames[3]);
  EXPECT_EQ(d.flags & (PG_lazyfree | PG_dirty), PG_dirty);  // swap-backed again
  EXPECT_EQ(reclaim_lazyfree(m.phys).scanned, 0U);
  char got[sizeof data] = {};
  ASSERT_TRUE(copy_from_user(*mm, got, kBuf + 3 * PAGE_SIZE, sizeof got).has_value());
  EXPECT_STREQ(got, data);
  EXPECT_EQ(problems({mm.get()}), "");
}

// Without the pin the same page would have been dropped and the device's write lost.
TEST_P(LazyFree, WithoutThePinTheDataWouldBeLost) {
  const ReclaimReport r = reclaim_lazyfree(m.phys);
  EXPECT_EQ(r.dropped, 4U);
  EXPECT_EQ(read8(*mm, kBuf + 3 * PAGE_SIZE), 0);
}

// A pinned page is also copied at fork (it cannot be shared), and pins count nowhere else.
TEST_P(LazyFree, PinCopiesThePageAtFork) {
  auto pins = pin_user_pages(*mm, kBuf, 1, FOLL_WRITE);
  ASSERT_TRUE(pins.has_value());
  ForkReport rep;
  auto c = dup_mm(*mm, ForkRecovery::TreeMax, &rep);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(rep.pages_copied, 1U);
  Mm& ch = **c;
  const pfn_t cp = ch.fmt().pfn(ch.pt().get(*ch.pt().lookup(kBuf)));
  EXPECT_NE(cp, frames[0]);
  EXPECT_EQ(read8(ch, kBuf), 0xa0);
  // The device writes into the pinned (parent's) page: the child does not see it.
  m.phys.frame(frames[0])[0] = 0x11;
  EXPECT_EQ(read8(*mm, kBuf), 0x11);
  EXPECT_EQ(read8(ch, kBuf), 0xa0);
  unpin_user_pages(m.phys, *pins);
  EXPECT_EQ(problems({mm.get(), &ch}), "");
}

TEST_P(LazyFree, PinErrors) {
  EXPECT_EQ(pin_user_pages(*mm, 0x1000, 1, 0).error(), Errno{EFAULT});  // no VMA
  ASSERT_TRUE(sys_mmap(*mm, 0x40000000, PAGE_SIZE, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  EXPECT_EQ(pin_user_pages(*mm, 0x40000000, 1, FOLL_WRITE).error(), Errno{EFAULT});
  // A range running off the end of the VMA pins what it can.
  auto part = pin_user_pages(*mm, kBuf + 3 * PAGE_SIZE, 3, 0);
  ASSERT_TRUE(part.has_value());
  EXPECT_EQ(part->size(), 1U);
  unpin_user_pages(m.phys, *part);
  // Out of memory in the fault behind the pin.
  ASSERT_TRUE(sys_mmap(*mm, 0x50000000, PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0));
  m.inject.fail_nth(AllocSite::Page, 1);
  EXPECT_EQ(pin_user_pages(*mm, 0x50000000, 1, FOLL_WRITE).error(), Errno{ENOMEM});
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, LazyFree, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_label);

}  // namespace
}  // namespace mmemu::test
