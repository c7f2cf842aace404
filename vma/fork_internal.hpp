// Shared between fork.cpp (dup_mmap's copy loop) and fork_recovery.cpp (what dup_mmap does
// at loop_out when the copy failed). Not part of the public API.
#pragma once

#include "vma/fork.hpp"

namespace mmemu::fork_detail {

// The state dup_mmap reaches loop_out with.
struct LoopOut {
  Mm& mm;     // the child
  Mm& oldmm;  // the parent
  Vma* mpnt;  // first entry of the copied tree not replaced by a child VMA, or null
  ForkReport& rep;
};

// Runs the chosen recovery on the child's half-built tree (with the mmap locks still held):
// afterwards the child is left for exit_mmap, its MMF_* flags set as the recovery sets them.
void recover_xa_zero(LoopOut& lo);
void recover_tree_max(LoopOut& lo);
void recover_partial(LoopOut& lo);

}  // namespace mmemu::fork_detail
