#include "vma/pagemap.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vma/file.hpp"
#include "vma/proc_maps.hpp"

namespace mmemu {

namespace {

// A guard marker (MADV_GUARD_INSTALL) is a swap-type entry to pagemap: measured on the host
// (Linux 6.18, x86-64, root) it reads 0x440000000000009f: PM_SWAP | PM_GUARD_REGION, and as "frame"
// swp_type | swp_offset << 5 = SWP_PTE_MARKER (31) | PTE_MARKER_GUARD (4) << 5, shown only with
// show_pfn.
constexpr std::uint64_t kGuardMarkerFrame = 31 | (4 << 5);

// userspace dev_t decoding, as maps prints it (File::dev() holds a userspace dev_t).
std::uint32_t dev_major_of(std::uint64_t dev) {
  return static_cast<std::uint32_t>(((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffULL));
}
std::uint32_t dev_minor_of(std::uint64_t dev) {
  return static_cast<std::uint32_t>((dev & 0xff) | ((dev >> 12) & ~0xffULL));
}

}  // namespace

std::uint64_t pagemap_entry(const Mm& mm, vaddr_t vaddr, bool show_pfn) {
  // walk_page_range visits VMAs only: a hole, or an arch mapping without a VMA, reads 0.
  const Vma* vma = mm.vma_lookup(vaddr);
  if (!vma) return 0;
  auto ref = mm.pt().lookup(vaddr);
  if (!ref) return 0;  // pagemap_pte_hole; no VM_SOFTDIRTY without CONFIG_MEM_SOFT_DIRTY
  const PteFormat& fmt = mm.fmt();
  const pte_t e = mm.pt().get(*ref);
  if (fmt.none(e)) return 0;
  if (!fmt.present(e)) {
    if (!fmt.is_guard_marker(e)) return 0;
    return PM_SWAP | PM_GUARD_REGION | (show_pfn ? kGuardMarkerFrame : 0);
  }
  const pfn_t pfn = fmt.pfn(e);
  std::uint64_t flags = PM_PRESENT;
  std::uint64_t frame = show_pfn ? (pfn & PM_PFRAME_MASK) : 0;
  // vm_normal_page: the zero page has no struct page to look at.
  const PhysMem& phys = mm.phys();
  if (pfn != phys.zero_pfn() && !(vma->vm_flags & (VM_PFNMAP | VM_IO))) {
    const PageDesc& d = phys.desc(pfn);
    if (!(d.flags & PG_anon)) flags |= PM_FILE;
    if (d.mapcount == 1) flags |= PM_MMAP_EXCLUSIVE;
  }
  return flags | frame;
}

std::vector<std::uint64_t> pagemap_entries(const Mm& mm, std::uint64_t vpn, std::uint64_t count,
                                           bool show_pfn) {
  std::vector<std::uint64_t> out;
  // "watch out for wraparound": a vpn whose address does not fit reads nothing.
  if (vpn > (~0ULL >> PAGE_SHIFT)) return out;
  const vaddr_t start = vpn << PAGE_SHIFT;
  if (start >= mm.task_size) return out;
  const std::uint64_t room = (mm.task_size - start) >> PAGE_SHIFT;
  const std::uint64_t n = std::min(count, room);
  out.resize(n, 0);
  for (std::uint64_t i = 0; i < n; ++i) {
    const vaddr_t va = start + (i << PAGE_SHIFT);
    // Only pages of VMAs can be nonzero: skip straight over holes.
    const Vma* v = mm.find_vma(va);
    if (!v) break;
    if (v->vm_start > va) {
      const std::uint64_t skip = (v->vm_start - va) >> PAGE_SHIFT;
      if (skip >= n - i) break;
      i += skip - 1;
      continue;
    }
    out[i] = pagemap_entry(mm, va, show_pfn);
  }
  return out;
}

namespace {

template <class T>
bool fetch(const std::vector<std::uint8_t>& d, std::uint64_t off, T& out) {
  if (off > d.size() || d.size() - off < sizeof(T)) return false;
  std::memcpy(&out, d.data() + off, sizeof(T));
  return true;
}

constexpr std::uint32_t kBuildIdSizeMax = 20;

// parse_build_id: the notes in [off, off + len).
std::optional<std::vector<std::uint8_t>> parse_build_id(const std::vector<std::uint8_t>& d,
                                                        std::uint64_t off, std::uint64_t len) {
  struct Nhdr {
    std::uint32_t namesz, descsz, type;
  };
  const std::uint64_t end = off + len;
  if (end < off) return std::nullopt;
  while (end - off > sizeof(Nhdr) + 4) {
    Nhdr n;
    if (!fetch(d, off, n)) return std::nullopt;
    const std::uint64_t name_off = off + sizeof n;
    const std::uint64_t desc_off = name_off + ((n.namesz + 3ULL) & ~3ULL);
    const std::uint64_t next = desc_off + ((n.descsz + 3ULL) & ~3ULL);
    if (next > end) return std::nullopt;
    char name[4];
    if (n.type == 3 /* NT_GNU_BUILD_ID */ && n.namesz == 4 && fetch(d, name_off, name) &&
        std::memcmp(name, "GNU", 4) == 0 && n.descsz > 0 && n.descsz <= kBuildIdSizeMax) {
      if (desc_off > d.size() || d.size() - desc_off < n.descsz) return std::nullopt;
      const auto at = d.begin() + static_cast<std::ptrdiff_t>(desc_off);
      return std::vector<std::uint8_t>(at, at + n.descsz);
    }
    off = next;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<std::uint8_t>> vma_build_id(const Vma& vma) {
  if (!vma.vm_file || vma.vm_file->shmem()) return std::nullopt;
  const std::vector<std::uint8_t>& d = vma.vm_file->data();
  unsigned char ident[16];
  std::uint16_t type = 0;
  if (!fetch(d, 0, ident) || !fetch(d, 16, type)) return std::nullopt;
  if (std::memcmp(ident,
                  "\x7f"
                  "ELF",
                  4) != 0)
    return std::nullopt;
  if (type != 2 /* ET_EXEC */ && type != 3 /* ET_DYN */) return std::nullopt;
  if (ident[4] != 2 /* ELFCLASS64 */) return std::nullopt;  // guests are 64-bit
  std::uint64_t phoff = 0;
  std::uint16_t phnum = 0;
  if (!fetch(d, 32, phoff) || !fetch(d, 56, phnum)) return std::nullopt;
  // get_build_id_64: at most MAX_PHDR_CNT program headers are looked at.
  constexpr std::uint64_t kPhdr = 56, kMaxPhdrCnt = 256;
  phnum = static_cast<std::uint16_t>(std::min<std::uint64_t>(phnum, kMaxPhdrCnt));
  for (std::uint16_t i = 0; i < phnum; ++i) {
    std::uint32_t p_type = 0;
    std::uint64_t p_offset = 0, p_filesz = 0;
    const std::uint64_t ph = phoff + i * kPhdr;
    if (!fetch(d, ph, p_type) || !fetch(d, ph + 8, p_offset) || !fetch(d, ph + 32, p_filesz))
      return std::nullopt;
    if (p_type != 4 /* PT_NOTE */) continue;
    if (auto id = parse_build_id(d, p_offset, p_filesz)) return id;
  }
  return std::nullopt;
}

Result<ProcmapVma> procmap_query_vma(const Mm& mm, vaddr_t addr, std::uint64_t flags) {
  const Vma* vma = nullptr;
  for (;;) {
    vma = mm.find_vma(addr);
    if (!vma) return fail(ENOENT);
    const vm_flags_t f = vma->vm_flags;
    const bool skip = ((flags & PROCMAP_QUERY_FILE_BACKED_VMA) && !vma->vm_file) ||
                      ((flags & PROCMAP_QUERY_VMA_READABLE) && !(f & VM_READ)) ||
                      ((flags & PROCMAP_QUERY_VMA_WRITABLE) && !(f & VM_WRITE)) ||
                      ((flags & PROCMAP_QUERY_VMA_EXECUTABLE) && !(f & VM_EXEC)) ||
                      ((flags & PROCMAP_QUERY_VMA_SHARED) && !(f & VM_MAYSHARE));
    if (!skip && ((flags & PROCMAP_QUERY_COVERING_OR_NEXT_VMA) || vma->vm_start <= addr)) break;
    if (!(flags & PROCMAP_QUERY_COVERING_OR_NEXT_VMA)) return fail(ENOENT);
    addr = vma->vm_end;
  }
  ProcmapVma r;
  r.start = vma->vm_start;
  r.end = vma->vm_end;
  const vm_flags_t f = vma->vm_flags;
  if (f & VM_READ) r.vma_flags |= PROCMAP_QUERY_VMA_READABLE;
  if (f & VM_WRITE) r.vma_flags |= PROCMAP_QUERY_VMA_WRITABLE;
  if (f & VM_EXEC) r.vma_flags |= PROCMAP_QUERY_VMA_EXECUTABLE;
  if (f & VM_MAYSHARE) r.vma_flags |= PROCMAP_QUERY_VMA_SHARED;
  r.page_size = PAGE_SIZE;  // vma_kernel_pagesize: no hugetlb
  if (vma->vm_file) {
    r.offset = vma->vm_pgoff << PAGE_SHIFT;
    r.dev_major = dev_major_of(vma->vm_file->dev());
    r.dev_minor = dev_minor_of(vma->vm_file->dev());
    r.inode = vma->vm_file->ino();
  }
  r.name = maps_name(mm, *vma);
  return r;
}

}  // namespace mmemu
