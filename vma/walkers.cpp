#include "vma/walkers.hpp"

#include <fmt/format.h>

#include "mmu/mmu_gather.hpp"
#include "vma/file.hpp"
#include "vma/rmap.hpp"
#include "vma/unmap.hpp"

namespace mmemu {

namespace {

constexpr std::string_view kind_name(WalkerKind k) {
  return k == WalkerKind::UnuseMm ? "unuse_mm" : k == WalkerKind::OomReaper ? "oom_reaper" : "rmap";
}

std::string marker_text(const MapleTree::Entry& e) {
  return fmt::format("XA_ZERO_ENTRY [{:#x}, {:#x}]", e.first, e.last);
}

// The VMA iterator of a walker that trusts the tree (for_each_vma): every entry in order,
// handed to fn until fn returns false. A marker ends the walk with met-xa-zero: where the
// kernel would dereference 0x406 as a vm_area_struct, mmemu reports it instead.
template <class Fn>
void for_each_entry(Mm& mm, WalkerReport& rep, Fn fn) {
  for (auto e = mm.mm_mt.find(0); e; e = mm.mm_mt.find(e->last + 1)) {
    if (MapleTree::is_zero_entry(e->value)) {
      rep.outcome = "met-xa-zero";
      rep.addr = e->first;
      rep.addr_last = e->last;
      rep.entry = marker_text(*e);
      return;
    }
    auto* vma = static_cast<Vma*>(e->value);
    ++rep.vmas_seen;
    if (!fn(*vma)) return;
    if (e->last == MapleTree::kMax) break;
  }
  rep.outcome = rep.vmas_seen ? "walked" : "empty-tree";
}

class WalkerBase : public ConcurrentWalker {
 public:
  WalkerBase(WalkerKind kind, bool checks) : kind_(kind), checks_(checks) {}
  std::string name() const override {
    return std::string(kind_name(kind_)) + (checks_ ? "" : "-nocheck");
  }

 protected:
  WalkerReport start(const Mm& mm, std::string ref) const {
    WalkerReport r;
    r.walker = name();
    r.checks = checks_;
    r.mm_users = mm.mm_users;
    r.mm_count = mm.mm_count;
    r.ref = std::move(ref);
    return r;
  }
  WalkerKind kind_;
  bool checks_;
};

// swapoff: try_to_unuse takes each mm on the swap mmlist with mmget_not_zero, unuse_mm
// (check_stable_address_space in the checking variant) visits every VMA with an anon_vma,
// then mmput. An mm whose users are gone is passed over.
class UnuseMmWalker final : public WalkerBase {
 public:
  explicit UnuseMmWalker(bool checks) : WalkerBase(WalkerKind::UnuseMm, checks) {}
  WalkerReport walk(Mm& mm, Mm& /*parent*/) override {
    WalkerReport rep = start(mm, "mmget_not_zero");
    if (!mmget_not_zero(mm)) {
      rep.outcome = "no-mm-users";
      return rep;
    }
    if (checks_ && (mm.flags & MMF_UNSTABLE)) {
      rep.outcome = "skipped-unstable";
    } else {
      // unuse_vma would look for swap entries under VMAs with an anon_vma; mmemu has no
      // swap, so visiting them is the whole walk.
      for_each_entry(mm, rep, [](Vma&) { return true; });
    }
    // Not the last user at either point (dup_mm still holds its use at the lock drop, and
    // mmget_not_zero failed in exit_mmap), so this never runs exit_mmap itself.
    (void)mmput(mm);
    return rep;
  }
};

// The OOM reaper: mark_oom_victim grabbed the struct (mm_count); oom_reap_task_mm then tests
// MMF_OOM_SKIP under the read lock (checking variant), __oom_reap_task_mm marks the mm
// MMF_UNSTABLE and unmaps every private or anonymous VMA's pages, oom_reap_task sets
// MMF_OOM_SKIP; the grab is dropped with the victim's signal struct.
class OomReaperWalker final : public WalkerBase {
 public:
  explicit OomReaperWalker(bool checks) : WalkerBase(WalkerKind::OomReaper, checks) {}
  WalkerReport walk(Mm& mm, Mm& /*parent*/) override {
    WalkerReport rep = start(mm, "mmgrab");
    mmgrab(mm);
    if (checks_ && (mm.flags & MMF_OOM_SKIP)) {
      rep.outcome = "skipped-oom-skip";
    } else {
      mm.flags |= MMF_UNSTABLE;
      {
        MmuGather tlb(mm.pt(), &mm.tlb());
        for_each_entry(mm, rep, [&](Vma& vma) {
          if (vma.vm_flags & VM_PFNMAP) return true;
          if (vma.is_anonymous() || !(vma.vm_flags & VM_SHARED)) {
            const std::uint64_t before = tlb.pages_freed() + tlb.pending_pages();
            unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end, /*drop_markers=*/false);
            rep.pages_reaped += tlb.pages_freed() + tlb.pending_pages() - before;
          }
          return true;
        });
        tlb.finish();
      }
      if (rep.outcome != "met-xa-zero") mm.flags |= MMF_OOM_SKIP;
    }
    // The users (or exit_mmap's caller) still hold their mm_count: never the last.
    (void)mmdrop(mm);
    return rep;
  }
};

// The VMAs an rmap walk of pfn visits, in order: the chains of the frame's anon_vma, or the
// file's i_mmap, keeping those whose range holds the frame's index (the interval tree's
// query). Empty for a frame with no mapping.
std::vector<Vma*> rmap_vmas(const PageDesc& d, std::string* via) {
  std::vector<Vma*> out;
  auto covers = [&d](const Vma* v) {
    return d.index >= v->vm_pgoff && d.index - v->vm_pgoff < v->pages();
  };
  if ((d.flags & PG_anon) && d.mapping) {
    const auto* av = static_cast<const AnonVma*>(d.mapping);
    if (via) *via = fmt::format("anon_vma #{}", anon_vma_id(av));
    for (const AnonVmaChain* avc : av->chains)
      if (covers(avc->vma)) out.push_back(avc->vma);
  } else if ((d.flags & PG_pagecache) && d.mapping) {
    const auto* f = static_cast<const File*>(d.mapping);
    if (via) *via = fmt::format("i_mmap of {}", f->name());
    for (Vma* v : f->i_mmap)
      if (covers(v)) out.push_back(v);
  }
  return out;
}

class RmapWalker final : public WalkerBase {
 public:
  RmapWalker(bool checks, std::optional<pfn_t> start)
      : WalkerBase(WalkerKind::Rmap, checks), start_(start) {}
  WalkerReport walk(Mm& mm, Mm& parent) override {
    WalkerReport rep = start(mm, "none");
    PhysMem& phys = parent.phys();
    std::optional<pfn_t> from = start_;
    if (!from) from = first_shared_frame(mm, parent);
    if (!from) {
      rep.outcome = "unreachable";
      rep.entry = "no frame of the parent leads to a VMA of this mm";
      return rep;
    }
    rep.via_pfn = *from;
    const PageDesc& d = phys.desc(*from);
    bool met_child = false, skipped = false;
    for (Vma* vma : rmap_vmas(d, &rep.via)) {
      Mm& vm = *vma->vm_mm;
      RmapVisit v;
      v.mm = vm.id();
      v.child = &vm == &mm;
      v.mm_flags = vm.flags;
      v.tree_empty = vm.mm_mt.count() == 0;
      v.vm_start = vma->vm_start;
      v.vm_end = vma->vm_end;
      v.addr = vma->vm_start + ((d.index - vma->vm_pgoff) << PAGE_SHIFT);
      if (checks_ && (vm.flags & MMF_UNSTABLE)) {
        skipped = skipped || v.child;
      } else {
        // page_vma_mapped_walk: the PTE at that address in that VMA's mm.
        v.looked = true;
        met_child = met_child || v.child;
        if (auto ref = vm.pt().lookup(v.addr)) {
          v.has_table = true;
          const pte_t e = vm.pt().get(*ref);
          v.present = vm.fmt().present(e);
          if (v.present) v.pfn = vm.fmt().pfn(e);
        }
      }
      rep.visits.push_back(v);
    }
    rep.vmas_seen = static_cast<int>(rep.visits.size());
    rep.outcome = met_child ? "met-child-vma" : skipped ? "skipped-unstable" : "unreachable";
    return rep;
  }

 private:
  // The starting folio: the first frame the parent maps (address order) that mm maps too
  // through a VMA linked in the frame's rmap (a COW-shared page); failing that (mm's PTEs
  // are gone, as in exit_mmap's window), the first whose rmap links a VMA of mm at all.
  static std::optional<pfn_t> first_shared_frame(const Mm& mm, Mm& parent) {
    std::optional<pfn_t> shared, linked;
    const PteFormat& fmt = parent.fmt();
    parent.pt().for_each_pte(0, parent.task_size, [&](vaddr_t, PteRef, pte_t e) {
      if (shared || !fmt.present(e)) return;
      const pfn_t pfn = fmt.pfn(e);
      const PageDesc& d = parent.phys().desc(pfn);
      for (const Vma* v : rmap_vmas(d, nullptr)) {
        if (v->vm_mm != &mm) continue;
        if (!linked) linked = pfn;
        const vaddr_t a = v->vm_start + ((d.index - v->vm_pgoff) << PAGE_SHIFT);
        const auto ref = mm.pt().lookup(a);
        if (ref && mm.fmt().present(mm.pt().get(*ref)) && mm.fmt().pfn(mm.pt().get(*ref)) == pfn) {
          shared = pfn;
          return;
        }
      }
    });
    return shared ? shared : linked;
  }
  std::optional<pfn_t> start_;
};

}  // namespace

std::unique_ptr<ConcurrentWalker> make_walker(WalkerKind kind, bool checks) {
  switch (kind) {
    case WalkerKind::UnuseMm:
      return std::make_unique<UnuseMmWalker>(checks);
    case WalkerKind::OomReaper:
      return std::make_unique<OomReaperWalker>(checks);
    case WalkerKind::Rmap:
      return std::make_unique<RmapWalker>(checks, std::nullopt);
  }
  return nullptr;
}

std::unique_ptr<ConcurrentWalker> make_rmap_walker(bool checks, pfn_t start) {
  return std::make_unique<RmapWalker>(checks, start);
}

std::optional<std::pair<WalkerKind, bool>> parse_walker(std::string_view name) {
  bool checks = true;
  if (name.ends_with("-nocheck")) {
    checks = false;
    name.remove_suffix(std::string_view("-nocheck").size());
  }
  for (WalkerKind k : {WalkerKind::UnuseMm, WalkerKind::OomReaper, WalkerKind::Rmap})
    if (kind_name(k) == name) return std::pair{k, checks};
  return std::nullopt;
}

}  // namespace mmemu
