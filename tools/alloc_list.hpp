// The allocation list of `mmemu run --list-allocations` and `mmemu script
// --list-allocations`: every allocation attempt and fatal_signal check from a starting point
// (the --inject-from point; a script's first line), numbered exactly as --inject counts
// them, with the kernel function asking and the address it was for, so that a user picks
// `--inject SITE:N` by meaning. It owns only its entries; recording cannot fail.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "mmu/fault_inject.hpp"

namespace mmemu::cli {

struct AllocEntry {
  std::optional<std::uint64_t> alloc;  // what --inject any:N counts; nullopt for a check
  InjectSite site;
  std::uint64_t nth;          // what --inject SITE:N counts
  std::string_view function;  // a string literal (FaultInjector::Event::function)
  std::optional<std::uint64_t> addr;
  std::optional<int> pid;  // the guest pid (none in scripts, or outside a process)
  std::string context;     // the injector's context label
  bool failed;
};

class AllocList {
 public:
  // Numbers what follows from `base`, the injector's counts at the starting point.
  explicit AllocList(const FaultInjector::Counts& base) : base_(base) {}
  // Records one attempt (an Event seen by FaultInjector::on_attempt after the start).
  void add(const FaultInjector::Event& e, std::optional<int> pid, std::string context);
  const std::vector<AllocEntry>& entries() const { return entries_; }

  // One JSON object a line: {"alloc", "site", "nth", "function", "addr" (hex or null),
  // "pid" (or null), "context", "failed"}.
  void render_json(std::ostream& out) const;
  // An aligned table with a header line: alloc site nth function addr context (and
  // "FAILED" after an attempt an injection made fail).
  void render_text(std::ostream& out) const;

 private:
  FaultInjector::Counts base_;
  std::vector<AllocEntry> entries_;
};

}  // namespace mmemu::cli
