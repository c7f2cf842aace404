// Dump renderers for one address space (and the machine it lives on), each as text for
// people and as JSON with stable keys for programs. Shared by `mmemu script` and
// `mmemu run`. Addresses, raw entries and frame numbers are hex strings in JSON ("0x1f000")
// so 64-bit values survive every JSON reader; counts are numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "mmu/machine.hpp"
#include "vma/mm.hpp"

namespace mmemu::dump {

using json = nlohmann::json;

std::string hex(std::uint64_t v);  // "0x1f000"

// VMAs: the maps line of each (maps_line of vma/proc_maps.hpp, what /proc/PID/maps shows),
// then its vm_flags (smaps VmFlags mnemonics) and anon_vma.
std::string vmas_text(const Mm& mm);
json vmas_json(const Mm& mm);

// The maple tree: MapleTree::dump() with each VMA pointer shown as "@<vm_start>" (so dumps
// are the same from run to run), and the same nodes as JSON.
std::string tree_text(const Mm& mm);
json tree_json(const Mm& mm);

// Page tables depth first: each table with its level, frame and the VA span it covers;
// each used entry with index, raw value, decoded bits and target; runs of similar leaf
// entries (consecutive frames, same bits) collapsed into one line; tables that serve only
// arch mappings (no VMA in their span) marked arch-only. The JSON's leaf runs also carry
// the first frame's refcount and, for frames mapped more than once, "rmap": every
// {frame, mm, vma, va} an rmap walk finds (for the HTML view's shared frames).
std::string pgtables_text(const Mm& mm);
json pgtables_json(const Mm& mm);

// Counters of one address space: map_count, total_vm and the other page counts, RSS by
// type, tables per level, mm flags.
std::string mm_counters_text(const Mm& mm);
json mm_counters_json(const Mm& mm);
// Machine-wide counters: live objects per allocation site (and peak), injector attempts and
// failures per site, physical frames free.
std::string machine_counters_text(const Machine& m);
json machine_counters_json(const Machine& m);

// Live objects grouped by site and by the context they were allocated in (the injector's
// context label, e.g. "line 12: fork a b"); frames and tables list their frame numbers.
// `held`: frames to leave out (page cache of files the caller keeps open, which is not a
// leak); `max_groups`: contexts listed per site before "... more".
std::string live_objects_text(const Machine& m, const std::set<pfn_t>& held = {},
                              std::size_t max_groups = 1000);
json live_objects_json(const Machine& m, const std::set<pfn_t>& held = {});

}  // namespace mmemu::dump
