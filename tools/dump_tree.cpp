// Maple tree dumps. MapleTree::dump() prints entries as host pointers, which change from run
// to run; here each pointer that is one of the mm's VMAs becomes "@<vm_start>", and the
// documented line format ("#id type [min, max] pivots=[...] slots=[...] gaps=[...]") is
// also parsed into JSON.
#include <fmt/format.h>

#include <sstream>
#include <unordered_map>

#include "tools/dump.hpp"

namespace mmemu::dump {

namespace {

using Labels = std::unordered_map<std::string, std::string>;

Labels vma_labels(const Mm& mm) {
  Labels l;
  for (const auto& e : mm.mm_mt.entries()) {
    if (MapleTree::is_zero_entry(e.value)) continue;
    const auto* v = static_cast<const Vma*>(e.value);
    l[fmt::format("{}", static_cast<const void*>(v))] = fmt::format("@{:x}", v->vm_start);
  }
  return l;
}

// The text between "name=[" and the next ']' on the line, or nullopt.
std::optional<std::pair<std::size_t, std::size_t>> bracket(const std::string& line,
                                                           std::string_view name) {
  const auto at = line.find(std::string(name) + "=[");
  if (at == std::string::npos) return std::nullopt;
  const std::size_t from = at + name.size() + 2;
  const auto to = line.find(']', from);
  if (to == std::string::npos) return std::nullopt;
  return std::pair{from, to};
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

std::string label_of(const void* p, const Labels& labels) {
  if (!p) return "NULL";
  if (MapleTree::is_zero_entry(p)) return "XA_ZERO";
  const auto it = labels.find(fmt::format("{}", p));
  return it != labels.end() ? it->second : "?";
}

std::string relabel(const std::string& line, const Labels& labels) {
  const auto b = bracket(line, "slots");
  if (!b) return line;
  std::string inner;
  for (const auto& w : words(std::string_view(line).substr(b->first, b->second - b->first))) {
    if (!inner.empty()) inner += ' ';
    if (w.starts_with("0x")) {
      const auto it = labels.find(w);
      inner += it != labels.end() ? it->second : "?" + w;  // not a VMA of this mm
    } else {
      inner += w;
    }
  }
  return line.substr(0, b->first) + inner + line.substr(b->second);
}

// The node lines of MapleTree::dump() (its own header line is dropped).
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) {
    const auto first = l.find_first_not_of(' ');
    if (first != std::string::npos && l[first] == '#') out.push_back(l);  // node lines only
  }
  return out;
}

std::string header(const Mm& mm) {
  const MapleTree& t = mm.mm_mt;
  return fmt::format("maple tree of mm {}: {} entr{}, {} node{}, height {}\n", mm.id(), t.count(),
                     t.count() == 1 ? "y" : "ies", t.node_count(), t.node_count() == 1 ? "" : "s",
                     t.height());
}

}  // namespace

std::string tree_text(const Mm& mm) {
  const Labels labels = vma_labels(mm);
  std::string out = header(mm);
  const MapleTree& t = mm.mm_mt;
  if (t.node_count() == 0) {
    // An empty tree, or a lone entry kept in the root pointer.
    if (auto e = t.find(0))
      out += fmt::format("  root entry [{:#x}, {:#x}] {}\n", e->first, e->last,
                         label_of(e->value, labels));
    return out;
  }
  for (const auto& l : lines_of(t.dump())) {
    out += "  " + relabel(l, labels) + "\n";
  }
  return out;
}

json tree_json(const Mm& mm) {
  const Labels labels = vma_labels(mm);
  const MapleTree& t = mm.mm_mt;
  json nodes = json::array();
  for (const auto& raw : lines_of(t.dump())) {
    const std::string l = relabel(raw, labels);
    const std::size_t depth = l.find_first_not_of(' ') / 2;
    const auto w = words(l);
    json n{{"depth", depth}};
    if (w.size() >= 4) {
      n["id"] = w[0];
      n["type"] = w[1];
      n["min"] = w[2].substr(1, w[2].size() - 2);  // "[0x0," -> "0x0"
      n["max"] = w[3].substr(0, w[3].size() - 1);  // "0xffff]" -> "0xffff"
    }
    for (const char* key : {"pivots", "slots", "gaps"}) {
      if (auto b = bracket(l, key))
        n[key] = words(std::string_view(l).substr(b->first, b->second - b->first));
    }
    nodes.push_back(std::move(n));
  }
  json entries = json::array();
  for (const auto& e : t.entries()) {
    entries.push_back(
        {{"first", hex(e.first)}, {"last", hex(e.last)}, {"entry", label_of(e.value, labels)}});
  }
  return {{"mm", mm.id()},        {"entries", t.count()}, {"nodes", t.node_count()},
          {"height", t.height()}, {"node_list", nodes},   {"entry_list", entries}};
}

}  // namespace mmemu::dump
