// The walker behind the CPU's TLB: fills from the page tables, resolves faults through the
// kernel's handler, and flushes the CPU on every PTE change.
#include "emu/cpu/walker_tlb.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "mmu/walker.hpp"

namespace mmemu {

namespace {

// What a TLB entry may allow: a writable entry that is not dirty yet allows no write, so
// the first write misses again and sets the dirty bit. Entries without the user bit
// (kernel-only arch pages) allow nothing. x86-64: PKRU takes away data access for the
// entry's protection key.
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
    case FaultResult::SegvGuard:
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

WalkerTlb::WalkerTlb(Cpu& cpu, Mm& mm) : cpu_(&cpu), mm_(&mm) {
  cpu.set_tlb_miss_handler(this);
  cpu.flush_tlb();  // nothing another mm left may survive
}

WalkerTlb::~WalkerTlb() {
  cpu_->set_tlb_miss_handler(nullptr);
  cpu_->flush_tlb();
}

std::optional<TlbFill> WalkerTlb::tlb_miss(vaddr_t va, Access access) {
  PageTable& pt = mm_->pt();
  const vaddr_t page = page_align_down(va);
  const bool was_dirty = [&] {
    if (access != Access::Write) return true;
    auto ref = pt.lookup(page);
    return !ref || pt.fmt().dirty(pt.get(*ref));
  }();
  auto t = walk(pt, page, access, /*set_ad=*/true);
  if (!t && fault_handler_ && t.error().kind != WalkFaultKind::NonCanonical) {
    TlbFaultOutcome o = fault_handler_(MemFault{va, access, 0});
    if (o.kind != TlbFaultOutcome::Kind::Retry) {
      outcome_ = o;
      ++stats_.refused;
      return std::nullopt;
    }
    ++stats_.hook_faults;
    t = walk(pt, page, access, /*set_ad=*/true);
  }
  if (!t) {
    ++stats_.refused;
    return std::nullopt;
  }
  const unsigned perms = entry_perms(pt, t->pte);
  if (!allows(perms, access)) {
    ++stats_.refused;
    return std::nullopt;
  }
  ++stats_.fills;
  if (tracking_) filled_.push_back(Filled{page, t->pfn, perms});
  if (on_event) on_event(TlbEvent{TlbEvent::Kind::Fill, page, page + PAGE_SIZE, t->pfn, perms});
  if (!was_dirty) {
    ++stats_.dirty_fills;
    if (on_event) on_event(TlbEvent{TlbEvent::Kind::Dirty, page, page + PAGE_SIZE, t->pfn, perms});
  }
  return TlbFill{t->pfn, perms};
}

pfn_t WalkerTlb::peek(vaddr_t va) {
  auto t = walk(mm_->pt(), page_align_down(va), Access::Exec, /*set_ad=*/false);
  return t ? t->pfn : kNoPfn;
}

std::optional<TlbFaultOutcome> WalkerTlb::take_outcome() {
  std::optional<TlbFaultOutcome> o = std::move(outcome_);
  outcome_.reset();
  return o;
}

TlbFaultOutcome WalkerTlb::resolve(const MemFault& f) {
  const vaddr_t page = page_align_down(f.va);
  PageTable& pt = mm_->pt();
  FaultResult last = FaultResult::Ok;
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto t = walk(pt, page, f.access, false);
    if (t) {
      // Valid now (a clean writable page counts as writable: the CPU's fill sets D).
      if (allows(entry_perms(pt, t->pte) | (t->prot.write ? unsigned{PERM_W} : 0U), f.access))
        return TlbFaultOutcome{};
      continue;  // valid for the walker, refused to the CPU (a kernel-only arch page)
    }
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
  }
  // The fault handler keeps answering Ok but the walk still fails: never seen in practice;
  // treat the access as a bad one rather than spinning.
  return {TlbFaultOutcome::Kind::Signal, 11, 1, f.va, last};
}

void WalkerTlb::flushed(vaddr_t start, vaddr_t end) {
  cpu_->flush_tlb();
  filled_.clear();
  ++stats_.flush_calls;
  if (on_event) on_event(TlbEvent{TlbEvent::Kind::Flush, start, end, 0, 0});
}

void WalkerTlb::flush_page(vaddr_t va) {
  const vaddr_t p = page_align_down(va);
  flushed(p, p + PAGE_SIZE);
}

void WalkerTlb::flush_range(vaddr_t start, vaddr_t end) {
  flushed(page_align_down(start), page_align_up(end));
}

void WalkerTlb::flush_all() {
  flushed(0, ~0ULL);
}

void WalkerTlb::set_tracking(bool on) {
  tracking_ = on;
  filled_.clear();
  cpu_->flush_tlb();  // so that every translation the CPU holds is one we saw
}

std::vector<std::string> WalkerTlb::verify() const {
  std::vector<std::string> out;
  const PageTable& pt = mm_->pt();
  const PteFormat& f = pt.fmt();
  for (const Filled& e : filled_) {
    auto ref = pt.lookup(e.page);
    const pte_t pte = ref ? pt.get(*ref) : 0;
    if (!ref || !f.present(pte)) {
      out.push_back(
          fmt::format("stale TLB entry {:#x}: no PTE (entry maps frame {:#x})", e.page, e.pfn));
      continue;
    }
    if (f.pfn(pte) != e.pfn)
      out.push_back(fmt::format("stale TLB entry {:#x}: maps frame {:#x}, PTE says {:#x}", e.page,
                                e.pfn, f.pfn(pte)));
    const unsigned allowed = entry_perms(pt, pte);
    if (e.perms & ~allowed)
      out.push_back(fmt::format("stale TLB entry {:#x}: allows {:#x}, PTE allows {:#x}", e.page,
                                e.perms, allowed));
  }
  return out;
}

// ---- TlbGroup ----

void TlbGroup::attach(WalkerTlb* t) {
  if (std::find(tlbs_.begin(), tlbs_.end(), t) == tlbs_.end()) tlbs_.push_back(t);
}

void TlbGroup::detach(WalkerTlb* t) {
  std::erase(tlbs_, t);
}

void TlbGroup::flush_page(vaddr_t va) {
  for (WalkerTlb* t : tlbs_)
    t->flush_page(va);
}

void TlbGroup::flush_range(vaddr_t start, vaddr_t end) {
  for (WalkerTlb* t : tlbs_)
    t->flush_range(start, end);
}

void TlbGroup::flush_all() {
  for (WalkerTlb* t : tlbs_)
    t->flush_all();
}

}  // namespace mmemu
