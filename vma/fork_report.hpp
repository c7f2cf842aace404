// Text for what a fork did: the MMF_* flags, a walker's outcome at the lock-drop point,
// the dying child's exit_mmap and a failed fork's recovery, worded the same wherever
// mmemu prints them (script output, `mmemu run` fork dumps, page-table dumps).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vma/fork.hpp"

namespace mmemu {

// "unstable oom-skip", or "-" when none is set.
std::string mmf_flag_names(std::uint32_t flags);
// "walker unuse_mm-nocheck: met-xa-zero at 0x...: XA_ZERO_ENTRY [...] (27 VMAs seen;
// mm_users 1, mm_count 1, took mmget_not_zero)"; "in exit_mmap's unlock window" follows
// the name of a walker that ran there.
std::string walker_report_text(const WalkerReport& w);
// One VMA an rmap walk visited: "rmap visit: mm 2 (dying child, flags unstable) VMA
// 0x...-0x... at 0x...: PTE maps frame 0x...".
std::string rmap_visit_text(const RmapVisit& v);
// "27 VMAs removed (map_count 27), stopped at XA_ZERO, 82 pages unmapped, 9 tables freed".
std::string exit_mmap_report_text(const ExitMmapReport& r);
// A failed fork: "vm_area_dup failed at VMA 0x..., 24 VMAs copied" ("fatal_signal pending
// at VMA 0x..., 3 VMAs copied" when a fatal signal stopped it).
std::string fork_failure_headline(const ForkReport& r);
// The lines under it: the recovery, the child at the lock drop (flags, mm_users, mm_count),
// each walker with its rmap visits indented under it (those named in `hide` left out),
// the child's exit_mmap and any WARNING.
std::vector<std::string> fork_failure_details(const ForkReport& r,
                                              const std::vector<std::string>& hide = {});

}  // namespace mmemu
