// get_user_pages without the pages: faulting a user range in the way the kernel's GUP does
// for population (mlock, MAP_POPULATE, mremap of locked memory, MADV_POPULATE_*). Each page
// is walked first and faulted only when the walk fails, so present pages are left as they are.
#pragma once

#include <cstdint>

#include "vma/mm.hpp"

namespace mmemu {

// The FOLL_* flags that matter here.
enum FollFlag : unsigned {
  FOLL_WRITE = 1U << 0,          // fault for writing (breaks COW)
  FOLL_TOUCH = 1U << 1,          // a write through a clean entry marks the frame dirty
  FOLL_FORCE = 1U << 2,          // populate: tolerate a mapping that is not readable for reads
  FOLL_MADV_POPULATE = 1U << 3,  // MADV_POPULATE_*: ENOMEM for holes, EINVAL for bad VMAs
};

// __get_user_pages over nr_pages pages from start (page aligned). Returns the number of pages
// done; when none could be done, the error: EFAULT (no VMA, a VMA the flags forbid, or a
// fault that would raise SIGSEGV/SIGBUS) or ENOMEM (allocation failure). With
// FOLL_MADV_POPULATE a missing VMA is ENOMEM and a forbidden one EINVAL.
Result<std::uint64_t> get_user_pages_range(Mm& mm, vaddr_t start, std::uint64_t nr_pages,
                                           unsigned foll);

// populate_vma_page_range: faults [start, end) of vma in as mlock wants it: write faults for
// private writable mappings (breaking COW), read faults otherwise; VM_LOCKONFAULT VMAs are
// left alone. Returns pages done, or the error of the first page.
Result<std::uint64_t> populate_vma_page_range(Vma& vma, vaddr_t start, vaddr_t end);

// __mm_populate: populate_vma_page_range over every VMA meeting [start, start + len), skipping
// VM_IO/VM_PFNMAP ones. With ignore_errors a failing VMA is left and the next one tried
// (mm_populate); without, the first error is returned (mlock).
Result<void> __mm_populate(Mm& mm, vaddr_t start, std::uint64_t len, bool ignore_errors);

}  // namespace mmemu
