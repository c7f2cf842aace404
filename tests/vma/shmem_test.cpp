// Shmem files (memfd): read/write through the page cache, holes, truncation that unmaps
// from every mapping (SIGBUS past the end, private COW copies included), pinned pages that
// outlive their truncation, seals, and the `page` site failing under write().
#include <sys/mman.h>

#include "syscall_test_util.hpp"
#include "vma/gup_pin.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/shmem.hpp"

namespace mmemu::test {
namespace {

constexpr std::uint64_t P = PAGE_SIZE;

class ShmemTest : public SyscallTest {
 protected:
  void SetUp() override {
    SyscallTest::SetUp();
    file = File::create_shmem_file(f.m, "/memfd:t (deleted)", 0);
  }
  void TearDown() override {
    if (file) file->put();
  }
  std::size_t write_at(std::uint64_t off, std::string_view s) {
    auto r =
        shmem_file_write(*file, off, {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
    EXPECT_TRUE(r) << errno_name(err_of(r));
    return r ? *r : 0;
  }
  std::string read_at(std::uint64_t off, std::size_t n) {
    std::string s(n, '?');
    s.resize(shmem_file_read(*file, off, {reinterpret_cast<std::uint8_t*>(s.data()), n}));
    return s;
  }
  vaddr_t map(std::uint64_t page, std::uint64_t pages, int prot, int type,
              bool fmode_write = true) {
    auto r = sys_mmap(*f.mm, pg(page), pages * P, prot, type | MAP_FIXED, file, 0, fmode_write);
    EXPECT_TRUE(r) << errno_name(err_of(r));
    return r ? *r : 0;
  }
  int map_err(int prot, int type, bool fmode_write = true) {
    return err_of(sys_mmap(*f.mm, pg(100), P, prot, type | MAP_FIXED, file, 0, fmode_write));
  }
  File* file = nullptr;
};

TEST_P(ShmemTest, WritesAndReadsGoThroughThePageCache) {
  EXPECT_EQ(write_at(0, "hello"), 5U);
  EXPECT_EQ(file->size(), 5U);
  EXPECT_EQ(write_at(3 * P + 10, "tail"), 4U);
  EXPECT_EQ(file->size(), 3 * P + 14);
  EXPECT_EQ(file->page_cache().size(), 2U);  // pages 0 and 3: 1 and 2 are holes
  EXPECT_EQ(read_at(1, 4), "ello");
  EXPECT_EQ(read_at(P, 3), std::string(3, '\0'));  // a hole reads zeros...
  EXPECT_EQ(file->page_cache().size(), 2U);        // ...without allocating
  EXPECT_EQ(read_at(3 * P + 10, 100), "tail");     // short at the end
  EXPECT_EQ(read_at(3 * P + 14, 1), "");
  EXPECT_TRUE(f.m.phys.desc(file->cached_page(0)).flags & PG_dirty);
  // A write across a page boundary lands in both pages.
  EXPECT_EQ(write_at(P - 2, "abcd"), 4U);
  EXPECT_EQ(read_at(P - 2, 4), "abcd");
  EXPECT_EQ(file->page_cache().size(), 3U);
  EXPECT_EQ(*shmem_seek_data_hole(*file, 0, true), 0U);
  EXPECT_EQ(*shmem_seek_data_hole(*file, 0, false), 2 * P);
  EXPECT_EQ(*shmem_seek_data_hole(*file, 2 * P + 5, true), 3 * P);
  EXPECT_EQ(*shmem_seek_data_hole(*file, 3 * P, false), 3 * P + 14);
  EXPECT_EQ(err_of(shmem_seek_data_hole(*file, 3 * P + 14, true)), ENXIO);
  EXPECT_EQ(err_of(shmem_file_write(*file, kMaxLfsFileSize, {})), 0);
  const std::uint8_t x = 1;
  EXPECT_EQ(err_of(shmem_file_write(*file, kMaxLfsFileSize, {&x, 1})), EFBIG);
}

TEST_P(ShmemTest, MappingsShareThePagesWithWrite) {
  ASSERT_EQ(write_at(0, "abc"), 3U);
  ASSERT_TRUE(shmem_setattr_size(*file, 2 * P));
  const vaddr_t s = map(0, 2, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vaddr_t p = map(4, 2, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  EXPECT_EQ(f.read8(s), 'a');
  f.write8(s + P, 'S');  // a shared store allocates page 1 in the cache
  EXPECT_EQ(read_at(P, 1), "S");
  EXPECT_EQ(pfn_at(s + P), file->cached_page(1));
  EXPECT_EQ(f.read8(p + P), 'S');  // the private mapping reads the cache page
  EXPECT_EQ(pfn_at(p + P), file->cached_page(1));
  f.write8(p, 'P');  // and copies on write
  EXPECT_NE(pfn_at(p), file->cached_page(0));
  EXPECT_EQ(read_at(0, 1), "a");
  write_at(0, "W");
  EXPECT_EQ(f.read8(s), 'W');
  EXPECT_EQ(f.read8(p), 'P');
  EXPECT_EQ(ok(), "");
}

TEST_P(ShmemTest, TruncationUnmapsThePastFromEveryMappingAndFreesIt) {
  ASSERT_TRUE(shmem_setattr_size(*file, 4 * P));
  const vaddr_t s = map(0, 4, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vaddr_t p = map(8, 4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  touch_all(s, 4);
  f.write8(s + 200, 'T');
  ASSERT_EQ(f.touch(p + 3 * P, Access::Write), FaultResult::Ok);  // a private copy
  ASSERT_EQ(f.touch(p + 2 * P, Access::Read), FaultResult::Ok);   // the cache page
  const pfn_t cow = pfn_at(p + 3 * P), page2 = file->cached_page(2);
  ASSERT_NE(cow, 0U);
  ASSERT_NE(cow, file->cached_page(3));
  ASSERT_TRUE(shmem_setattr_size(*file, 100));
  EXPECT_EQ(file->size(), 100U);
  EXPECT_EQ(file->page_cache().size(), 1U);
  for (std::uint64_t i = 1; i < 4; ++i) {
    EXPECT_FALSE(pte(s + i * P)) << i;
    EXPECT_FALSE(pte(p + i * P)) << i;  // even the private copy (even_cows)
  }
  EXPECT_TRUE(f.m.phys.is_free(cow));
  EXPECT_TRUE(f.m.phys.is_free(page2));
  EXPECT_TRUE(pte(s));  // page 0 stays mapped, its tail past byte 100 zeroed
  EXPECT_EQ(f.read8(s + 200), 0);
  EXPECT_EQ(f.touch(s + P, Access::Read), FaultResult::SigBus);
  EXPECT_EQ(f.touch(p + 3 * P, Access::Write), FaultResult::SigBus);
  // Growing again gives zero pages, not the old contents.
  ASSERT_TRUE(shmem_setattr_size(*file, 4 * P));
  EXPECT_EQ(f.read8(s + 3 * P), 0);
  EXPECT_EQ(ok(), "");
}

TEST_P(ShmemTest, APinnedPageOutlivesItsTruncation) {
  ASSERT_TRUE(shmem_setattr_size(*file, 2 * P));
  const vaddr_t s = map(0, 2, PROT_READ | PROT_WRITE, MAP_SHARED);
  f.write8(s + P, 7);
  auto pins = pin_user_pages(*f.mm, s + P, 1, FOLL_WRITE);
  ASSERT_TRUE(pins);
  ASSERT_EQ(pins->size(), 1U);
  const pfn_t pinned = (*pins)[0];
  ASSERT_TRUE(shmem_setattr_size(*file, P));
  EXPECT_EQ(file->cached_page(1), 0U);     // out of the cache...
  EXPECT_FALSE(f.m.phys.is_free(pinned));  // ...but alive for the pin holder
  EXPECT_EQ(f.m.phys.frame(pinned)[0], 7);
  EXPECT_EQ(f.m.phys.desc(pinned).mapping, nullptr);
  unpin_user_pages(f.m.phys, *pins);
  EXPECT_TRUE(f.m.phys.is_free(pinned));
  EXPECT_EQ(ok(), "");
}

TEST_P(ShmemTest, SealsForbidWhatTheyName) {
  ASSERT_EQ(write_at(0, "x"), 1U);
  const vaddr_t s = map(0, 1, PROT_READ, MAP_SHARED);  // read-only, but may become writable
  EXPECT_EQ(err_of(memfd_add_seals(*file, kSealWrite)), EBUSY);
  ASSERT_TRUE(do_munmap(*f.mm, s, P));
  // Opened read-only: the mapping can never become writable, so it does not count.
  const vaddr_t r = map(0, 1, PROT_READ, MAP_SHARED, /*fmode_write=*/false);
  EXPECT_FALSE(flags_at(r) & VM_MAYWRITE);
  EXPECT_FALSE(flags_at(r) & VM_SHARED);
  EXPECT_EQ(map_err(PROT_READ | PROT_WRITE, MAP_SHARED, false), EACCES);
  EXPECT_TRUE(memfd_add_seals(*file, kSealWrite));
  EXPECT_EQ(err_of(shmem_file_write(*file, 0, {reinterpret_cast<const std::uint8_t*>("y"), 1})),
            EPERM);
  EXPECT_EQ(map_err(PROT_READ | PROT_WRITE, MAP_SHARED), EPERM);
  const vaddr_t ro = map(2, 1, PROT_READ, MAP_SHARED);
  EXPECT_EQ(flags_at(ro) & (VM_SHARED | VM_MAYWRITE), VM_SHARED);
  EXPECT_EQ(err_of(do_mprotect(*f.mm, ro, P, PROT_READ | PROT_WRITE)), EACCES);
  EXPECT_EQ(map_err(PROT_READ | PROT_WRITE, MAP_PRIVATE), 0);  // private copies are fine
  EXPECT_TRUE(memfd_add_seals(*file, kSealShrink | kSealGrow));
  EXPECT_EQ(err_of(shmem_setattr_size(*file, 0)), EPERM);
  EXPECT_EQ(err_of(shmem_setattr_size(*file, 2)), EPERM);
  EXPECT_TRUE(shmem_setattr_size(*file, 1));
  EXPECT_EQ(err_of(memfd_add_seals(*file, 0x40)), EINVAL);
  EXPECT_TRUE(memfd_add_seals(*file, kSealSeal));
  EXPECT_EQ(err_of(memfd_add_seals(*file, kSealExec)), EPERM);
  EXPECT_EQ(file->seals(), kSealWrite | kSealShrink | kSealGrow | kSealSeal);
  EXPECT_EQ(ok(), "");
}

TEST_P(ShmemTest, AGrowSealRefusesTheChunkThatWouldGrow) {
  ASSERT_EQ(write_at(0, std::string(P + 10, 'a')), P + 10);
  ASSERT_TRUE(memfd_add_seals(*file, kSealGrow));
  // Page 0's chunk lands, page 1's would grow the file: a short write.
  EXPECT_EQ(write_at(P - 5, std::string(20, 'b')), 5U);
  EXPECT_EQ(file->size(), P + 10);
  EXPECT_EQ(
      err_of(shmem_file_write(*file, P + 5, {reinterpret_cast<const std::uint8_t*>("cccccc"), 6})),
      EPERM);
  EXPECT_EQ(read_at(P - 6, 7), "abbbbba");
}

TEST_P(ShmemTest, AFailedPageAllocationEndsTheWriteWithNothingLeaked) {
  const std::int64_t before = f.m.live.live(AllocSite::Page);
  f.m.inject.fail_nth(AllocSite::Page, 1);
  EXPECT_EQ(err_of(shmem_file_write(*file, 0, {reinterpret_cast<const std::uint8_t*>("abc"), 3})),
            ENOMEM);
  EXPECT_EQ(file->size(), 0U);
  EXPECT_TRUE(file->page_cache().empty());
  f.m.inject.disarm();
  f.m.inject.fail_nth(AllocSite::Page, 2);
  const std::string big(3 * P, 'z');
  EXPECT_EQ(write_at(0, big), P);  // the first page landed, the second failed
  EXPECT_EQ(file->size(), P);
  EXPECT_EQ(file->page_cache().size(), 1U);
  file->put();
  file = nullptr;
  EXPECT_EQ(f.m.live.live(AllocSite::Page), before);
  EXPECT_EQ(ok(), "");
}

// do_fault_around: a read fault maps the cached pages of its 16-page block (clamped to the
// VMA and the end of the file) that have no PTE yet; a write fault maps only its own page.
TEST_P(ShmemTest, AReadFaultMapsTheCachedPagesAroundIt) {
  ASSERT_TRUE(shmem_setattr_size(*file, 20 * P + 1));
  for (std::uint64_t i : {0, 2, 3, 15, 16, 20})
    ASSERT_EQ(write_at(i * P, "x"), 1U);
  // Mapped at a 16-page-aligned address: the block of a fault in pages 0..15 is those pages.
  const vaddr_t m = map(16, 24, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_EQ(f.touch(m + 2 * P, Access::Read), FaultResult::Ok);
  for (std::uint64_t i = 0; i < 24; ++i) {
    const bool want = i == 0 || i == 2 || i == 3 || i == 15;  // cached, inside the block
    EXPECT_EQ(pte(m + i * P).has_value(), want) << "page " << i;
  }
  const pte_t around = *pte(m + 3 * P);
  EXPECT_EQ(f.mm->fmt().young(around), GetParam() == Arch::X86_64);  // arm64: old prefault
  EXPECT_FALSE(f.mm->fmt().dirty(around));
  EXPECT_EQ(desc(file->cached_page(3)).mapcount, 1);
  EXPECT_EQ(f.mm->rss[MM_SHMEMPAGES], 4);
  // The next block: page 16 and 20 are cached, 21+ are past the end of the file.
  ASSERT_EQ(f.touch(m + 17 * P, Access::Write), FaultResult::Ok);  // a write maps one page
  EXPECT_FALSE(pte(m + 20 * P));
  ASSERT_EQ(f.touch(m + 19 * P, Access::Read), FaultResult::Ok);
  EXPECT_TRUE(pte(m + 16 * P));
  EXPECT_TRUE(pte(m + 20 * P));
  EXPECT_FALSE(pte(m + 18 * P));  // a hole: shmem reads nothing ahead
  EXPECT_EQ(ok(), "");
}

// A regular file's page-cache miss reads around (32 pages centred on the fault), so the
// next read fault nearby maps its whole block; MADV_RANDOM reads only the page.
TEST_P(ShmemTest, AFileMissReadsAroundAndTheNextFaultMapsTheBlock) {
  const vaddr_t m = map_file_at(0, 40, PROT_READ, MAP_PRIVATE);
  File* data = vma_at(m)->vm_file;
  ASSERT_EQ(f.touch(m + 20 * P, Access::Read), FaultResult::Ok);
  EXPECT_EQ(data->page_cache().size(), 32U);  // pages 4..35
  EXPECT_EQ(data->cached_page(3), 0U);
  EXPECT_NE(data->cached_page(35), 0U);
  EXPECT_TRUE(pte(m + 20 * P));
  EXPECT_FALSE(pte(m + 21 * P));  // the cache was cold when fault-around ran
  ASSERT_EQ(f.touch(m + 22 * P, Access::Read), FaultResult::Ok);
  for (std::uint64_t i = 16; i < 32; ++i)
    EXPECT_TRUE(pte(m + i * P)) << i;
  EXPECT_EQ(f.read8(m + 31 * P), 32);  // byte of file page 31 is 31 + 1
  const vaddr_t r = map_file_at(64, 40, PROT_READ, MAP_PRIVATE);
  ASSERT_TRUE(do_madvise(*f.mm, r, 40 * P, MADV_RANDOM));
  ASSERT_EQ(f.touch(r + 20 * P, Access::Read), FaultResult::Ok);
  EXPECT_EQ(vma_at(r)->vm_file->page_cache().size(), 1U);
  EXPECT_EQ(ok(), "");
}

// Mappings of one shmem file merge when their offsets continue, as other file mappings do.
TEST_P(ShmemTest, MappingsOfAShmemFileMergeLikeAnyFile) {
  ASSERT_TRUE(shmem_setattr_size(*file, 16 * P));
  auto at = [&](std::uint64_t page, std::uint64_t pages, std::uint64_t off) {
    return sys_mmap(*f.mm, pg(page), pages * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, off * P);
  };
  ASSERT_TRUE(at(4, 4, 4));
  ASSERT_TRUE(at(0, 4, 0));  // offsets 0..3 then 4..7: one VMA
  EXPECT_EQ(area_layout(), (Layout{{0, 8}}));
  ASSERT_TRUE(at(8, 2, 9));  // a gap in the offsets: separate
  EXPECT_EQ(area_layout(), (Layout{{0, 8}, {8, 10}}));
  EXPECT_EQ(file->i_mmap.size(), 2U);
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(ShmemTest);

}  // namespace
}  // namespace mmemu::test
