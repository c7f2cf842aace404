// Reads, writes, truncation and seals of a shmem file (memfd_create): the page cache is the
// file's only storage, so read()/write() and every MAP_SHARED mapping see the same frames,
// and a truncation unmaps what lies past the new end from every mapping before the pages
// go (later accesses there raise SIGBUS).
#pragma once

#include <cstdint>
#include <span>

#include "mmu/types.hpp"
#include "vma/file.hpp"

namespace mmemu {

// F_ADD_SEALS / F_GET_SEALS bits (F_SEAL_SEAL ... F_SEAL_EXEC of include/uapi/linux/fcntl.h).
inline constexpr unsigned kSealSeal = 0x1, kSealShrink = 0x2, kSealGrow = 0x4, kSealWrite = 0x8,
                          kSealFutureWrite = 0x10, kSealExec = 0x20;
inline constexpr unsigned kAllSeals = 0x3f;

// MAX_LFS_FILESIZE on a 64-bit kernel.
inline constexpr std::uint64_t kMaxLfsFileSize = 0x7fffffffffffffffULL;

// Up to the end of the file; holes read as zeros without allocating a page.
std::size_t shmem_file_read(const File& file, std::uint64_t off, std::span<std::uint8_t> buf);

// Writes at `off`, allocating pages from the `page` site and growing the file. A failed
// allocation ends the write short (ENOMEM only when nothing was written); EPERM under a
// write seal, or a grow seal for bytes past the end; EFBIG past MAX_LFS_FILESIZE.
Result<std::size_t> shmem_file_write(File& file, std::uint64_t off,
                                     std::span<const std::uint8_t> buf);

// shmem_setattr for ATTR_SIZE: EPERM against kSealShrink / kSealGrow. Shrinking unmaps
// every page past the new end from every mapping (private COW copies included, as
// truncate_pagecache does), zeroes the tail of the last partial page and frees the rest.
Result<void> shmem_setattr_size(File& file, std::uint64_t size);

// unmap_mapping_range(mapping, index << PAGE_SHIFT, 0, even_cows = 1): clears every PTE at
// or past page `index` of every VMA mapping `file`, whatever frame it maps.
void unmap_mapping_range_from(File& file, std::uint64_t index);

// A VMA maps the file shared and may become writable (i_mmap_writable > 0).
bool mapping_writably_mapped(const File& file);

// memfd_add_seals: EPERM once kSealSeal is set, EINVAL for unknown bits, EBUSY when a
// write seal meets a writable shared mapping.
Result<void> memfd_add_seals(File& file, unsigned seals);

// SEEK_DATA / SEEK_HOLE at page granularity over the cached pages (shmem_file_llseek):
// ENXIO at or past the end.
Result<std::uint64_t> shmem_seek_data_hole(const File& file, std::uint64_t off, bool data);

}  // namespace mmemu
