// The memory calls at the system-call boundary: argument decoding and the checks made
// before the mm layer (mmap's offset before its descriptor, EBADF/ENODEV/EACCES for
// descriptors, high bits of unsigned long arguments), and their effect on guest memory.
// The mm semantics themselves are tested in tests/vma.
#include <fcntl.h>

#include "sys_test_util.hpp"
#include "vma/file.hpp"

namespace mmemu::test {
namespace {

class SysMemTest : public SysTest {
 protected:
  HostTree tree;
  static constexpr vaddr_t kBuf = SysTest::kScratch + 4096;
};

TEST_P(SysMemTest, AnonymousMappingRoundTrip) {
  const std::int64_t a =
      call(Sys::mmap, 0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_GT(a, 0);
  const auto va = static_cast<vaddr_t>(a);
  put<std::uint32_t>(va + 4096, 0xdeadbeef);
  EXPECT_EQ(get<std::uint32_t>(va + 4096), 0xdeadbeefU);
  EXPECT_EQ(call(Sys::mincore, va, 3 * 4096, kBuf), 0);
  EXPECT_EQ(bytes(kBuf, 3), std::string("\0\1\0", 3));
  EXPECT_EQ(call(Sys::mprotect, va, 4096, PROT_READ), 0);
  EXPECT_EQ(mm_().vma_lookup(va)->vm_flags & (VM_READ | VM_WRITE), VM_READ);
  EXPECT_EQ(call(Sys::madvise, va + 4096, 4096, MADV_DONTNEED), 0);
  EXPECT_EQ(get<std::uint32_t>(va + 4096), 0u);
  EXPECT_EQ(call(Sys::munmap, va, 3 * 4096), 0);
  EXPECT_EQ(mm_().vma_lookup(va), nullptr);
  EXPECT_EQ(call(Sys::mincore, va, 4096, kBuf), E(ENOMEM));
}

TEST_P(SysMemTest, MmapDescriptorChecksInLinuxOrder) {
  // The offset is checked first, then the descriptor, then the length.
  EXPECT_EQ(call(Sys::mmap, 0, 4096, PROT_READ, MAP_PRIVATE, 99, 1), E(EINVAL));
  EXPECT_EQ(call(Sys::mmap, 0, 4096, PROT_READ, MAP_PRIVATE, 99, 0), E(EBADF));
  EXPECT_EQ(call(Sys::mmap, 0, 0, PROT_READ, MAP_PRIVATE, 99, 0), E(EBADF));
  EXPECT_EQ(call(Sys::pipe2, kScratch, 0), 0);
  EXPECT_EQ(call(Sys::mmap, 0, 4096, PROT_READ, MAP_PRIVATE, 0, 0), E(ENODEV));
  EXPECT_EQ(call(Sys::mmap, 0, 0, PROT_READ, MAP_PRIVATE, 0, 0), E(EINVAL));
  const std::int64_t fd = open(tree.path("hello.txt"));
  // A read-only open cannot back a writable shared mapping.
  EXPECT_EQ(call(Sys::mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), E(EACCES));
  const std::int64_t s = call(Sys::mmap, 0, 4096, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_GT(s, 0);
  const Vma* v = mm_().vma_lookup(static_cast<vaddr_t>(s));
  EXPECT_EQ(v->vm_flags & (VM_SHARED | VM_MAYSHARE | VM_MAYWRITE), VM_MAYSHARE);
  EXPECT_EQ(bytes(static_cast<vaddr_t>(s), 5), "hello");
  // The mapping holds its own reference: closing the descriptor keeps it readable.
  const File* file = v->vm_file;
  const int refs = file->refcount();
  EXPECT_EQ(call(Sys::close, fd), 0);
  EXPECT_EQ(file->refcount(), refs - 1);
  EXPECT_EQ(bytes(static_cast<vaddr_t>(s) + 7, 5), "world");
  // O_PATH descriptors cannot be mapped.
  const std::int64_t op = open(tree.path("hello.txt"), 0x200000 /*O_PATH*/);
  ASSERT_GE(op, 0);
  EXPECT_EQ(call(Sys::mmap, 0, 4096, PROT_READ, MAP_PRIVATE, op, 0), E(EBADF));
}

TEST_P(SysMemTest, UnsignedLongArgumentsKeepTheirHighBits) {
  const std::int64_t a =
      call(Sys::mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_GT(a, 0);
  EXPECT_EQ(call(Sys::mprotect, a, 4096, (1ULL << 32) | PROT_READ), E(EINVAL));
  EXPECT_EQ(call(Sys::mremap, a, 4096, 8192, (1ULL << 32) | MREMAP_MAYMOVE, 0), E(EINVAL));
  // int arguments are truncated, as the C prototypes say.
  EXPECT_EQ(call(Sys::madvise, a, 4096, (1ULL << 32) | MADV_NORMAL), 0);
}

TEST_P(SysMemTest, Map32BitIsIgnoredOnArm64) {
  const std::int64_t a =
      call(Sys::mmap, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | 0x40, -1, 0);
  ASSERT_GT(a, 0);
  if (arch() == Arch::Arm64) {
    EXPECT_GT(static_cast<std::uint64_t>(a), 1ULL << 32);
  }
}

TEST_P(SysMemTest, BrkGrowsAndReportsTheBreak) {
  mm_().start_brk = mm_().brk = 0x40000000;
  EXPECT_EQ(call(Sys::brk, 0), 0x40000000);
  EXPECT_EQ(call(Sys::brk, 0x40003000), 0x40003000);
  put<std::uint8_t>(0x40002fff, 7);
  EXPECT_EQ(call(Sys::brk, 0x3fff0000), 0x40003000);  // below start_brk: refused, old break
  EXPECT_EQ(call(Sys::brk, 0x40001000), 0x40001000);
  EXPECT_EQ(mm_().vma_lookup(0x40001000), nullptr);
}

TEST_P(SysMemTest, MremapMovesContents) {
  const std::int64_t a =
      call(Sys::mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  put<std::uint64_t>(static_cast<vaddr_t>(a) + 4096, 0x1122334455667788ULL);
  const std::int64_t b = call(Sys::mremap, a, 8192, 1 << 20, MREMAP_MAYMOVE, 0);
  ASSERT_GT(b, 0);
  EXPECT_EQ(get<std::uint64_t>(static_cast<vaddr_t>(b) + 4096), 0x1122334455667788ULL);
  EXPECT_EQ(call(Sys::mremap, b, 4096, 8192, 0x10, 0), E(EINVAL));
}

TEST_P(SysMemTest, MlockFamilyAndMsync) {
  const std::int64_t a =
      call(Sys::mmap, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_GT(a, 0);
  EXPECT_EQ(call(Sys::mlock, a, 4096), 0);
  EXPECT_EQ(mm_().locked_vm, 1u);
  EXPECT_EQ(call(Sys::mlock2, a + 4096, 4096, 1 /*MLOCK_ONFAULT*/), 0);
  EXPECT_EQ(call(Sys::mlock2, a + 4096, 4096, 2), E(EINVAL));
  EXPECT_EQ(call(Sys::munlock, a, 8192), 0);
  EXPECT_EQ(mm_().locked_vm, 0u);
  EXPECT_EQ(call(Sys::mlockall, 0), E(EINVAL));
  EXPECT_EQ(call(Sys::mlockall, MCL_FUTURE), 0);
  EXPECT_NE(mm_().def_flags & VM_LOCKED, 0u);
  EXPECT_EQ(call(Sys::munlockall), 0);
  EXPECT_EQ(mm_().def_flags & VM_LOCKED, 0u);
  EXPECT_EQ(call(Sys::msync, a, 4096, MS_SYNC), 0);
  EXPECT_EQ(call(Sys::msync, a, 4096, MS_SYNC | MS_ASYNC), E(EINVAL));
  EXPECT_EQ(call(Sys::msync, a + 1, 4096, MS_SYNC), E(EINVAL));
  // Over RLIMIT_MEMLOCK without CAP_IPC_LOCK.
  p.rlimits[Rlim::Memlock] = {4096, 4096};
  EXPECT_EQ(call(Sys::mlock, a, 3 * 4096), E(ENOMEM));
}

INSTANTIATE_SYS_ARCHES(SysMemTest);

}  // namespace
}  // namespace mmemu::test
