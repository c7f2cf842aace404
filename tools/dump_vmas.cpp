// VMA dumps: the /proc/PID/maps line of each VMA (vma/proc_maps), its flags and anon_vma links.
#include <fmt/format.h>

#include "tools/dump.hpp"
#include "vma/anon_vma.hpp"
#include "vma/file.hpp"
#include "vma/proc_maps.hpp"

namespace mmemu::dump {

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

namespace {

std::string anon_text(const Vma& v) {
  if (!v.anon_vma && v.anon_vma_chain.empty()) return "anon_vma -";
  std::string s = v.anon_vma ? fmt::format("anon_vma #{}", anon_vma_id(v.anon_vma)) : "anon_vma -";
  if (v.anon_vma_chain.size() > 1 || (v.anon_vma_chain.size() == 1 && !v.anon_vma)) {
    s += " chain";
    for (const AnonVmaChain* c : v.anon_vma_chain)
      s += fmt::format(" #{}", anon_vma_id(c->anon_vma));
  }
  return s;
}

}  // namespace

std::string vmas_text(const Mm& mm) {
  const auto vs = mm.vmas();
  std::string out = fmt::format("vmas of mm {} ({}): {} vma{}, map_count {}{}\n", mm.id(),
                                arch_name(mm.arch()), vs.size(), vs.size() == 1 ? "" : "s",
                                mm.map_count, mm.has_xa_zero() ? ", XA_ZERO marker in tree" : "");
  for (const Vma* v : vs) {
    const std::string line = maps_line(mm, *v);
    out += fmt::format("  {:<94} {} | {}\n", line, anon_text(*v), vm_flags_names(v->vm_flags));
  }
  return out;
}

json vmas_json(const Mm& mm) {
  json arr = json::array();
  for (const Vma* v : mm.vmas()) {
    json chain = json::array();
    for (const AnonVmaChain* c : v->anon_vma_chain)
      chain.push_back(anon_vma_id(c->anon_vma));
    arr.push_back({
        {"start", hex(v->vm_start)},
        {"end", hex(v->vm_end)},
        {"perms", vm_flags_perm_string(v->vm_flags)},
        {"pgoff", v->vm_pgoff},
        {"offset", hex(v->vm_file ? v->vm_pgoff << PAGE_SHIFT : 0)},
        {"dev", maps_dev(v->vm_file ? v->vm_file->dev() : 0)},
        {"inode", v->vm_file ? v->vm_file->ino() : 0},
        {"name", maps_name(mm, *v)},
        {"vm_flags", hex(v->vm_flags)},
        {"flags", vm_flags_names(v->vm_flags)},
        {"anon_vma", v->anon_vma ? json(anon_vma_id(v->anon_vma)) : json(nullptr)},
        {"anon_vma_chain", chain},
        {"maps", maps_line(mm, *v)},
    });
  }
  return {{"mm", mm.id()},
          {"arch", arch_name(mm.arch())},
          {"map_count", mm.map_count},
          {"xa_zero", mm.has_xa_zero()},
          {"vmas", arr}};
}

}  // namespace mmemu::dump
