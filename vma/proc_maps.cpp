// /proc/PID/maps and smaps text (see proc_maps.hpp for what is modelled).
#include "vma/proc_maps.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "vma/file.hpp"

namespace mmemu {

namespace {

// seq_setwidth(m, 25 + sizeof(void*) * 6 - 1): a name is padded to start after this column.
constexpr std::size_t kNamePad = 25 + 8 * 6 - 1;

// userspace dev_t decoding (gnu_dev_major/minor), which is what File::dev() holds.
unsigned dev_major(std::uint64_t dev) {
  return static_cast<unsigned>(((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffULL));
}
unsigned dev_minor(std::uint64_t dev) {
  return static_cast<unsigned>((dev & 0xff) | ((dev >> 12) & ~0xffULL));
}

// show_vma_header_prefix: everything up to and including the blank after the inode.
std::string header_prefix(vaddr_t start, vaddr_t end, vm_flags_t flags, std::uint64_t off,
                          std::uint64_t dev, std::uint64_t ino) {
  return fmt::format("{:08x}-{:08x} {} {:08x} {} {} ", start, end, vm_flags_perm_string(flags), off,
                     maps_dev(dev), ino);
}

// seq_pad(m, ' ') followed by the name.
void append_name(std::string& s, const std::string& name) {
  if (s.size() < kNamePad) s.append(kNamePad - s.size(), ' ');
  s += ' ';
  s += name;
}

// The gate VMA (get_gate_vma): the kernel-half range user space may reach, x86_64's
// vsyscall page; its flags are what user space is allowed there (xonly: VM_EXEC only,
// emulate: VM_READ | VM_EXEC).
const KernelHalfRange* gate_mapping(const Mm& mm) {
  if (mm.arch() != Arch::X86_64) return nullptr;
  const auto& ranges = mm.machine().init_mm(mm.arch()).ranges();
  return ranges.empty() ? nullptr : &ranges.front();
}

vm_flags_t gate_flags(const KernelHalfRange& g) {
  return (g.user.read ? VM_READ : 0) | (g.user.exec ? VM_EXEC : 0);
}

std::string gate_line(const KernelHalfRange& g) {
  std::string s = header_prefix(g.start, g.end, gate_flags(g), 0, 0, 0);
  append_name(s, g.name);
  return s;
}

// SEQ_PUT_DEC: "label" then the value in kB right-aligned in 8 columns, then " kB\n".
void put_kb(std::string& out, const char* label, std::uint64_t bytes) {
  out += fmt::format("{}{:>8} kB\n", label, bytes >> 10);
}

void smaps_fields(std::string& out, const SmapsStats& s, bool rollup) {
  put_kb(out, "Rss:            ", s.resident);
  put_kb(out, "Pss:            ", s.pss >> kPssShift);
  put_kb(out, "Pss_Dirty:      ", s.pss_dirty >> kPssShift);
  if (rollup) {
    put_kb(out, "Pss_Anon:       ", s.pss_anon >> kPssShift);
    put_kb(out, "Pss_File:       ", s.pss_file >> kPssShift);
    put_kb(out, "Pss_Shmem:      ", s.pss_shmem >> kPssShift);
  }
  put_kb(out, "Shared_Clean:   ", s.shared_clean);
  put_kb(out, "Shared_Dirty:   ", s.shared_dirty);
  put_kb(out, "Private_Clean:  ", s.private_clean);
  put_kb(out, "Private_Dirty:  ", s.private_dirty);
  put_kb(out, "Referenced:     ", s.referenced);
  put_kb(out, "Anonymous:      ", s.anonymous);
  put_kb(out, "KSM:            ", 0);
  put_kb(out, "LazyFree:       ", s.lazyfree);
  put_kb(out, "AnonHugePages:  ", 0);
  put_kb(out, "ShmemPmdMapped: ", 0);
  put_kb(out, "FilePmdMapped:  ", 0);
  put_kb(out, "Shared_Hugetlb: ", 0);
  out += fmt::format("Private_Hugetlb: {:>7} kB\n", 0);
  put_kb(out, "Swap:           ", 0);
  put_kb(out, "SwapPss:        ", 0);
  put_kb(out, "Locked:         ", s.pss_locked >> kPssShift);
}

// The per-VMA part after the maps line: sizes, counts, THPeligible, ProtectionKey, VmFlags.
std::string smaps_body(const Mm& mm, vaddr_t start, vaddr_t end, vm_flags_t flags,
                       const SmapsStats& s) {
  std::string out;
  put_kb(out, "Size:           ", end - start);
  put_kb(out, "KernelPageSize: ", PAGE_SIZE);
  put_kb(out, "MMUPageSize:    ", PAGE_SIZE);
  smaps_fields(out, s, false);
  out += fmt::format("THPeligible:    {:>8}\n", 0);
  if (mm.arch() == Arch::X86_64) out += fmt::format("ProtectionKey:  {:>8}\n", vma_pkey(flags));
  out += "VmFlags: " + smaps_vm_flags(flags) + "\n";
  return out;
}

// smaps_page_accumulate.
void accumulate(SmapsStats& s, const PageDesc& d, std::uint64_t size, std::uint64_t pss, bool dirty,
                bool locked, bool priv) {
  s.pss += pss;
  if (d.flags & PG_anon)
    s.pss_anon += pss;
  else if (d.flags & PG_pagecache && d.mapping && static_cast<const File*>(d.mapping)->shmem())
    s.pss_shmem += pss;
  else
    s.pss_file += pss;
  if (locked) s.pss_locked += pss;
  if (dirty || (d.flags & PG_dirty)) {
    s.pss_dirty += pss;
    (priv ? s.private_dirty : s.shared_dirty) += size;
  } else {
    (priv ? s.private_clean : s.shared_clean) += size;
  }
}

}  // namespace

SmapsStats& SmapsStats::operator+=(const SmapsStats& o) {
  resident += o.resident;
  shared_clean += o.shared_clean;
  shared_dirty += o.shared_dirty;
  private_clean += o.private_clean;
  private_dirty += o.private_dirty;
  referenced += o.referenced;
  anonymous += o.anonymous;
  lazyfree += o.lazyfree;
  pss += o.pss;
  pss_dirty += o.pss_dirty;
  pss_anon += o.pss_anon;
  pss_file += o.pss_file;
  pss_shmem += o.pss_shmem;
  pss_locked += o.pss_locked;
  return *this;
}

std::string maps_dev(std::uint64_t dev) {
  return fmt::format("{:02x}:{:02x}", dev_major(dev), dev_minor(dev));
}

std::string maps_name(const Mm& mm, const Vma& v) {
  if (v.vm_file) return v.vm_file->name();
  // vma_is_initial_heap (strict, as the kernel has it since December 2023) and
  // vma_is_initial_stack.
  if (v.vm_start < mm.brk && v.vm_end > mm.start_brk) return "[heap]";
  if (v.vm_start <= mm.start_stack && v.vm_end >= mm.start_stack) return "[stack]";
  return {};
}

std::string maps_line(const Mm& mm, const Vma& v) {
  std::uint64_t off = 0, dev = 0, ino = 0;
  if (v.vm_file) {
    off = v.vm_pgoff << PAGE_SHIFT;
    dev = v.vm_file->dev();
    ino = v.vm_file->ino();
  }
  std::string s = header_prefix(v.vm_start, v.vm_end, v.vm_flags, off, dev, ino);
  const std::string name = maps_name(mm, v);
  if (!name.empty()) append_name(s, name);
  return s;
}

std::string proc_maps(const Mm& mm) {
  std::string out;
  for (const Vma* v : mm.vmas()) {
    out += maps_line(mm, *v);
    out += '\n';
  }
  if (const KernelHalfRange* g = gate_mapping(mm)) out += gate_line(*g) + "\n";
  return out;
}

SmapsStats smaps_gather(const Mm& mm, const Vma& v) {
  SmapsStats s;
  const PteFormat& fmt = mm.fmt();
  const PhysMem& phys = mm.phys();
  const bool locked = (v.vm_flags & VM_LOCKED) != 0;
  mm.pt().for_each_pte(v.vm_start, v.vm_end, [&](vaddr_t, PteRef, pte_t e) {
    if (!fmt.present(e)) return;  // no swap entries in mmemu
    const pfn_t pfn = fmt.pfn(e);
    if (!phys.valid_pfn(pfn)) return;
    const PageDesc& d = phys.desc(pfn);
    if (d.flags & (PG_zero | PG_reserved) || d.refcount == 0) return;  // vm_normal_page
    const bool young = fmt.young(e);
    const bool dirty = fmt.dirty(e);
    if (d.flags & PG_anon) {
      s.anonymous += PAGE_SIZE;
      // Not swap-backed (MADV_FREE'd) and clean: reclaim could drop it.
      if ((d.flags & PG_lazyfree) && !dirty && !(d.flags & PG_dirty)) s.lazyfree += PAGE_SIZE;
    }
    s.resident += PAGE_SIZE;
    if (young) s.referenced += PAGE_SIZE;
    const std::uint64_t full = PAGE_SIZE << kPssShift;
    if (d.refcount == 1) {
      accumulate(s, d, PAGE_SIZE, full, dirty, locked, true);
      return;
    }
    const auto mapcount = static_cast<std::uint64_t>(d.mapcount > 0 ? d.mapcount : 0);
    const std::uint64_t pss = mapcount >= 2 ? full / mapcount : full;
    accumulate(s, d, PAGE_SIZE, pss, dirty, locked, mapcount < 2);
  });
  return s;
}

std::string smaps_vm_flags(vm_flags_t flags) {
  // show_smap_vma_flags: by bit number; bits without a mnemonic are not printed.
  static constexpr std::array<std::pair<vm_flags_t, const char*>, 27> kNames{{
      {VM_READ, "rd"},        {VM_WRITE, "wr"},     {VM_EXEC, "ex"},      {VM_SHARED, "sh"},
      {VM_MAYREAD, "mr"},     {VM_MAYWRITE, "mw"},  {VM_MAYEXEC, "me"},   {VM_MAYSHARE, "ms"},
      {VM_GROWSDOWN, "gd"},   {VM_PFNMAP, "pf"},    {VM_LOCKED, "lo"},    {VM_IO, "io"},
      {VM_SEQ_READ, "sr"},    {VM_RAND_READ, "rr"}, {VM_DONTCOPY, "dc"},  {VM_DONTEXPAND, "de"},
      {VM_LOCKONFAULT, "lf"}, {VM_ACCOUNT, "ac"},   {VM_NORESERVE, "nr"}, {VM_WIPEONFORK, "wf"},
      {VM_DONTDUMP, "dd"},    {VM_SOFTDIRTY, "sd"}, {VM_HUGEPAGE, "hg"},  {VM_NOHUGEPAGE, "nh"},
      {VM_MERGEABLE, "mg"},   {VM_DROPPABLE, "dp"}, {VM_SEALED, "sl"},
  }};
  std::string s;
  for (const auto& [bit, name] : kNames)
    if (flags & bit) {
      s += name;
      s += ' ';
    }
  return s;
}

std::string smaps_entry(const Mm& mm, const Vma& v) {
  return maps_line(mm, v) + "\n" +
         smaps_body(mm, v.vm_start, v.vm_end, v.vm_flags, smaps_gather(mm, v));
}

std::string proc_smaps(const Mm& mm) {
  std::string out;
  for (const Vma* v : mm.vmas())
    out += smaps_entry(mm, *v);
  if (const KernelHalfRange* g = gate_mapping(mm))
    out += gate_line(*g) + "\n" + smaps_body(mm, g->start, g->end, gate_flags(*g), SmapsStats{});
  return out;
}

std::string proc_smaps_rollup(const Mm& mm) {
  SmapsStats total;
  vaddr_t start = 0, end = 0;
  const auto vs = mm.vmas();
  if (!vs.empty()) {
    start = vs.front()->vm_start;
    end = vs.back()->vm_end;
  }
  for (const Vma* v : vs)
    total += smaps_gather(mm, *v);
  std::string out = header_prefix(start, end, 0, 0, 0, 0);
  append_name(out, "[rollup]");
  out += '\n';
  smaps_fields(out, total, true);
  return out;
}

}  // namespace mmemu
