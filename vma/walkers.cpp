#include "vma/walkers.hpp"

#include <fmt/format.h>

#include "mmu/mmu_gather.hpp"
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

// The VMA iterator of a walker that trusts the tree: every entry from `from` on, in order,
// handed to fn until fn returns false. A marker ends the walk with met-xa-zero: where the
// kernel would dereference 0x406 as a vm_area_struct, mmemu reports it instead.
template <class Fn>
void for_each_entry(Mm& mm, vaddr_t from, WalkerReport& rep, Fn fn) {
  for (auto e = mm.mm_mt.find(from); e; e = mm.mm_mt.find(e->last + 1)) {
    if (MapleTree::is_zero_entry(e->value)) {
      rep.outcome = "met-xa-zero";
      rep.addr = e->first;
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
  WalkerReport start() const {
    WalkerReport r;
    r.walker = name();
    r.checks = checks_;
    return r;
  }
  WalkerKind kind_;
  bool checks_;
};

// swapoff's unuse_mm: check_stable_address_space(), then every VMA with an anon_vma.
class UnuseMmWalker final : public WalkerBase {
 public:
  explicit UnuseMmWalker(bool checks) : WalkerBase(WalkerKind::UnuseMm, checks) {}
  WalkerReport walk(Mm& mm, Mm& /*parent*/) override {
    WalkerReport rep = start();
    if (checks_ && (mm.flags & MMF_UNSTABLE)) {
      rep.outcome = "skipped-unstable";
      return rep;
    }
    // unuse_vma would look for swap entries under VMAs with an anon_vma; mmemu has no swap,
    // so visiting them is the whole walk.
    for_each_entry(mm, 0, rep, [](Vma&) { return true; });
    return rep;
  }
};

// The OOM reaper: skips an mm marked MMF_OOM_SKIP, otherwise marks it MMF_UNSTABLE and
// unmaps every private or anonymous VMA's pages, then sets MMF_OOM_SKIP when done.
class OomReaperWalker final : public WalkerBase {
 public:
  explicit OomReaperWalker(bool checks) : WalkerBase(WalkerKind::OomReaper, checks) {}
  WalkerReport walk(Mm& mm, Mm& /*parent*/) override {
    WalkerReport rep = start();
    if (checks_ && (mm.flags & MMF_OOM_SKIP)) {
      rep.outcome = "skipped-oom-skip";
      return rep;
    }
    mm.flags |= MMF_UNSTABLE;
    {
      MmuGather tlb(mm.pt(), &mm.tlb());
      for_each_entry(mm, 0, rep, [&](Vma& vma) {
        if (vma.vm_mm != &mm) return false;  // never reached: the marker stops the walk first
        if (vma.vm_flags & VM_PFNMAP) return true;
        if (vma.is_anonymous() || !(vma.vm_flags & VM_SHARED)) {
          const std::uint64_t before = tlb.pages_freed() + tlb.pending_pages();
          unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end);
          rep.pages_reaped += tlb.pages_freed() + tlb.pending_pages() - before;
        }
        return true;
      });
      tlb.finish();
    }
    if (rep.outcome != "met-xa-zero") mm.flags |= MMF_OOM_SKIP;
    return rep;
  }
};

// An rmap walk from a frame the parent maps and shares with this mm: it reaches the mm
// through a successfully copied VMA, then (like any walker that went on from that VMA to
// its neighbours) follows the mm's tree from there.
class RmapWalker final : public WalkerBase {
 public:
  explicit RmapWalker(bool checks) : WalkerBase(WalkerKind::Rmap, checks) {}
  WalkerReport walk(Mm& mm, Mm& parent) override {
    WalkerReport rep = start();
    std::optional<RmapHit> hit;
    pfn_t via = 0;
    PhysMem& phys = parent.phys();
    const PteFormat& fmt = parent.fmt();
    parent.pt().for_each_pte(0, parent.task_size, [&](vaddr_t, PteRef, pte_t e) {
      if (hit || !fmt.present(e)) return;
      const pfn_t pfn = fmt.pfn(e);
      const PageDesc& d = phys.desc(pfn);
      if (!(d.flags & PG_anon) || d.mapcount < 2) return;
      rmap_walk(phys, pfn, [&](const RmapHit& h) {
        if (!hit && h.mm == &mm) {
          hit = h;
          via = pfn;
        }
      });
    });
    if (!hit) {
      rep.outcome = "unreachable";
      rep.entry = "no frame of the parent is mapped in this mm";
      return rep;
    }
    rep.entry = fmt::format("via frame {} at {:#x}", via, hit->addr);
    if (checks_ && (mm.flags & MMF_UNSTABLE)) {
      rep.outcome = "skipped-unstable";
      return rep;
    }
    const std::string via_text = rep.entry;
    for_each_entry(mm, hit->vma->vm_start, rep, [](Vma&) { return true; });
    if (rep.outcome != "met-xa-zero") rep.entry = via_text;
    return rep;
  }
};

}  // namespace

std::unique_ptr<ConcurrentWalker> make_walker(WalkerKind kind, bool checks) {
  switch (kind) {
    case WalkerKind::UnuseMm:
      return std::make_unique<UnuseMmWalker>(checks);
    case WalkerKind::OomReaper:
      return std::make_unique<OomReaperWalker>(checks);
    case WalkerKind::Rmap:
      return std::make_unique<RmapWalker>(checks);
  }
  return nullptr;
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
