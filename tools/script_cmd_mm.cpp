// Script commands that build and change address spaces: mm, file, the memory system calls,
// and the user accesses (touch, read, write).
#include <fmt/format.h>

#include <algorithm>

#include "emu/image/arch_pages.hpp"
#include "mmu/free_pgd_range.hpp"
#include "tools/script_interp.hpp"
#include "tools/script_spec.hpp"
#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/free_pgtables.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/mseal.hpp"

namespace mmemu::script {

namespace {

inline constexpr vaddr_t kDefaultBrk = 0x1000000;

std::string vma_count(const Mm& mm) {
  return fmt::format("{} vma{}", mm.map_count, mm.map_count == 1 ? "" : "s");
}

StepOut addr_result(Result<vaddr_t> r, const Mm& mm) {
  StepOut o;
  if (!r) {
    o.ok = false;
    o.result = o.status = std::string(errno_name(r.error().code));
    return o;
  }
  o.status = "ok";
  o.result = fmt::format("{:#x}, {}", *r, vma_count(mm));
  o.value = *r;
  o.data["addr"] = fmt::format("{:#x}", *r);
  o.data["map_count"] = mm.map_count;
  return o;
}

StepOut with_vmas(StepOut o, const Mm& mm) {
  if (o.ok) o.result += ", " + vma_count(mm);
  o.data["map_count"] = mm.map_count;
  return o;
}

// The mlock family's step: the status, the VMA count and, on success, locked_vm.
StepOut lock_result(Result<void> r, const Mm& mm) {
  StepOut o = with_vmas(Interp::errno_result(r), mm);
  if (o.ok) o.result += fmt::format(", locked_vm {}", mm.locked_vm);
  return o;
}

std::string escape_bytes(const std::uint8_t* p, std::size_t n) {
  std::string s = "\"";
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i];
    if (c == '"' || c == '\\')
      s += fmt::format("\\{}", static_cast<char>(c));
    else if (c == '\n')
      s += "\\n";
    else if (c >= 0x20 && c < 0x7f)
      s += static_cast<char>(c);
    else
      s += fmt::format("\\x{:02x}", c);
  }
  return s + "\"";
}

}  // namespace

StepOut Interp::cmd_mm(const Stmt& st) {
  const std::string& name = st.pos[0].value;
  if (std::any_of(mms.begin(), mms.end(), [&](const MmSlot& s) { return s.name == name; }))
    fail(st, &st.pos[0], fmt::format("mm '{}' already exists", name));
  Arch arch = opts.arch;
  if (const Arg* a = st.key("arch")) arch = a->value == "arm64" ? Arch::Arm64 : Arch::X86_64;
  const Arg* am = st.key("archmap");
  const bool archmap = !am || am->value == "yes";
  // x86-64's vsyscall page is the machine's (init_mm, vsyscall=xonly: no tables); arm64's
  // trampoline is each mm's arch mapping.
  if (archmap && arch == Arch::X86_64) {
    if (auto r = setup_vsyscall(machine, VsyscallMode::Xonly); !r)
      return errno_result(std::unexpected(r.error()));
  }
  auto created = Mm::create(machine, arch);
  if (!created) return errno_result(std::unexpected(created.error()));
  std::unique_ptr<Mm> mm = std::move(*created);
  StepOut o;
  o.status = "ok";
  o.result = fmt::format("mm {} ({})", mm->id(), arch_name(arch));
  if (archmap) {
    if (auto r = map_arch_pages(*mm); !r) return errno_result(std::unexpected(r.error()));
    o.result += fmt::format(", {} at {:#x}", arch == Arch::X86_64 ? "[vsyscall]" : "[sigpage]",
                            arch_page_addr(arch));
  }
  const vaddr_t brk = st.key("brk") ? page_align_up(expr(st, *st.key("brk"))) : kDefaultBrk;
  mm->start_brk = mm->brk = brk;
  o.result += fmt::format(", brk {:#x}", brk);
  if (const Arg* sa = st.key("stack")) {
    const std::uint64_t size = page_align_up(expr(st, *sa));
    const vaddr_t top = mm->task_size;
    auto r = sys_mmap(*mm, top - size, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, nullptr, 0);
    if (!r) return errno_result(std::unexpected(r.error()));
    mm->start_stack = top - PAGE_SIZE;
    o.result += fmt::format(", stack {:#x}-{:#x}", *r, top);
  }
  o.data = {{"mm", mm->id()}, {"arch", arch_name(arch)}, {"brk", fmt::format("{:#x}", brk)}};
  mms.push_back(MmSlot{name, std::move(mm), std::nullopt});
  return o;
}

StepOut Interp::cmd_file(const Stmt& st) {
  const std::string& name = st.pos[0].value;
  if (files.contains(name)) fail(st, &st.pos[0], fmt::format("file '{}' already exists", name));
  const Arg* sz = st.key("size");
  if (!sz) fail(st, nullptr, "file needs size=SIZE");
  File* f = file_named(name, expr(st, *sz), true, st, &st.pos[0], !st.flag("readonly"));
  StepOut o;
  o.status = "ok";
  o.result = fmt::format("file {} ({} bytes, inode {}{})", name, f->size(), f->ino(),
                         f->writable() ? "" : ", read-only");
  return o;
}

StepOut Interp::cmd_mmap(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const bool autoaddr = st.pos[1].value == "auto";
  const vaddr_t addr = autoaddr ? 0 : pos_expr(st, 1);
  const std::uint64_t len = pos_expr(st, 2);
  const int prot = *parse_prot(st.pos[3].value);
  if (st.flag("private") && st.flag("shared")) fail(st, nullptr, "private and shared together");
  int flags = st.flag("shared") ? MAP_SHARED : MAP_PRIVATE;
  const Arg* fa = st.key("file");
  if (fa && st.flag("anon")) fail(st, fa, "anon and file= together");
  if (!fa && (st.key("size") || st.key("off"))) fail(st, nullptr, "size= and off= need file=");
  if (!fa) flags |= MAP_ANONYMOUS;
  if (st.flag("fixed")) flags |= MAP_FIXED;
  if (st.flag("noreplace")) flags |= MAP_FIXED_NOREPLACE;
  if (st.flag("populate")) flags |= MAP_POPULATE;
  if (st.flag("locked")) flags |= MAP_LOCKED;
  if (st.flag("growsdown")) flags |= MAP_GROWSDOWN;
  if (st.flag("noreserve")) flags |= MAP_NORESERVE;
  // MAP_DROPPABLE is a mapping type: it replaces MAP_PRIVATE.
  if (st.flag("droppable")) flags = (flags & ~MAP_TYPE) | MAP_DROPPABLE;
  const std::uint64_t off = st.key("off") ? expr(st, *st.key("off")) : 0;
  File* file = nullptr;
  if (fa) {
    const std::uint64_t size = st.key("size") ? expr(st, *st.key("size")) : off + len;
    file = file_named(fa->value, size, true, st, fa);
  }
  return addr_result(sys_mmap(mm, addr, len, prot, flags, file, off), mm);
}

StepOut Interp::cmd_munmap(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return with_vmas(errno_result(do_munmap(mm, pos_expr(st, 1), pos_expr(st, 2))), mm);
}

// The what-if steps: the modelled kernel functions called with limits the user picks.
StepOut Interp::cmd_free_pgd_range(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const vaddr_t addr = pos_expr(st, 1), end = pos_expr(st, 2);
  const vaddr_t floor = pos_expr(st, 3), ceiling = pos_expr(st, 4);
  MmuGather tlb(mm.pt(), &mm.tlb());
  {
    CallFrame frame(mm.pt(), "mmemu script");
    free_pgd_range(tlb, addr, end, floor, ceiling);
  }
  tlb.finish();
  StepOut o;
  o.status = "ok";
  o.result =
      fmt::format("{} table{} freed", tlb.tables_freed(), tlb.tables_freed() == 1 ? "" : "s");
  o.data["tables_freed_count"] = tlb.tables_freed();
  return o;
}

StepOut Interp::cmd_unmap_region(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const vaddr_t start = pos_expr(st, 1), end = pos_expr(st, 2);
  const vaddr_t floor = pos_expr(st, 3), ceiling = pos_expr(st, 4), tree_max = pos_expr(st, 5);
  if (end < start) fail(st, &st.pos[2], "END is below START");
  Result<bool> r = [&] {
    CallFrame frame(mm.pt(), "mmemu script");
    return do_munmap_with_limits(mm, start, end - start, floor, ceiling, tree_max);
  }();
  StepOut o = with_vmas(errno_result(r ? Result<void>{} : std::unexpected(r.error())), mm);
  if (!r) return o;
  if (!*r) {
    const std::string warn = "WARNING: " + free_pgtables_warning(tree_max, ceiling);
    o.detail.push_back(warn);
    o.data["warning"] = warn;
  }
  return o;
}

StepOut Interp::cmd_mprotect(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return with_vmas(
      errno_result(do_mprotect(mm, pos_expr(st, 1), pos_expr(st, 2), *parse_prot(st.pos[3].value))),
      mm);
}

StepOut Interp::cmd_mremap(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  int flags = 0;
  vaddr_t new_addr = 0;
  if (st.flag("maymove")) flags |= MREMAP_MAYMOVE;
  if (st.flag("dontunmap")) flags |= MREMAP_DONTUNMAP;
  if (const Arg* f = st.key("fixed")) {
    flags |= MREMAP_FIXED;
    new_addr = expr(st, *f);
  }
  return addr_result(
      do_mremap(mm, pos_expr(st, 1), pos_expr(st, 2), pos_expr(st, 3), flags, new_addr), mm);
}

StepOut Interp::cmd_madvise(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return with_vmas(errno_result(do_madvise(mm, pos_expr(st, 1), pos_expr(st, 2),
                                           *advice_value(st.pos[3].value))),
                   mm);
}

StepOut Interp::cmd_mseal(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return with_vmas(errno_result(do_mseal(mm, pos_expr(st, 1), pos_expr(st, 2), 0)), mm);
}

StepOut Interp::cmd_mlock(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return lock_result(
      do_mlock(mm, pos_expr(st, 1), pos_expr(st, 2), st.flag("onfault") ? MLOCK_ONFAULT : 0U), mm);
}

StepOut Interp::cmd_munlock(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return lock_result(do_munlock(mm, pos_expr(st, 1), pos_expr(st, 2)), mm);
}

StepOut Interp::cmd_mlockall(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  int flags = 0;
  if (st.flag("current")) flags |= MCL_CURRENT;
  if (st.flag("future")) flags |= MCL_FUTURE;
  if (st.flag("onfault")) flags |= MCL_ONFAULT;
  return lock_result(do_mlockall(mm, flags), mm);
}

StepOut Interp::cmd_munlockall(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  return lock_result(do_munlockall(mm), mm);
}

StepOut Interp::cmd_brk(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  vaddr_t want = 0;
  if (st.pos.size() > 1) {
    const std::string& v = st.pos[1].value;
    if (v[0] == '+' || v[0] == '-') {
      Arg rel = st.pos[1];
      rel.value = v.substr(1);
      ++rel.value_col;
      const std::uint64_t d = expr(st, rel);
      want = v[0] == '+' ? mm.brk + d : mm.brk - d;
    } else {
      want = pos_expr(st, 1);
    }
  }
  const vaddr_t got = sys_brk(mm, want);
  StepOut o;
  o.value = got;
  o.data["brk"] = fmt::format("{:#x}", got);
  // brk(2) answers with the break; glibc's brk() calls a different answer ENOMEM.
  if (st.pos.size() > 1 && got != want) {
    o.ok = false;
    o.status = "ENOMEM";
    o.result = fmt::format("ENOMEM (break stays {:#x})", got);
  } else {
    o.status = "ok";
    o.result = fmt::format("break {:#x}, {}", got, vma_count(mm));
  }
  return o;
}

StepOut Interp::cmd_touch(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const vaddr_t addr = pos_expr(st, 1);
  const std::uint64_t len = st.pos.size() > 2 ? pos_expr(st, 2) : 1;
  const int kinds = st.flag("read") + st.flag("write") + st.flag("exec");
  if (kinds > 1) fail(st, nullptr, "touch takes one of read, write, exec");
  const Access acc = st.flag("write")  ? Access::Write
                     : st.flag("exec") ? Access::Exec
                                       : Access::Read;
  if (len == 0) fail(st, st.pos.size() > 2 ? &st.pos[2] : nullptr, "touch of 0 bytes");
  const vaddr_t first = page_align_down(addr);
  const vaddr_t last = page_align_down(addr + len - 1);
  std::uint64_t done = 0;
  StepOut o;
  std::optional<Translation> one;
  for (vaddr_t va = first;; va += PAGE_SIZE) {
    auto t = fault_in(mm, va, acc);
    if (!t) {
      o.ok = false;
      o.status = std::string(fault_result_name(t.error()));
      o.result = fmt::format("{} at {:#x}", o.status, va);
      if (done) o.result += fmt::format(" after {} page{}", done, done == 1 ? "" : "s");
      o.data["addr"] = fmt::format("{:#x}", va);
      break;
    }
    one = *t;
    ++done;
    if (va == last) break;
  }
  o.data["pages"] = done;
  if (o.ok) {
    o.status = "ok";
    if (done == 1) {
      const PageDesc& d = mm.phys().desc(one->pfn);
      const char* kind = (d.flags & PG_zero)        ? "zero page"
                         : (d.flags & PG_anon)      ? "anon"
                         : (d.flags & PG_pagecache) ? "page cache"
                                                    : "frame";
      const std::string mc =
          (d.flags & PG_zero) ? std::string() : fmt::format(", mapcount {}", d.mapcount);
      o.result =
          fmt::format("ok: frame {:#x} ({}{}){}{}", one->pfn, kind, mc,
                      one->prot.write ? " writable" : " read-only", one->dirty ? " dirty" : "");
      o.data["frame"] = fmt::format("{:#x}", one->pfn);
    } else {
      o.result = fmt::format("ok: {} pages", done);
    }
  }
  return o;
}

StepOut Interp::cmd_write(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const std::string data = *unescape(st.pos[2].value);
  StepOut o = errno_result(copy_to_user(mm, pos_expr(st, 1), data.data(), data.size()));
  if (o.ok)
    o.result = fmt::format("ok: {} byte{} written", data.size(), data.size() == 1 ? "" : "s");
  return o;
}

StepOut Interp::cmd_read(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const std::uint64_t len = pos_expr(st, 2);
  if (len > 4096) fail(st, &st.pos[2], "read shows at most 4096 bytes");
  std::vector<std::uint8_t> buf(len);
  StepOut o = errno_result(copy_from_user(mm, buf.data(), pos_expr(st, 1), buf.size()));
  if (o.ok) {
    o.result = escape_bytes(buf.data(), buf.size());
    o.data["bytes"] = o.result;
  }
  return o;
}

}  // namespace mmemu::script
