// /proc/PID/maps and /proc/PID/smaps of an address space, byte for byte in the format of
// Linux 6.18's fs/proc/task_mmu.c: needs no CPU, only the VMAs, the page tables and the
// frame descriptors. The emulator's /proc files serve this text, and the VMA dumps of
// `mmemu run` and `mmemu script` print the same maps_line, so the two never disagree.
//
// What is modelled and how:
// - Names: the file's name (shared anonymous memory is the shmem file "/dev/zero (deleted)"
//   with its own inode), "[heap]" for a VMA overlapping [start_brk, brk) (strictly, as
//   vma_is_initial_heap since the December 2023 fix of its corner cases; 6.6 as released
//   also named a VMA that ends at start_brk or starts at brk), "[stack]" for the VMA
//   containing start_stack, otherwise none.
// - The x86_64 vsyscall page, a kernel-half range of the machine's init_mm, is the gate VMA:
//   a last "[vsyscall]" line with the flags of its mode ("--xp", VmFlags "ex" in Linux's
//   default vsyscall=xonly; "r-xp" in emulate; absent in none) and no Rss. Arch mappings
//   (arm64's sigreturn trampoline) are not shown, like [sigpage] on arm64.
// - smaps counts come from the leaf entries and the frames they map, as smaps_pte_entry and
//   smaps_account do: the zero page is not counted (vm_normal_page), refcount 1 or mapcount
//   below 2 is private, mapcount >= 2 divides Pss, dirty is the PTE's or PG_dirty, young
//   PTEs are Referenced, anonymous frames without PG_dirty in a clean PTE that were
//   MADV_FREE'd are LazyFree, Locked is Pss of VM_LOCKED VMAs.
// - mmemu models a kernel without THP, hugetlb, KSM or swap: those fields are 0 and
//   THPeligible is 0. ProtectionKey is printed for x86_64 guests (as on an x86-64 host
//   with protection keys, value 0) and not for arm64 (no POE).
#pragma once

#include <cstdint>
#include <string>

#include "vma/mm.hpp"

namespace mmemu {

// The name maps shows for a VMA (see above); empty when it has none.
std::string maps_name(const Mm& mm, const Vma& v);
// The device column of a maps line, "maj:min" in hex: "08:01", "00:00" for no file.
std::string maps_dev(std::uint64_t dev);
// One maps line without the newline: "start-end perms offset maj:min inode", then, for a
// named VMA, spaces up to column 73 and the name. An unnamed line ends with a blank after
// the inode number, as Linux's does.
std::string maps_line(const Mm& mm, const Vma& v);
// The whole /proc/PID/maps text: every VMA in address order, then the gate VMA.
std::string proc_maps(const Mm& mm);

// mem_size_stats of one VMA, in bytes; pss fields are bytes << kPssShift.
inline constexpr unsigned kPssShift = 12;
struct SmapsStats {
  std::uint64_t resident = 0;
  std::uint64_t shared_clean = 0, shared_dirty = 0;
  std::uint64_t private_clean = 0, private_dirty = 0;
  std::uint64_t referenced = 0;
  std::uint64_t anonymous = 0;
  std::uint64_t lazyfree = 0;
  std::uint64_t pss = 0, pss_dirty = 0, pss_anon = 0, pss_file = 0, pss_shmem = 0, pss_locked = 0;
  SmapsStats& operator+=(const SmapsStats& o);
};
// smap_gather_stats: walks the VMA's leaf entries.
SmapsStats smaps_gather(const Mm& mm, const Vma& v);
// The smaps record of one VMA (maps line, then the fields, then "VmFlags: ..."), with
// the trailing newline.
std::string smaps_entry(const Mm& mm, const Vma& v);
// The whole /proc/PID/smaps text, gate VMA included.
std::string proc_smaps(const Mm& mm);
// /proc/PID/smaps_rollup: the span of all VMAs and the summed counts.
std::string proc_smaps_rollup(const Mm& mm);
// The smaps "VmFlags:" mnemonics of flags, each followed by a blank ("rd mr mw me ").
std::string smaps_vm_flags(vm_flags_t flags);

}  // namespace mmemu
