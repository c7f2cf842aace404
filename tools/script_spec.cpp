#include "tools/script_spec.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <utility>

#include "mmu/fault_inject.hpp"
#include "mmu/types.hpp"
#include "tools/script_interp.hpp"
#include "tools/script_syntax.hpp"
#include "vma/fork.hpp"

namespace mmemu::script {

namespace {

using enum Kind;

const std::vector<CmdSpec>& table() {
  using I = Interp;
  static const std::vector<CmdSpec> t{
      {.name = "mm",
       .usage = "mm NAME [arch=x86_64|arm64] [archmap=yes|no] [brk=ADDR] [stack=SIZE]",
       .required = {NewMm},
       .keys = {{"arch", Arch}, {"archmap", YesNo}, {"brk", Expr}, {"stack", Expr}},
       .run = &I::cmd_mm},
      {.name = "file",
       .usage = "file NAME size=SIZE [readonly]",
       .required = {Word},
       .flags = {"readonly"},
       .keys = {{"size", Expr}},
       .run = &I::cmd_file},
      {.name = "mmap",
       .usage =
           "[VAR =] mmap MM ADDR|auto LEN PROT [private|shared] [anon|file=NAME [size=SIZE] "
           "[off=OFF]] [fixed] [noreplace] [populate] [locked] [growsdown] [noreserve] [droppable]",
       .required = {Mm, AddrOrAuto, Expr, Prot},
       .flags = {"private", "shared", "anon", "fixed", "noreplace", "populate", "locked",
                 "growsdown", "noreserve", "droppable"},
       .keys = {{"file", Word}, {"size", Expr}, {"off", Expr}},
       .assignable = true,
       .run = &I::cmd_mmap},
      {.name = "munmap",
       .usage = "munmap MM ADDR LEN",
       .required = {Mm, Expr, Expr},
       .run = &I::cmd_munmap},
      {.name = "free_pgd_range",
       .usage = "free_pgd_range MM ADDR END FLOOR CEILING",
       .required = {Mm, Expr, Expr, Expr, Expr},
       .run = &I::cmd_free_pgd_range},
      {.name = "unmap_region",
       .usage = "unmap_region MM START END FLOOR CEILING TREE_MAX",
       .required = {Mm, Expr, Expr, Expr, Expr, Expr},
       .run = &I::cmd_unmap_region},
      {.name = "mprotect",
       .usage = "mprotect MM ADDR LEN PROT",
       .required = {Mm, Expr, Expr, Prot},
       .run = &I::cmd_mprotect},
      {.name = "mremap",
       .usage = "[VAR =] mremap MM OLD OLDLEN NEWLEN [maymove] [fixed=ADDR] [dontunmap]",
       .required = {Mm, Expr, Expr, Expr},
       .flags = {"maymove", "dontunmap"},
       .keys = {{"fixed", Expr}},
       .assignable = true,
       .run = &I::cmd_mremap},
      {.name = "madvise",
       .usage = "madvise MM ADDR LEN ADVICE",
       .required = {Mm, Expr, Expr, Advice},
       .run = &I::cmd_madvise},
      {.name = "mseal",
       .usage = "mseal MM ADDR LEN",
       .required = {Mm, Expr, Expr},
       .run = &I::cmd_mseal},
      {.name = "mlock",
       .usage = "mlock MM ADDR LEN [onfault]",
       .required = {Mm, Expr, Expr},
       .flags = {"onfault"},
       .run = &I::cmd_mlock},
      {.name = "munlock",
       .usage = "munlock MM ADDR LEN",
       .required = {Mm, Expr, Expr},
       .run = &I::cmd_munlock},
      {.name = "mlockall",
       .usage = "mlockall MM [current] [future] [onfault]",
       .required = {Mm},
       .flags = {"current", "future", "onfault"},
       .run = &I::cmd_mlockall},
      {.name = "munlockall", .usage = "munlockall MM", .required = {Mm}, .run = &I::cmd_munlockall},
      {.name = "brk",
       .usage = "[VAR =] brk MM [ADDR|+LEN|-LEN]",
       .required = {Mm},
       .optional = {Brk},
       .assignable = true,
       .run = &I::cmd_brk},
      {.name = "touch",
       .usage = "touch MM ADDR [LEN] [read|write|exec]",
       .required = {Mm, Expr},
       .optional = {Expr},
       .flags = {"read", "write", "exec"},
       .run = &I::cmd_touch},
      {.name = "write",
       .usage = "write MM ADDR \"DATA\"",
       .required = {Mm, Expr, Data},
       .run = &I::cmd_write},
      {.name = "read",
       .usage = "read MM ADDR LEN",
       .required = {Mm, Expr, Expr},
       .run = &I::cmd_read},
      {.name = "fork",
       .usage = "fork PARENT CHILD [recovery=xa-zero|tree-max|partial]",
       .required = {Mm, NewMm},
       .keys = {{"recovery", Recovery}},
       .run = &I::cmd_fork},
      {.name = "exit", .usage = "exit MM", .required = {Mm}, .run = &I::cmd_exit},
      {.name = "inject",
       .usage = "inject SITE:N[,SITE:N...] | inject random P seed S [site=SITE] | inject off",
       .required = {InjectSpec},
       .run = &I::cmd_inject,
       .role = Role::Other},
      {.name = "inject random",
       .usage = "inject random P seed S [site=SITE]",
       .required = {Prob, SeedWord, Expr},
       .keys = {{"site", InjectSite}},
       .run = &I::cmd_inject_random,
       .role = Role::Other},
      {.name = "inject off", .usage = "inject off", .run = &I::cmd_inject_off, .role = Role::Other},
      {.name = "recovery",
       .usage = "recovery xa-zero|tree-max|partial",
       .required = {Recovery},
       .run = &I::cmd_recovery,
       .role = Role::Other},
      {.name = "walker",
       .usage = "walker unuse_mm|oom_reaper|rmap[-nocheck] [at=lock-drop|exit-unlock|both] | "
                "walker clear",
       .required = {Walker},
       .keys = {{"at", Point}},
       .run = &I::cmd_walker,
       .role = Role::Other},
      {.name = "walker clear",
       .usage = "walker clear",
       .run = &I::cmd_walker_clear,
       .role = Role::Other},
      {.name = "dump",
       .usage = "dump MM [vmas] [tree] [pgtables] [counters] [all] [format=html out=\"FILE\"]",
       .required = {Mm},
       .flags = {"vmas", "tree", "pgtables", "counters", "all"},
       .keys = {{"format", Word}, {"out", Data}},
       .run = &I::cmd_dump,
       .role = Role::Other},
      {.name = "check", .usage = "check", .run = &I::cmd_check, .role = Role::Other},
      {.name = "snapshot",
       .usage = "snapshot MM",
       .required = {Mm},
       .run = &I::cmd_snapshot,
       .role = Role::Other},
      {.name = "leaks", .usage = "leaks", .run = &I::cmd_leaks, .role = Role::Other},
      {.name = "echo", .usage = "echo \"TEXT\"", .required = {Data}},
      {.name = "let",
       .usage = "let VAR = EXPR",
       .required = {Ident, Expr},
       .run = &I::cmd_let,
       .role = Role::Other},
      {.name = "repeat",
       .usage = "repeat COUNT [VAR] ... end",
       .required = {Expr},
       .optional = {Ident}},
      {.name = "end", .usage = "end"},
      {.name = "expect ok", .usage = "expect ok", .run = &I::expect_status, .role = Role::Expect},
      {.name = "expect errno",
       .usage = "expect errno NAME",
       .required = {Errno},
       .run = &I::expect_status,
       .role = Role::Expect},
      {.name = "expect fault",
       .usage = "expect fault ok|SEGV_MAPERR|SEGV_ACCERR|SIGBUS|OOM",
       .required = {Fault},
       .run = &I::expect_status,
       .role = Role::Expect},
      {.name = "expect value",
       .usage = "expect value EXPR EXPR",
       .required = {Expr, Expr},
       .run = &I::expect_value,
       .role = Role::Expect},
      {.name = "expect vmas",
       .usage = "expect vmas MM COUNT",
       .required = {Mm, Expr},
       .run = &I::expect_vmas,
       .role = Role::Expect},
      {.name = "expect vma",
       .usage = "expect vma MM ADDR PERMS|none",
       .required = {Mm, Expr, Perms},
       .run = &I::expect_vma,
       .role = Role::Expect},
      {.name = "expect rss",
       .usage = "expect rss MM anon|file|shmem|swap PAGES",
       .required = {Mm, RssType, Expr},
       .run = &I::expect_rss,
       .role = Role::Expect},
      {.name = "expect tables",
       .usage = "expect tables MM COUNT [level=pgd|pud|pmd|pte]",
       .required = {Mm, Expr},
       .keys = {{"level", Level}},
       .run = &I::expect_tables,
       .role = Role::Expect},
      {.name = "expect live",
       .usage = "expect live SITE COUNT",
       .required = {Site, Expr},
       .run = &I::expect_live,
       .role = Role::Expect},
      {.name = "expect bytes",
       .usage = "expect bytes MM ADDR \"DATA\"",
       .required = {Mm, Expr, Data},
       .run = &I::expect_bytes,
       .role = Role::Expect},
      {.name = "expect mapcount",
       .usage = "expect mapcount MM ADDR COUNT",
       .required = {Mm, Expr, Expr},
       .run = &I::expect_mapcount,
       .role = Role::Expect},
      {.name = "expect shared",
       .usage = "expect shared MM ADDR MM ADDR",
       .required = {Mm, Expr, Mm, Expr},
       .run = &I::expect_shared,
       .role = Role::Expect},
      {.name = "expect distinct",
       .usage = "expect distinct MM ADDR MM ADDR",
       .required = {Mm, Expr, Mm, Expr},
       .run = &I::expect_distinct,
       .role = Role::Expect},
      {.name = "expect unchanged",
       .usage = "expect unchanged MM",
       .required = {Mm},
       .run = &I::expect_unchanged,
       .role = Role::Expect},
      {.name = "expect no-leaks-since",
       .usage = "expect no-leaks-since MM",
       .required = {Mm},
       .run = &I::expect_no_leaks_since,
       .role = Role::Expect},
      {.name = "expect walker",
       .usage = "expect walker NAME OUTCOME [at=lock-drop|exit-unlock]",
       .required = {Walker, Outcome},
       .keys = {{"at", Point}},
       .run = &I::expect_walker,
       .role = Role::Expect},
  };
  return t;
}

constexpr std::array<std::pair<std::string_view, int>, 25> kAdvice{{
    {"normal", MADV_NORMAL},
    {"random", MADV_RANDOM},
    {"sequential", MADV_SEQUENTIAL},
    {"willneed", MADV_WILLNEED},
    {"dontneed", MADV_DONTNEED},
    {"free", MADV_FREE},
    {"remove", MADV_REMOVE},
    {"dontfork", MADV_DONTFORK},
    {"dofork", MADV_DOFORK},
    {"mergeable", MADV_MERGEABLE},
    {"unmergeable", MADV_UNMERGEABLE},
    {"hugepage", MADV_HUGEPAGE},
    {"nohugepage", MADV_NOHUGEPAGE},
    {"dontdump", MADV_DONTDUMP},
    {"dodump", MADV_DODUMP},
    {"wipeonfork", MADV_WIPEONFORK},
    {"keeponfork", MADV_KEEPONFORK},
    {"cold", MADV_COLD},
    {"pageout", MADV_PAGEOUT},
    {"populate_read", MADV_POPULATE_READ},
    {"populate_write", MADV_POPULATE_WRITE},
    {"hwpoison", MADV_HWPOISON},
    {"collapse", 25},        // MADV_COLLAPSE (newer than some libc headers)
    {"guard_install", 102},  // MADV_GUARD_INSTALL (vma/guard.hpp)
    {"guard_remove", 103},   // MADV_GUARD_REMOVE
}};

bool one_of(std::string_view v, const std::vector<std::string_view>& set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

std::string join(const std::vector<std::string_view>& v) {
  std::string s;
  for (auto w : v) {
    if (!s.empty()) s += '|';
    s += w;
  }
  return s;
}

}  // namespace

const CmdSpec* find_spec(std::string_view name) {
  for (const auto& s : table())
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string_view> subforms(std::string_view cmd) {
  std::vector<std::string_view> out;
  for (const auto& s : table()) {
    const std::string_view n = s.name;
    if (n.size() > cmd.size() + 1 && n.starts_with(cmd) && n[cmd.size()] == ' ')
      out.push_back(n.substr(cmd.size() + 1));
  }
  return out;
}

bool is_command(std::string_view word) {
  return find_spec(word) != nullptr || !subforms(word).empty();
}

std::vector<std::string_view> command_names() {
  std::vector<std::string_view> out;
  for (const auto& s : table()) {
    const std::string_view n = s.name.substr(0, s.name.find(' '));
    if (!one_of(n, out)) out.push_back(n);
  }
  return out;
}

std::optional<int> advice_value(std::string_view name) {
  for (const auto& [n, v] : kAdvice)
    if (n == name) return v;
  return std::nullopt;
}

std::vector<std::string_view> advice_names() {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : kAdvice)
    out.push_back(n);
  return out;
}

std::optional<int> errno_by_name(std::string_view name) {
  if (name == "OK" || name == "ok") return 0;
  for (int c = 1; c < 134; ++c)
    if (errno_name(c) == name) return c;
  return std::nullopt;
}

std::vector<std::string_view> walker_names() {
  return {"unuse_mm", "unuse_mm-nocheck", "oom_reaper", "oom_reaper-nocheck",
          "rmap",     "rmap-nocheck"};
}

std::vector<std::string_view> fault_names() {
  return {"ok", "SEGV_MAPERR", "SEGV_ACCERR", "SIGBUS", "OOM"};
}

std::vector<std::string_view> outcome_names() {
  return {"met-xa-zero", "skipped-unstable", "skipped-oom-skip", "empty-tree",
          "walked",      "unreachable",      "no-mm-users",      "met-child-vma"};
}

std::optional<int> parse_prot(std::string_view s) {
  if (s.size() != 3) return std::nullopt;
  int p = PROT_NONE;
  const char* want = "rwx";
  const int bits[3] = {PROT_READ, PROT_WRITE, PROT_EXEC};
  for (std::size_t i = 0; i < 3; ++i) {
    if (s[i] == want[i])
      p |= bits[i];
    else if (s[i] != '-')
      return std::nullopt;
  }
  return p;
}

std::optional<std::string> unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return std::nullopt;
    switch (s[i]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '0':
        out += '\0';
        break;
      case '\\':
      case '"':
        out += s[i];
        break;
      case 'x': {
        if (i + 2 >= s.size()) return std::nullopt;
        const std::string hex(s.substr(i + 1, 2));
        char* end = nullptr;
        const long v = std::strtol(hex.c_str(), &end, 16);
        if (*end || !std::isxdigit(static_cast<unsigned char>(hex[0]))) return std::nullopt;
        out += static_cast<char>(v);
        i += 2;
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> check_kind(Kind kind, std::string_view v, bool quoted) {
  if (quoted && kind != Data) return std::string("a quoted string is not allowed here");
  if (!quoted && kind == Data) return std::string("expected a \"quoted string\"");
  auto expr = [&](std::string_view e) -> std::optional<std::string> {
    if (auto r = check_expr(e); !r) return r.error().msg;
    return std::nullopt;
  };
  switch (kind) {
    case NewMm:
    case Mm:
    case Ident:
      if (!is_identifier(v)) return "'" + std::string(v) + "' is not a name (letters, digits, _)";
      if (is_command(v) && kind == NewMm)
        return "'" + std::string(v) + "' is a command name; choose another name";
      return std::nullopt;
    case Expr:
      return expr(v);
    case AddrOrAuto:
      return v == "auto" ? std::nullopt : expr(v);
    case Brk:
      return expr(!v.empty() && (v[0] == '+' || v[0] == '-') ? v.substr(1) : v);
    case Prot:
      if (!parse_prot(v)) return "bad protection '" + std::string(v) + "' (like rw-, r-x, ---)";
      return std::nullopt;
    case Perms:
      if (v == "none") return std::nullopt;
      if (v.size() != 4 || !parse_prot(v.substr(0, 3)) || (v[3] != 'p' && v[3] != 's'))
        return "bad permissions '" + std::string(v) + "' (like rw-p, r--s, or none)";
      return std::nullopt;
    case Advice:
      if (!advice_value(v))
        return "unknown advice '" + std::string(v) + "' (" + join(advice_names()) + ")";
      return std::nullopt;
    case Recovery:
      if (!parse_recovery(v))
        return "unknown recovery '" + std::string(v) + "' (xa-zero|tree-max|partial)";
      return std::nullopt;
    case InjectSpec: {
      std::string_view rest = v;
      while (true) {
        const auto comma = rest.find(',');
        const std::string_view one = rest.substr(0, comma);
        if (!parse_inject_rule(one))
          return "bad failure rule '" + std::string(one) + "' (SITE:N or SITE:N+ with SITE " +
                 inject_site_names("|") + "|any)";
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
      return std::nullopt;
    }
    case Site:
      if (!parse_site(v))
        return "unknown site '" + std::string(v) + "' (vma|anon_vma|maple_node|pgtable|page)";
      return std::nullopt;
    case InjectSite:
      if (!parse_inject_site(v))
        return "unknown site '" + std::string(v) + "' (" + inject_site_names("|") + ")";
      return std::nullopt;
    case Prob: {
      const std::string s(v);
      char* end = nullptr;
      const double p = std::strtod(s.c_str(), &end);
      if (s.empty() || *end || !(p >= 0.0 && p <= 1.0))
        return "bad probability '" + s + "' (a number from 0 to 1)";
      return std::nullopt;
    }
    case Data:
      if (!unescape(v)) return std::string("bad escape in string (\\n \\t \\0 \\\\ \\\" \\xHH)");
      return std::nullopt;
    case Errno:
      if (!errno_by_name(v)) return "unknown errno name '" + std::string(v) + "'";
      return std::nullopt;
    case Fault:
      if (!one_of(v, fault_names()))
        return "unknown fault result '" + std::string(v) + "' (" + join(fault_names()) + ")";
      return std::nullopt;
    case Walker:
      if (!one_of(v, walker_names()))
        return "unknown walker '" + std::string(v) + "' (" + join(walker_names()) + ")";
      return std::nullopt;
    case Outcome:
      if (!one_of(v, outcome_names()))
        return "unknown walker outcome '" + std::string(v) + "' (" + join(outcome_names()) + ")";
      return std::nullopt;
    case Point:
      if (!parse_walker_point(v))
        return "unknown walker point '" + std::string(v) + "' (lock-drop|exit-unlock|both)";
      return std::nullopt;
    case RssType:
      if (!one_of(v, {"anon", "file", "shmem", "swap"}))
        return "unknown rss counter '" + std::string(v) + "' (anon|file|shmem|swap)";
      return std::nullopt;
    case Level:
      if (!one_of(v, {"pgd", "pud", "pmd", "pte"}))
        return "unknown level '" + std::string(v) + "' (pgd|pud|pmd|pte)";
      return std::nullopt;
    case Arch:
      if (v != "x86_64" && v != "arm64")
        return "unknown architecture '" + std::string(v) + "' (x86_64|arm64)";
      return std::nullopt;
    case YesNo:
      if (v != "yes" && v != "no") return "expected yes or no, not '" + std::string(v) + "'";
      return std::nullopt;
    case SeedWord:
      if (v != "seed") return "expected 'seed', not '" + std::string(v) + "'";
      return std::nullopt;
    case Word:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace mmemu::script
