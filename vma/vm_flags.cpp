#include "vma/vm_flags.hpp"

#include <array>
#include <utility>

namespace mmemu {

std::string vm_flags_perm_string(vm_flags_t f) {
  std::string s = "----";
  if (f & VM_READ) s[0] = 'r';
  if (f & VM_WRITE) s[1] = 'w';
  if (f & VM_EXEC) s[2] = 'x';
  s[3] = (f & VM_MAYSHARE) ? 's' : 'p';
  return s;
}

std::string vm_flags_names(vm_flags_t f) {
  // The two-letter mnemonics of /proc/PID/smaps "VmFlags:".
  static constexpr std::array<std::pair<vm_flags_t, const char*>, 26> kNames{{
      {VM_READ, "rd"},        {VM_WRITE, "wr"},     {VM_EXEC, "ex"},       {VM_SHARED, "sh"},
      {VM_MAYREAD, "mr"},     {VM_MAYWRITE, "mw"},  {VM_MAYEXEC, "me"},    {VM_MAYSHARE, "ms"},
      {VM_GROWSDOWN, "gd"},   {VM_PFNMAP, "pf"},    {VM_LOCKED, "lo"},     {VM_IO, "io"},
      {VM_SEQ_READ, "sr"},    {VM_RAND_READ, "rr"}, {VM_DONTCOPY, "dc"},   {VM_DONTEXPAND, "de"},
      {VM_LOCKONFAULT, "lf"}, {VM_ACCOUNT, "ac"},   {VM_NORESERVE, "nr"},  {VM_WIPEONFORK, "wf"},
      {VM_DONTDUMP, "dd"},    {VM_HUGEPAGE, "hg"},  {VM_NOHUGEPAGE, "nh"}, {VM_MERGEABLE, "mg"},
      {VM_DROPPABLE, "dp"},   {VM_SEALED, "sl"},
  }};
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if (!(f & bit)) continue;
    if (!s.empty()) s += ' ';
    s += name;
  }
  return s;
}

}  // namespace mmemu
