// pin_user_pages / unpin_user_pages: FOLL_PIN references as a direct-IO request takes them.
// A pin raises the frame's pincount and its refcount, so reclaim sees an extra reference
// and fork copies a pinned anonymous page for the child instead of sharing it.
// (The population side of GUP, get_user_pages_range and __mm_populate, is in vma/gup.hpp.)
#pragma once

#include <span>
#include <vector>

#include "vma/gup.hpp"

namespace mmemu {

// Pins nr_pages pages from start (page aligned down), faulting them in as needed (write
// faults break COW when FOLL_WRITE is in gup_flags; FOLL_TOUCH is implied, as
// pin_user_pages sets it: a FOLL_WRITE pin marks each frame dirty). Returns the pinned
// frames. Like the kernel, a failure after some pages were pinned returns those; a failure
// at the first page returns EFAULT (no VMA, VM_IO/VM_PFNMAP, access not allowed, SIGSEGV or
// SIGBUS) or ENOMEM (the fault ran out of memory). The zero page is returned unpinned.
Result<std::vector<pfn_t>> pin_user_pages(Mm& mm, vaddr_t start, std::size_t nr_pages,
                                          unsigned gup_flags);

// pin_user_pages_fast: the lockless walk first (gup_fast: no fault, no FOLL_TOUCH, so a
// FOLL_WRITE pin does not dirty the frame yet), pin_user_pages for the pages it could not
// take. This is how a direct-IO read pins its buffer.
Result<std::vector<pfn_t>> pin_user_pages_fast(Mm& mm, vaddr_t start, std::size_t nr_pages,
                                               unsigned gup_flags);

// unpin_user_pages / unpin_user_pages_dirty_lock: drops the pins (and their references);
// make_dirty marks each frame dirty first, as after a device wrote into it.
void unpin_user_pages(PhysMem& phys, std::span<const pfn_t> pages, bool make_dirty = false);

}  // namespace mmemu
