// Guard markers as mm/madvise.c installs and removes them (guard_install_* and
// guard_remove_* walk ops).
#include "vma/guard.hpp"

#include "vma/anon_vma.hpp"
#include "vma/unmap.hpp"
#include "vma/vm_flags.hpp"

namespace mmemu {

namespace {

// is_valid_guard_vma: no special mappings (mmemu has no hugetlb or VM_MIXEDMAP), and no
// locked ones unless the action is harmless to them (removal).
bool is_valid_guard_vma(const Vma& vma, bool allow_locked) {
  vm_flags_t disallowed = VM_SPECIAL;
  if (!allow_locked) disallowed |= VM_LOCKED;
  return !(vma.vm_flags & disallowed);
}

// The walk of guard_install_walk_ops (walk_page_range_mm with install_pte): tables are
// allocated where missing, a none entry gets a marker, a marker is counted, anything else
// stops the walk asking for a zap (1). ENOMEM stops it too; what was done stays.
Result<int> guard_install_walk(Mm& mm, vaddr_t start, vaddr_t end) {
  PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  const pte_t marker = fmt.mk_guard_marker();
  for (vaddr_t va = start; va < end; va += PAGE_SIZE) {
    auto ref = pt.alloc(va);
    if (!ref) return std::unexpected(ref.error());
    const pte_t e = pt.get(*ref);
    if (fmt.none(e)) {
      pt.set(*ref, marker);  // non-present before: nothing to flush
      continue;
    }
    if (!fmt.is_guard_marker(e)) return 1;
  }
  return 0;
}

}  // namespace

Result<void> madvise_guard_install(Vma& vma, vaddr_t start, vaddr_t end) {
  if (!is_valid_guard_vma(vma, /*allow_locked=*/false)) return fail(EINVAL);
  // The range is no longer empty as far as the page tables go: with an anon_vma, fork's
  // vma_needs_copy copies the tables, markers included.
  if (auto r = anon_vma_prepare(vma); !r) return r;
  Mm& mm = *vma.vm_mm;
  const AllocCaller caller(mm.phys().injector(), "madvise_guard_install", start);
  // Linux retries MAX_MADVISE_GUARD_RETRIES (3) times against racing faults, then restarts
  // the system call; nothing races here, so the second walk always finishes.
  for (int i = 0; i < 3; ++i) {
    auto r = guard_install_walk(mm, start, end);
    if (!r) return std::unexpected(r.error());
    if (*r == 0) return {};
    // Populated entries: zap them (markers stay) and walk again.
    zap_page_range_single(vma, start, end);
  }
  return fail(EAGAIN);
}

Result<void> madvise_guard_remove(Vma& vma, vaddr_t start, vaddr_t end) {
  if (!is_valid_guard_vma(vma, /*allow_locked=*/true)) return fail(EINVAL);
  PageTable& pt = vma.vm_mm->pt();
  const PteFormat& fmt = pt.fmt();
  // walk_page_range_vma without install_pte: only tables that exist are visited.
  pt.for_each_pte(start, end, [&](vaddr_t, PteRef ref, pte_t e) {
    if (fmt.is_guard_marker(e)) pt.set(ref, 0);  // pte_clear_not_present_full: no flush
  });
  return {};
}

std::uint64_t count_guard_markers(const Mm& mm, vaddr_t start, vaddr_t end) {
  std::uint64_t n = 0;
  const PteFormat& fmt = mm.fmt();
  mm.pt().for_each_pte(start, end, [&](vaddr_t, PteRef, pte_t e) {
    if (fmt.is_guard_marker(e)) ++n;
  });
  return n;
}

}  // namespace mmemu
