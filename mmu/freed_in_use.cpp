#include "mmu/freed_in_use.hpp"

#include <fmt/format.h>

namespace mmemu {

std::string kasan_report(const FreedInUseTable& t) {
  const std::string rule(66, '=');
  std::string out = rule + '\n';
  out += fmt::format("BUG: mmemu: page-table-use-after-free in {}\n",
                     t.chain.empty() ? "free_pgd_range" : t.chain.front());
  out += fmt::format(
      "{} table at frame {:#x} of mm {} ({}) covering [{:#x}, {:#x}] freed while it "
      "still held {} live entr{}:\n",
      level_name(t.level), t.table, t.mm, arch_name(t.arch), t.start, t.end - 1, t.entries.size(),
      t.entries.size() == 1 ? "y" : "ies");
  for (const LiveEntry& e : t.entries) {
    const std::string what = e.level != Level::Pte
                                 ? fmt::format("{} table", level_name(next_level(e.level)))
                             : e.present ? std::string("page")
                             : e.guard   ? std::string("guard marker")
                                         : std::string("non-present entry");
    std::string line = fmt::format("  {:<#16x} {:<17} frame {:<#8x} entry {:#018x}  {}", e.va, what,
                                   e.pfn, e.entry, e.owner);
    while (line.back() == ' ')
      line.pop_back();
    out += line + '\n';
  }
  out +=
      fmt::format("Freed by free_pgd_range(addr={:#x}, end={:#x}, floor={:#x}, ceiling={:#x}):\n",
                  t.args.addr, t.args.end, t.args.floor, t.args.ceiling);
  for (const std::string& f : t.chain)
    out += fmt::format("  {}\n", f);
  out += rule + '\n';
  return out;
}

std::string freed_in_use_summary(const FreedInUseTable& t) {
  std::string chain;
  for (const std::string& f : t.chain)
    chain += (chain.empty() ? "" : " <- ") + f;
  return fmt::format(
      "page-table use-after-free: {} table {:#x} of mm {} covering [{:#x}, {:#x}] freed with {} "
      "live entr{} by {}",
      level_name(t.level), t.table, t.mm, t.start, t.end - 1, t.entries.size(),
      t.entries.size() == 1 ? "y" : "ies", chain);
}

}  // namespace mmemu
