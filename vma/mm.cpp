#include "vma/mm.hpp"

#include <algorithm>

#include "vma/exit_mmap.hpp"
#include "vma/file.hpp"
#include "vma/unmap.hpp"

namespace mmemu {

namespace {
std::uint64_t next_mm_id = 1;

// mmap_base() without randomisation: the stack limit plus the guard gap, clamped to
// [128 MiB, 5/6 of the task size], below TASK_SIZE.
vaddr_t default_mmap_base(vaddr_t task_size, std::uint64_t stack_limit) {
  std::uint64_t gap = stack_limit;
  if (gap + kStackGuardGap > gap) gap += kStackGuardGap;
  const std::uint64_t gap_min = 128ULL << 20;
  const std::uint64_t gap_max = task_size / 6 * 5;
  gap = std::clamp(gap, gap_min, gap_max);
  return page_align_up(task_size - gap);
}
}  // namespace

Result<std::unique_ptr<Mm>> Mm::create(Machine& m, Arch arch) {
  auto pt = PageTable::create(m.phys, arch, m.init_mm(arch).tables());
  if (!pt) return std::unexpected(pt.error());
  return std::unique_ptr<Mm>(new Mm(m, arch, std::move(*pt)));
}

Mm::Mm(Machine& m, Arch arch, std::unique_ptr<PageTable> pt)
    : mm_mt(m), m_(&m), arch_(arch), pt_(std::move(pt)), id_(next_mm_id++) {
  pt_->mm_id = id_;
  pt_->on_free_in_use = [this](FreedInUseTable& rec, MmuGather& tlb) {
    mm_free_in_use(*this, rec, tlb);
  };
  task_size = params().task_size;
  mmap_base = default_mmap_base(task_size, rlimit(Rlim::Stack));
  // init_pkru_value: every key but 0 starts access-disabled.
  if (arch == Arch::X86_64) pt_->pkru = 0x55555554;
}

Mm::~Mm() {
  if (!(flags & MMF_EXITED)) exit_mmap(*this);
  pt_.reset();
}

void mmget(Mm& mm) {
  ++mm.mm_users;
}

bool mmget_not_zero(Mm& mm) {
  if (mm.mm_users == 0) return false;
  ++mm.mm_users;
  return true;
}

bool mmput(Mm& mm, ExitMmapReport* exit) {
  // The count reaches 0 before exit_mmap starts: whoever looks during it sees no users.
  if (--mm.mm_users > 0) return false;
  if (!(mm.flags & MMF_EXITED)) {
    const ExitMmapReport r = exit_mmap(mm);
    if (exit) *exit = r;
  }
  (void)mmdrop(mm);  // the users' reference on the struct
  return true;
}

void mmgrab(Mm& mm) {
  ++mm.mm_count;
}

bool mmdrop(Mm& mm) {
  return --mm.mm_count == 0;
}

Vma* Mm::find_vma(vaddr_t addr) const {
  for (auto e = mm_mt.find(addr); e; e = mm_mt.find(e->last + 1)) {
    if (!MapleTree::is_zero_entry(e->value)) return static_cast<Vma*>(e->value);
    if (e->last == MapleTree::kMax) break;
  }
  return nullptr;
}

Vma* Mm::vma_lookup(vaddr_t addr) const {
  Vma* v = find_vma(addr);
  return v && v->vm_start <= addr ? v : nullptr;
}

Vma* Mm::find_vma_intersection(vaddr_t start, vaddr_t end) const {
  Vma* v = find_vma(start);
  return v && v->vm_start < end ? v : nullptr;
}

Vma* Mm::prev_of(vaddr_t addr) const {
  if (addr == 0) return nullptr;
  for (auto e = mm_mt.find_rev(addr - 1); e; e = mm_mt.find_rev(e->first - 1)) {
    if (!MapleTree::is_zero_entry(e->value)) {
      auto* v = static_cast<Vma*>(e->value);
      return v->vm_end <= addr ? v : vma_prev(*v);
    }
    if (e->first == 0) break;
  }
  return nullptr;
}

Vma* Mm::vma_prev(const Vma& v) const {
  if (v.vm_start == 0) return nullptr;
  for (auto e = mm_mt.find_rev(v.vm_start - 1); e; e = mm_mt.find_rev(e->first - 1)) {
    if (!MapleTree::is_zero_entry(e->value)) return static_cast<Vma*>(e->value);
    if (e->first == 0) break;
  }
  return nullptr;
}

Vma* Mm::vma_next(const Vma& v) const {
  return find_vma(v.vm_end);
}

std::vector<Vma*> Mm::vmas() const {
  std::vector<Vma*> out;
  for (const auto& e : mm_mt.entries())
    if (!MapleTree::is_zero_entry(e.value)) out.push_back(static_cast<Vma*>(e.value));
  return out;
}

bool Mm::has_xa_zero() const {
  for (const auto& e : mm_mt.entries())
    if (MapleTree::is_zero_entry(e.value)) return true;
  return false;
}

void vm_stat_account(Mm& mm, vm_flags_t flags, std::int64_t npages) {
  const auto add = [npages](std::uint64_t& c) {
    c = static_cast<std::uint64_t>(static_cast<std::int64_t>(c) + npages);
  };
  add(mm.total_vm);
  // is_exec_mapping / is_stack_mapping / is_data_mapping, as the kernel classifies.
  if ((flags & (VM_EXEC | VM_WRITE | VM_STACK)) == VM_EXEC)
    add(mm.exec_vm);
  else if (flags & VM_STACK)
    add(mm.stack_vm);
  else if ((flags & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE)
    add(mm.data_vm);
}

void mm_counter_add(Mm& mm, pfn_t pfn, std::int64_t n) {
  const PageDesc& d = mm.phys().desc(pfn);
  if (d.flags & PG_zero) return;
  int type = MM_FILEPAGES;
  if (d.flags & PG_anon)
    type = MM_ANONPAGES;
  else if ((d.flags & PG_pagecache) && static_cast<const File*>(d.mapping)->shmem())
    type = MM_SHMEMPAGES;
  mm.rss[static_cast<std::size_t>(type)] += n;
}

}  // namespace mmemu
