// mincore(2): which pages of a range are resident — a present PTE, or for a file mapping a
// page the page cache holds.
#include <algorithm>

#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/mm_syscalls.hpp"

namespace mmemu {

namespace {

// can_do_mincore: page-cache state is shown only for files the caller could write (and
// shmem); other file mappings read as all resident, closing the side channel.
bool can_do_mincore(const Vma& vma) {
  if (vma.is_anonymous()) return true;
  return vma.vm_file->shmem() || vma.vm_file->writable();
}

// One VMA's worth from addr, at most `pages` entries: the count written to vec, or ENOMEM.
Result<std::uint64_t> mincore_chunk(const Mm& mm, vaddr_t addr, std::uint64_t pages,
                                    std::uint8_t* vec) {
  const Vma* vma = mm.vma_lookup(addr);
  if (!vma) return fail(ENOMEM);
  const vaddr_t end = std::min(vma->vm_end, addr + (pages << PAGE_SHIFT));
  const std::uint64_t n = (end - addr) >> PAGE_SHIFT;
  if (!can_do_mincore(*vma)) {
    std::fill(vec, vec + n, 1);
    return n;
  }
  // Not mapped: resident only if the file's page cache has it (anonymous: never).
  for (std::uint64_t i = 0; i < n; ++i) {
    const vaddr_t a = addr + (i << PAGE_SHIFT);
    vec[i] = vma->vm_file && vma->vm_file->cached_page(vma->linear_page_index(a)) ? 1 : 0;
  }
  const PteFormat& fmt = mm.fmt();
  mm.pt().for_each_pte(addr, end, [&](vaddr_t va, PteRef, pte_t e) {
    if (fmt.present(e)) vec[(va - addr) >> PAGE_SHIFT] = 1;
  });
  return n;
}

// The checks of the system call before any VMA is looked at.
Result<std::uint64_t> mincore_pages(const Mm& mm, vaddr_t start, std::uint64_t len) {
  if (!page_aligned(start)) return fail(EINVAL);
  if (len > mm.task_size || start > mm.task_size - len) return fail(ENOMEM);  // access_ok
  return (len >> PAGE_SHIFT) + ((len & ~PAGE_MASK) != 0);
}

}  // namespace

Result<std::vector<std::uint8_t>> do_mincore(Mm& mm, vaddr_t start, std::uint64_t len) {
  auto pages = mincore_pages(mm, start, len);
  if (!pages) return std::unexpected(pages.error());
  // Grown chunk by chunk, so a huge range with a hole early costs nothing.
  std::vector<std::uint8_t> vec;
  std::vector<std::uint8_t> tmp(std::min<std::uint64_t>(*pages, PAGE_SIZE));
  while (vec.size() < *pages) {
    const std::uint64_t done = vec.size();
    auto n = mincore_chunk(mm, start + (done << PAGE_SHIFT),
                           std::min<std::uint64_t>(*pages - done, PAGE_SIZE), tmp.data());
    if (!n) return std::unexpected(n.error());
    vec.insert(vec.end(), tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  return vec;
}

Result<void> sys_mincore(Mm& mm, vaddr_t start, std::uint64_t len, vaddr_t vec) {
  auto pages = mincore_pages(mm, start, len);
  if (!pages) return std::unexpected(pages.error());
  if (*pages > mm.task_size || vec > mm.task_size - *pages) return fail(EFAULT);
  // The kernel fills one page of bytes at a time, copying each chunk out before the next.
  std::vector<std::uint8_t> tmp(std::min<std::uint64_t>(*pages, PAGE_SIZE));
  for (std::uint64_t left = *pages; left;) {
    auto n = mincore_chunk(mm, start, std::min<std::uint64_t>(left, PAGE_SIZE), tmp.data());
    if (!n) return std::unexpected(n.error());
    if (auto r = copy_to_user(mm, vec, tmp.data(), *n); !r) return fail(EFAULT);
    left -= *n;
    vec += *n;
    start += *n << PAGE_SHIFT;
  }
  return {};
}

}  // namespace mmemu
