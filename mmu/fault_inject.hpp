// The failure injector. Every allocation mmemu models (VMA, anon_vma, maple node, page-table
// page, data frame) asks it first; it counts attempts per site and decides, from the armed
// rules, whether this attempt fails. Failures are deterministic: "the Nth attempt at site
// S", "the Nth attempt at any allocation site", or a seeded random rate.
// Besides allocations it answers one check that is not an allocation: dup_mmap's
// fatal_signal_pending, asked once per VMA a fork copies. A "failed" check means the forking
// task is found with SIGKILL pending (the guest was killed during a long fork); it is only
// ever decided by a rule or random rate that names the site fatal_signal, never by "any".
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

// What a rule can name: the allocation sites (same values as AllocSite), then the checks
// that are not allocations. Live-object accounting knows only AllocSite.
enum class InjectSite : std::uint8_t { Vma, AnonVma, MapleNode, PgTable, Page, FatalSignal };
inline constexpr std::size_t kInjectSites = 6;

constexpr InjectSite inject_site(AllocSite s) {
  return static_cast<InjectSite>(s);
}
// An allocation site is the injection site of the same name.
constexpr bool operator==(InjectSite a, AllocSite b) {
  return a == inject_site(b);
}
// The allocation site, or nullopt for a check.
constexpr std::optional<AllocSite> alloc_site(InjectSite s) {
  if (s == InjectSite::FatalSignal) return std::nullopt;
  return static_cast<AllocSite>(s);
}

std::string_view site_name(AllocSite s);   // "vma", "anon_vma", "maple_node", "pgtable", "page"
std::string_view site_name(InjectSite s);  // the same, and "fatal_signal"
std::optional<AllocSite> parse_site(std::string_view name);  // allocation sites only
std::optional<InjectSite> parse_inject_site(std::string_view name);
// Every name parse_inject_site accepts, joined by `sep` (for help texts and errors).
std::string inject_site_names(std::string_view sep);

// One armed failure rule. `site` empty means "any allocation site" (checks such as
// fatal_signal are never counted by it); `nth` counts attempts from the moment the rule was
// armed (1 = the very next attempt). `persistent` keeps failing each later attempt too
// (N, N+1, ...), which models sustained memory pressure.
struct InjectRule {
  std::optional<InjectSite> site;
  std::uint64_t nth = 1;
  bool persistent = false;
};

class FaultInjector {
 public:
  struct Event {
    InjectSite site;
    std::uint64_t attempt;  // 1-based attempt (or check) number at this site since reset_counts()
    std::uint64_t global;   // allocation attempts across all allocation sites so far, this
                            // one included (a check does not advance it)
    bool failed;
    // The kernel function asking ("vm_area_dup", "__pte_alloc", "dup_mmap" for the
    // fatal_signal check): the innermost AllocCaller scope naming one, else the allocation
    // site's own default. Points at a string literal (never owned).
    std::string_view function;
    // The address it was for (the VA mapped or faulted, or the vm_start of the VMA
    // concerned): the site's own, else the innermost scope giving one; nullopt when unknown.
    std::optional<std::uint64_t> addr;
  };

  // Returns true when this attempt must fail. Always counts the attempt. `function` is the
  // site's default name (used when no AllocCaller scope names one), `addr` its own address.
  bool should_fail(InjectSite site, std::string_view function = {},
                   std::optional<std::uint64_t> addr = std::nullopt);
  bool should_fail(AllocSite site, std::string_view function = {},
                   std::optional<std::uint64_t> addr = std::nullopt) {
    return should_fail(inject_site(site), function, addr);
  }

  // Arms a rule; counting for it starts now.
  void fail_nth(InjectSite site, std::uint64_t nth, bool persistent = false);
  void fail_nth(AllocSite site, std::uint64_t nth, bool persistent = false) {
    fail_nth(inject_site(site), nth, persistent);
  }
  void fail_nth_any(std::uint64_t nth, bool persistent = false);
  // Each attempt (at `site`, or at any allocation site) fails with probability p, from a
  // seeded PRNG.
  void fail_random(double p, std::uint64_t seed, std::optional<InjectSite> site = std::nullopt);
  void fail_random(double p, std::uint64_t seed, AllocSite site) {
    fail_random(p, seed, inject_site(site));
  }
  void disarm();  // drops every rule; counters stay
  bool armed() const { return !rules_.empty() || random_p_ > 0; }

  std::uint64_t attempts(InjectSite s) const { return attempts_[idx(s)]; }
  std::uint64_t failures(InjectSite s) const { return failures_[idx(s)]; }
  std::uint64_t attempts(AllocSite s) const { return attempts(inject_site(s)); }
  std::uint64_t failures(AllocSite s) const { return failures(inject_site(s)); }
  // Allocation sites only: what "any" counts and live-object records are numbered by.
  std::uint64_t attempts_total() const;
  std::uint64_t failures_total() const;
  void reset_counts();
  // Every counter at one moment: what a rule armed then counts from.
  struct Counts {
    std::array<std::uint64_t, kInjectSites> attempts{};
    std::uint64_t total = 0;  // allocation sites only (attempts_total())
  };
  Counts counts() const { return Counts{attempts_, attempts_total()}; }

  // A short label of what the machine is doing ("fork pid 3", "mmap"), recorded with each
  // allocation so a leak report can say where the object came from.
  void set_context(std::string ctx) { context_ = std::move(ctx); }
  const std::string& context() const { return context_; }

  // Observer for tracing (called after the decision), for checks too.
  std::function<void(const Event&)> on_attempt;

 private:
  friend class AllocCaller;
  struct Caller {
    std::string_view function;  // empty: gives only an address
    std::optional<std::uint64_t> addr;
    const Caller* outer;
  };
  const Caller* caller_ = nullptr;  // innermost active AllocCaller (on the stack)

  struct Armed {
    InjectRule rule;
    std::uint64_t seen = 0;  // matching attempts since armed
    bool done = false;
  };
  static std::size_t idx(InjectSite s) { return static_cast<std::size_t>(s); }

  std::vector<Armed> rules_;
  std::array<std::uint64_t, kInjectSites> attempts_{};
  std::array<std::uint64_t, kInjectSites> failures_{};
  double random_p_ = 0;
  std::optional<InjectSite> random_site_;
  std::mt19937_64 rng_;
  std::string context_;
};

// Names the kernel function (and address) on whose behalf the allocations inside its
// lifetime are made; scopes nest and the innermost wins (an empty function gives only an
// address, the function comes from further out). Lives on the stack: no allocation.
class AllocCaller {
 public:
  AllocCaller(FaultInjector& inj, std::string_view function,
              std::optional<std::uint64_t> addr = std::nullopt)
      : inj_(inj), frame_{function, addr, inj.caller_} {
    inj_.caller_ = &frame_;
  }
  ~AllocCaller() { inj_.caller_ = frame_.outer; }
  AllocCaller(const AllocCaller&) = delete;
  AllocCaller& operator=(const AllocCaller&) = delete;

 private:
  FaultInjector& inj_;
  FaultInjector::Caller frame_;
};

// Parses "SITE:N" or "any:N" (optionally "SITE:N+" for "N and every later attempt"); SITE is
// any name parse_inject_site accepts.
std::optional<InjectRule> parse_inject_rule(std::string_view spec);

}  // namespace mmemu
