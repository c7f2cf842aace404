// The concurrent walkers that can reach a dying mm between dup_mmap dropping its locks and
// exit_mmap taking them: swapoff's unuse_mm (every VMA), the OOM reaper (unmaps private
// memory) and an rmap walk that starts from a frame the parent shares with the child.
// Each comes in two variants: one that first tests the mm flag the kernel tests today
// (unuse_mm and rmap: MMF_UNSTABLE; the OOM reaper: MMF_OOM_SKIP), and one that does not,
// so a run can show the race: the unchecked walker meets the XA_ZERO marker.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "vma/fork.hpp"

namespace mmemu {

enum class WalkerKind : std::uint8_t { UnuseMm, OomReaper, Rmap };

// name() is "unuse_mm", "oom_reaper" or "rmap", with "-nocheck" for the unchecked variant.
std::unique_ptr<ConcurrentWalker> make_walker(WalkerKind kind, bool checks);
// Parses a name() back ("unuse_mm", "rmap-nocheck", ...).
std::optional<std::pair<WalkerKind, bool>> parse_walker(std::string_view name);

}  // namespace mmemu
