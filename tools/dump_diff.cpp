// `mmemu diff`: reading dumps, comparing them, rendering the differences.
// Tables are matched by level and VA span (a child's tables cover the parent's spans in
// other frames); entries by table and index, with the runs of the dumps expanded to single
// entries and collapsed again into runs of like changes; VMAs by their bounds, then the
// unmatched ones by overlap (one into several is a split, several into one a merge).
#include "tools/dump_diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "mmu/pte_format.hpp"

namespace mmemu::dump {

namespace {

using Expected = std::expected<void, std::string>;

// A hex string "0x1f000" (or a plain number) into `out`; false if it is neither. (Not an
// optional: GCC 12 sees optionals read after a test as maybe uninitialized.)
bool hex_value(const json& j, std::uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<std::uint64_t>();
    return true;
  }
  if (!j.is_string()) return false;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  const auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), out, 16);
  return ec == std::errc() && end == s.data() + s.size();
}

bool hex_field(const json& o, const char* key, std::uint64_t& out) {
  return o.is_object() && o.contains(key) && hex_value(o[key], out);
}

std::string str_of(const json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::optional<Level> level_of(const std::string& s) {
  for (Level l : {Level::Pgd, Level::Pud, Level::Pmd, Level::Pte})
    if (level_name(l) == s) return l;
  return std::nullopt;
}

std::optional<Arch> arch_of(const std::string& s) {
  if (s == arch_name(Arch::X86_64)) return Arch::X86_64;
  if (s == arch_name(Arch::Arm64)) return Arch::Arm64;
  return std::nullopt;
}

std::vector<std::string> tokens(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string t; in >> t;)
    v.push_back(t);
  return v;
}

// ---- the page tables of one dump, entry by entry ----

struct Table {
  Level level = Level::Pgd;
  std::uint64_t va_start = 0, va_last = 0, pfn = 0, used = 0;
  std::map<unsigned, EntrySide> entries;
};

using TableKey = std::pair<std::uint64_t, int>;  // va_start, level: depth-first order
using Tables = std::map<TableKey, Table>;

std::expected<Tables, std::string> read_tables(const json& pg, Arch arch) {
  const PteFormat& f = pte_format(arch);
  if (!pg.is_object() || !pg.contains("tables") || !pg["tables"].is_array())
    return std::unexpected("pgtables has no \"tables\" array");
  Tables out;
  std::size_t n = 0;
  for (const json& t : pg["tables"]) {
    ++n;
    const auto bad = [n](const std::string& what) {
      return std::unexpected(fmt::format("pgtables table #{}: {}", n, what));
    };
    if (!t.is_object()) return bad("not an object");
    const auto level = level_of(str_of(t, "level"));
    std::uint64_t start = 0, last = 0, pfn = 0;
    if (!level || !hex_field(t, "va_start", start) || !hex_field(t, "va_last", last) ||
        !hex_field(t, "pfn", pfn))
      return bad("needs level (pgd, pud, pmd, pte), va_start, va_last and pfn");
    Table tb;
    tb.level = *level;
    tb.va_start = start;
    tb.va_last = last;
    tb.pfn = pfn;
    tb.used = t.value("used", json(0)).is_number_unsigned() ? t["used"].get<std::uint64_t>() : 0;
    const char* list = *level == Level::Pte ? "runs" : "entries";
    if (!t.contains(list) || !t[list].is_array())
      return bad(fmt::format("a {} table needs a \"{}\" array", level_name(*level), list));
    for (const json& e : t[list]) {
      if (!e.is_object()) return bad("an entry is not an object");
      std::uint64_t raw = 0;
      if (!hex_field(e, "raw", raw)) return bad("an entry without a hex \"raw\"");
      if (*level != Level::Pte) {
        if (!e.contains("index") || !e["index"].is_number_unsigned() ||
            e["index"].get<std::uint64_t>() >= PTRS_PER_TABLE)
          return bad("an entry without an index below 512");
        EntrySide s;
        s.raw = raw;
        const json tab = e.value("table", json(nullptr));
        std::uint64_t target = f.pfn(raw);
        if (!tab.is_null() && !hex_value(tab, target)) return bad("an entry's table is not hex");
        s.frame = s.frame_last = target;
        s.present = f.present(raw) || f.is_table(raw);
        s.bits = f.decode(raw, *level);
        s.kind = tab.is_null() ? "" : "table";
        tb.entries[e["index"].get<unsigned>()] = s;
        continue;
      }
      const json& fi = e.value("first", json());
      const json& la = e.value("last", json());
      std::uint64_t ff = 0, fl = 0;
      if (!fi.is_number_unsigned() || !la.is_number_unsigned() ||
          !hex_field(e, "frame_first", ff) || !hex_field(e, "frame_last", fl) ||
          la.get<std::uint64_t>() >= PTRS_PER_TABLE ||
          fi.get<std::uint64_t>() > la.get<std::uint64_t>())
        return bad("a run needs first <= last < 512, frame_first and frame_last");
      const unsigned first = fi.get<unsigned>(), lastx = la.get<unsigned>();
      const bool present =
          e.value("present", json(true)).is_boolean() ? e["present"].get<bool>() : true;
      // Runs step one frame per entry, or repeat one frame (the zero page).
      const bool steps = fl != ff;
      if (steps && fl - ff != lastx - first) return bad("a run's frames do not match its length");
      for (unsigned i = first; i <= lastx; ++i) {
        EntrySide s;
        s.present = present;
        s.frame = s.frame_last = present ? ff + (steps ? i - first : 0) : 0;
        s.raw = present ? (raw - (f.pfn(raw) << PAGE_SHIFT)) | (s.frame << PAGE_SHIFT) : raw;
        if (i == first) s.raw = raw;
        s.bits = f.decode(s.raw, Level::Pte);
        s.prot = str_of(e, "prot");
        s.kind = str_of(e, "kind");
        s.mapcount = e.value("mapcount", json(0)).is_number_integer()
                         ? e["mapcount"].get<std::int64_t>()
                         : 0;
        tb.entries[i] = s;
      }
    }
    out[{tb.va_start, static_cast<int>(tb.level)}] = std::move(tb);
  }
  return out;
}

std::expected<std::vector<VmaSide>, std::string> read_vmas(const json& vm) {
  if (!vm.is_object() || !vm.contains("vmas") || !vm["vmas"].is_array())
    return std::unexpected("vmas has no \"vmas\" array");
  std::vector<VmaSide> out;
  for (const json& v : vm["vmas"]) {
    std::uint64_t s = 0, e = 0;
    if (!hex_field(v, "start", s) || !hex_field(v, "end", e) || e <= s)
      return std::unexpected(fmt::format("vma #{}: needs hex start < end", out.size() + 1));
    out.push_back(VmaSide{.start = s,
                          .end = e,
                          .perms = str_of(v, "perms"),
                          .flags = str_of(v, "flags"),
                          .name = str_of(v, "name"),
                          .anon_vma = v.value("anon_vma", json(nullptr)),
                          .raw = v});
  }
  std::sort(out.begin(), out.end(),
            [](const VmaSide& x, const VmaSide& y) { return x.start < y.start; });
  return out;
}

Expected check_doc(const DumpDoc& d) {
  const auto arch = arch_of(d.arch);
  if (!arch) return std::unexpected(fmt::format("unknown arch '{}'", d.arch));
  if (!d.pgtables.is_null())
    if (auto t = read_tables(d.pgtables, *arch); !t) return std::unexpected(t.error());
  if (!d.vmas.is_null())
    if (auto v = read_vmas(d.vmas); !v) return std::unexpected(v.error());
  if (!d.counters.is_null() && !d.counters.is_object())
    return std::unexpected("counters is not an object");
  return {};
}

// A JSON value as a dump: a `mmemu run` dump, a script `dump` step, another script step
// (nullopt: skipped), or the wrong shape (an error).
std::expected<std::optional<DumpDoc>, std::string> as_dump(const json& v) {
  if (!v.is_object()) return std::unexpected("not a JSON object");
  DumpDoc d;
  if (v.contains("cmd")) {  // mmemu script --format json
    if (str_of(v, "cmd") != "dump") return std::optional<DumpDoc>{};
    const json& data = v.value("data", json());
    if (!data.is_object()) return std::unexpected("a script dump step without \"data\"");
    d.label = fmt::format("line {}: {}", v.value("line", json(0)).dump(), str_of(v, "text"));
    d.vmas = data.value("vmas", json());
    d.pgtables = data.value("pgtables", json());
    d.counters = data.value("counters", json());
    if (data.contains("machine") && d.counters.is_object()) d.counters["machine"] = data["machine"];
    if (d.vmas.is_null() && d.pgtables.is_null() && d.counters.is_null())
      return std::optional<DumpDoc>{};  // `dump p tree`: nothing this compares
    d.run_shaped = {{"dump", "script"}, {"pid", nullptr},
                    {"label", d.label}, {"detail", json::array()},
                    {"arch", nullptr},  {"counters", data.value("counters", json())},
                    {"vmas", d.vmas},   {"pgtables", d.pgtables}};
    if (data.contains("tree")) d.run_shaped["tree"] = data["tree"];
  } else if (v.contains("pgtables") || v.contains("vmas")) {  // mmemu run --dump-pgtables
    d.label = fmt::format("{} pid {}: {}", str_of(v, "dump"), v.value("pid", json()).dump(),
                          str_of(v, "label"));
    d.vmas = v.value("vmas", json());
    d.pgtables = v.value("pgtables", json());
    d.counters = v.value("counters", json());
    d.arch = str_of(v, "arch");
    d.run_shaped = v;
  } else {
    return std::unexpected(
        "not a page-table dump (expected the JSON of `mmemu run --dump-pgtables` or "
        "`mmemu script`)");
  }
  if (d.arch.empty()) d.arch = str_of(d.pgtables, "arch");
  if (d.arch.empty()) d.arch = str_of(d.vmas, "arch");
  if (d.run_shaped["arch"].is_null()) d.run_shaped["arch"] = d.arch;
  if (auto ok = check_doc(d); !ok) return std::unexpected(ok.error());
  return std::optional<DumpDoc>{std::move(d)};
}

}  // namespace

std::expected<std::vector<DumpDoc>, std::string> parse_dumps(const std::string& text,
                                                             const std::string& name) {
  std::vector<std::pair<std::size_t, json>> values;  // line (0: whole file), value
  if (json whole = json::parse(text, nullptr, false); !whole.is_discarded()) {
    if (whole.is_array())
      for (json& e : whole)
        values.emplace_back(0, std::move(e));
    else
      values.emplace_back(0, std::move(whole));
  } else {
    std::istringstream in(text);
    std::size_t lineno = 0;
    for (std::string line; std::getline(in, line);) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json v = json::parse(line, nullptr, false);
      if (v.is_discarded())
        return std::unexpected(fmt::format("{}: line {}: not JSON", name, lineno));
      values.emplace_back(lineno, std::move(v));
    }
  }
  std::vector<DumpDoc> out;
  for (auto& [lineno, v] : values) {
    auto d = as_dump(v);
    if (!d)
      return std::unexpected(lineno ? fmt::format("{}: line {}: {}", name, lineno, d.error())
                                    : fmt::format("{}: {}", name, d.error()));
    if (!*d) continue;
    (*d)->where = fmt::format("{}:{}", name, out.size() + 1);
    out.push_back(std::move(**d));
  }
  if (out.empty()) return std::unexpected(fmt::format("{}: no page-table dump in it", name));
  return out;
}

std::expected<DumpDoc, std::string> load_dump(const std::string& spec) {
  namespace fs = std::filesystem;
  std::string path = spec;
  std::optional<std::size_t> nth;
  std::error_code ec;
  if (const auto colon = spec.rfind(':'); !fs::exists(spec, ec) && colon != std::string::npos) {
    const std::string n = spec.substr(colon + 1);
    std::size_t v = 0;
    const auto [end, err] = std::from_chars(n.data(), n.data() + n.size(), v);
    if (!n.empty() && err == std::errc() && end == n.data() + n.size()) {
      path = spec.substr(0, colon);
      nth = v;
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in || fs::is_directory(path, ec))
    return std::unexpected(
        fmt::format("cannot read {}: {}", path,
                    fs::is_directory(path, ec) ? "a directory" : std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  auto docs = parse_dumps(ss.str(), path);
  if (!docs) return std::unexpected(docs.error());
  if (nth) {
    if (*nth < 1 || *nth > docs->size())
      return std::unexpected(fmt::format("{}: no dump {} ({} holds {} dump{})", spec, *nth, path,
                                         docs->size(), docs->size() == 1 ? "" : "s"));
    return std::move((*docs)[*nth - 1]);
  }
  if (docs->size() > 1) {
    std::string list;
    for (std::size_t i = 0; i < docs->size(); ++i)
      list += fmt::format("{}{}: {}", i ? "; " : "", i + 1, (*docs)[i].label);
    return std::unexpected(
        fmt::format("{} holds {} dumps, pick one with {}:N ({})", path, docs->size(), path, list));
  }
  return std::move(docs->front());
}

namespace {

// ---- comparing ----

bool same_side(const EntrySide& x, const EntrySide& y) {
  return x.raw == y.raw && x.frame == y.frame && x.present == y.present && x.prot == y.prot &&
         x.kind == y.kind && x.mapcount == y.mapcount;
}

// One entry's change (a single-entry run).
EntryDiff entry_change(const Table& t, unsigned i, const EntrySide* a, const EntrySide* b) {
  EntryDiff d;
  d.level = std::string(level_name(t.level));
  d.table_va = t.va_start;
  d.first = d.last = i;
  const unsigned shift = level_shift(t.level);
  d.va_start = t.va_start + (static_cast<std::uint64_t>(i) << shift);
  d.va_last = d.va_start + ((1ULL << shift) - 1);
  if (a) d.a = *a;
  if (b) d.b = *b;
  d.op = a && b ? '~' : a ? '-' : '+';
  if (a && b) {
    if (a->frame != b->frame || a->present != b->present) d.changed.push_back("frame");
    if (a->prot != b->prot) d.changed.push_back("prot");
    const auto ta = tokens(a->bits), tb = tokens(b->bits);
    const std::set<std::string> sa(ta.begin(), ta.end()), sb(tb.begin(), tb.end());
    for (const auto& x : tb)
      if (!sa.contains(x)) d.bits_added.push_back(x);
    for (const auto& x : ta)
      if (!sb.contains(x)) d.bits_removed.push_back(x);
    if (!d.bits_added.empty() || !d.bits_removed.empty()) d.changed.push_back("bits");
    if (a->kind != b->kind) d.changed.push_back("kind");
    if (a->mapcount != b->mapcount) d.changed.push_back("mapcount");
    if (d.changed.empty()) d.changed.push_back("raw");
  }
  return d;
}

// Whether `next` continues run `r` (entries of one table): same change, frames stepping as
// the run's first two did.
bool continues(const EntryDiff& r, const EntryDiff& next) {
  if (r.table_va != next.table_va || r.level != next.level || r.op != next.op ||
      r.last + 1 != next.first || r.changed != next.changed || r.bits_added != next.bits_added ||
      r.bits_removed != next.bits_removed)
    return false;
  const auto side_ok = [&](const std::optional<EntrySide>& x, const std::optional<EntrySide>& y) {
    if (x.has_value() != y.has_value()) return false;
    if (!x) return true;
    if (x->prot != y->prot || x->kind != y->kind || x->mapcount != y->mapcount ||
        x->present != y->present || x->kind == "table" || !x->present)
      return false;
    if (r.first == r.last) return y->frame == x->frame_last || y->frame == x->frame_last + 1;
    const bool steps = x->frame_last != x->frame;
    return y->frame == x->frame_last + (steps ? 1 : 0);
  };
  return side_ok(r.a, next.a) && side_ok(r.b, next.b);
}

void extend(EntryDiff& r, const EntryDiff& next) {
  r.last = next.last;
  r.va_last = next.va_last;
  if (r.a) r.a->frame_last = next.a->frame;
  if (r.b) r.b->frame_last = next.b->frame;
}

void diff_tables(const Tables& ta, const Tables& tb, DiffResult& out) {
  std::set<TableKey> keys;
  for (const auto& [k, t] : ta)
    keys.insert(k);
  for (const auto& [k, t] : tb)
    keys.insert(k);
  static const Table kEmpty;
  for (const TableKey& k : keys) {
    const auto ia = ta.find(k), ib = tb.find(k);
    const Table* a = ia == ta.end() ? nullptr : &ia->second;
    const Table* b = ib == tb.end() ? nullptr : &ib->second;
    const Table& any = a ? *a : *b;
    if (!a || !b || a->pfn != b->pfn) {
      TableDiff d;
      d.op = !a ? '+' : !b ? '-' : '~';
      d.level = std::string(level_name(any.level));
      d.va_start = any.va_start;
      d.va_last = any.va_last;
      if (a) d.frame_a = a->pfn, d.used_a = a->used;
      if (b) d.frame_b = b->pfn, d.used_b = b->used;
      out.tables.push_back(d);
    }
    const auto& ea = a ? a->entries : kEmpty.entries;
    const auto& eb = b ? b->entries : kEmpty.entries;
    std::set<unsigned> idx;
    for (const auto& [i, e] : ea)
      idx.insert(i);
    for (const auto& [i, e] : eb)
      idx.insert(i);
    for (unsigned i : idx) {
      const auto xa = ea.find(i), xb = eb.find(i);
      const EntrySide* sa = xa == ea.end() ? nullptr : &xa->second;
      const EntrySide* sb = xb == eb.end() ? nullptr : &xb->second;
      if (sa && sb && same_side(*sa, *sb)) continue;
      EntryDiff d = entry_change(any, i, sa, sb);
      if (!out.entries.empty() && continues(out.entries.back(), d))
        extend(out.entries.back(), d);
      else
        out.entries.push_back(std::move(d));
    }
  }
}

// The VMA fields compared when bounds match, and for the pieces of a split or merge.
const std::vector<std::pair<const char*, const char*>> kVmaFields = {
    {"perms", "perms"},       {"vm_flags", "flags"},
    {"anon_vma", "anon_vma"}, {"anon_vma_chain", "anon_vma_chain"},
    {"name", "name"},         {"pgoff", "pgoff"},
    {"dev", "dev"},           {"inode", "inode"}};

std::vector<std::string> vma_field_changes(const std::vector<VmaSide>& a,
                                           const std::vector<VmaSide>& b) {
  std::vector<std::string> out;
  for (const auto& [key, shown] : kVmaFields) {
    bool differs = false;
    for (const VmaSide& x : a)
      for (const VmaSide& y : b)
        differs = differs || x.raw.value(key, json()) != y.raw.value(key, json());
    // A split file mapping's pieces have their own pgoff: that is the split, not a change.
    if (std::string_view(key) == "pgoff" && a.size() + b.size() > 2) {
      differs = false;
      for (const VmaSide& x : a)
        for (const VmaSide& y : b) {
          const auto px = x.raw.value("pgoff", json()), py = y.raw.value("pgoff", json());
          if (px.is_number_unsigned() && py.is_number_unsigned() &&
              x.raw.value("inode", json(0)) != 0)
            differs = differs || (px.get<std::uint64_t>() + ((y.start - x.start) >> PAGE_SHIFT) !=
                                  py.get<std::uint64_t>());
        }
    }
    if (differs) out.emplace_back(shown);
  }
  return out;
}

void diff_vmas(const std::vector<VmaSide>& va, const std::vector<VmaSide>& vb, DiffResult& out) {
  std::map<std::pair<std::uint64_t, std::uint64_t>, const VmaSide*> bounds_b;
  for (const VmaSide& v : vb)
    bounds_b[{v.start, v.end}] = &v;
  std::vector<const VmaSide*> ua, ub;
  std::set<const VmaSide*> matched_b;
  for (const VmaSide& v : va) {
    const auto it = bounds_b.find({v.start, v.end});
    if (it == bounds_b.end()) {
      ua.push_back(&v);
      continue;
    }
    matched_b.insert(it->second);
    if (auto ch = vma_field_changes({v}, {*it->second}); !ch.empty())
      out.vmas.push_back(VmaDiff{.op = "changed", .a = {v}, .b = {*it->second}, .changed = ch});
  }
  for (const VmaSide& v : vb)
    if (!matched_b.contains(&v)) ub.push_back(&v);
  // Components of the overlap graph between unmatched A and B VMAs (both sorted by start).
  const std::size_t n = ua.size() + ub.size();
  std::vector<std::size_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&parent](std::size_t x) {
    while (parent[x] != x)
      x = parent[x] = parent[parent[x]];
    return x;
  };
  for (std::size_t i = 0; i < ua.size(); ++i)
    for (std::size_t j = 0; j < ub.size(); ++j)
      if (ua[i]->start < ub[j]->end && ub[j]->start < ua[i]->end)
        parent[find(i)] = find(ua.size() + j);
  std::map<std::size_t, std::pair<std::vector<VmaSide>, std::vector<VmaSide>>> comps;
  std::vector<std::size_t> order;  // components in address order
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t r = find(i);
    if (!comps.contains(r)) order.push_back(r);
    auto& c = comps[r];
    (i < ua.size() ? c.first : c.second).push_back(i < ua.size() ? *ua[i] : *ub[i - ua.size()]);
  }
  std::vector<VmaDiff> found;
  for (std::size_t r : order) {
    auto& [a, b] = comps[r];
    VmaDiff d;
    d.op = a.empty()                        ? "added"
           : b.empty()                      ? "removed"
           : a.size() == 1 && b.size() == 1 ? "resized"
           : a.size() == 1                  ? "split"
           : b.size() == 1                  ? "merged"
                                            : "reshaped";
    if (!a.empty() && !b.empty()) d.changed = vma_field_changes(a, b);
    d.a = std::move(a);
    d.b = std::move(b);
    found.push_back(std::move(d));
  }
  for (auto& d : found)
    out.vmas.push_back(std::move(d));
  std::stable_sort(out.vmas.begin(), out.vmas.end(), [](const VmaDiff& x, const VmaDiff& y) {
    const auto s = [](const VmaDiff& d) {
      return d.a.empty() ? d.b.front().start : d.a.front().start;
    };
    return s(x) < s(y);
  });
}

void flatten(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j;
  }
}

void diff_counters(const json& ca, const json& cb, DiffResult& out) {
  std::map<std::string, json> fa, fb;
  flatten(ca, "", fa);
  flatten(cb, "", fb);
  std::set<std::string> keys;
  for (const auto& [k, v] : fa)
    keys.insert(k);
  for (const auto& [k, v] : fb)
    keys.insert(k);
  // "mm" is which mm was dumped, not a count.
  keys.erase("mm");
  for (const std::string& k : keys) {
    const json a = fa.contains(k) ? fa[k] : json(), b = fb.contains(k) ? fb[k] : json();
    if (a == b) continue;
    CounterDiff d{.name = k, .old_value = a, .new_value = b, .delta = std::nullopt};
    if (a.is_number_integer() && b.is_number_integer())
      // Wrapping, not overflowing, on counters no dump holds (input is not trusted).
      d.delta = static_cast<std::int64_t>(static_cast<std::uint64_t>(b.get<std::int64_t>()) -
                                          static_cast<std::uint64_t>(a.get<std::int64_t>()));
    out.counters.push_back(std::move(d));
  }
  // The mm's own counters first, the machine's (script dumps) after them.
  std::stable_partition(out.counters.begin(), out.counters.end(),
                        [](const CounterDiff& c) { return !c.name.starts_with("machine."); });
}

// Tables B's dump lists as freed while in use (pgtables.freed_in_use: level, start, the
// entries still mapped) that A still had: marked on their '-' line; the number of such
// tables is a counter.
void mark_freed_in_use(const json& pa, const json& pb, DiffResult& out) {
  const auto list = [](const json& pg) {
    const json fiu = pg.value("freed_in_use", json());
    return fiu.is_array() ? fiu : json::array();
  };
  const json la = list(pa), lb = list(pb);
  for (const json& f : lb) {
    std::uint64_t start = 0;
    if (!f.is_object() || !hex_field(f, "start", start)) continue;
    const std::string level = str_of(f, "level");
    for (TableDiff& t : out.tables)
      if (t.op == '-' && t.level == level && t.va_start == start) {
        t.freed_in_use = true;
        const json e = f.value("entries", json());
        t.in_use_entries = e.is_array() ? e.size() : 0;
      }
  }
  if (la.size() != lb.size())
    out.counters.push_back(CounterDiff{
        .name = "pgtables.freed_in_use",
        .old_value = la.size(),
        .new_value = lb.size(),
        .delta = static_cast<std::int64_t>(lb.size()) - static_cast<std::int64_t>(la.size())});
}

}  // namespace

std::expected<DiffResult, std::string> diff_dumps(const DumpDoc& a, const DumpDoc& b) {
  if (a.arch != b.arch)
    return std::unexpected(fmt::format("{} is an {} dump, {} an {} dump: nothing to compare",
                                       a.where, a.arch, b.where, b.arch));
  const auto arch = arch_of(a.arch);
  if (!arch) return std::unexpected(fmt::format("{}: unknown arch '{}'", a.where, a.arch));
  DiffResult d;
  d.arch = a.arch;
  d.label_a = a.label;
  d.label_b = b.label;
  d.where_a = a.where;
  d.where_b = b.where;
  const auto one_sided = [&d, &a, &b](const json& x, const json& y, const char* what) {
    if (x.is_null() == y.is_null()) return !x.is_null();
    d.not_compared.push_back(
        fmt::format("{} (only {} has them)", what, x.is_null() ? b.where : a.where));
    return false;
  };
  if (one_sided(a.pgtables, b.pgtables, "page tables")) {
    auto ta = read_tables(a.pgtables, *arch);
    auto tb = read_tables(b.pgtables, *arch);
    if (!ta) return std::unexpected(a.where + ": " + ta.error());
    if (!tb) return std::unexpected(b.where + ": " + tb.error());
    diff_tables(*ta, *tb, d);
    mark_freed_in_use(a.pgtables, b.pgtables, d);
  }
  if (one_sided(a.vmas, b.vmas, "VMAs")) {
    auto va = read_vmas(a.vmas);
    auto vb = read_vmas(b.vmas);
    if (!va) return std::unexpected(a.where + ": " + va.error());
    if (!vb) return std::unexpected(b.where + ": " + vb.error());
    diff_vmas(*va, *vb, d);
  }
  if (one_sided(a.counters, b.counters, "counters")) diff_counters(a.counters, b.counters, d);
  return d;
}

// ---- rendering ----

namespace {

std::string hx(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

std::string frames_of(const EntrySide& s, unsigned count) {
  if (!s.present) return "not present";
  if (s.kind == "table") return "table " + hx(s.frame);
  if (count == 1) return "frame " + hx(s.frame);
  if (s.frame == s.frame_last) return fmt::format("frame {} x{}", hx(s.frame), count);
  return fmt::format("frames {}..{}", hx(s.frame), hx(s.frame_last));
}

std::string side_text(const EntrySide& s, unsigned count) {
  std::string t = frames_of(s, count);
  if (!s.prot.empty()) t += " " + s.prot;
  if (!s.kind.empty() && s.kind != "table") t += " " + s.kind;
  if (s.present && s.kind != "table" && s.kind != "zero-page" && s.mapcount != 1)
    t += fmt::format(" mapcount {}", s.mapcount);
  return t + " | " + s.bits;
}

std::string index_text(const EntryDiff& e) {
  return e.first == e.last ? fmt::format("{}[{}]", e.level, e.first)
                           : fmt::format("{}[{}..{}]", e.level, e.first, e.last);
}

std::string change_text(const EntryDiff& e) {
  const unsigned n = e.last - e.first + 1;
  if (e.op == '+') return "-> " + side_text(*e.b, n);
  if (e.op == '-') return "was " + side_text(*e.a, n);
  std::vector<std::string> parts;
  for (const std::string& c : e.changed) {
    if (c == "frame")
      parts.push_back(frames_of(*e.a, n) + " -> " + frames_of(*e.b, n));
    else if (c == "prot")
      parts.push_back(fmt::format("prot {} -> {}", e.a->prot, e.b->prot));
    else if (c == "kind")
      parts.push_back(fmt::format("{} -> {}", e.a->kind, e.b->kind));
    else if (c == "mapcount")
      parts.push_back(fmt::format("mapcount {} -> {}", e.a->mapcount, e.b->mapcount));
    else if (c == "raw")
      parts.push_back(fmt::format("raw {} -> {}", hx(e.a->raw), hx(e.b->raw)));
    else if (c == "bits") {
      std::string s = "bits";
      for (const auto& x : e.bits_removed)
        s += " -" + x;
      for (const auto& x : e.bits_added)
        s += " +" + x;
      parts.push_back(s);
    }
  }
  std::string out;
  if (std::find(e.changed.begin(), e.changed.end(), "frame") == e.changed.end())
    out = frames_of(*e.a, n) + ": ";
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i ? ", " : "") + parts[i];
  return out;
}

// Rows of columns, padded so each column lines up (the last one is not padded); the first
// column is the marker.
std::string aligned(const std::vector<std::vector<std::string>>& rows, const std::string& ind) {
  std::vector<std::size_t> w;
  for (const auto& r : rows)
    for (std::size_t i = 0; i + 1 < r.size(); ++i) {
      if (w.size() <= i) w.resize(i + 1, 0);
      w[i] = std::max(w[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line = ind;
    for (std::size_t i = 0; i < r.size(); ++i)
      // The +/-/~ marker is followed by one space, other columns by two.
      line += i + 1 < r.size() ? fmt::format("{:<{}}{}", r[i], w[i], i == 0 ? " " : "  ") : r[i];
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string vma_text(const VmaSide& v) {
  std::string s = fmt::format("{:x}-{:x} {}", v.start, v.end, v.perms);
  if (!v.name.empty()) s += " " + v.name;
  return s;
}

std::string vma_list(const std::vector<VmaSide>& vs) {
  std::string s;
  for (std::size_t i = 0; i < vs.size(); ++i)
    s += (i ? ", " : "") + vma_text(vs[i]);
  return s;
}

std::string value_text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string vma_changes_text(const VmaDiff& d) {
  if (d.a.size() != 1 || d.b.size() != 1) {
    std::string s;
    for (std::size_t i = 0; i < d.changed.size(); ++i)
      s += (i ? ", " : "") + d.changed[i];
    return s.empty() ? "" : "(" + s + ")";
  }
  std::string s;
  for (const std::string& c : d.changed) {
    const char* key = c.c_str();  // "flags" shows the names, not vm_flags' hex
    s += fmt::format("{}{} {} -> {}", s.empty() ? "" : ", ", c,
                     value_text(d.a[0].raw.value(key, json())),
                     value_text(d.b[0].raw.value(key, json())));
  }
  return s;
}

std::size_t entry_count(const DiffResult& d) {
  std::size_t n = 0;
  for (const auto& e : d.entries)
    n += e.last - e.first + 1;
  return n;
}

std::size_t count_tables(const DiffResult& d, char op) {
  return static_cast<std::size_t>(std::count_if(d.tables.begin(), d.tables.end(),
                                                [op](const TableDiff& t) { return t.op == op; }));
}

}  // namespace

std::string diff_text(const DiffResult& d) {
  std::string out =
      fmt::format("--- {}  {}\n+++ {}  {}\n", d.where_a, d.label_a, d.where_b, d.label_b);
  for (const std::string& s : d.not_compared)
    out += "not compared: " + s + "\n";
  if (d.empty()) return out + "no differences\n";
  out += fmt::format(
      "{}: tables {} allocated, {} freed, {} in other frames; {} entries changed; {} VMA "
      "changes; {} counters moved\n",
      d.arch, count_tables(d, '+'), count_tables(d, '-'), count_tables(d, '~'), entry_count(d),
      d.vmas.size(), d.counters.size());
  if (!d.tables.empty()) {
    out += "\npage tables:\n";
    std::vector<std::vector<std::string>> rows;
    for (const TableDiff& t : d.tables) {
      const std::string frame = t.op == '+' ? "frame " + hx(*t.frame_b)
                                : t.op == '-'
                                    ? "frame " + hx(*t.frame_a)
                                    : fmt::format("frame {} -> {}", hx(*t.frame_a), hx(*t.frame_b));
      rows.push_back(
          {std::string(1, t.op), t.level, fmt::format("va {}..{}", hx(t.va_start), hx(t.va_last)),
           frame,
           t.op == '+' ? fmt::format("used {}", *t.used_b)
           : t.op == '-'
               ? fmt::format("used {}{}", *t.used_a,
                             t.freed_in_use ? fmt::format(", FREED WHILE IN USE ({} entr{} still "
                                                          "mapped)",
                                                          t.in_use_entries,
                                                          t.in_use_entries == 1 ? "y" : "ies")
                                            : "")
               : fmt::format("used {} -> {}", *t.used_a, *t.used_b)});
    }
    out += aligned(rows, "  ");
  }
  if (!d.entries.empty()) {
    out += "\nentries:\n";
    std::vector<std::vector<std::string>> rows;
    for (const EntryDiff& e : d.entries)
      rows.push_back({std::string(1, e.op), index_text(e),
                      fmt::format("va {}..{}", hx(e.va_start), hx(e.va_last)), change_text(e)});
    out += aligned(rows, "  ");
  }
  if (!d.vmas.empty()) {
    out += "\nvmas:\n";
    std::vector<std::vector<std::string>> rows;
    for (const VmaDiff& v : d.vmas) {
      const char op = v.op == "added" ? '+' : v.op == "removed" ? '-' : '~';
      std::string what;
      if (v.op == "added")
        what = vma_list(v.b);
      else if (v.op == "removed")
        what = vma_list(v.a);
      else if (v.op == "changed")
        what = vma_text(v.a[0]) + ": " + vma_changes_text(v);
      else
        what = vma_list(v.a) + " -> " + vma_list(v.b) +
               (v.changed.empty() ? "" : " " + vma_changes_text(v));
      rows.push_back({std::string(1, op), v.op, what});
    }
    out += aligned(rows, "  ");
  }
  if (!d.counters.empty()) {
    out += "\ncounters:\n";
    std::vector<std::vector<std::string>> rows;
    for (const CounterDiff& c : d.counters)
      rows.push_back({"~", c.name, value_text(c.old_value), "->", value_text(c.new_value),
                      c.delta ? fmt::format("({:+})", *c.delta) : ""});
    out += aligned(rows, "  ");
  }
  return out;
}

namespace {

json side_json(const EntrySide& s) {
  return {{"raw", hx(s.raw)},
          {"frame_first", hx(s.frame)},
          {"frame_last", hx(s.frame_last)},
          {"present", s.present},
          {"prot", s.prot},
          {"bits", s.bits},
          {"kind", s.kind},
          {"mapcount", s.mapcount}};
}

json vma_json(const VmaSide& v) {
  return {{"start", hx(v.start)},
          {"end", hx(v.end)},
          {"perms", v.perms},
          {"flags", v.flags},
          {"name", v.name},
          {"anon_vma", v.anon_vma},
          {"vm_flags", v.raw.value("vm_flags", json())},
          {"pgoff", v.raw.value("pgoff", json())}};
}

const char* table_op(char op) {
  return op == '+' ? "allocated" : op == '-' ? "freed" : "moved";
}

const char* entry_op(char op) {
  return op == '+' ? "added" : op == '-' ? "removed" : "changed";
}

}  // namespace

json diff_json(const DiffResult& d) {
  json tables = json::array(), entries = json::array(), vmas = json::array(),
       counters = json::array();
  for (const TableDiff& t : d.tables)
    tables.push_back({{"op", table_op(t.op)},
                      {"level", t.level},
                      {"va_start", hx(t.va_start)},
                      {"va_last", hx(t.va_last)},
                      {"frame_a", t.frame_a ? json(hx(*t.frame_a)) : json()},
                      {"frame_b", t.frame_b ? json(hx(*t.frame_b)) : json()},
                      {"used_a", t.used_a ? json(*t.used_a) : json()},
                      {"used_b", t.used_b ? json(*t.used_b) : json()},
                      {"freed_in_use", t.freed_in_use},
                      {"in_use_entries", t.in_use_entries}});
  for (const EntryDiff& e : d.entries)
    entries.push_back({{"op", entry_op(e.op)},
                       {"level", e.level},
                       {"table_va", hx(e.table_va)},
                       {"first", e.first},
                       {"last", e.last},
                       {"count", e.last - e.first + 1},
                       {"va_start", hx(e.va_start)},
                       {"va_last", hx(e.va_last)},
                       {"a", e.a ? side_json(*e.a) : json()},
                       {"b", e.b ? side_json(*e.b) : json()},
                       {"changed", e.changed},
                       {"bits_added", e.bits_added},
                       {"bits_removed", e.bits_removed}});
  for (const VmaDiff& v : d.vmas) {
    json a = json::array(), b = json::array();
    for (const auto& x : v.a)
      a.push_back(vma_json(x));
    for (const auto& x : v.b)
      b.push_back(vma_json(x));
    vmas.push_back({{"op", v.op}, {"a", a}, {"b", b}, {"changed", v.changed}});
  }
  for (const CounterDiff& c : d.counters)
    counters.push_back({{"name", c.name},
                        {"old", c.old_value},
                        {"new", c.new_value},
                        {"delta", c.delta ? json(*c.delta) : json()}});
  std::size_t vadd = 0, vrem = 0, vsplit = 0, vmerge = 0, vchg = 0;
  for (const VmaDiff& v : d.vmas) {
    vadd += v.op == "added";
    vrem += v.op == "removed";
    vsplit += v.op == "split";
    vmerge += v.op == "merged";
    vchg += v.op != "added" && v.op != "removed" && v.op != "split" && v.op != "merged";
  }
  return {{"a", {{"where", d.where_a}, {"label", d.label_a}}},
          {"b", {{"where", d.where_b}, {"label", d.label_b}}},
          {"arch", d.arch},
          {"differences", !d.empty()},
          {"not_compared", d.not_compared},
          {"summary",
           {{"tables_allocated", count_tables(d, '+')},
            {"tables_freed", count_tables(d, '-')},
            {"tables_moved", count_tables(d, '~')},
            {"entries_changed", entry_count(d)},
            {"vmas_added", vadd},
            {"vmas_removed", vrem},
            {"vmas_split", vsplit},
            {"vmas_merged", vmerge},
            {"vmas_changed", vchg},
            {"counters_moved", d.counters.size()}}},
          {"tables", tables},
          {"entries", entries},
          {"vmas", vmas},
          {"counters", counters}};
}

}  // namespace mmemu::dump
