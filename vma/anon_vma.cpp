#include "vma/anon_vma.hpp"

#include <algorithm>

#include "vma/mm.hpp"

namespace mmemu {

namespace {

std::uint64_t next_anon_vma_id = 1;

Machine& machine_of(const Vma& v) {
  return v.vm_mm->machine();
}

// anon_vma and anon_vma_chain objects both come from the anon_vma allocation site.
AnonVma* anon_vma_alloc(Machine& m) {
  if (m.inject.should_fail(AllocSite::AnonVma, "anon_vma_alloc")) return nullptr;
  auto* av = new AnonVma;
  av->root = av;
  av->parent = av;
  av->id = next_anon_vma_id++;
  m.live.created(AllocSite::AnonVma, av);
  return av;
}

void anon_vma_free(Machine& m, AnonVma* av) {
  m.live.destroyed(AllocSite::AnonVma, av);
  delete av;
}

AnonVmaChain* avc_alloc(Machine& m) {
  if (m.inject.should_fail(AllocSite::AnonVma, "anon_vma_chain_alloc")) return nullptr;
  auto* avc = new AnonVmaChain{nullptr, nullptr};
  m.live.created(AllocSite::AnonVma, avc);
  return avc;
}

void avc_free(Machine& m, AnonVmaChain* avc) {
  m.live.destroyed(AllocSite::AnonVma, avc);
  delete avc;
}

void put_anon_vma(Machine& m, AnonVma* av) {
  if (--av->refcount > 0) return;
  AnonVma* root = av->root;
  anon_vma_free(m, av);
  if (root != av && --root->refcount == 0) anon_vma_free(m, root);
}

void chain_link(Vma& vma, AnonVmaChain* avc, AnonVma* av) {
  avc->vma = &vma;
  avc->anon_vma = av;
  vma.anon_vma_chain.insert(vma.anon_vma_chain.begin(), avc);
  av->chains.push_back(avc);
}

void chain_unlink_from_anon_vma(AnonVmaChain* avc) {
  auto& v = avc->anon_vma->chains;
  v.erase(std::find(v.begin(), v.end(), avc));
}

// anon_vma_compatible + reusable_anon_vma: a neighbour's anon_vma may be shared when the two
// VMAs could merge but for their protections, and the neighbour was not cloned from a parent.
AnonVma* reusable_from(const Vma& old, const Vma& a, const Vma& b) {
  const bool compatible = a.vm_end == b.vm_start &&
                          !((a.vm_flags ^ b.vm_flags) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY)) &&
                          a.vm_file == b.vm_file && b.vm_pgoff == a.vm_pgoff + a.pages();
  if (compatible && old.anon_vma && old.anon_vma_chain.size() == 1) return old.anon_vma;
  return nullptr;
}

AnonVma* find_mergeable_anon_vma(const Vma& vma) {
  const Mm& mm = *vma.vm_mm;
  if (Vma* next = mm.vma_next(vma))
    if (AnonVma* av = reusable_from(*next, vma, *next)) return av;
  if (Vma* prev = mm.vma_prev(vma))
    if (AnonVma* av = reusable_from(*prev, *prev, vma)) return av;
  return nullptr;
}

}  // namespace

Result<void> anon_vma_prepare(Vma& vma) {
  if (vma.anon_vma) return {};
  Machine& m = machine_of(vma);
  const AllocCaller caller(m.inject, "anon_vma_prepare", vma.vm_start);
  AnonVmaChain* avc = avc_alloc(m);
  if (!avc) return fail(ENOMEM);
  AnonVma* av = find_mergeable_anon_vma(vma);
  if (!av) {
    av = anon_vma_alloc(m);
    if (!av) {
      avc_free(m, avc);
      return fail(ENOMEM);
    }
    av->num_children++;  // a new root is its own parent
  }
  vma.anon_vma = av;
  chain_link(vma, avc, av);
  av->num_active_vmas++;
  return {};
}

Result<void> anon_vma_clone(Vma& dst, const Vma& src, bool for_fork) {
  Machine& m = machine_of(dst);
  const AllocCaller caller(m.inject, "anon_vma_clone", dst.vm_start);
  for (auto it = src.anon_vma_chain.rbegin(); it != src.anon_vma_chain.rend(); ++it) {
    AnonVmaChain* avc = avc_alloc(m);
    if (!avc) {
      // Drop dst->anon_vma first so unlink does not miscount num_active_vmas.
      dst.anon_vma = nullptr;
      unlink_anon_vmas(dst);
      return fail(ENOMEM);
    }
    AnonVma* av = (*it)->anon_vma;
    chain_link(dst, avc, av);
    // Reuse an ancestor's anon_vma that no VMA uses and that has at most one child.
    if (for_fork && !dst.anon_vma && src.anon_vma && av->num_children < 2 &&
        av->num_active_vmas == 0)
      dst.anon_vma = av;
  }
  if (dst.anon_vma) dst.anon_vma->num_active_vmas++;
  return {};
}

Result<void> anon_vma_fork(Vma& vma, const Vma& pvma) {
  if (!pvma.anon_vma) return {};
  vma.anon_vma = nullptr;
  if (auto r = anon_vma_clone(vma, pvma, /*for_fork=*/true); !r) return r;
  if (vma.anon_vma) return {};  // an ancestor's anon_vma was reused
  Machine& m = machine_of(vma);
  const AllocCaller caller(m.inject, "anon_vma_fork", vma.vm_start);
  AnonVma* av = anon_vma_alloc(m);
  if (!av) {
    unlink_anon_vmas(vma);
    return fail(ENOMEM);
  }
  av->num_active_vmas++;
  AnonVmaChain* avc = avc_alloc(m);
  if (!avc) {
    put_anon_vma(m, av);
    unlink_anon_vmas(vma);
    return fail(ENOMEM);
  }
  av->root = pvma.anon_vma->root;
  av->parent = pvma.anon_vma;
  av->root->refcount++;
  vma.anon_vma = av;
  chain_link(vma, avc, av);
  av->parent->num_children++;
  return {};
}

void unlink_anon_vmas(Vma& vma) {
  Machine& m = machine_of(vma);
  std::vector<AnonVmaChain*> emptied;
  for (AnonVmaChain* avc : vma.anon_vma_chain) {
    AnonVma* av = avc->anon_vma;
    chain_unlink_from_anon_vma(avc);
    if (av->chains.empty()) {
      // Freed below, once every count is settled.
      av->parent->num_children--;
      emptied.push_back(avc);
      continue;
    }
    avc_free(m, avc);
  }
  if (vma.anon_vma) {
    vma.anon_vma->num_active_vmas--;
    vma.anon_vma = nullptr;
  }
  vma.anon_vma_chain.clear();
  for (AnonVmaChain* avc : emptied) {
    put_anon_vma(m, avc->anon_vma);
    avc_free(m, avc);
  }
}

void anon_vma_merge(Vma& /*vma*/, Vma& next) {
  unlink_anon_vmas(next);
}

std::uint64_t anon_vma_id(const AnonVma* av) {
  return av ? av->id : 0;
}

}  // namespace mmemu
