#include "vma/validate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "vma/anon_vma.hpp"
#include "vma/file.hpp"

namespace mmemu {

namespace {

using PteCounts = std::unordered_map<pfn_t, std::int64_t>;

void check_tree_and_vmas(const Mm& mm, std::vector<std::string>& err) {
  if (auto e = mm.mm_mt.validate()) err.push_back("maple tree: " + *e);
  int count = 0;
  std::uint64_t total = 0, locked = 0;
  for (const auto& e : mm.mm_mt.entries()) {
    if (MapleTree::is_zero_entry(e.value)) continue;
    const auto* v = static_cast<const Vma*>(e.value);
    ++count;
    if (v->vm_mm != &mm)
      err.push_back(fmt::format("vma {:#x}: belongs to another mm", v->vm_start));
    if (v->vm_start != e.first || v->vm_end - 1 != e.last)
      err.push_back(fmt::format("vma [{:#x},{:#x}) stored as [{:#x},{:#x}]", v->vm_start, v->vm_end,
                                e.first, e.last));
    if (v->vm_start >= v->vm_end || !page_aligned(v->vm_start) || !page_aligned(v->vm_end))
      err.push_back(fmt::format("vma [{:#x},{:#x}): bad bounds", v->vm_start, v->vm_end));
    if (v->vm_page_prot != vm_get_page_prot(v->vm_flags))
      err.push_back(fmt::format("vma {:#x}: vm_page_prot does not match its flags", v->vm_start));
    total += v->pages();
    if (v->vm_flags & VM_LOCKED) locked += v->pages();
    // anon_vma chain: the VMA's own anon_vma is linked, and every link points both ways.
    if (v->anon_vma &&
        std::none_of(v->anon_vma_chain.begin(), v->anon_vma_chain.end(),
                     [&](const AnonVmaChain* c) { return c->anon_vma == v->anon_vma; }))
      err.push_back(fmt::format("vma {:#x}: anon_vma not in its chain", v->vm_start));
    for (const AnonVmaChain* c : v->anon_vma_chain) {
      const auto& ch = c->anon_vma->chains;
      if (c->vma != v || std::find(ch.begin(), ch.end(), c) == ch.end())
        err.push_back(fmt::format("vma {:#x}: broken anon_vma_chain link", v->vm_start));
    }
    if (v->vm_file) {
      const auto& im = v->vm_file->i_mmap;
      if (std::find(im.begin(), im.end(), v) == im.end())
        err.push_back(fmt::format("vma {:#x}: missing from its file's i_mmap", v->vm_start));
    }
  }
  if (count != mm.map_count)
    err.push_back(fmt::format("map_count {} but the tree holds {} VMAs", mm.map_count, count));
  if (!(mm.flags & MMF_EXITED)) {
    if (total != mm.total_vm)
      err.push_back(fmt::format("total_vm {} but VMAs span {} pages", mm.total_vm, total));
    if (locked != mm.locked_vm)
      err.push_back(
          fmt::format("locked_vm {} but locked VMAs span {} pages", mm.locked_vm, locked));
  }
}

void check_tables(const Mm& mm, PteCounts& counts, std::vector<std::string>& err) {
  const PageTable& pt = mm.pt();
  const PteFormat& fmt = pt.fmt();
  const PhysMem& phys = mm.phys();
  std::array<std::size_t, 4> tables{};
  pt.for_each_table([&](pfn_t table, Level level, vaddr_t base) {
    tables[static_cast<std::size_t>(level)]++;
    if (!phys.valid_pfn(table) || !(phys.desc(table).flags & PG_pgtable))
      err.push_back(fmt::format("{} table at {:#x} in frame {} not marked as a page table",
                                level_name(level), base, table));
  });
  for (int l = 0; l < 4; ++l)
    if (tables[static_cast<std::size_t>(l)] != pt.nr_tables(static_cast<Level>(l)))
      err.push_back(fmt::format("{} tables: counted {} found {}", level_name(static_cast<Level>(l)),
                                pt.nr_tables(static_cast<Level>(l)),
                                tables[static_cast<std::size_t>(l)]));

  std::array<std::int64_t, NR_MM_COUNTERS> rss{};
  pt.for_each_pte(0, ~0ULL, [&](vaddr_t va, PteRef, pte_t e) {
    if (fmt.is_guard_marker(e)) {
      // A guard marker belongs to a VMA that may hold one (not VM_SPECIAL/hugetlb).
      const Vma* gv = mm.vma_lookup(va);
      if (!gv)
        err.push_back(fmt::format("guard marker at {:#x} outside every VMA", va));
      else if (gv->vm_flags & VM_SPECIAL)
        err.push_back(fmt::format("guard marker at {:#x} in a VM_SPECIAL VMA", va));
      return;
    }
    if (!fmt.present(e)) {
      err.push_back(fmt::format("pte at {:#x}: not present but not none ({:#x})", va, e));
      return;
    }
    const pfn_t pfn = fmt.pfn(e);
    if (!phys.valid_pfn(pfn) || phys.is_free(pfn)) {
      err.push_back(fmt::format("pte at {:#x} maps free or invalid frame {}", va, pfn));
      return;
    }
    const PageDesc& d = phys.desc(pfn);
    if (const ArchMapping* am = pt.arch_mapping_at(va)) {
      if (!(d.flags & PG_arch))
        err.push_back(
            fmt::format("arch mapping {} at {:#x}: frame {} not PG_arch", am->name, va, pfn));
      return;
    }
    const Vma* v = mm.vma_lookup(va);
    if (!v) {
      err.push_back(fmt::format("pte at {:#x} (frame {}) outside every VMA", va, pfn));
      return;
    }
    if (fmt.write(e) && !(v->vm_flags & VM_WRITE))
      err.push_back(fmt::format("pte at {:#x} writable in a VMA without VM_WRITE", va));
    if (d.flags & PG_zero) {
      if (fmt.write(e)) err.push_back(fmt::format("zero page mapped writable at {:#x}", va));
      return;
    }
    counts[pfn]++;
    if (d.flags & PG_anon) {
      rss[MM_ANONPAGES]++;
      const bool reachable =
          std::any_of(v->anon_vma_chain.begin(), v->anon_vma_chain.end(),
                      [&](const AnonVmaChain* c) { return c->anon_vma == d.mapping; });
      if (!reachable)
        err.push_back(
            fmt::format("anon page {} at {:#x}: its anon_vma is not linked to the VMA", pfn, va));
      if (v->linear_page_index(va) != d.index)
        err.push_back(fmt::format("anon page {} at {:#x}: index {} but the VMA says {}", pfn, va,
                                  d.index, v->linear_page_index(va)));
    } else if (d.flags & PG_pagecache) {
      const auto* f = static_cast<const File*>(d.mapping);
      rss[f->shmem() ? MM_SHMEMPAGES : MM_FILEPAGES]++;
      if (f != v->vm_file || v->linear_page_index(va) != d.index)
        err.push_back(fmt::format("file page {} at {:#x} does not belong there", pfn, va));
    } else {
      err.push_back(
          fmt::format("pte at {:#x} maps frame {} that is neither anon nor file", va, pfn));
    }
  });
  if (!(mm.flags & MMF_EXITED)) {
    static constexpr const char* kNames[] = {"file", "anon", "swap", "shmem"};
    for (int t = 0; t < NR_MM_COUNTERS; ++t)
      if (rss[static_cast<std::size_t>(t)] != mm.rss[static_cast<std::size_t>(t)])
        err.push_back(fmt::format("rss {} is {} but the tables map {}", kNames[t],
                                  mm.rss[static_cast<std::size_t>(t)],
                                  rss[static_cast<std::size_t>(t)]));
  }
}

}  // namespace

std::vector<std::string> validate_mm(const Mm& mm) {
  std::vector<std::string> err;
  check_tree_and_vmas(mm, err);
  PteCounts counts;
  check_tables(mm, counts, err);
  const PhysMem& phys = mm.phys();
  for (const auto& [pfn, n] : counts) {
    const PageDesc& d = phys.desc(pfn);
    if (d.mapcount < n)
      err.push_back(
          fmt::format("frame {}: mapcount {} below the {} PTEs mapping it", pfn, d.mapcount, n));
  }
  return err;
}

std::vector<std::string> validate_mms(std::span<const Mm* const> mms) {
  std::vector<std::string> err;
  PteCounts counts;
  for (const Mm* mm : mms) {
    auto e = validate_mm(*mm);
    for (auto& s : e)
      err.push_back(fmt::format("mm {}: {}", mm->id(), s));
    PteCounts own;
    std::vector<std::string> ignore;
    check_tables(*mm, own, ignore);
    for (const auto& [pfn, n] : own)
      counts[pfn] += n;
  }
  if (mms.empty()) return err;
  const PhysMem& phys = mms.front()->phys();
  for (pfn_t pfn = 0; pfn < phys.nr_frames(); ++pfn) {
    const PageDesc& d = phys.desc(pfn);
    if (d.refcount == 0 || (d.flags & (PG_zero | PG_pgtable | PG_arch))) continue;
    const auto it = counts.find(pfn);
    const std::int64_t n = it == counts.end() ? 0 : it->second;
    if (d.mapcount != n)
      err.push_back(fmt::format("frame {}: mapcount {} but {} PTEs map it", pfn, d.mapcount, n));
    const std::int64_t need = n + ((d.flags & PG_pagecache) ? 1 : 0);
    if (static_cast<std::int64_t>(d.refcount) < need)
      err.push_back(fmt::format("frame {}: refcount {} below its {} users", pfn, d.refcount, need));
  }
  return err;
}

}  // namespace mmemu
