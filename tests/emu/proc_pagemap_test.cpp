// /proc/PID/pagemap, /proc/PID/mem and PROCMAP_QUERY on known page tables, both arches:
// the exact entries (flags and PFN, root and not) read through the file; a write through
// mem into a read-only private mapping shared with a forked child breaks COW (a new frame
// in the writer, read-only entry, the child's frame and bytes untouched); the same write
// with the page allocation failing answers EIO and leaves frames and entries as they were;
// PROCMAP_QUERY's struct filled from the VMA.
#include <fcntl.h>
#include <sys/mman.h>

#include <cstring>
#include <tuple>

#include "emu/fs/proc_pagemap.hpp"
#include "emu/kernel/cred.hpp"
#include "mmu/walker.hpp"
#include "sys_test_util.hpp"
#include "vma/access_remote.hpp"
#include "vma/file.hpp"
#include "vma/pagemap.hpp"

namespace mmemu::test {
namespace {

class ProcPagemapTest : public ::testing::TestWithParam<Arch> {
 protected:
  ProcPagemapTest() : k(SysTest::options(), unicorn_cpu_factory()) {
    auto r = k.spawn(sys_guest_path(GetParam(), "hello"), {"hello"}, {});
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    if (!r) return;
    p = *r;
    register_file_syscalls(table);
    register_mem_syscalls(table);
    register_misc_syscalls(table);
    auto m = sys_mmap(p->mm(), 0, kScratch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      nullptr, 0);
    EXPECT_TRUE(m.has_value());
    buf = *m;
    const std::string ones(kScratch, '\1');
    EXPECT_TRUE(copy_to_user(p->mm(), buf, ones.data(), ones.size()));
  }
  ~ProcPagemapTest() override {
    for (Process* q : k.processes())
      if (q->state != ProcState::Zombie) k.exit_process(*q, 0);
  }
  static constexpr std::uint64_t kScratch = 1 << 16;
  std::int64_t call(Sys s, std::array<std::uint64_t, 6> a) {
    SyscallContext ctx{k, *p, s, 0, a, 0};
    const SysResult r = table.find(s)(ctx);
    return r.is_return() ? r.value() : INT64_MIN;
  }
  std::int64_t open(const std::string& path, std::uint64_t flags = 0) {
    EXPECT_TRUE(copy_to_user(p->mm(), buf, path.c_str(), path.size() + 1));
    return call(Sys::openat, {static_cast<std::uint64_t>(-100), buf, flags, 0, 0, 0});
  }
  // One pagemap entry read through the open file (pread at vaddr / 4096 * 8).
  std::uint64_t entry(std::int64_t fd, vaddr_t va) {
    const std::int64_t n = call(
        Sys::pread64, {static_cast<std::uint64_t>(fd), buf + 1024, 8, va / PAGE_SIZE * 8, 0, 0});
    EXPECT_EQ(n, 8);
    std::uint64_t e = 0;
    EXPECT_TRUE(copy_from_user(p->mm(), &e, buf + 1024, 8));
    return e;
  }
  vaddr_t map(int prot, int flags, std::uint64_t len = 4 * PAGE_SIZE) {
    auto m = sys_mmap(p->mm(), 0, len, prot, flags, nullptr, 0);
    EXPECT_TRUE(m.has_value());
    return m.value_or(0);
  }
  pfn_t pfn_at(Mm& mm, vaddr_t va) {
    auto ref = mm.pt().lookup(va);
    EXPECT_TRUE(ref.has_value());
    return ref ? mm.fmt().pfn(mm.pt().get(*ref)) : 0;
  }

  Kernel k;
  Process* p = nullptr;
  SyscallTable table;
  vaddr_t buf = 0;
};

TEST_P(ProcPagemapTest, EntriesAreTheTablesAsRootAndAsAUser) {
  ASSERT_NE(p, nullptr);
  Mm& mm = p->mm();
  const vaddr_t a = map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_TRUE(fault_in(mm, a + PAGE_SIZE, Access::Read));       // the zero page
  ASSERT_TRUE(fault_in(mm, a + 2 * PAGE_SIZE, Access::Write));  // a new anonymous frame
  const vaddr_t s = map(PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_TRUE(fault_in(mm, s, Access::Write));  // shmem
  const pfn_t anon = pfn_at(mm, a + 2 * PAGE_SIZE), shm = pfn_at(mm, s);
  ASSERT_NE(anon, mm.phys().zero_pfn());
  EXPECT_EQ(pfn_at(mm, a + PAGE_SIZE), mm.phys().zero_pfn());

  const std::uint64_t saved = p->cred.cap_effective;
  p->cred.cap_effective |= cap_bit(CAP_SYS_ADMIN);  // the opener's view is root's
  const std::int64_t fd = open("/proc/self/pagemap");
  ASSERT_GE(fd, 0);
  EXPECT_EQ(entry(fd, a), 0u);
  EXPECT_EQ(entry(fd, a + PAGE_SIZE), PM_PRESENT | mm.phys().zero_pfn());
  EXPECT_EQ(entry(fd, a + 2 * PAGE_SIZE), PM_PRESENT | PM_MMAP_EXCLUSIVE | anon);
  EXPECT_EQ(entry(fd, s), PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE | shm);
  // A hole below every VMA, and past the user half: 0, and nothing at all.
  EXPECT_EQ(pagemap_entry(mm, 0x10000, true), 0u);
  EXPECT_TRUE(pagemap_entries(mm, mm.task_size / PAGE_SIZE, 4, true).empty());

  // Without CAP_SYS_ADMIN at open the PFN field is 0; the file keeps the opener's view.
  p->cred.cap_effective &= ~cap_bit(CAP_SYS_ADMIN);
  const std::int64_t ufd = open("/proc/self/pagemap");
  p->cred.cap_effective = saved;
  ASSERT_GE(ufd, 0);
  EXPECT_EQ(entry(ufd, a + 2 * PAGE_SIZE), PM_PRESENT | PM_MMAP_EXCLUSIVE);
  EXPECT_EQ(entry(ufd, s), PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE);

  // After fork the anonymous page is mapped twice: not exclusive in either.
  Process* child = nullptr;
  {
    auto c = k.fork_process(*p, CloneArgs{});
    ASSERT_TRUE(c.has_value());
    child = k.find(*c);
  }
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(mm.phys().desc(anon).mapcount, 2);
  EXPECT_EQ(entry(fd, a + 2 * PAGE_SIZE), PM_PRESENT | anon);
  EXPECT_EQ(pagemap_entry(child->mm(), a + 2 * PAGE_SIZE, true), PM_PRESENT | anon);
  // Misaligned offset or count.
  EXPECT_EQ(call(Sys::pread64, {static_cast<std::uint64_t>(fd), buf + 1024, 8, 4, 0, 0}), -EINVAL);
  EXPECT_EQ(call(Sys::pread64, {static_cast<std::uint64_t>(fd), buf + 1024, 4, 0, 0, 0}), -EINVAL);
}

TEST_P(ProcPagemapTest, MemWriteBreaksCowAndLeavesTheEntryReadOnly) {
  ASSERT_NE(p, nullptr);
  Mm& mm = p->mm();
  const vaddr_t a = map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const char orig[] = "original";
  ASSERT_TRUE(copy_to_user(mm, a, orig, sizeof orig));
  ASSERT_TRUE(do_mprotect(mm, a, 4 * PAGE_SIZE, PROT_READ));
  auto c = k.fork_process(*p, CloneArgs{});
  ASSERT_TRUE(c.has_value());
  Process* child = k.find(*c);
  const pfn_t shared = pfn_at(mm, a);
  ASSERT_EQ(pfn_at(child->mm(), a), shared);
  ASSERT_EQ(mm.phys().desc(shared).mapcount, 2);

  const std::int64_t fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  const std::uint64_t free_before = mm.phys().nr_free();
  ASSERT_TRUE(copy_to_user(mm, buf + 2048, "NEW", 3));
  EXPECT_EQ(call(Sys::pwrite64, {static_cast<std::uint64_t>(fd), buf + 2048, 3, a, 0, 0}), 3);
  const pfn_t copy = pfn_at(mm, a);
  EXPECT_NE(copy, shared);
  EXPECT_EQ(mm.phys().nr_free(), free_before - 1);  // exactly the copy
  const pte_t e = mm.pt().get(*mm.pt().lookup(a));
  EXPECT_FALSE(mm.fmt().write(e));  // maybe_mkwrite: the VMA is not writable
  EXPECT_TRUE(mm.fmt().dirty(e));
  EXPECT_EQ(mm.phys().desc(copy).mapcount, 1);
  EXPECT_TRUE(mm.phys().desc(copy).flags & PG_anon);
  EXPECT_EQ(mm.phys().desc(shared).mapcount, 1);
  EXPECT_EQ(pfn_at(child->mm(), a), shared);
  EXPECT_EQ(std::memcmp(mm.phys().frame(shared), orig, sizeof orig), 0);
  EXPECT_EQ(std::memcmp(mm.phys().frame(copy), "NEWginal", 8), 0);
  // A second forced write reuses the exclusive copy: no new frame.
  EXPECT_EQ(call(Sys::pwrite64, {static_cast<std::uint64_t>(fd), buf + 2048, 1, a + 5, 0, 0}), 1);
  EXPECT_EQ(pfn_at(mm, a), copy);
  EXPECT_EQ(mm.phys().nr_free(), free_before - 1);
  // The CPU still may not write there.
  EXPECT_FALSE(walk(mm.pt(), a, Access::Write, false).has_value());
}

TEST_P(ProcPagemapTest, MemWriteWhoseCopyCannotBeAllocatedIsEioAndChangesNothing) {
  ASSERT_NE(p, nullptr);
  Mm& mm = p->mm();
  const vaddr_t a = map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_TRUE(copy_to_user(mm, a, "x", 1));
  ASSERT_TRUE(do_mprotect(mm, a, 4 * PAGE_SIZE, PROT_READ));
  auto c = k.fork_process(*p, CloneArgs{});
  ASSERT_TRUE(c.has_value());
  Process* child = k.find(*c);
  const pfn_t shared = pfn_at(mm, a);
  const pte_t before = mm.pt().get(*mm.pt().lookup(a));
  const std::int64_t fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(copy_to_user(mm, buf + 2048, "N", 1));
  const std::uint64_t free_before = mm.phys().nr_free();
  mm.phys().injector().fail_nth(AllocSite::Page, 1, /*persistent=*/true);
  EXPECT_EQ(call(Sys::pwrite64, {static_cast<std::uint64_t>(fd), buf + 2048, 1, a, 0, 0}), -EIO);
  mm.phys().injector().disarm();
  EXPECT_EQ(mm.phys().nr_free(), free_before);
  EXPECT_EQ(mm.pt().get(*mm.pt().lookup(a)), before);
  EXPECT_EQ(mm.phys().desc(shared).mapcount, 2);
  EXPECT_EQ(pfn_at(child->mm(), a), shared);
  EXPECT_EQ(mm.phys().frame(shared)[0], 'x');
  // The same write succeeds once memory is back.
  EXPECT_EQ(call(Sys::pwrite64, {static_cast<std::uint64_t>(fd), buf + 2048, 1, a, 0, 0}), 1);
  EXPECT_NE(pfn_at(mm, a), shared);
}

TEST_P(ProcPagemapTest, MemReachesProtNoneAndRefusesReadOnlyShared) {
  ASSERT_NE(p, nullptr);
  Mm& mm = p->mm();
  const vaddr_t pn = map(PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  const vaddr_t ro_shared = map(PROT_READ, MAP_SHARED | MAP_ANONYMOUS);
  const std::int64_t fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  const auto f = static_cast<std::uint64_t>(fd);
  // A forced read maps the zero page with PROT_NONE; a forced write an exclusive frame.
  EXPECT_EQ(call(Sys::pread64, {f, buf + 2048, 4, pn, 0, 0}), 4);
  EXPECT_EQ(pagemap_entry(mm, pn, false), PM_PRESENT);
  EXPECT_EQ(call(Sys::pwrite64, {f, buf + 2048, 4, pn, 0, 0}), 4);
  EXPECT_EQ(pagemap_entry(mm, pn, false), PM_PRESENT | PM_MMAP_EXCLUSIVE);
  EXPECT_TRUE(mm.fmt().protnone(mm.pt().get(*mm.pt().lookup(pn))));
  EXPECT_EQ(call(Sys::pwrite64, {f, buf + 2048, 1, ro_shared, 0, 0}), -EIO);
  // Unmapped start: EIO; a range running into a hole: short.
  EXPECT_EQ(call(Sys::pread64, {f, buf + 2048, 4, 0x10000, 0, 0}), -EIO);
  ASSERT_TRUE(do_munmap(mm, pn + 2 * PAGE_SIZE, 2 * PAGE_SIZE));
  EXPECT_EQ(call(Sys::pread64, {f, buf + 2048, 8192, pn + PAGE_SIZE, 0, 0}), 4096);
  // Wild offsets never reach memory.
  char host[16];
  EXPECT_EQ(access_remote_vm(mm, ~0ULL - 2, host, sizeof host, false), 0u);
  EXPECT_EQ(call(Sys::pread64, {f, buf + 2048, 16, 0x7ffffffffffffff8ULL, 0, 0}), -EIO);
}

// struct procmap_query (include/uapi/linux/fs.h).
struct Query {
  std::uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
      vma_offset, inode;
  std::uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  std::uint64_t vma_name_addr, build_id_addr;
};
static_assert(sizeof(Query) == 104);

TEST_P(ProcPagemapTest, ProcmapQueryFillsTheStructFromTheVma) {
  ASSERT_NE(p, nullptr);
  Mm& mm = p->mm();
  const vaddr_t a = map(PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, 2 * PAGE_SIZE);
  const std::int64_t fd = open("/proc/self/maps");
  ASSERT_GE(fd, 0);
  const vaddr_t arg = buf + 4096, name = buf + 8192;
  const auto ask = [&](Query q) {
    EXPECT_TRUE(copy_to_user(mm, arg, &q, sizeof q));
    const std::int64_t r =
        call(Sys::ioctl, {static_cast<std::uint64_t>(fd), 0xc0686611, arg, 0, 0, 0});
    EXPECT_TRUE(copy_from_user(mm, &q, arg, sizeof q));
    return std::pair{r, q};
  };
  Query in{};
  in.size = sizeof in;
  in.query_addr = a + 5;
  in.vma_name_size = 256;
  in.vma_name_addr = name;
  auto [r, q] = ask(in);
  EXPECT_EQ(r, 0);
  EXPECT_EQ(q.vma_start, a);
  EXPECT_EQ(q.vma_end, a + 2 * PAGE_SIZE);
  EXPECT_EQ(q.vma_flags, PROCMAP_QUERY_VMA_READABLE | PROCMAP_QUERY_VMA_EXECUTABLE);
  EXPECT_EQ(q.vma_page_size, PAGE_SIZE);
  EXPECT_EQ(q.vma_offset, 0u);
  EXPECT_EQ(q.inode, 0u);
  EXPECT_EQ(q.dev_major, 0u);
  EXPECT_EQ(q.vma_name_size, 0u);  // an anonymous VMA has no name
  // The executable's first VMA, by file backing: its name, inode and device.
  in.query_addr = 0;
  in.query_flags = PROCMAP_QUERY_FILE_BACKED_VMA | PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
  std::tie(r, q) = ask(in);
  EXPECT_EQ(r, 0);
  const Vma* first = mm.find_vma(0);
  while (first && !first->vm_file)
    first = mm.vma_next(*first);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(q.vma_start, first->vm_start);
  EXPECT_EQ(q.vma_end, first->vm_end);
  EXPECT_EQ(q.inode, first->vm_file->ino());
  EXPECT_EQ(q.vma_offset, first->vm_pgoff << PAGE_SHIFT);
  const std::string fname = first->vm_file->name();
  EXPECT_EQ(q.vma_name_size, fname.size() + 1);
  std::string got(fname.size() + 1, '?');
  ASSERT_TRUE(copy_from_user(mm, got.data(), name, got.size()));
  EXPECT_EQ(got, fname + std::string(1, '\0'));
  EXPECT_EQ(q.build_id_size, 0u);
  // A name buffer one byte short: ENAMETOOLONG. Past the last VMA: ENOENT.
  in.vma_name_size = static_cast<std::uint32_t>(fname.size());
  EXPECT_EQ(ask(in).first, -ENAMETOOLONG);
  in.query_addr = mm.task_size;
  in.vma_name_size = 0;
  in.vma_name_addr = 0;
  EXPECT_EQ(ask(in).first, -ENOENT);
}

INSTANTIATE_TEST_SUITE_P(Arches, ProcPagemapTest, ::testing::Values(Arch::X86_64, Arch::Arm64),
                         arch_param_name);

}  // namespace
}  // namespace mmemu::test
