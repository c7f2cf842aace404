// mincore and msync: errno for errno with Linux 6.18 (measured natively), resident bytes per
// page, and mincore's partial output to guest memory before a hole.
#include "syscall_test_util.hpp"

namespace mmemu::test {
namespace {

class MincoreTest : public SyscallTest {
 protected:
  using Bytes = std::vector<std::uint8_t>;
  Bytes user_bytes(vaddr_t a, std::size_t n) {
    Bytes out(n);
    EXPECT_TRUE(copy_from_user(*f.mm, out.data(), a, n));
    return out;
  }
};

constexpr std::uint64_t P = PAGE_SIZE;

TEST_P(MincoreTest, ResidentBytes) {
  const vaddr_t a = map_at(8, 4);
  f.write8(a, 1);
  ASSERT_EQ(f.touch(a + 2 * P, Access::Read), FaultResult::Ok);  // the zero page counts
  EXPECT_EQ(*do_mincore(*f.mm, a, 4 * P), (Bytes{1, 0, 1, 0}));
  EXPECT_EQ(*do_mincore(*f.mm, a, 5), (Bytes{1}));  // a partial page is a page
  ASSERT_TRUE(do_mprotect(*f.mm, a, P, PROT_NONE));
  EXPECT_EQ(*do_mincore(*f.mm, a, P), (Bytes{1}));  // PROT_NONE keeps the frame
  // A writable file shows its page cache; a read-only one reads as all resident.
  const vaddr_t w = map_file_at(20, 2, PROT_READ, MAP_PRIVATE, true);
  EXPECT_EQ(*do_mincore(*f.mm, w, 2 * P), (Bytes{0, 0}));
  ASSERT_TRUE(vma_at(w)->vm_file->find_or_read_page(1));
  EXPECT_EQ(*do_mincore(*f.mm, w, 2 * P), (Bytes{0, 1}));
  const vaddr_t r = map_file_at(30, 2, PROT_READ, MAP_PRIVATE);
  EXPECT_EQ(*do_mincore(*f.mm, r, 2 * P), (Bytes{1, 1}));
  // Shared anonymous memory stays resident in shmem after DONTNEED.
  const vaddr_t s = map_shared_at(40, 2);
  f.write8(s, 1);
  ASSERT_TRUE(do_madvise(*f.mm, s, 2 * P, MADV_DONTNEED));
  EXPECT_EQ(*do_mincore(*f.mm, s, 2 * P), (Bytes{1, 0}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MincoreTest, ErrnoLikeLinux) {
  const vaddr_t a = map_at(8, 4);
  const vaddr_t vec = map_at(100, 1);
  Mm& mm = *f.mm;
  EXPECT_EQ(err_of(sys_mincore(mm, a + 1, P, vec)), EINVAL);
  EXPECT_EQ(err_of(sys_mincore(mm, pg(0), 0, vec)), 0);
  EXPECT_EQ(err_of(sys_mincore(mm, pg(0), P, vec)), ENOMEM);
  EXPECT_EQ(err_of(sys_mincore(mm, a, P, 0)), EFAULT);      // NULL: fails at the copy
  EXPECT_EQ(err_of(sys_mincore(mm, pg(0), P, 0)), ENOMEM);  // ...after the hole is found
  EXPECT_EQ(err_of(sys_mincore(mm, a, P, 1ULL << 50)), EFAULT);
  EXPECT_EQ(err_of(sys_mincore(mm, f.mm->task_size - P, 2 * P, vec)), ENOMEM);
  EXPECT_EQ(err_of(sys_mincore(mm, a, -P, vec)), ENOMEM);
  EXPECT_EQ(err_of(do_mincore(mm, a + 1, P)), EINVAL);
  EXPECT_EQ(err_of(do_mincore(mm, a + 2 * P, 4 * P)), ENOMEM);
  EXPECT_EQ(err_of(do_mincore(mm, a, f.mm->task_size - a)), ENOMEM);  // no giant buffer first
  EXPECT_EQ(ok(), "");
}

TEST_P(MincoreTest, PartialOutputBeforeAHole) {
  const vaddr_t a = map_at(8, 4);
  f.write8(a, 1);
  f.write8(a + 2 * P, 1);
  const vaddr_t vec = map_at(100, 1);
  for (int i = 0; i < 4; ++i)
    f.write8(vec + i, 0xee);
  // The chunk of the first VMA is copied out before the hole is met.
  EXPECT_EQ(err_of(sys_mincore(*f.mm, a + 2 * P, 4 * P, vec)), ENOMEM);
  EXPECT_EQ(user_bytes(vec, 4), (Bytes{1, 0, 0xee, 0xee}));
  EXPECT_EQ(err_of(sys_mincore(*f.mm, a, 4 * P, vec)), 0);
  EXPECT_EQ(user_bytes(vec, 4), (Bytes{1, 0, 1, 0}));
  EXPECT_EQ(ok(), "");
}

TEST_P(MincoreTest, MsyncErrnoLikeLinux) {
  const vaddr_t a = map_at(8, 4);
  Mm& mm = *f.mm;
  auto ms = [&](vaddr_t s, std::uint64_t len, int flags) {
    return err_of(do_msync(mm, s, len, flags));
  };
  EXPECT_EQ(ms(a, P, 8), EINVAL);
  EXPECT_EQ(ms(a, P, MS_ASYNC | MS_SYNC), EINVAL);
  EXPECT_EQ(ms(a + 1, P, MS_SYNC), EINVAL);
  EXPECT_EQ(ms(a, P, 0), 0);
  EXPECT_EQ(ms(pg(0), P, MS_ASYNC), ENOMEM);
  EXPECT_EQ(ms(pg(0), P, MS_SYNC), ENOMEM);
  EXPECT_EQ(ms(pg(0), P, 0), ENOMEM);
  EXPECT_EQ(ms(a, ~0ULL, MS_SYNC), 0);  // rounds to nothing
  EXPECT_EQ(ms(a, -P, MS_SYNC), ENOMEM);
  EXPECT_EQ(ms(a - P, 2 * P, MS_SYNC), ENOMEM);
  EXPECT_EQ(ms(a - P, 2 * P, MS_ASYNC), ENOMEM);
  EXPECT_EQ(ms(a - P, 2 * P, MS_ASYNC | MS_INVALIDATE), ENOMEM);
  EXPECT_EQ(ms(a, 8 * P, MS_ASYNC), ENOMEM);
  EXPECT_EQ(ms(pg(0), 0, MS_SYNC), 0);
  EXPECT_EQ(ms(f.mm->task_size - P, 2 * P, MS_SYNC), ENOMEM);
  ASSERT_TRUE(do_mlock(mm, a + P, P, 0));
  EXPECT_EQ(ms(a, 4 * P, MS_INVALIDATE), EBUSY);
  EXPECT_EQ(ms(a, 4 * P, MS_SYNC), 0);
  const vaddr_t s = map_shared_at(20, 2);
  EXPECT_EQ(ms(s, 2 * P, MS_SYNC | MS_INVALIDATE), 0);
  EXPECT_EQ(ok(), "");
}

INSTANTIATE_ARCHES(MincoreTest);

}  // namespace
}  // namespace mmemu::test
