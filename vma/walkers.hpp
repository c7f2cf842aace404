// The concurrent walkers that can reach a dying mm, either between dup_mmap dropping its
// locks and its mmput (the lock-drop point) or inside that mm's exit_mmap, between
// mmap_read_unlock and mmap_write_lock (the exit-unlock point). Each takes on the mm what
// its kernel counterpart takes:
//  - swapoff's unuse_mm: mmget_not_zero (try_to_unuse), then every VMA of the mm's tree;
//    with mm_users at 0 it never gets there. Checking variant: MMF_UNSTABLE.
//  - the OOM reaper: mmgrab (mark_oom_victim; it works on mm_count alone, so it can meet
//    an mm whose exit_mmap runs), then every private or anonymous VMA of the tree, unmapping
//    its pages (__oom_reap_task_mm), and MMF_OOM_SKIP when done. Checking: MMF_OOM_SKIP.
//  - an rmap walk from a frame: no mm reference (the anon_vma or i_mmap lock keeps the VMAs
//    linked); folio->mapping leads to the anon_vma, whose chains link every VMA that may map
//    the frame in any mm (or to the file's i_mmap), and in each VMA it computes the address
//    and looks up the PTE. It never walks a tree. Checking: a VMA whose mm is MMF_UNSTABLE
//    is not looked into.
// The unchecked variants show the races: a tree walker meets the XA_ZERO marker; rmap looks
// into a half-built or half-torn-down child.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "vma/fork.hpp"

namespace mmemu {

enum class WalkerKind : std::uint8_t { UnuseMm, OomReaper, Rmap };

// name() is "unuse_mm", "oom_reaper" or "rmap", with "-nocheck" for the unchecked variant.
// The rmap walker starts from the first frame the parent maps (in address order) that the
// dying mm maps too, or else the first whose anon_vma or i_mmap links a VMA of that mm.
std::unique_ptr<ConcurrentWalker> make_walker(WalkerKind kind, bool checks);
// An rmap walker that starts from the given frame (a folio of the caller's choosing).
std::unique_ptr<ConcurrentWalker> make_rmap_walker(bool checks, pfn_t start);
// Parses a name() back ("unuse_mm", "rmap-nocheck", ...).
std::optional<std::pair<WalkerKind, bool>> parse_walker(std::string_view name);

}  // namespace mmemu
