#include "tools/alloc_list.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mmemu::cli {

void AllocList::add(const FaultInjector::Event& e, std::optional<int> pid, std::string context) {
  AllocEntry a{
      std::nullopt,       e.site,  e.attempt - base_.attempts[static_cast<std::size_t>(e.site)],
      e.function,         e.addr,  pid,
      std::move(context), e.failed};
  if (alloc_site(e.site)) a.alloc = e.global - base_.total;
  entries_.push_back(std::move(a));
}

void AllocList::render_json(std::ostream& out) const {
  for (const AllocEntry& a : entries_) {
    nlohmann::ordered_json j;
    j["alloc"] = a.alloc ? nlohmann::ordered_json(*a.alloc) : nlohmann::ordered_json();
    j["site"] = site_name(a.site);
    j["nth"] = a.nth;
    j["function"] = a.function;
    j["addr"] =
        a.addr ? nlohmann::ordered_json(fmt::format("{:#x}", *a.addr)) : nlohmann::ordered_json();
    j["pid"] = a.pid ? nlohmann::ordered_json(*a.pid) : nlohmann::ordered_json();
    j["context"] = a.context;
    j["failed"] = a.failed;
    out << j.dump() << '\n';
  }
  out.flush();
}

void AllocList::render_text(std::ostream& out) const {
  std::vector<std::array<std::string, 6>> rows;
  rows.push_back({"alloc", "site", "nth", "function", "addr", "context"});
  for (const AllocEntry& a : entries_)
    rows.push_back({a.alloc ? std::to_string(*a.alloc) : "-", std::string(site_name(a.site)),
                    std::to_string(a.nth), a.function.empty() ? "?" : std::string(a.function),
                    a.addr ? fmt::format("{:#x}", *a.addr) : "-",
                    a.context + (a.failed ? "  FAILED (injected)" : "")});
  std::array<std::size_t, 6> w{};
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i)
      w[i] = std::max(w[i], r[i].size());
  for (const auto& r : rows) {
    // Numbers right-aligned, names left-aligned; the last column unpadded.
    std::string line = fmt::format("{:>{}}  {:<{}}  {:>{}}  {:<{}}  {:<{}}  {}", r[0], w[0], r[1],
                                   w[1], r[2], w[2], r[3], w[3], r[4], w[4], r[5]);
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  }
  out.flush();
}

}  // namespace mmemu::cli
