// Helpers shared by the memory-system-call tests (mprotect, mremap, brk, madvise, mlock,
// mincore): fixed mappings in a private test area, PTE and frame inspection, errno codes.
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "mm_test_util.hpp"
#include "vma/file.hpp"
#include "vma/vma.hpp"

namespace mmemu::test {

using Layout = std::vector<std::pair<vaddr_t, vaddr_t>>;

// The errno of a result, 0 on success.
template <class T>
int err_of(const Result<T>& r) {
  return r ? 0 : r.error().code;
}

class SyscallTest : public ::testing::TestWithParam<Arch> {
 protected:
  static constexpr vaddr_t kArea = 0x4000000000ULL;  // far from mmap_base and from each other

  void SetUp() override { f.mm->set_flusher(&flush); }

  vaddr_t pg(std::uint64_t n) const { return kArea + n * PAGE_SIZE; }

  // mmap(kArea + page * 4K, pages, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|extra).
  vaddr_t map_at(std::uint64_t page, std::uint64_t pages, int prot = PROT_READ | PROT_WRITE,
                 int extra = 0) {
    auto r = sys_mmap(*f.mm, pg(page), pages * PAGE_SIZE, prot,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra, nullptr, 0);
    EXPECT_TRUE(r) << errno_name(err_of(r));
    return r ? *r : 0;
  }
  vaddr_t map_shared_at(std::uint64_t page, std::uint64_t pages,
                        int prot = PROT_READ | PROT_WRITE) {
    auto r = sys_mmap(*f.mm, pg(page), pages * PAGE_SIZE, prot,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0);
    EXPECT_TRUE(r) << errno_name(err_of(r));
    return r ? *r : 0;
  }
  // A file of `pages` pages (byte i of page p is p + 1), mapped at `page`; the mapping holds
  // the only reference afterwards.
  vaddr_t map_file_at(std::uint64_t page, std::uint64_t pages, int prot, int type,
                      bool writable_file = false, std::uint64_t file_pages = 0) {
    if (!file_pages) file_pages = pages;
    std::vector<std::uint8_t> data(file_pages * PAGE_SIZE);
    for (std::uint64_t p = 0; p < file_pages; ++p)
      std::fill(data.begin() + static_cast<long>(p * PAGE_SIZE),
                data.begin() + static_cast<long>((p + 1) * PAGE_SIZE),
                static_cast<std::uint8_t>(p + 1));
    File* file = File::create(f.m, "/tmp/t", std::move(data), true, writable_file);
    auto r = sys_mmap(*f.mm, pg(page), pages * PAGE_SIZE, prot, type | MAP_FIXED, file, 0);
    file->put();
    EXPECT_TRUE(r) << errno_name(err_of(r));
    return r ? *r : 0;
  }
  void touch_all(vaddr_t a, std::uint64_t pages, Access acc = Access::Write) {
    for (std::uint64_t i = 0; i < pages; ++i)
      ASSERT_EQ(f.touch(a + i * PAGE_SIZE, acc), FaultResult::Ok);
  }
  // The leaf entry at va, if its tables exist and it is not none.
  std::optional<pte_t> pte(vaddr_t va) const {
    auto ref = f.mm->pt().lookup(va);
    if (!ref) return std::nullopt;
    const pte_t e = f.mm->pt().get(*ref);
    if (f.mm->fmt().none(e)) return std::nullopt;
    return e;
  }
  pfn_t pfn_at(vaddr_t va) const {
    auto e = pte(va);
    return e ? f.mm->fmt().pfn(*e) : 0;
  }
  const Vma* vma_at(vaddr_t va) const { return f.mm->vma_lookup(va); }
  vm_flags_t flags_at(vaddr_t va) const {
    const Vma* v = vma_at(va);
    return v ? v->vm_flags : 0;
  }
  // The layout restricted to [kArea, kArea + pages), relative page numbers.
  Layout area_layout(std::uint64_t pages = 1024) const {
    Layout out;
    for (const auto& [s, e] : f.layout())
      if (e > kArea && s < pg(pages))
        out.emplace_back((s - kArea) >> PAGE_SHIFT, (e - kArea) >> PAGE_SHIFT);
    return out;
  }
  PageDesc& desc(pfn_t pfn) { return f.m.phys.desc(pfn); }
  std::string ok() const { return f.problems(); }

  RecordingFlusher flush;  // declared first: the mm uses it until it is destroyed
  MmFixture f{GetParam()};
};

#define INSTANTIATE_ARCHES(suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(Arches, suite, ::testing::Values(Arch::X86_64, Arch::Arm64), \
                           arch_test_name)

}  // namespace mmemu::test
