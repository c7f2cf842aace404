// VMA flags with the kernel's values, the mmap/mprotect constants of the Linux ABI, and the
// conversions between them (calc_vm_prot_bits, calc_vm_flag_bits, vm_get_page_prot).
#pragma once

#include <linux/mman.h>
#include <sys/mman.h>
#include <cstdint>

#include <string>

#include "mmu/pte_format.hpp"

namespace mmemu {

using vm_flags_t = std::uint64_t;

inline constexpr vm_flags_t VM_NONE = 0;
inline constexpr vm_flags_t VM_READ = 0x1;
inline constexpr vm_flags_t VM_WRITE = 0x2;
inline constexpr vm_flags_t VM_EXEC = 0x4;
inline constexpr vm_flags_t VM_SHARED = 0x8;
inline constexpr vm_flags_t VM_MAYREAD = 0x10;
inline constexpr vm_flags_t VM_MAYWRITE = 0x20;
inline constexpr vm_flags_t VM_MAYEXEC = 0x40;
inline constexpr vm_flags_t VM_MAYSHARE = 0x80;
inline constexpr vm_flags_t VM_GROWSDOWN = 0x100;
inline constexpr vm_flags_t VM_PFNMAP = 0x400;
inline constexpr vm_flags_t VM_LOCKED = 0x2000;
inline constexpr vm_flags_t VM_IO = 0x4000;
inline constexpr vm_flags_t VM_SEQ_READ = 0x8000;
inline constexpr vm_flags_t VM_RAND_READ = 0x10000;
inline constexpr vm_flags_t VM_DONTCOPY = 0x20000;
inline constexpr vm_flags_t VM_DONTEXPAND = 0x40000;
inline constexpr vm_flags_t VM_LOCKONFAULT = 0x80000;
inline constexpr vm_flags_t VM_ACCOUNT = 0x100000;
inline constexpr vm_flags_t VM_NORESERVE = 0x200000;
inline constexpr vm_flags_t VM_WIPEONFORK = 0x2000000;
inline constexpr vm_flags_t VM_DONTDUMP = 0x4000000;
inline constexpr vm_flags_t VM_SOFTDIRTY = 0x8000000;
inline constexpr vm_flags_t VM_HUGEPAGE = 0x20000000;    // MADV_HUGEPAGE
inline constexpr vm_flags_t VM_NOHUGEPAGE = 0x40000000;  // MADV_NOHUGEPAGE
inline constexpr vm_flags_t VM_MERGEABLE = 0x80000000;   // MADV_MERGEABLE (KSM)
// x86-64 protection key of the VMA (VM_PKEY_BIT0..3 = VM_HIGH_ARCH_0..3).
inline constexpr unsigned VM_PKEY_SHIFT = 32;
inline constexpr vm_flags_t VM_PKEY_MASK = 0xfULL << VM_PKEY_SHIFT;
// MAP_DROPPABLE (6.11+): reclaim may drop the pages even when dirty.
inline constexpr vm_flags_t VM_DROPPABLE = 1ULL << 40;
// mseal(2) (6.10+): the VMA may no longer be unmapped, moved, resized or reprotected.
inline constexpr vm_flags_t VM_SEALED = 1ULL << 42;

inline constexpr vm_flags_t VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
inline constexpr vm_flags_t VM_STACK = VM_GROWSDOWN;
inline constexpr vm_flags_t VM_STACK_FLAGS =
    VM_STACK | VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT;
inline constexpr vm_flags_t VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT;
inline constexpr vm_flags_t VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP;

// The user ABI constants (PROT_*, MAP_*, MADV_*, MREMAP_*, MCL_*) come from the host's
// <sys/mman.h> and <linux/mman.h>: mmemu runs on Linux, and these values are the same for
// x86_64 and arm64 guests.

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08  // a mapping type of its own (uapi linux/mman.h, 6.11+)
#endif

// Converts PROT_* bits to VM_READ/VM_WRITE/VM_EXEC.
constexpr vm_flags_t calc_vm_prot_bits(int prot) {
  return ((prot & PROT_READ) ? VM_READ : 0) | ((prot & PROT_WRITE) ? VM_WRITE : 0) |
         ((prot & PROT_EXEC) ? VM_EXEC : 0);
}
// Converts MAP_* flags to VMA flags.
constexpr vm_flags_t calc_vm_flag_bits(int flags) {
  return ((flags & MAP_GROWSDOWN) ? VM_GROWSDOWN : 0) | ((flags & MAP_LOCKED) ? VM_LOCKED : 0);
}

// The PTE protection a VMA's pages get (protection_map): private mappings are never
// writable in the tables (the first write faults and is resolved by copy-on-write or by
// making the new anonymous page writable); any of R/W/X allows reads, as on both arches.
constexpr unsigned vma_pkey(vm_flags_t f) {
  return static_cast<unsigned>((f & VM_PKEY_MASK) >> VM_PKEY_SHIFT);
}
constexpr vm_flags_t pkey_vm_flags(unsigned key) {
  return (static_cast<vm_flags_t>(key) << VM_PKEY_SHIFT) & VM_PKEY_MASK;
}

constexpr PteProt vm_get_page_prot(vm_flags_t f) {
  PteProt p;
  p.pkey = static_cast<std::uint8_t>(vma_pkey(f));
  p.read = (f & VM_ACCESS_FLAGS) != 0;
  p.write = (f & VM_WRITE) && (f & VM_SHARED);
  p.exec = (f & VM_EXEC) != 0;
  return p;
}

// The four-letter permission string of /proc/PID/maps: "rw-p".
std::string vm_flags_perm_string(vm_flags_t f);
// All set flags by name, for dumps: "read write mayread ... account".
std::string vm_flags_names(vm_flags_t f);

}  // namespace mmemu
