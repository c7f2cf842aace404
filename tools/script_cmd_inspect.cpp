// Script commands that look without changing anything: dump, check, snapshot, leaks and
// the expect family. Frames are looked up in the page tables without faulting; only
// `expect bytes` reads as the program would (and so may fault a page in).
#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "tools/dump.hpp"
#include "tools/html_view.hpp"
#include "tools/script_interp.hpp"
#include "tools/script_spec.hpp"
#include "vma/anon_vma.hpp"
#include "vma/fault.hpp"
#include "vma/file.hpp"
#include "vma/proc_maps.hpp"
#include "vma/validate.hpp"

namespace mmemu::script {

using json = nlohmann::json;

namespace {

void add_lines(std::vector<std::string>& out, const std::string& text) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
}

// The frame mapped at va, looked up without faulting.
std::optional<pfn_t> frame_at(const Mm& mm, vaddr_t va) {
  const auto ref = mm.pt().lookup(va);
  if (!ref) return std::nullopt;
  const pte_t e = mm.pt().get(*ref);
  if (!mm.fmt().present(e)) return std::nullopt;
  return mm.fmt().pfn(e);
}

std::string vma_key(const Mm& mm, const Vma& v) {
  std::string s = maps_line(mm, v) + " | " + vm_flags_names(v.vm_flags);
  if (v.anon_vma) s += fmt::format(" | anon_vma #{}", anon_vma_id(v.anon_vma));
  return s;
}

StepOut verdict(bool pass, std::string what) {
  StepOut o;
  o.ok = pass;
  o.status = pass ? "pass" : "FAIL";
  o.result = (pass ? "pass: " : "FAIL: ") + what;
  return o;
}

}  // namespace

StepOut Interp::cmd_dump(const Stmt& st) {
  const Mm& mm = mm_arg(st, 0);
  const bool all = st.flags.empty() || st.flag("all");
  const Arg* format = st.key("format");
  const Arg* out_key = st.key("out");
  if (format && format->value != "html")
    fail(st, format,
         fmt::format("format={}: expected format=html (the step itself prints as "
                     "--format says)",
                     format->value));
  if (format && !out_key) fail(st, format, "format=html needs out=\"FILE\"");
  if (!format && out_key) fail(st, out_key, "out= goes with format=html");
  if (format) return dump_html(st, mm, *unescape(out_key->value));
  StepOut o;
  o.status = "ok";
  o.result = fmt::format("{} is mm {} ({}): {} VMAs, {} tables, rss anon {} file {} shmem {}",
                         st.pos[0].value, mm.id(), arch_name(mm.arch()), mm.map_count,
                         mm.pt().nr_tables_total(), mm.rss[MM_ANONPAGES], mm.rss[MM_FILEPAGES],
                         mm.rss[MM_SHMEMPAGES]);
  if (all || st.flag("vmas")) {
    add_lines(o.detail, dump::vmas_text(mm));
    o.data["vmas"] = dump::vmas_json(mm);
  }
  if (all || st.flag("tree")) {
    add_lines(o.detail, dump::tree_text(mm));
    o.data["tree"] = dump::tree_json(mm);
  }
  if (all || st.flag("pgtables")) {
    add_lines(o.detail, dump::pgtables_text(mm));
    o.data["pgtables"] = dump::pgtables_json(mm);
  }
  if (all || st.flag("counters")) {
    add_lines(o.detail, dump::mm_counters_text(mm));
    add_lines(o.detail, dump::machine_counters_text(machine));
    o.data["counters"] = dump::mm_counters_json(mm);
    o.data["machine"] = dump::machine_counters_json(machine);
  }
  return o;
}

StepOut Interp::dump_html(const Stmt& st, const Mm& mm, const std::string& path) {
  std::vector<json>& page = html_pages[path];
  page.push_back({{"dump", "script"},
                  {"pid", 0},
                  {"label", fmt::format("line {}: {} ({})", st.line, st.text, mm_label(mm))},
                  {"detail", json::array()},
                  {"arch", arch_name(mm.arch())},
                  {"counters", dump::mm_counters_json(mm)},
                  {"vmas", dump::vmas_json(mm)},
                  {"pgtables", dump::pgtables_json(mm)},
                  {"tree", dump::tree_json(mm)}});
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f << dump::html_view(page, fmt::format("mmemu script {}: page tables", prog.name));
  if (!f) fail(st, st.key("out"), fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  StepOut o;
  o.status = "ok";
  o.result = fmt::format("{} ({}) to {}: dump {} of the page", mm_label(mm), arch_name(mm.arch()),
                         path, page.size());
  o.data["html"] = path;
  o.data["dumps"] = page.size();
  return o;
}

StepOut Interp::cmd_check(const Stmt&) {
  const auto problems = validate_mms(live_mms());
  StepOut o;
  o.data["problems"] = problems;
  if (problems.empty()) {
    o.status = "ok";
    o.result = fmt::format("ok ({} mm{})", mms.size(), mms.size() == 1 ? "" : "s");
    return o;
  }
  invariants_broken = true;
  o.ok = false;
  o.status = "FAIL";
  o.result = fmt::format("{} problem{}", problems.size(), problems.size() == 1 ? "" : "s");
  o.detail = problems;
  return o;
}

Snapshot Interp::take_snapshot(const Mm& mm) const {
  Snapshot s;
  for (const Vma* v : mm.vmas())
    s.vmas.push_back(vma_key(mm, *v));
  const PhysMem& phys = mm.phys();
  mm.pt().for_each_pte(0, ~0ULL, [&](vaddr_t va, PteRef, pte_t e) {
    s.ptes[va] = fmt::format("{:#x}", e);
    if (mm.fmt().present(e)) {
      const pfn_t p = mm.fmt().pfn(e);
      const PageDesc& d = phys.desc(p);
      s.frames[p] = fmt::format("refcount {} mapcount {}", d.refcount, d.mapcount);
    }
  });
  mm.pt().for_each_table([&](pfn_t t, Level l, vaddr_t base) {
    s.tables[fmt::format("{} {:#x}", level_name(l), base)] = t;
  });
  s.counters = dump::mm_counters_text(mm);
  s.attempt_mark = machine.inject.attempts_total();
  return s;
}

StepOut Interp::cmd_snapshot(const Stmt& st) {
  MmSlot& sl = slot(st, 0);
  sl.snap = take_snapshot(*sl.mm);
  StepOut o;
  o.status = "ok";
  o.result = fmt::format("{} VMAs, {} PTEs, {} tables, {} frames recorded", sl.snap->vmas.size(),
                         sl.snap->ptes.size(), sl.snap->tables.size(), sl.snap->frames.size());
  return o;
}

StepOut Interp::cmd_leaks(const Stmt&) {
  StepOut o;
  o.status = "ok";
  // The page cache of the script's files is theirs until the script ends, not a leak.
  std::set<pfn_t> held;
  std::string cache;
  for (const auto& [name, f] : files) {
    for (const auto& [idx, pfn] : f->page_cache())
      held.insert(pfn);
    if (!f->page_cache().empty())
      cache += fmt::format("{}{} {}", cache.empty() ? "" : ", ", name, f->page_cache().size());
  }
  std::int64_t total = 0;
  for (AllocSite s : kAllAllocSites)
    total += machine.live.live(s);
  total -= static_cast<std::int64_t>(held.size());
  o.result = total == 0
                 ? "no live objects"
                 : fmt::format("{} live object{} ({} mm{} alive)", total, total == 1 ? "" : "s",
                               mms.size(), mms.size() == 1 ? "" : "s");
  if (!held.empty())
    o.result += fmt::format("; the script's files hold {} page-cache frame{} ({})", held.size(),
                            held.size() == 1 ? "" : "s", cache);
  add_lines(o.detail, dump::live_objects_text(machine, held, 8));
  o.data["live"] = dump::live_objects_json(machine, held);
  o.data["page_cache_frames"] = held.size();
  return o;
}

namespace {

// Differences between a snapshot and now. Entries that differ only by write protection are
// counted apart: a fork (also a failed one) leaves the parent's COW entries read-only.
struct SnapDiff {
  std::vector<std::string> diffs;
  std::size_t wrprotected = 0;
};

SnapDiff compare(const Snapshot& a, const Snapshot& b, const PteFormat& f) {
  SnapDiff d;
  auto note = [&d](std::string s) { d.diffs.push_back(std::move(s)); };
  for (std::size_t i = 0; i < std::max(a.vmas.size(), b.vmas.size()); ++i) {
    const std::string x = i < a.vmas.size() ? a.vmas[i] : "(none)";
    const std::string y = i < b.vmas.size() ? b.vmas[i] : "(none)";
    if (x != y) note(fmt::format("vma {}: was {}, now {}", i, x, y));
  }
  for (const auto& [va, e] : a.ptes) {
    const auto it = b.ptes.find(va);
    if (it == b.ptes.end()) {
      note(fmt::format("pte {:#x}: was {}, now none", va, e));
    } else if (it->second != e) {
      const pte_t old = std::stoull(e, nullptr, 16), now = std::stoull(it->second, nullptr, 16);
      if (f.wrprotect(old) == now)
        ++d.wrprotected;
      else
        note(fmt::format("pte {:#x}: was {}, now {}", va, e, it->second));
    }
  }
  for (const auto& [va, e] : b.ptes)
    if (!a.ptes.contains(va)) note(fmt::format("pte {:#x}: new {}", va, e));
  if (a.tables != b.tables) note("page tables differ");
  for (const auto& [p, s] : a.frames) {
    const auto it = b.frames.find(p);
    if (it == b.frames.end() || it->second != s)
      note(fmt::format("frame {:#x}: was {}, now {}", p, s,
                       it == b.frames.end() ? std::string("unmapped") : it->second));
  }
  if (a.counters != b.counters) note("counters: was " + a.counters + " now " + b.counters);
  return d;
}

}  // namespace

// ---------------------------------------------------------------- the expect family
// Each returns its verdict; the statement loop counts the failed ones.

StepOut Interp::expect_status(const Stmt& st) {
  std::string want = st.pos.empty() ? "ok" : st.pos[0].value;  // "expect ok" has no argument
  if (want == "OK") want = "ok";
  return verdict(last_status == want, fmt::format("last result {}", last_status));
}

StepOut Interp::expect_value(const Stmt& st) {
  const std::uint64_t a = pos_expr(st, 0), b = pos_expr(st, 1);
  return verdict(a == b, fmt::format("{:#x} {} {:#x}", a, a == b ? "==" : "!=", b));
}

StepOut Interp::expect_vmas(const Stmt& st) {
  const Mm& mm = mm_arg(st, 0);
  const std::uint64_t n = pos_expr(st, 1);
  const std::size_t have = mm.vmas().size();
  return verdict(have == n && static_cast<std::uint64_t>(mm.map_count) == n,
                 fmt::format("{} VMAs (map_count {}), expected {}", have, mm.map_count, n));
}

StepOut Interp::expect_vma(const Stmt& st) {
  const Mm& mm = mm_arg(st, 0);
  const vaddr_t a = pos_expr(st, 1);
  const Vma* v = mm.vma_lookup(a);
  const std::string have = v ? vm_flags_perm_string(v->vm_flags) : "none";
  const std::string where = v ? fmt::format("{:#x}-{:#x} {}", v->vm_start, v->vm_end, have)
                              : fmt::format("no VMA at {:#x}", a);
  return verdict(have == st.pos[2].value, where);
}

StepOut Interp::expect_rss(const Stmt& st) {
  const Mm& mm = mm_arg(st, 0);
  const std::string& t = st.pos[1].value;
  const int idx = t == "anon"    ? MM_ANONPAGES
                  : t == "file"  ? MM_FILEPAGES
                  : t == "shmem" ? MM_SHMEMPAGES
                                 : MM_SWAPENTS;
  const std::int64_t have = mm.rss[static_cast<std::size_t>(idx)];
  const std::uint64_t n = pos_expr(st, 2);
  return verdict(have >= 0 && static_cast<std::uint64_t>(have) == n,
                 fmt::format("rss {} {}, expected {}", t, have, n));
}

StepOut Interp::expect_tables(const Stmt& st) {
  const Mm& mm = mm_arg(st, 0);
  const std::uint64_t n = pos_expr(st, 1);
  std::size_t have = mm.pt().nr_tables_total();
  std::string what = "tables";
  if (const Arg* l = st.key("level")) {
    const Level lv = l->value == "pgd"   ? Level::Pgd
                     : l->value == "pud" ? Level::Pud
                     : l->value == "pmd" ? Level::Pmd
                                         : Level::Pte;
    have = mm.pt().nr_tables(lv);
    what = l->value + " tables";
  }
  return verdict(have == n, fmt::format("{} {}, expected {}", have, what, n));
}

StepOut Interp::expect_live(const Stmt& st) {
  const AllocSite s = *parse_site(st.pos[0].value);
  const std::int64_t have = machine.live.live(s);
  const std::uint64_t n = pos_expr(st, 1);
  return verdict(have >= 0 && static_cast<std::uint64_t>(have) == n,
                 fmt::format("{} live {}, expected {}", have, site_name(s), n));
}

StepOut Interp::expect_bytes(const Stmt& st) {
  Mm& mm = mm_arg(st, 0);
  const vaddr_t a = pos_expr(st, 1);
  const std::string want = *unescape(st.pos[2].value);
  // Read as the program would (copy_from_user): a page not yet mapped is faulted in.
  std::string have(want.size(), '\0');
  if (auto r = copy_from_user(mm, have.data(), a, have.size()); !r)
    return verdict(false, fmt::format("reading {:#x}: {}", a, errno_name(r.error().code)));
  return verdict(have == want,
                 have == want ? fmt::format("{} bytes match", want.size()) : "bytes differ");
}

StepOut Interp::expect_mapcount(const Stmt& st) {
  const Mm& mm = mm_arg(st, 0);
  const vaddr_t a = pos_expr(st, 1);
  const std::uint64_t n = pos_expr(st, 2);
  const auto p = frame_at(mm, a);
  if (!p) return verdict(false, fmt::format("{:#x} is not mapped", a));
  const std::int32_t have = mm.phys().desc(*p).mapcount;
  return verdict(have >= 0 && static_cast<std::uint64_t>(have) == n,
                 fmt::format("frame {:#x} mapcount {}, expected {}", *p, have, n));
}

namespace {

// expect shared / expect distinct: whether MM ADDR MM ADDR map the same frame.
StepOut same_frame(Interp& in, const Stmt& st, bool want_same) {
  const Mm& a = in.mm_arg(st, 0);
  const Mm& b = in.mm_arg(st, 2);
  const vaddr_t va = in.pos_expr(st, 1), vb = in.pos_expr(st, 3);
  const auto pa = frame_at(a, va), pb = frame_at(b, vb);
  if (!pa || !pb) return verdict(false, fmt::format("{:#x} not mapped", !pa ? va : vb));
  const bool same = *pa == *pb;
  return verdict(same == want_same, same ? fmt::format("both map frame {:#x}", *pa)
                                         : fmt::format("frames {:#x} and {:#x}", *pa, *pb));
}

}  // namespace

StepOut Interp::expect_shared(const Stmt& st) {
  return same_frame(*this, st, true);
}

StepOut Interp::expect_distinct(const Stmt& st) {
  return same_frame(*this, st, false);
}

StepOut Interp::expect_unchanged(const Stmt& st) {
  MmSlot& sl = slot(st, 0);
  if (!sl.snap) fail(st, &st.pos[0], fmt::format("no snapshot of '{}' yet", sl.name));
  const SnapDiff d = compare(*sl.snap, take_snapshot(*sl.mm), sl.mm->fmt());
  StepOut o;
  if (d.diffs.empty()) {
    std::string what = fmt::format("{} VMAs, {} PTEs, {} tables, {} frames as in the snapshot",
                                   sl.snap->vmas.size(), sl.snap->ptes.size(),
                                   sl.snap->tables.size(), sl.snap->frames.size());
    if (d.wrprotected)
      what += fmt::format(" ({} PTEs now write-protected for COW, as Linux leaves them)",
                          d.wrprotected);
    o = verdict(true, what);
  } else {
    o = verdict(false,
                fmt::format("{} difference{}", d.diffs.size(), d.diffs.size() == 1 ? "" : "s"));
    for (std::size_t i = 0; i < d.diffs.size() && i < 20; ++i)
      o.detail.push_back(d.diffs[i]);
  }
  o.data["wrprotected"] = d.wrprotected;
  o.data["differences"] = d.diffs;
  return o;
}

StepOut Interp::expect_no_leaks_since(const Stmt& st) {
  MmSlot& sl = slot(st, 0);
  if (!sl.snap) fail(st, &st.pos[0], fmt::format("no snapshot of '{}' yet", sl.name));
  const std::uint64_t mark = sl.snap->attempt_mark;
  std::vector<LiveObjects::Record> left;
  for (const auto& r : machine.live.records())
    if (r.attempt > mark) left.push_back(r);
  const std::uint64_t made = machine.inject.attempts_total() - mark;
  if (left.empty())
    return verdict(true, fmt::format("every object allocated since the snapshot of {} is freed "
                                     "({} allocation attempts)",
                                     sl.name, made));
  StepOut o =
      verdict(false, fmt::format("{} object{} allocated since the snapshot of {} still live",
                                 left.size(), left.size() == 1 ? "" : "s", sl.name));
  for (std::size_t i = 0; i < left.size() && i < 20; ++i) {
    const auto& r = left[i];
    const bool pfn = r.site == AllocSite::Page || r.site == AllocSite::PgTable;
    o.detail.push_back(fmt::format("{}{} from '{}' (allocation #{})", site_name(r.site),
                                   pfn ? fmt::format(" {:#x}", r.key) : std::string(), r.context,
                                   r.attempt));
  }
  return o;
}

StepOut Interp::expect_walker(const Stmt& st) {
  if (!last_fork) fail(st, nullptr, "no fork has run yet");
  const std::string& name = st.pos[0].value;
  // Without at=, the first report of that walker (lock-drop before exit-unlock).
  const std::string at = st.key("at") ? st.key("at")->value : "";
  const auto it = std::find_if(
      last_fork->walkers.begin(), last_fork->walkers.end(),
      [&](const WalkerReport& w) { return w.walker == name && (at.empty() || w.point == at); });
  if (it == last_fork->walkers.end())
    return verdict(false, fmt::format("walker {} did not run{} in the last fork", name,
                                      at.empty() ? "" : " at " + at));
  return verdict(it->outcome == st.pos[1].value, fmt::format("{} {}", name, it->outcome));
}

}  // namespace mmemu::script
