// fork's address-space half: dup_mm (mm_init + dup_mmap) with the three fork-failure
// recoveries compared on linux-mm, and the "concurrent walkers" that run at the lock-drop
// point between dup_mmap giving up and exit_mmap taking the dying mm.
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

// What a walker saw of the dying mm at the lock-drop point.
struct WalkerReport {
  std::string walker;  // name(): "unuse_mm", "oom_reaper", "rmap" (+ "-nocheck")
  // "met-xa-zero": walked into the marker (the kernel would dereference it as a VMA);
  // "skipped-unstable" / "skipped-oom-skip": the flag check made it leave the mm alone;
  // "empty-tree": no entry at all; "walked": every entry was a VMA of this mm;
  // "unreachable": (rmap) no frame of the parent is mapped in this mm any more.
  std::string outcome;
  vaddr_t addr = 0;                // where it met the marker (outcome met-xa-zero)
  std::string entry;               // what it found there, e.g. "XA_ZERO_ENTRY [0x..., 0x...]"
  int vmas_seen = 0;               // VMAs it visited before stopping
  bool checks = false;             // the variant that tests the mm's flag first
  std::uint64_t pages_reaped = 0;  // oom_reaper: pages it unmapped
};

// A walker that can reach a dying mm (swapoff's unuse_mm, the OOM reaper, an rmap walk).
// Implementations: vma/walkers.hpp.
class ConcurrentWalker {
 public:
  virtual ~ConcurrentWalker() = default;
  virtual std::string name() const = 0;
  // Runs against `mm` (the child being torn down) with `parent` for rmap starting points.
  virtual WalkerReport walk(Mm& mm, Mm& parent) = 0;
};

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
  // What copy_page_range did (also on success).
  std::uint64_t ptes_copied = 0;       // leaf entries written into the child
  std::uint64_t pages_copied = 0;      // pinned anon pages copied eagerly (page site)
  std::uint64_t ptes_wrprotected = 0;  // parent entries made read-only for COW
  std::vector<WalkerReport> walkers;
  ExitMmapReport exit;  // the failed child's exit_mmap
  bool exited = false;  // exit is filled (every failure after mm_init)
};

// fatal_signal_pending(current) for the forking task. dup_mmap asks it before each VMA it
// copies (VM_DONTCOPY ones are skipped first, as in the kernel); true stops the copy there.
// vma/ knows no tasks: the caller answers (the emu kernel from the task's pending signals).
using FatalSignalPending = std::function<bool()>;
// The answer when the caller gives none: the injector's fatal_signal site alone decides.
bool injected_fatal_signal(Mm& parent);

// dup_mm: a new mm for a child of `parent` with copy-on-write copies of its VMAs and
// tables. On failure the chosen recovery runs, then the walkers at the lock-drop point,
// then the child's exit_mmap (its on_exit_mmap hook, copied from the parent, fires); the
// parent keeps its VMAs, frames and counts (its COW entries stay write-protected, as the
// kernel leaves them); returns ENOMEM, or EINTR when a fatal signal stopped the copy. The
// parent's TLB is flushed once (flush_tlb_mm).
Result<std::unique_ptr<Mm>> dup_mm(Mm& parent, ForkRecovery recovery, ForkReport* report = nullptr,
                                   const std::vector<ConcurrentWalker*>& walkers = {},
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
