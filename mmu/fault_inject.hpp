// The allocation-failure injector. Every allocation mmemu models (VMA, anon_vma, maple
// node, page-table page, data frame) asks it first; it counts attempts per site and
// decides, from the armed rules, whether this attempt fails. Failures are deterministic:
// "the Nth attempt at site S", "the Nth attempt at any site", or a seeded random rate.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mmemu {

enum class AllocSite : std::uint8_t { Vma, AnonVma, MapleNode, PgTable, Page };
inline constexpr std::size_t kAllocSites = 5;
inline constexpr std::array<AllocSite, kAllocSites> kAllAllocSites{
    AllocSite::Vma, AllocSite::AnonVma, AllocSite::MapleNode, AllocSite::PgTable, AllocSite::Page};

std::string_view site_name(AllocSite s);  // "vma", "anon_vma", "maple_node", "pgtable", "page"
std::optional<AllocSite> parse_site(std::string_view name);

// One armed failure rule. `site` empty means "any site"; `nth` counts attempts from the
// moment the rule was armed (1 = the very next attempt). `persistent` keeps failing each
// later attempt too (N, N+1, ...), which models sustained memory pressure.
struct InjectRule {
  std::optional<AllocSite> site;
  std::uint64_t nth = 1;
  bool persistent = false;
};

class FaultInjector {
 public:
  struct Event {
    AllocSite site;
    std::uint64_t attempt;  // 1-based attempt number at this site since reset_counts()
    std::uint64_t global;   // 1-based attempt number across all sites
    bool failed;
  };

  // Returns true when this attempt must fail. Always counts the attempt.
  bool should_fail(AllocSite site);

  // Arms a rule; counting for it starts now.
  void fail_nth(AllocSite site, std::uint64_t nth, bool persistent = false);
  void fail_nth_any(std::uint64_t nth, bool persistent = false);
  // Each attempt (at `site`, or at any site) fails with probability p, from a seeded PRNG.
  void fail_random(double p, std::uint64_t seed, std::optional<AllocSite> site = std::nullopt);
  void disarm();  // drops every rule; counters stay
  bool armed() const { return !rules_.empty() || random_p_ > 0; }

  std::uint64_t attempts(AllocSite s) const { return attempts_[idx(s)]; }
  std::uint64_t failures(AllocSite s) const { return failures_[idx(s)]; }
  std::uint64_t attempts_total() const;
  std::uint64_t failures_total() const;
  void reset_counts();

  // A short label of what the machine is doing ("fork pid 3", "mmap"), recorded with each
  // allocation so a leak report can say where the object came from.
  void set_context(std::string ctx) { context_ = std::move(ctx); }
  const std::string& context() const { return context_; }

  // Observer for tracing (called after the decision).
  std::function<void(const Event&)> on_attempt;

 private:
  struct Armed {
    InjectRule rule;
    std::uint64_t seen = 0;  // matching attempts since armed
    bool done = false;
  };
  static std::size_t idx(AllocSite s) { return static_cast<std::size_t>(s); }

  std::vector<Armed> rules_;
  std::array<std::uint64_t, kAllocSites> attempts_{};
  std::array<std::uint64_t, kAllocSites> failures_{};
  double random_p_ = 0;
  std::optional<AllocSite> random_site_;
  std::mt19937_64 rng_;
  std::string context_;
};

// Parses "SITE:N" or "any:N" (optionally "SITE:N+" for "N and every later attempt").
std::optional<InjectRule> parse_inject_rule(std::string_view spec);

}  // namespace mmemu
