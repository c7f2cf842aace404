// /proc/PID/pagemap and PROCMAP_QUERY of an address space, as Linux 6.18's fs/proc/task_mmu.c
// computes them: pagemap entries come from the leaf entries of the real page tables and the
// frame descriptors (nothing is faulted in, nothing is modified); PROCMAP_QUERY finds a VMA
// and describes it. Both need no CPU and cannot fail on any input address.
//
// What is modelled (mmemu has no swap, THP, hugetlb or uffd, and the host kernel has no
// CONFIG_MEM_SOFT_DIRTY, so bits 57 (uffd-wp) and 55 (soft-dirty) are never set, as on that
// kernel, and bit 62 (swapped) only for a guard marker):
// - bit 63 present: a present leaf, PROT_NONE entries included (pte_present);
// - bit 61 file-page-or-shared-anon: the frame is not anonymous (page cache, shmem);
//   vm_normal_page leaves the zero page out, so it is neither file nor exclusive;
// - bit 56 exclusively mapped: present and the frame's mapcount is 1;
// - bit 58 guard region (with bit 62 and the marker's swap "frame", as Linux reports a
//   guard marker): a hook in pagemap.cpp, waiting for the page tables' guard markers;
// - bits 0-54: the frame number, only when the opener had CAP_SYS_ADMIN (show_pfn).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vma/mm.hpp"

namespace mmemu {

inline constexpr std::uint64_t PM_PFRAME_MASK = (1ULL << 55) - 1;
inline constexpr std::uint64_t PM_SOFT_DIRTY = 1ULL << 55;
inline constexpr std::uint64_t PM_MMAP_EXCLUSIVE = 1ULL << 56;
inline constexpr std::uint64_t PM_UFFD_WP = 1ULL << 57;
inline constexpr std::uint64_t PM_GUARD_REGION = 1ULL << 58;
inline constexpr std::uint64_t PM_FILE = 1ULL << 61;
inline constexpr std::uint64_t PM_SWAP = 1ULL << 62;
inline constexpr std::uint64_t PM_PRESENT = 1ULL << 63;
inline constexpr std::uint64_t PM_ENTRY_BYTES = 8;

// The pagemap entry of the page at vaddr (pte_to_pagemap_entry, or 0 for a hole).
std::uint64_t pagemap_entry(const Mm& mm, vaddr_t vaddr, bool show_pfn);

// pagemap_read after its checks: the entries of the pages from vpn (= file offset / 8) for
// `count` pages, stopping at mm.task_size (so fewer, or none, past it).
std::vector<std::uint64_t> pagemap_entries(const Mm& mm, std::uint64_t vpn, std::uint64_t count,
                                           bool show_pfn);

// ---- PROCMAP_QUERY (include/uapi/linux/fs.h) ----
inline constexpr std::uint64_t PROCMAP_QUERY_VMA_READABLE = 0x01;
inline constexpr std::uint64_t PROCMAP_QUERY_VMA_WRITABLE = 0x02;
inline constexpr std::uint64_t PROCMAP_QUERY_VMA_EXECUTABLE = 0x04;
inline constexpr std::uint64_t PROCMAP_QUERY_VMA_SHARED = 0x08;
inline constexpr std::uint64_t PROCMAP_QUERY_COVERING_OR_NEXT_VMA = 0x10;
inline constexpr std::uint64_t PROCMAP_QUERY_FILE_BACKED_VMA = 0x20;
inline constexpr std::uint64_t PROCMAP_QUERY_VALID_FLAGS_MASK = 0x3f;

struct ProcmapVma {
  vaddr_t start = 0, end = 0;
  std::uint64_t vma_flags = 0, page_size = 0, offset = 0, inode = 0;
  std::uint32_t dev_major = 0, dev_minor = 0;
  std::string name;  // maps' name; empty: none (vma_name_size 0)
};
// build_id_parse: the GNU build id (NT_GNU_BUILD_ID note of a PT_NOTE segment, 1..20
// bytes) of the ELF executable or shared object the VMA maps, from the file's bytes.
// nullopt: no file, not such an ELF file, or no build id. Files whose bytes live only in
// the page cache (shmem, memfd) are not parsed: nullopt.
std::optional<std::vector<std::uint8_t>> vma_build_id(const Vma& vma);

// query_matching_vma and the fields do_procmap_query fills: ENOENT when no VMA matches.
Result<ProcmapVma> procmap_query_vma(const Mm& mm, vaddr_t addr, std::uint64_t flags);

}  // namespace mmemu
