// SysV shared memory: attachments are shared mappings of the segment's shmem file, so
// shm_nattch is the number of VMAs mapping it; a failed attach leaves no trace; a removed
// segment goes (with its pages) once nothing maps it, however the last mapping went.
#include <sys/ipc.h>
#include <sys/shm.h>

#include "emu/fs/sysv_shm.hpp"
#include "sys_test_util.hpp"
#include "vma/file.hpp"

namespace mmemu::test {
namespace {

class SysShmTest : public SysTest {
 protected:
  SysShmTest() { fill(kScratch, kScratchSize, 0); }
  std::uint64_t nattch(int id) { return k.sysv_shm().find_id(id)->nattch(); }
};

TEST_P(SysShmTest, AttachIsASharedMappingOfTheSegment) {
  const auto id = static_cast<int>(call(Sys::shmget, IPC_PRIVATE, 2 * PAGE_SIZE, 0600));
  ASSERT_GE(id, 0);
  const std::int64_t a = call(Sys::shmat, id, 0, 0);
  ASSERT_GT(a, 0);
  const Vma* v = mm_().vma_lookup(static_cast<vaddr_t>(a));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->vm_end - v->vm_start, 2 * PAGE_SIZE);
  EXPECT_EQ(v->vm_flags & (VM_SHARED | VM_WRITE), VM_SHARED | VM_WRITE);
  EXPECT_EQ(v->vm_file->name(), "/SYSV00000000 (deleted)");
  EXPECT_EQ(v->vm_file->ino(), static_cast<std::uint64_t>(id));
  EXPECT_EQ(nattch(id), 1U);
  put<std::uint32_t>(static_cast<vaddr_t>(a), 0xabcd);
  EXPECT_NE(v->vm_file->cached_page(0), 0U);
  EXPECT_EQ(call(Sys::shmdt, a), 0);
  EXPECT_EQ(nattch(id), 0U);
  EXPECT_EQ(call(Sys::shmdt, a), E(EINVAL));
}

TEST_P(SysShmTest, AFailedAttachLeavesNothing) {
  const auto id = static_cast<int>(call(Sys::shmget, IPC_PRIVATE, PAGE_SIZE, 0600));
  const std::size_t map_count = static_cast<std::size_t>(mm_().map_count);
  for (AllocSite site : {AllocSite::Vma, AllocSite::MapleNode}) {
    k.machine().inject.fail_nth(site, 1);
    EXPECT_EQ(call(Sys::shmat, id, 0, 0), E(ENOMEM)) << site_name(site);
    k.machine().inject.disarm();
    EXPECT_EQ(nattch(id), 0U);
    EXPECT_EQ(static_cast<std::size_t>(mm_().map_count), map_count);
  }
  EXPECT_GT(call(Sys::shmat, id, 0, 0), 0);
}

TEST_P(SysShmTest, ARemovedSegmentGoesWithItsLastMapping) {
  const std::int64_t live = k.machine().live.live(AllocSite::Page);
  const auto id = static_cast<int>(call(Sys::shmget, 0x1234, PAGE_SIZE, IPC_CREAT | 0600));
  const std::int64_t a = call(Sys::shmat, id, 0, 0);
  put<std::uint8_t>(static_cast<vaddr_t>(a), 1);  // one page in the segment's cache
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live + 1);
  EXPECT_EQ(call(Sys::shmctl, id, IPC_RMID, 0), 0);
  EXPECT_EQ(call(Sys::shmget, 0x1234, PAGE_SIZE, 0600), E(ENOENT));
  ASSERT_NE(k.sysv_shm().find_id(id), nullptr);                       // still attached
  ASSERT_TRUE(do_munmap(mm_(), static_cast<vaddr_t>(a), PAGE_SIZE));  // not shmdt
  EXPECT_EQ(call(Sys::shmctl, id, IPC_STAT, kScratch), E(EINVAL));
  EXPECT_EQ(k.sysv_shm().find_id(id), nullptr);
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live);
}

TEST_P(SysShmTest, SegmentsNobodyRemovedGoAtTheEndOfTheRun) {
  const std::int64_t live = k.machine().live.live(AllocSite::Page);
  const auto id = static_cast<int>(call(Sys::shmget, IPC_PRIVATE, PAGE_SIZE, 0600));
  const std::int64_t a = call(Sys::shmat, id, 0, 0);
  put<std::uint8_t>(static_cast<vaddr_t>(a), 1);
  ASSERT_EQ(call(Sys::shmdt, a), 0);
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live + 1);  // kept: not removed
  k.sysv_shm().clear();
  EXPECT_EQ(k.machine().live.live(AllocSite::Page), live);
}

INSTANTIATE_SYS_ARCHES(SysShmTest);

}  // namespace
}  // namespace mmemu::test
