// Page-table dumps: depth first from the pgd, each table introduced by the entry that points
// at it, leaf entries collapsed into runs. Top-level entries copied from init_mm and the
// tables below them are marked "shared kernel-half (init_mm)": the mm walks them but does
// not own them, and they are not in its table counts.
#include <fmt/format.h>

#include "emu/kernel/trace.hpp"
#include "tools/dump.hpp"
#include "vma/file.hpp"
#include "vma/rmap.hpp"

namespace mmemu::dump {

namespace {

Level child_of(Level l) {
  return static_cast<Level>(static_cast<int>(l) + 1);
}

// Last va covered by a table of `level` starting at `base` (inclusive, so the pgd's is ~0).
vaddr_t table_last(Level level, vaddr_t base) {
  if (level == Level::Pgd) return ~0ULL;
  return base + ((static_cast<vaddr_t>(PTRS_PER_TABLE) << level_shift(level)) - 1);
}

// What lies in a table's span: VMAs and arch mappings (or, in a shared kernel-half table,
// init_mm's ranges).
struct SpanInfo {
  bool has_vma = false;
  bool shared = false;            // an init_mm table
  std::vector<std::string> arch;  // names of arch mappings (kernel-half ranges) in the span
  std::string note() const {
    if (shared) {
      std::string s = " shared kernel-half (init_mm)";
      for (const auto& a : arch)
        s += " " + a;
      return s;
    }
    if (!has_vma && !arch.empty()) {
      std::string s = " arch-only";
      for (const auto& a : arch)
        s += " " + a;
      return s;
    }
    if (!has_vma && arch.empty()) return " (no VMA or arch mapping in span)";
    return {};
  }
};

SpanInfo span_info(const Mm& mm, vaddr_t lo, vaddr_t hi, bool shared) {
  SpanInfo si;
  si.shared = shared;
  if (shared) {
    for (const auto& r : mm.machine().init_mm(mm.arch()).ranges())
      if (r.start <= hi && r.end - 1 >= lo) si.arch.push_back(r.name);
    return si;
  }
  for (const auto& e : mm.mm_mt.entries(lo, hi))
    if (!MapleTree::is_zero_entry(e.value)) si.has_vma = true;
  for (const auto& a : mm.pt().arch_mappings())
    if (a.start <= hi && a.end - 1 >= lo) si.arch.push_back(a.name);
  return si;
}

std::string frame_kind(const PhysMem& phys, pfn_t pfn) {
  const PageDesc& d = phys.desc(pfn);
  if (d.flags & PG_zero) return "zero-page";
  if (d.flags & PG_arch) return "arch";
  if (d.flags & PG_anon) return "anon";
  if (d.flags & PG_pagecache) {
    return static_cast<const File*>(d.mapping)->shmem() ? "shmem" : "file";
  }
  return "frame";
}

std::string prot_string(const PteFormat& f, pte_t e) {
  const PteProt p = f.prot(e);
  std::string s = "---";
  if (p.read) s[0] = 'r';
  if (p.write) s[1] = 'w';
  if (p.exec) s[2] = 'x';
  if (!p.user) s += " kernel";
  if (f.protnone(e)) s += " protnone";
  if (f.young(e)) s += " young";
  if (f.dirty(e)) s += " dirty";
  return s;
}

// Every mapping of each frame of a shared run (mapcount > 1) found by rmap_walk, as
// {frame, mm, vma, va}; at most kMaxRmapHits (then "rmap_truncated"). The walk only reads:
// rmap_walk takes PhysMem& because the reclaim walkers it serves change what they find.
constexpr std::size_t kMaxRmapHits = 64;

json rmap_json(const Mm& mm, pfn_t first, pfn_t last, bool one_frame, bool& truncated) {
  json hits = json::array();
  PhysMem& phys = const_cast<PhysMem&>(mm.phys());
  for (pfn_t p = first; p <= last && !truncated; ++p) {
    if (!phys.valid_pfn(p)) break;
    rmap_walk(phys, p, [&](const RmapHit& h) {
      if (hits.size() >= kMaxRmapHits) {
        truncated = true;
        return;
      }
      hits.push_back({{"frame", hex(p)},
                      {"mm", h.mm->id()},
                      {"vma", hex(h.vma->vm_start) + "-" + hex(h.vma->vm_end)},
                      {"va", hex(h.addr)}});
    });
    if (one_frame) break;
  }
  return hits;
}

// One run of leaf entries that differ only by consecutive frames (or share one frame).
struct Run {
  unsigned first = 0, last = 0;
  vaddr_t va = 0;
  pte_t raw = 0;  // of the first entry
  pfn_t pfn_first = 0, pfn_last = 0;
  bool present = true;
  std::string prot, kind;
  std::int32_t mapcount = 0;
};

std::vector<Run> leaf_runs(const Mm& mm, pfn_t table, vaddr_t base) {
  const PageTable& pt = mm.pt();
  const PteFormat& f = pt.fmt();
  const PhysMem& phys = mm.phys();
  std::vector<Run> runs;
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
    const pte_t e = pt.get(PteRef{table, i});
    if (f.none(e)) continue;
    Run r;
    r.first = r.last = i;
    r.va = pt.entry_va(base, Level::Pte, i);
    r.raw = e;
    r.present = f.present(e);
    if (f.is_guard_marker(e)) r.kind = "guard";  // not present; runs of markers collapse
    if (r.present) {
      r.pfn_first = r.pfn_last = f.pfn(e);
      r.prot = prot_string(f, e);
      r.kind = phys.valid_pfn(r.pfn_first) ? frame_kind(phys, r.pfn_first) : "bad-pfn";
      r.mapcount = phys.valid_pfn(r.pfn_first) ? phys.desc(r.pfn_first).mapcount : 0;
    }
    if (!runs.empty()) {
      Run& p = runs.back();
      // Zero-page runs repeat one frame; every other run steps one frame per entry.
      const bool follows =
          r.kind == "zero-page" ? r.pfn_first == p.pfn_last : r.pfn_first == p.pfn_last + 1;
      const bool guards = p.kind == "guard" && r.kind == "guard" && p.raw == r.raw;
      if (p.last + 1 == i && guards) {
        p.last = i;
        continue;
      }
      if (p.last + 1 == i && p.present && r.present && p.prot == r.prot && p.kind == r.kind &&
          p.mapcount == r.mapcount && follows) {
        p.last = i;
        p.pfn_last = r.pfn_first;
        continue;
      }
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

std::string run_text(const Mm& mm, const Run& r) {
  const std::string idx = r.first == r.last ? fmt::format("pte[{}]", r.first)
                                            : fmt::format("pte[{}..{}]", r.first, r.last);
  const vaddr_t va_last = r.va + (static_cast<vaddr_t>(r.last - r.first + 1) << PAGE_SHIFT) - 1;
  const std::string bits = mm.fmt().decode(r.raw, Level::Pte);
  if (r.kind == "guard")
    return fmt::format("{} va {:#x}..{:#x} guard, raw {:#018x} {}", idx, r.va, va_last, r.raw,
                       bits);
  if (!r.present)
    return fmt::format("{} va {:#x}..{:#x} not present, raw {:#018x} {}", idx, r.va, va_last, r.raw,
                       bits);
  std::string frames;
  if (r.first == r.last)
    frames = fmt::format("frame {:#x}", r.pfn_first);
  else if (r.pfn_first == r.pfn_last)
    frames = fmt::format("frame {:#x} x{}", r.pfn_first, r.last - r.first + 1);
  else
    frames = fmt::format("frames {:#x}..{:#x}", r.pfn_first, r.pfn_last);
  std::string extra = " " + r.kind;
  if (r.mapcount != 1 && r.kind != "zero-page") extra += fmt::format(" mapcount {}", r.mapcount);
  return fmt::format("{} va {:#x}..{:#x} -> {} {}{} | raw {:#018x} {}", idx, r.va, va_last, frames,
                     r.prot, extra, r.raw, bits);
}

void table_text(const Mm& mm, pfn_t table, Level level, vaddr_t base, int depth, bool shared,
                std::string& out) {
  const PageTable& pt = mm.pt();
  const PteFormat& f = pt.fmt();
  const std::string ind(static_cast<std::size_t>(2 * depth + 2), ' ');
  if (level == Level::Pte) {
    for (const Run& r : leaf_runs(mm, table, base))
      out += ind + run_text(mm, r) + "\n";
    return;
  }
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
    const pte_t e = pt.get(PteRef{table, i});
    if (f.none(e)) continue;
    const vaddr_t va = pt.entry_va(base, level, i);
    if (!f.is_table(e)) {
      out += fmt::format("{}{}[{}] raw {:#018x} {} (not a table entry)\n", ind, level_name(level),
                         i, e, f.decode(e, level));
      continue;
    }
    const Level cl = child_of(level);
    const pfn_t child = f.pfn(e);
    const vaddr_t last = table_last(cl, va);
    const bool sh = shared || (level == Level::Pgd && pt.kernel_entry(i));
    out += fmt::format("{}{}[{}] raw {:#018x} {} -> {} {:#x} va {:#x}..{:#x} used {}{}\n", ind,
                       level_name(level), i, e, f.decode(e, level), level_name(cl), child, va, last,
                       pt.nr_used_entries(child), span_info(mm, va, last, sh).note());
    table_text(mm, child, cl, va, depth + 1, sh, out);
  }
}

void table_json(const Mm& mm, pfn_t table, Level level, vaddr_t base, std::int64_t parent,
                bool shared, json& out) {
  const PageTable& pt = mm.pt();
  const PteFormat& f = pt.fmt();
  const vaddr_t last = table_last(level, base);
  const SpanInfo si = span_info(mm, base, last, shared);
  json t{{"pfn", hex(table)},
         {"level", level_name(level)},
         {"va_start", hex(base)},
         {"va_last", hex(last)},
         {"used", pt.nr_used_entries(table)},
         {"parent", parent < 0 ? json(nullptr) : json(hex(static_cast<pfn_t>(parent)))},
         {"has_vma", si.has_vma},
         {"arch_mappings", shared ? json::array() : json(si.arch)},
         {"arch_only", !shared && !si.has_vma && !si.arch.empty()}};
  if (shared) {
    t["kernel_half"] = true;  // init_mm's, shared by every mm
    t["kernel_half_ranges"] = si.arch;
  }
  struct Child {
    pfn_t table;
    vaddr_t va;
    bool shared;
  };
  std::vector<Child> children;
  if (level == Level::Pte) {
    json runs = json::array();
    for (const Run& r : leaf_runs(mm, table, base)) {
      runs.push_back(
          {{"first", r.first},
           {"last", r.last},
           {"va_start", hex(r.va)},
           {"va_last", hex(r.va + (static_cast<vaddr_t>(r.last - r.first + 1) << PAGE_SHIFT) - 1)},
           {"present", r.present},
           {"frame_first", hex(r.pfn_first)},
           {"frame_last", hex(r.pfn_last)},
           {"prot", r.prot},
           {"kind", r.kind},
           {"mapcount", r.mapcount},
           {"raw", hex(r.raw)},
           {"bits", f.decode(r.raw, Level::Pte)}});
      // For the HTML view: the first frame's refcount and, for frames mapped more than
      // once (shared after fork), every mapping rmap finds.
      json& jr = runs.back();
      const bool valid = r.present && mm.phys().valid_pfn(r.pfn_first);
      jr["refcount"] = valid ? mm.phys().desc(r.pfn_first).refcount : 0;
      if (valid && r.mapcount > 1 && r.kind != "zero-page") {
        bool truncated = false;
        jr["rmap"] = rmap_json(mm, r.pfn_first, r.pfn_last, r.pfn_first == r.pfn_last, truncated);
        if (truncated) jr["rmap_truncated"] = true;
      }
    }
    t["runs"] = std::move(runs);
  } else {
    json entries = json::array();
    for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
      const pte_t e = pt.get(PteRef{table, i});
      if (f.none(e)) continue;
      json je{{"index", i}, {"raw", hex(e)}, {"bits", f.decode(e, level)}};
      if (f.is_table(e)) {
        const bool sh = shared || (level == Level::Pgd && pt.kernel_entry(i));
        je["table"] = hex(f.pfn(e));
        if (sh) je["kernel_half"] = true;
        children.push_back(Child{f.pfn(e), pt.entry_va(base, level, i), sh});
      } else {
        je["table"] = nullptr;
      }
      entries.push_back(std::move(je));
    }
    t["entries"] = std::move(entries);
  }
  out.push_back(std::move(t));
  for (const Child& c : children)
    table_json(mm, c.table, child_of(level), c.va, static_cast<std::int64_t>(table), c.shared, out);
}

}  // namespace

std::string pgtables_text(const Mm& mm) {
  const PageTable& pt = mm.pt();
  std::string out =
      fmt::format("page tables of mm {} ({}): {} tables (pgd {}, pud {}, pmd {}, pte {})\n",
                  mm.id(), arch_name(mm.arch()), pt.nr_tables_total(), pt.nr_tables(Level::Pgd),
                  pt.nr_tables(Level::Pud), pt.nr_tables(Level::Pmd), pt.nr_tables(Level::Pte));
  std::size_t shared = 0;
  pt.for_each_kernel_table([&](pfn_t, Level, vaddr_t) { ++shared; });
  if (shared)
    out += fmt::format("  + {} shared kernel-half table{} (init_mm), not this mm's\n", shared,
                       shared == 1 ? "" : "s");
  out += fmt::format("  pgd {:#x} va 0x0..0xffffffffffffffff used {}\n", pt.pgd(),
                     pt.nr_used_entries(pt.pgd()));
  table_text(mm, pt.pgd(), Level::Pgd, 0, 1, false, out);
  for (const auto& a : pt.arch_mappings())
    out += fmt::format("  arch mapping {} va {:#x}..{:#x} (no VMA)\n", a.name, a.start, a.end - 1);
  for (const auto& t : pt.freed_in_use())
    out += "  " + freed_in_use_summary(t) + "\n";
  return out;
}

json pgtables_json(const Mm& mm) {
  const PageTable& pt = mm.pt();
  json tables = json::array();
  table_json(mm, pt.pgd(), Level::Pgd, 0, -1, false, tables);
  json arch = json::array();
  for (const auto& a : pt.arch_mappings())
    arch.push_back({{"name", a.name}, {"start", hex(a.start)}, {"end", hex(a.end)}});
  json freed = json::array();
  for (const auto& t : pt.freed_in_use())
    freed.push_back(t);
  std::size_t shared = 0;
  pt.for_each_kernel_table([&](pfn_t, Level, vaddr_t) { ++shared; });
  json out = {{"mm", mm.id()},
              {"arch", arch_name(mm.arch())},
              {"counts",
               {{"total", pt.nr_tables_total()},
                {"pgd", pt.nr_tables(Level::Pgd)},
                {"pud", pt.nr_tables(Level::Pud)},
                {"pmd", pt.nr_tables(Level::Pmd)},
                {"pte", pt.nr_tables(Level::Pte)}}},
              {"tables", tables},
              {"arch_mappings", arch},
              {"freed_in_use", freed}};
  // init_mm's tables reachable from this pgd (vsyscall=emulate), not counted above.
  if (shared) out["counts"]["kernel_half_shared"] = shared;
  return out;
}

}  // namespace mmemu::dump
