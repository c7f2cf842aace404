#include "vma/shmem.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "vma/unmap.hpp"
#include "vma/vma.hpp"

namespace mmemu {

std::size_t shmem_file_read(const File& file, std::uint64_t off, std::span<std::uint8_t> buf) {
  if (off >= file.size()) return 0;
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), file.size() - off));
  std::size_t done = 0;
  while (done < n) {
    const std::uint64_t pos = off + done;
    const std::size_t in_page = static_cast<std::size_t>(pos & ~PAGE_MASK);
    const std::size_t chunk = std::min<std::size_t>(n - done, PAGE_SIZE - in_page);
    const pfn_t pfn = file.cached_page(pos >> PAGE_SHIFT);
    if (pfn) {
      std::memcpy(buf.data() + done, file.machine().phys.frame(pfn) + in_page, chunk);
    } else {
      std::memset(buf.data() + done, 0, chunk);
    }
    done += chunk;
  }
  return n;
}

Result<std::size_t> shmem_file_write(File& file, std::uint64_t off,
                                     std::span<const std::uint8_t> buf) {
  if (file.seals() & (kSealWrite | kSealFutureWrite)) return fail(EPERM);
  if (buf.empty()) return std::size_t{0};
  if (off >= kMaxLfsFileSize) return fail(EFBIG);
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), kMaxLfsFileSize - off));
  PhysMem& phys = file.machine().phys;
  std::size_t done = 0;
  while (done < n) {
    const std::uint64_t pos = off + done;
    const std::size_t in_page = static_cast<std::size_t>(pos & ~PAGE_MASK);
    const std::size_t chunk = std::min<std::size_t>(n - done, PAGE_SIZE - in_page);
    // shmem_write_begin refuses, page by page, a chunk that would grow a grow-sealed file.
    if ((file.seals() & kSealGrow) && pos + chunk > file.size()) {
      if (!done) return fail(EPERM);
      break;
    }
    auto pfn = file.find_or_read_page(pos >> PAGE_SHIFT);
    if (!pfn) {
      if (!done) return fail(pfn.error().code);
      break;
    }
    phys.flush_dcache_page(*pfn);
    std::memcpy(phys.frame(*pfn) + in_page, buf.data() + done, chunk);
    phys.desc(*pfn).flags |= PG_dirty;
    done += chunk;
    if (off + done > file.size()) file.set_size(off + done);
  }
  return done;
}

void unmap_mapping_range_from(File& file, std::uint64_t index) {
  const std::vector<Vma*> vmas = file.i_mmap;  // copy: zapping does not change i_mmap
  for (Vma* v : vmas) {
    const std::uint64_t end = v->vm_pgoff + v->pages();
    if (end <= index) continue;
    const std::uint64_t lo = std::max(index, v->vm_pgoff);
    zap_page_range_single(*v, v->vm_start + ((lo - v->vm_pgoff) << PAGE_SHIFT), v->vm_end);
  }
}

Result<void> shmem_setattr_size(File& file, std::uint64_t size) {
  const std::uint64_t old = file.size();
  if (size < old && (file.seals() & kSealShrink)) return fail(EPERM);
  if (size > old && (file.seals() & kSealGrow)) return fail(EPERM);
  if (size > kMaxLfsFileSize) return fail(EFBIG);
  file.set_size(size);
  if (size >= old) return {};
  // truncate_pagecache: unmap, drop the pages past the end, zero the partial tail. (Linux
  // unmaps twice for faults racing in between; nothing races here.)
  const std::uint64_t keep = file.nr_pages();  // of the new size
  unmap_mapping_range_from(file, keep);
  file.remove_pages_from(keep);
  if (size & ~PAGE_MASK) {
    if (const pfn_t pfn = file.cached_page(size >> PAGE_SHIFT)) {
      const std::size_t in_page = static_cast<std::size_t>(size & ~PAGE_MASK);
      file.machine().phys.flush_dcache_page(pfn);
      std::memset(file.machine().phys.frame(pfn) + in_page, 0, PAGE_SIZE - in_page);
    }
  }
  return {};
}

bool mapping_writably_mapped(const File& file) {
  return std::any_of(file.i_mmap.begin(), file.i_mmap.end(), [](const Vma* v) {
    return (v->vm_flags & (VM_SHARED | VM_MAYWRITE)) == (VM_SHARED | VM_MAYWRITE);
  });
}

Result<void> memfd_add_seals(File& file, unsigned seals) {
  if (seals & ~kAllSeals) return fail(EINVAL);
  if (file.seals() & kSealSeal) return fail(EPERM);
  if ((seals & kSealWrite) && !(file.seals() & kSealWrite) && mapping_writably_mapped(file))
    return fail(EBUSY);
  file.set_seals(file.seals() | seals);
  return {};
}

Result<std::uint64_t> shmem_seek_data_hole(const File& file, std::uint64_t off, bool data) {
  const std::uint64_t size = file.size();
  if (off >= size) return fail(ENXIO);
  std::uint64_t idx = off >> PAGE_SHIFT;
  const std::uint64_t last = file.nr_pages();
  while (idx < last && (file.cached_page(idx) != 0) != data)
    ++idx;
  if (idx >= last) {
    if (data) return fail(ENXIO);
    return size;
  }
  return std::min(size, std::max(off, idx << PAGE_SHIFT));
}

}  // namespace mmemu
