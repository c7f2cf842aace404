// The software TLB: refills Cpu regions from the page tables, keeps them coherent with
// every PTE change, and resolves faults through handle_mm_fault.
#include "emu/cpu/soft_tlb.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "mmu/walker.hpp"

namespace mmemu {

namespace {

// What a region may allow for an entry: a writable entry that is not dirty yet is mapped
// read-only so the first write comes back to set the dirty bit. Entries without the user
// bit (kernel-only arch pages) allow nothing.
// x86-64: PKRU takes away data access for the entry's protection key.
unsigned entry_perms(const PageTable& pt, pte_t e) {
  const PteFormat& f = pt.fmt();
  const PteProt p = f.prot(e);
  if (!p.user) return PERM_NONE;
  unsigned perms = 0;
  if (p.read && !pkey_denies(pt.pkru, p.pkey, Access::Read)) perms |= PERM_R;
  if (p.exec) perms |= PERM_X;
  if (p.write && f.dirty(e) && !pkey_denies(pt.pkru, p.pkey, Access::Write)) perms |= PERM_W;
  return perms;
}

bool allows(unsigned perms, Access a) {
  return (perms & (a == Access::Read ? PERM_R : a == Access::Write ? PERM_W : PERM_X)) != 0;
}

TlbFaultOutcome signal_outcome(FaultResult r, vaddr_t va, unsigned pkey) {
  TlbFaultOutcome o;
  o.result = r;
  switch (r) {
    case FaultResult::Ok:
      o.kind = TlbFaultOutcome::Kind::Retry;
      break;
    case FaultResult::SegvMapErr:
      o = {TlbFaultOutcome::Kind::Signal, 11, 1, va, r};
      break;
    case FaultResult::SegvAccErr:
      o = {TlbFaultOutcome::Kind::Signal, 11, 2, va, r};
      break;
    case FaultResult::SegvPkuErr:
      o = {TlbFaultOutcome::Kind::Signal, 11, 4, va, r, pkey};
      break;
    case FaultResult::SigBus:
      o = {TlbFaultOutcome::Kind::Signal, 7, 2, va, r};
      break;
    case FaultResult::Oom:
      o = {TlbFaultOutcome::Kind::Oom, 0, 0, va, r};
      break;
  }
  return o;
}

}  // namespace

SoftTlb::SoftTlb(Cpu& cpu, Mm& mm, std::size_t max_entries)
    : cpu_(&cpu), mm_(&mm), max_(std::max<std::size_t>(max_entries, 2)) {
  cpu.set_fault_handler([this](const MemFault& f) { return on_fault(f); });
}

SoftTlb::~SoftTlb() {
  cpu_->set_fault_handler(nullptr);
  for (const auto& [start, e] : entries_)
    (void)cpu_->unmap(start, e.end - start);
}

// The run of pages around va that one region can map: the translation of va itself (walked
// with `access`, setting A/D when set_ad), extended to neighbours in the same PTE table
// whose frames continue the run, that are already young (so the accessed bits stay
// truthful) and have the same effective permissions, stopping at existing entries.
std::optional<SoftTlb::Run> SoftTlb::translate_run(vaddr_t va, Access access, bool set_ad) {
  PageTable& pt = mm_->pt();
  const vaddr_t page = page_align_down(va);
  auto t = walk(pt, page, access, set_ad);
  if (!t) return std::nullopt;
  const PteFormat& f = pt.fmt();
  const unsigned perms = entry_perms(pt, t->pte);
  if (!allows(perms, access)) return std::nullopt;
  Run r{page, page + PAGE_SIZE, t->pfn, perms};
  if (!coalesce_) return r;

  // Existing entries bound the run on both sides.
  vaddr_t lo_bound = page & PMD_MASK;
  vaddr_t hi_bound = lo_bound + PMD_SIZE;
  auto next = entries_.upper_bound(page);
  if (next != entries_.end()) hi_bound = std::min(hi_bound, next->first);
  if (next != entries_.begin()) {
    auto prev = std::prev(next);
    lo_bound = std::max(lo_bound, prev->second.end);
  }
  auto fits = [&](unsigned idx, pfn_t want) {
    const pte_t e = pt.get(PteRef{t->ref.table, idx});
    return f.present(e) && !f.protnone(e) && f.young(e) && f.pfn(e) == want &&
           entry_perms(pt, e) == perms;
  };
  const unsigned idx = t->ref.index;
  for (unsigned i = idx; i > 0 && r.start - PAGE_SIZE >= lo_bound && r.start > lo_bound;) {
    --i;
    if (r.pfn == 0 || !fits(i, r.pfn - 1)) break;
    r.start -= PAGE_SIZE;
    r.pfn -= 1;
  }
  for (unsigned i = idx + 1; i < PTRS_PER_TABLE && r.end < hi_bound; ++i) {
    if (!fits(i, r.pfn + ((r.end - r.start) >> PAGE_SHIFT))) break;
    r.end += PAGE_SIZE;
  }
  return r;
}

// Evicts the oldest entry that may be unmapped now (inside a hook, not one near the running
// instruction). False when nothing can go.
bool SoftTlb::make_room(bool in_hook) {
  while (entries_.size() >= max_) {
    std::vector<std::pair<std::uint64_t, vaddr_t>> order;
    order.reserve(entries_.size());
    for (const auto& [start, e] : entries_)
      order.emplace_back(e.seq, start);
    std::sort(order.begin(), order.end());
    bool evicted = false;
    for (const auto& [seq, start] : order) {
      const Entry e = entries_.at(start);
      auto r = cpu_->unmap(start, e.end - start);
      if (!r) {
        if (in_hook && r.error().code == EBUSY) continue;
        return false;
      }
      entries_.erase(start);
      ++stats_.evictions;
      if (on_event) on_event(TlbEvent{TlbEvent::Kind::Evict, e.start, e.end, e.pfn, e.perms, 1});
      evicted = true;
      break;
    }
    if (!evicted) return false;
  }
  return true;
}

bool SoftTlb::refill(const Run& r, bool in_hook) {
  if (!make_room(in_hook)) return false;
  std::uint8_t* host = mm_->phys().frame(r.pfn);
  if (auto m = cpu_->map(r.start, r.end - r.start, host, r.perms); !m) return false;
  entries_.emplace(r.start, Entry{r.start, r.end, r.pfn, r.perms, ++seq_});
  ++stats_.refills;
  stats_.refill_pages += (r.end - r.start) >> PAGE_SHIFT;
  if (on_event) on_event(TlbEvent{TlbEvent::Kind::Refill, r.start, r.end, r.pfn, r.perms, 0});
  return true;
}

FaultAction SoftTlb::on_fault(const MemFault& f) {
  const vaddr_t page = page_align_down(f.va);
  // A miss on a page one of our regions covers (the first write to a clean writable page)
  // is served outside the hook: replacing the region being accessed from inside its own
  // hook let Unicorn 2.0.1 finish the store through a flushed TLB entry, i.e. at the guest
  // address taken as a host pointer (found by the mm_random guest corrupting ld.so).
  auto cur = entries_.upper_bound(page);
  if (cur != entries_.begin() && std::prev(cur)->second.end > page) {
    ++stats_.hook_stops;
    return FaultAction::Stop;
  }
  // Walk without side effects first: if this needs the fault handler, nothing changes here.
  if (!walk(mm_->pt(), page, f.access, false)) {
    ++stats_.hook_stops;
    return FaultAction::Stop;
  }
  auto run = translate_run(page, f.access, true);
  if (!run || !refill(*run, true)) {
    ++stats_.hook_stops;
    return FaultAction::Stop;
  }
  ++stats_.hook_retries;
  return FaultAction::Retry;
}

TlbFaultOutcome SoftTlb::resolve(const MemFault& f) {
  const vaddr_t page = page_align_down(f.va);
  PageTable& pt = mm_->pt();
  FaultResult last = FaultResult::Ok;
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto t = walk(pt, page, f.access, false);
    if (!t) {
      if (t.error().kind == WalkFaultKind::NonCanonical) {
        // #GP on x86-64: SIGSEGV, SI_KERNEL, si_addr 0.
        return {TlbFaultOutcome::Kind::Signal, 11, 0x80, 0, FaultResult::SegvMapErr};
      }
      ++stats_.mm_faults;
      last = handle_mm_fault(*mm_, f.va, f.access);
      if (last != FaultResult::Ok) {
        const Vma* vma = mm_->find_vma(f.va);
        return signal_outcome(last, f.va, vma ? vma_pkey(vma->vm_flags) : 0);
      }
      continue;
    }
    // Valid now: replace whatever entry covers the page (a dirty upgrade), then refill.
    if (auto cur = entries_.upper_bound(page);
        cur != entries_.begin() && std::prev(cur)->second.end > page)
      ++stats_.dirty_upgrades;
    drop_range(page, page + PAGE_SIZE, TlbEvent::Kind::Dirty);
    auto run = translate_run(page, f.access, true);
    if (!run) continue;
    if (!refill(*run, false)) break;
    return TlbFaultOutcome{};
  }
  // The fault handler keeps answering Ok but the walk still fails: never seen in practice;
  // treat the access as a bad one rather than spinning.
  return {TlbFaultOutcome::Kind::Signal, 11, 1, f.va, last};
}

void SoftTlb::drop_range(vaddr_t start, vaddr_t end, TlbEvent::Kind why) {
  if (entries_.empty() || start >= end) return;
  auto it = entries_.upper_bound(start);
  if (it != entries_.begin() && std::prev(it)->second.end > start) --it;
  std::size_t dropped = 0;
  while (it != entries_.end() && it->first < end) {
    const Entry e = it->second;
    auto r = cpu_->unmap(e.start, e.end - e.start);
    if (!r) {
      // Only possible inside a hook near the running code, where no flush may happen; a
      // stale entry would be a correctness bug, so make it loud.
      fmt::print(stderr, "mmemu: internal error: cannot drop TLB entry {:#x}-{:#x}: {}\n", e.start,
                 e.end, errno_name(r.error().code));
      std::abort();
    }
    it = entries_.erase(it);
    ++dropped;
  }
  if (why == TlbEvent::Kind::Flush) {
    ++stats_.flush_calls;
    stats_.entries_flushed += dropped;
    if (on_event) on_event(TlbEvent{TlbEvent::Kind::Flush, start, end, 0, 0, dropped});
  }
}

void SoftTlb::flush_page(vaddr_t va) {
  const vaddr_t p = page_align_down(va);
  drop_range(p, p + PAGE_SIZE, TlbEvent::Kind::Flush);
}

void SoftTlb::flush_range(vaddr_t start, vaddr_t end) {
  drop_range(page_align_down(start), page_align_up(end), TlbEvent::Kind::Flush);
}

void SoftTlb::flush_all() {
  drop_range(0, ~0ULL, TlbEvent::Kind::Flush);
}

std::vector<SoftTlb::Entry> SoftTlb::entries() const {
  std::vector<Entry> v;
  v.reserve(entries_.size());
  for (const auto& [start, e] : entries_)
    v.push_back(e);
  return v;
}

std::vector<std::string> SoftTlb::verify() const {
  std::vector<std::string> out;
  const PageTable& pt = mm_->pt();
  const PteFormat& f = pt.fmt();
  for (const auto& [start, e] : entries_) {
    for (vaddr_t va = e.start; va < e.end; va += PAGE_SIZE) {
      const pfn_t want = e.pfn + ((va - e.start) >> PAGE_SHIFT);
      auto ref = pt.lookup(va);
      const pte_t pte = ref ? pt.get(*ref) : 0;
      if (!ref || !f.present(pte)) {
        out.push_back(
            fmt::format("stale TLB entry {:#x}: no PTE (entry maps frame {:#x})", va, want));
        continue;
      }
      if (f.pfn(pte) != want)
        out.push_back(fmt::format("stale TLB entry {:#x}: maps frame {:#x}, PTE says {:#x}", va,
                                  want, f.pfn(pte)));
      const unsigned allowed = entry_perms(pt, pte);
      if (e.perms & ~allowed)
        out.push_back(fmt::format("stale TLB entry {:#x}: allows {:#x}, PTE allows {:#x}", va,
                                  e.perms, allowed));
    }
  }
  return out;
}

// ---- TlbGroup ----

void TlbGroup::attach(SoftTlb* t) {
  if (std::find(tlbs_.begin(), tlbs_.end(), t) == tlbs_.end()) tlbs_.push_back(t);
}

void TlbGroup::detach(SoftTlb* t) {
  std::erase(tlbs_, t);
}

void TlbGroup::flush_page(vaddr_t va) {
  for (SoftTlb* t : tlbs_)
    t->flush_page(va);
}

void TlbGroup::flush_range(vaddr_t start, vaddr_t end) {
  for (SoftTlb* t : tlbs_)
    t->flush_range(start, end);
}

void TlbGroup::flush_all() {
  for (SoftTlb* t : tlbs_)
    t->flush_all();
}

}  // namespace mmemu
