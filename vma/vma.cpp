#include "vma/vma.hpp"

#include "vma/file.hpp"
#include "vma/mm.hpp"

namespace mmemu {

Result<Vma*> vm_area_alloc(Mm& mm) {
  Machine& m = mm.machine();
  if (m.inject.should_fail(AllocSite::Vma, "vm_area_alloc")) return fail(ENOMEM);
  Vma* v = new Vma;
  v->vm_mm = &mm;
  m.live.created(AllocSite::Vma, v);
  return v;
}

Result<Vma*> vm_area_dup(const Vma& src) {
  Machine& m = src.vm_mm->machine();
  if (m.inject.should_fail(AllocSite::Vma, "vm_area_dup", src.vm_start)) return fail(ENOMEM);
  Vma* v = new Vma(src);
  v->anon_vma_chain.clear();
  if (v->vm_file) v->vm_file->get();
  m.live.created(AllocSite::Vma, v);
  return v;
}

void vm_area_free(Vma* vma) {
  if (vma->vm_file) vma->vm_file->put();
  vma->vm_mm->machine().live.destroyed(AllocSite::Vma, vma);
  delete vma;
}

vaddr_t vm_start_gap(const Vma& v) {
  if (!(v.vm_flags & VM_GROWSDOWN)) return v.vm_start;
  return v.vm_start > kStackGuardGap ? v.vm_start - kStackGuardGap : 0;
}

vaddr_t vm_end_gap(const Vma& v) {
  return v.vm_end;
}

}  // namespace mmemu
