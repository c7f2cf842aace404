#include "mmu/page_table.hpp"

#include <algorithm>

#include "mmu/free_pgd_range.hpp"
#include "mmu/mmu_gather.hpp"

namespace mmemu {

namespace {
constexpr std::size_t lvl(Level l) {
  return static_cast<std::size_t>(l);
}
}  // namespace

PageTable::PageTable(PhysMem& phys, Arch arch, pfn_t pgd)
    : phys_(&phys), arch_(arch), fmt_(&pte_format(arch)), pgd_(pgd) {}

Result<std::unique_ptr<PageTable>> PageTable::create(PhysMem& phys, Arch arch,
                                                     const PageTable* kernel) {
  const AllocCaller caller(phys.injector(), "pgd_alloc");
  auto pgd = phys.alloc_frame(AllocSite::PgTable);
  if (!pgd) return std::unexpected(pgd.error());
  std::unique_ptr<PageTable> pt(new PageTable(phys, arch, *pgd));
  if (kernel && arch == Arch::X86_64 && kernel->arch() == arch) {
    for (unsigned i = PTRS_PER_TABLE / 2; i < PTRS_PER_TABLE; ++i) {
      const pte_t e = phys.load_entry(kernel->pgd(), i);
      if (pt->fmt_->none(e)) continue;
      phys.store_entry(*pgd, i, e);
      pt->kernel_.emplace_back(i, pt->fmt_->pfn(e));
    }
  }
  return pt;
}

bool PageTable::kernel_entry(unsigned idx) const {
  for (const auto& [i, table] : kernel_) {
    if (i != idx) continue;
    const pte_t e = phys_->load_entry(pgd_, idx);
    return fmt_->is_table(e) && fmt_->pfn(e) == table;
  }
  return false;
}

void PageTable::for_each_kernel_table(const std::function<void(pfn_t, Level, vaddr_t)>& fn) const {
  for (const auto& [i, table] : kernel_)
    if (kernel_entry(i)) visit_tables(table, Level::Pud, entry_va(0, Level::Pgd, i), fn);
}

PageTable::~PageTable() {
  phys_->put_page(pgd_);
}

std::size_t PageTable::nr_tables_total() const {
  std::size_t n = 0;
  for (auto v : nr_tables_)
    n += v;
  return n;
}

vaddr_t PageTable::entry_va(vaddr_t table_base, Level level, unsigned idx) const {
  vaddr_t va = table_base + (static_cast<vaddr_t>(idx) << level_shift(level));
  if (arch_ == Arch::X86_64 && level == Level::Pgd && idx >= PTRS_PER_TABLE / 2)
    va |= 0xffff000000000000ULL;
  return va;
}

std::optional<pfn_t> PageTable::table_for(vaddr_t va, Level level) const {
  pfn_t t = pgd_;
  for (Level l = Level::Pgd; l != level; l = next_level(l)) {
    const pte_t e = phys_->load_entry(t, table_index(va, l));
    if (!fmt_->is_table(e)) return std::nullopt;
    t = fmt_->pfn(e);
  }
  return t;
}

std::optional<PteRef> PageTable::lookup(vaddr_t va) const {
  const auto t = table_for(va, Level::Pte);
  if (!t) return std::nullopt;
  return PteRef{*t, table_index(va, Level::Pte)};
}

Result<PteRef> PageTable::alloc(vaddr_t va) {
  return alloc_impl(va, nullptr);
}

Result<PteRef> PageTable::alloc_impl(vaddr_t va, std::vector<NewTable>* created) {
  auto t = alloc_down_to(va, Level::Pte, created);
  if (!t) return std::unexpected(t.error());
  return PteRef{*t, table_index(va, Level::Pte)};
}

Result<pfn_t> PageTable::alloc_table(vaddr_t va, Level level) {
  if (level == Level::Pgd) return pgd_;
  return alloc_down_to(va, level, nullptr);
}

Result<pfn_t> PageTable::alloc_down_to(vaddr_t va, Level level, std::vector<NewTable>* created) {
  pfn_t t = pgd_;
  for (Level l = Level::Pgd; l != level; l = next_level(l)) {
    const unsigned idx = table_index(va, l);
    const pte_t e = phys_->load_entry(t, idx);
    if (fmt_->none(e)) {
      const Level below = next_level(l);
      const AllocCaller caller(phys_->injector(),
                               below == Level::Pud   ? "__pud_alloc"
                               : below == Level::Pmd ? "__pmd_alloc"
                                                     : "__pte_alloc",
                               va);
      auto child = phys_->alloc_frame(AllocSite::PgTable);
      if (!child) return std::unexpected(child.error());
      phys_->store_entry(t, idx, fmt_->mk_table(*child));
      ++nr_tables_[lvl(next_level(l))];
      if (created) created->push_back(NewTable{t, idx, next_level(l), *child});
      t = *child;
    } else if (fmt_->is_table(e)) {
      t = fmt_->pfn(e);
    } else {
      return fail(EEXIST);  // a block/huge leaf where a table belongs: never built by mmemu
    }
  }
  return t;
}

void PageTable::detach_table(pfn_t parent, unsigned idx, Level child_level, vaddr_t va,
                             MmuGather& tlb) {
  const pfn_t child = fmt_->pfn(phys_->load_entry(parent, idx));
  phys_->store_entry(parent, idx, 0);
  --nr_tables_[lvl(child_level)];
  tlb.free_table(child, child_level, va);
}

unsigned PageTable::nr_used_entries(pfn_t table) const {
  unsigned n = 0;
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i)
    if (!fmt_->none(phys_->load_entry(table, i))) ++n;
  return n;
}

void PageTable::collect_live(pfn_t table, Level level, vaddr_t base,
                             std::vector<LiveEntry>& out) const {
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
    const pte_t e = phys_->load_entry(table, i);
    if (fmt_->none(e)) continue;
    const vaddr_t va = entry_va(base, level, i);
    if (level == Level::Pte) {
      const bool present = fmt_->present(e);
      out.push_back(LiveEntry{
          va, level, e, present ? fmt_->pfn(e) : 0, present, fmt_->is_guard_marker(e), {}});
    } else if (fmt_->is_table(e)) {
      out.push_back(LiveEntry{va, level, e, fmt_->pfn(e), true, false, {}});
      collect_live(fmt_->pfn(e), next_level(level), va, out);
    }
  }
}

void PageTable::release_subtree(pfn_t table, Level level, vaddr_t base, MmuGather& tlb) {
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
    const pte_t e = phys_->load_entry(table, i);
    if (fmt_->none(e)) continue;
    const vaddr_t va = entry_va(base, level, i);
    if (level != Level::Pte) {
      if (fmt_->is_table(e)) release_subtree(fmt_->pfn(e), next_level(level), va, tlb);
      detach_table(table, i, next_level(level), va, tlb);
      continue;
    }
    phys_->store_entry(table, i, 0);
    tlb.track(va, va + PAGE_SIZE);
    if (!fmt_->present(e) || fmt_->pfn(e) == phys_->zero_pfn()) continue;
    // What the mm did not account for (an arch mapping, a page of no VMA): the mapping and
    // the reference go as unmap_arch_pages lets them go.
    PageDesc& d = phys_->desc(fmt_->pfn(e));
    if (--d.mapcount == 0) d.flags &= ~PG_arch;
    tlb.remove_page(fmt_->pfn(e), va);
  }
}

void PageTable::release_in_use(pfn_t table, Level level, vaddr_t base, const FreePgdRangeArgs& args,
                               MmuGather& tlb) {
  FreedInUseTable rec{.mm = mm_id,
                      .arch = arch_,
                      .level = level,
                      .table = table,
                      .start = base,
                      .end = base + entry_span(level) * PTRS_PER_TABLE,
                      .args = args,
                      .entries = {},
                      .chain = {"free_pgd_range"}};
  collect_live(table, level, base, rec.entries);
  for (auto it = call_chain.rbegin(); it != call_chain.rend(); ++it)
    rec.chain.emplace_back(*it);
  if (on_free_in_use) on_free_in_use(rec, tlb);
  release_subtree(table, level, base, tlb);
  freed_in_use_.push_back(std::move(rec));
}

void PageTable::visit_ptes(pfn_t table, Level level, vaddr_t base, vaddr_t start, vaddr_t last,
                           const std::function<void(vaddr_t, PteRef, pte_t)>& fn) const {
  // Only the slots that can meet [start, last]: entry addresses grow with the index, so they
  // are one run. At the top level that holds while last stays below the canonical hole.
  unsigned lo = 0;
  unsigned hi = PTRS_PER_TABLE - 1;
  const vaddr_t top = level == Level::Pgd ? ~0ULL : base + (entry_span(level) * PTRS_PER_TABLE - 1);
  const unsigned va_bits = arch_ == Arch::X86_64 ? 47 : 48;
  if (level != Level::Pgd || last < (1ULL << va_bits)) {
    if (start > base) lo = table_index(start, level);
    if (last < top) hi = table_index(last, level);
  }
  for (unsigned i = lo; i <= hi; ++i) {
    const vaddr_t va = entry_va(base, level, i);
    if (va > last || va + (entry_span(level) - 1) < start) continue;
    const pte_t e = phys_->load_entry(table, i);
    if (fmt_->none(e)) continue;
    if (level == Level::Pgd && kernel_entry(i)) continue;  // init_mm's
    if (level == Level::Pte) {
      fn(va, PteRef{table, i}, e);
    } else if (fmt_->is_table(e)) {
      visit_ptes(fmt_->pfn(e), next_level(level), va, start, last, fn);
    }
  }
}

void PageTable::for_each_pte(vaddr_t start, vaddr_t end,
                             const std::function<void(vaddr_t, PteRef, pte_t)>& fn) const {
  if (end <= start) return;
  visit_ptes(pgd_, Level::Pgd, 0, start, end - 1, fn);
}

void PageTable::visit_tables(pfn_t table, Level level, vaddr_t base,
                             const std::function<void(pfn_t, Level, vaddr_t)>& fn) const {
  fn(table, level, base);
  if (level == Level::Pte) return;
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
    const pte_t e = phys_->load_entry(table, i);
    if (fmt_->none(e) || !fmt_->is_table(e)) continue;
    if (level == Level::Pgd && kernel_entry(i)) continue;  // init_mm's
    visit_tables(fmt_->pfn(e), next_level(level), entry_va(base, level, i), fn);
  }
}

void PageTable::for_each_table(const std::function<void(pfn_t, Level, vaddr_t)>& fn) const {
  visit_tables(pgd_, Level::Pgd, 0, fn);
}

// --- arch mappings ---

const ArchMapping* PageTable::arch_mapping_at(vaddr_t va) const {
  for (const auto& m : arch_maps_)
    if (m.start <= va && va < m.end) return &m;
  return nullptr;
}

Result<void> PageTable::map_arch_pages(vaddr_t start, const std::vector<pfn_t>& frames,
                                       PteProt prot, std::string name) {
  if (!page_aligned(start) || frames.empty()) return fail(EINVAL);
  const vaddr_t end = start + frames.size() * PAGE_SIZE;
  if (end != 0 && end <= start) return fail(EINVAL);  // end 0: reaches the top exactly
  const vaddr_t last = end - 1;
  for (const auto& m : arch_maps_)
    if (m.start <= last && start <= m.end - 1) return fail(EEXIST);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto ref = lookup(start + i * PAGE_SIZE);
    if (ref && !fmt_->none(get(*ref))) return fail(EEXIST);
  }

  std::vector<NewTable> created;
  std::vector<PteRef> set_refs;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto ref = alloc_impl(start + i * PAGE_SIZE, &created);
    if (!ref) {
      // Undo: nothing of this call may stay visible, and its tables would belong to no VMA
      // that free_pgtables could ever reclaim them with.
      for (const PteRef& r : set_refs)
        set(r, 0);
      for (std::size_t k = 0; k < set_refs.size(); ++k) {
        PageDesc& d = phys_->desc(frames[k]);
        if (--d.mapcount == 0) d.flags &= ~PG_arch;
      }
      for (auto it = created.rbegin(); it != created.rend(); ++it) {
        if (nr_used_entries(it->table) != 0) continue;
        phys_->store_entry(it->parent, it->idx, 0);
        --nr_tables_[lvl(it->level)];
        phys_->put_page(it->table);
      }
      return std::unexpected(ref.error());
    }
    set(*ref, fmt_->mkyoung(fmt_->mk_pte(frames[i], prot)));
    set_refs.push_back(*ref);
    PageDesc& d = phys_->desc(frames[i]);
    ++d.mapcount;
    d.flags |= PG_arch;
  }
  arch_maps_.push_back(ArchMapping{start, end, prot, std::move(name)});
  std::sort(arch_maps_.begin(), arch_maps_.end(),
            [](const ArchMapping& a, const ArchMapping& b) { return a.start < b.start; });
  return {};
}

void PageTable::unmap_arch_pages(MmuGather& tlb) {
  CallFrame frame(*this, "unmap_arch_pages");
  for (const auto& m : arch_maps_) {
    for (vaddr_t va = m.start; va != m.end; va += PAGE_SIZE) {
      const auto ref = lookup(va);
      if (!ref) continue;
      const pte_t e = get(*ref);
      if (!fmt_->present(e)) continue;
      set(*ref, 0);
      const pfn_t pfn = fmt_->pfn(e);
      PageDesc& d = phys_->desc(pfn);
      if (--d.mapcount == 0) d.flags &= ~PG_arch;
      tlb.remove_page(pfn, va);
    }
  }
  for (const auto& m : arch_maps_)
    free_pgd_range(tlb, m.start, m.end, 0, 0);
  arch_maps_.clear();
}

}  // namespace mmemu
