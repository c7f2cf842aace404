// fork's address-space half: dup_mm (mm_init + dup_mmap) with the three fork-failure
// recoveries compared on linux-mm, and the "concurrent walkers" that run at the lock-drop
// point between dup_mmap giving up and exit_mmap taking the dying mm, or inside that
// exit_mmap's own unlock/relock window.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vma/mm.hpp"

namespace mmemu {

enum class ForkRecovery : std::uint8_t {
  XaZero,   // the old kernel: an XA_ZERO marker over the failure point
  TreeMax,  // the RFC: max = 0 / failed VMA's vm_start / ULONG_MAX, unmap_region + tear_down_vmas
  Partial,  // review's alternative: erase the entries not yet copied, keep the copied ones
};
std::string_view recovery_name(ForkRecovery r);  // "xa-zero", "tree-max", "partial"
std::optional<ForkRecovery> parse_recovery(std::string_view s);

// One VMA an rmap walk visited: rmap_walk_anon goes over the chains of the frame's anon_vma
// (every VMA linked to it, in any mm), rmap_walk_file over the file's i_mmap; in each it
// computes the frame's address (vma_address) and looks the PTE up in that VMA's mm.
struct RmapVisit {
  std::uint64_t mm = 0;        // the VMA's mm (Mm::id)
  bool child = false;          // a VMA of the dying child
  std::uint32_t mm_flags = 0;  // that mm's MMF_* when the walk came
  bool tree_empty = false;     // that mm's tree holds nothing any more, yet the VMA is linked
  vaddr_t vm_start = 0, vm_end = 0;
  vaddr_t addr = 0;        // where the frame would be mapped in this VMA
  bool looked = false;     // the PTE was looked up (the checking variant skips unstable mms)
  bool has_table = false;  // a PTE table covers addr
  bool present = false;    // the PTE is present
  pfn_t pfn = 0;           // the frame it maps (present)
};

// What a walker saw of the dying mm at one of the two points it can run at:
// "lock-drop" (dup_mmap gave up and unlocked, mmput has not run) or "exit-unlock" (inside
// the child's exit_mmap, between mmap_read_unlock after unmap_vmas and mmap_write_lock
// before free_pgtables; mm_users is 0 there).
struct WalkerReport {
  std::string walker;  // name(): "unuse_mm", "oom_reaper", "rmap" (+ "-nocheck")
  // unuse_mm and oom_reaper walk the mm's tree:
  //   "met-xa-zero": walked into the marker (the kernel would dereference it as a VMA);
  //   "empty-tree": no entry at all; "walked": every entry was a VMA of this mm;
  //   "skipped-unstable" (unuse_mm) / "skipped-oom-skip" (oom_reaper): the flag check made
  //   it leave the mm alone; "no-mm-users" (unuse_mm): mmget_not_zero failed, the users
  //   are gone (exit_mmap has started), so swapoff never reaches the mm.
  // rmap never touches the tree (it cannot meet the marker):
  //   "met-child-vma": it visited VMAs of the dying child still linked to the frame's
  //   anon_vma or i_mmap and looked up their PTEs (visits says what it found);
  //   "skipped-unstable": (checking) it reached such VMAs but their mm is MMF_UNSTABLE, so
  //   it did not look inside; "unreachable": no frame of the parent leads to a child VMA.
  std::string outcome;
  vaddr_t addr = 0;                 // where it met the marker (outcome met-xa-zero)
  vaddr_t addr_last = 0;            // the marker's last address (outcome met-xa-zero)
  std::string entry;                // what it found there, e.g. "XA_ZERO_ENTRY [0x..., 0x...]"
  int vmas_seen = 0;                // VMAs it visited before stopping
  bool checks = false;              // the variant that tests the mm's flag first
  std::uint64_t pages_reaped = 0;   // oom_reaper: pages it unmapped
  std::string point = "lock-drop";  // "lock-drop" or "exit-unlock"
  // The mm's counts when the walker came, and the reference it took for the walk:
  // "mmget_not_zero" (unuse_mm), "mmgrab" (the OOM reaper, from mark_oom_victim) or
  // "none" (rmap: the anon_vma / i_mmap lock keeps the VMAs, not the mm).
  int mm_users = 0, mm_count = 0;
  std::string ref;
  pfn_t via_pfn = 0;              // rmap: the frame it started from
  std::string via;                // rmap: "anon_vma #N" or "i_mmap of FILE"
  std::vector<RmapVisit> visits;  // rmap: every VMA visited, in walk order
};

// A walker that can reach a dying mm (swapoff's unuse_mm, the OOM reaper, an rmap walk).
// Implementations: vma/walkers.hpp.
class ConcurrentWalker {
 public:
  virtual ~ConcurrentWalker() = default;
  virtual std::string name() const = 0;
  // Runs against `mm` (the child being torn down) with `parent` for rmap starting points.
  // Takes and drops whatever reference its kernel counterpart takes on mm.
  virtual WalkerReport walk(Mm& mm, Mm& parent) = 0;
};

// Where configured walkers run in a failed fork: at the lock-drop point, in the dying
// child's exit_mmap unlock window, or at both. Names: "lock-drop", "exit-unlock", "both".
enum class WalkerPoint : std::uint8_t { LockDrop, ExitUnlock, Both };
std::string_view walker_point_name(WalkerPoint p);
std::optional<WalkerPoint> parse_walker_point(std::string_view s);
inline bool at_lock_drop(WalkerPoint p) {
  return p != WalkerPoint::ExitUnlock;
}
inline bool at_exit_unlock(WalkerPoint p) {
  return p != WalkerPoint::LockDrop;
}

// Everything dup_mm did, for traces, dumps and tests.
struct ForkReport {
  bool ok = true;
  ForkRecovery recovery = ForkRecovery::TreeMax;
  // The step whose allocation failed: "mm_init" (the child's pgd; no dup_mmap, no exit),
  // "mt_dup", "vma_iter_clear" (erasing a VM_DONTCOPY VMA from the copied tree),
  // "vm_enough_memory" (overcommit refused an accounted VMA), "vm_area_dup", "anon_vma_fork",
  // "copy_page_range", "arch_dup_mmap"; or "fatal_signal" (no allocation: the forking task
  // had SIGKILL pending before failed_vma was copied; dup_mm returns EINTR). Empty when ok.
  std::string failed_step;
  vaddr_t failed_vma = 0;          // vm_start of the VMA being copied when it failed
  int vmas_copied = 0;             // child VMAs written to the new tree (its map_count) by then
  bool has_failure_point = false;  // mpnt != NULL at loop_out (the kernel's "mpnt")
  vaddr_t failure_point = 0;       // mpnt->vm_start: first entry not replaced by a child VMA
  vaddr_t tree_max = 0;            // tree-max: the max the recovery used
  bool xa_zero_stored = false;     // xa-zero (or partial's fallback): the marker's range
  vaddr_t xa_zero_first = 0, xa_zero_last = 0;
  int torn_down = 0;                // tree-max: VMAs tear_down_vmas removed
  std::string recovery_note;        // what the recovery did, in a sentence (partial: its erase)
  std::vector<std::string> errors;  // reported inconsistencies (the kernel's WARN_ONs)
  std::uint32_t child_flags = 0;    // the child's MMF_* at the lock-drop point
  int child_mm_users = 0;           // its mm_users there (1: dup_mm's own, until its mmput)
  int child_mm_count = 0;           // its mm_count there
  // What copy_page_range did (also on success).
  std::uint64_t ptes_copied = 0;       // leaf entries written into the child
  std::uint64_t pages_copied = 0;      // pinned anon pages copied eagerly (page site)
  std::uint64_t ptes_wrprotected = 0;  // parent entries made read-only for COW
  std::vector<WalkerReport> walkers;   // lock-drop ones first, then exit-unlock ones
  ExitMmapReport exit;                 // the failed child's exit_mmap
  bool exited = false;                 // exit is filled (every failure after mm_init)
};

// fatal_signal_pending(current) for the forking task. dup_mmap asks it before each VMA it
// copies (VM_DONTCOPY ones are skipped first, as in the kernel); true stops the copy there.
// vma/ knows no tasks: the caller answers (the emu kernel from the task's pending signals).
using FatalSignalPending = std::function<bool()>;
// The answer when the caller gives none: the injector's fatal_signal site alone decides.
bool injected_fatal_signal(Mm& parent);

// dup_mm: a new mm (mm_users 1, mm_count 1) for a child of `parent` with copy-on-write
// copies of its VMAs and tables. On failure the chosen recovery runs, then `walkers` at the
// lock-drop point, then dup_mm's mmput: mm_users drops to 0 and the child's exit_mmap runs
// (its on_exit_mmap hook, copied from the parent, fires), with `exit_walkers` in its
// unlock window; then the struct goes (mm_count 0). The parent keeps its VMAs, frames and
// counts (its COW entries stay write-protected, as the kernel leaves them); returns ENOMEM,
// or EINTR when a fatal signal stopped the copy. The parent's TLB is flushed once
// (flush_tlb_mm).
Result<std::unique_ptr<Mm>> dup_mm(Mm& parent, ForkRecovery recovery, ForkReport* report = nullptr,
                                   const std::vector<ConcurrentWalker*>& walkers = {},
                                   const std::vector<ConcurrentWalker*>& exit_walkers = {},
                                   const FatalSignalPending& fatal_signal_pending = {});

// The pieces of dup_mmap, exposed for tests and dumps.
// copy_page_range: copies src's entries into dst's tables (same range, dst in the child)
// when the kernel would (vma_needs_copy: an anon_vma or VM_PFNMAP); private writable
// entries are write-protected on both sides; pinned anon pages are copied for the child.
// Child tables come from the pgtable site, pinned-page copies from the page site.
Result<void> copy_page_range(Vma& dst, Vma& src, ForkReport* stats = nullptr);
// arch_dup_mmap: maps the parent's arch mappings (outside VMAs) into the child, sharing
// their frames. ENOMEM from a table allocation leaves nothing of it mapped.
Result<void> arch_dup_mmap(Mm& oldmm, Mm& mm);

}  // namespace mmemu
