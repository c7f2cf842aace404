#include "mmu/fault_inject.hpp"

#include <charconv>

namespace mmemu {

namespace {
constexpr std::array<std::string_view, kInjectSites> kSiteNames{
    "vma", "anon_vma", "maple_node", "pgtable", "page", "fatal_signal"};
}

std::string_view site_name(InjectSite s) {
  return kSiteNames[static_cast<std::size_t>(s)];
}

std::string_view site_name(AllocSite s) {
  return site_name(inject_site(s));
}

std::optional<InjectSite> parse_inject_site(std::string_view name) {
  for (std::size_t i = 0; i < kInjectSites; ++i)
    if (kSiteNames[i] == name) return static_cast<InjectSite>(i);
  return std::nullopt;
}

std::optional<AllocSite> parse_site(std::string_view name) {
  const auto s = parse_inject_site(name);
  return s ? alloc_site(*s) : std::nullopt;
}

std::string inject_site_names(std::string_view sep) {
  std::string out;
  for (std::string_view n : kSiteNames) {
    if (!out.empty()) out += sep;
    out += n;
  }
  return out;
}

bool FaultInjector::should_fail(InjectSite site, std::string_view function,
                                std::optional<std::uint64_t> addr) {
  const std::size_t i = idx(site);
  const bool alloc = alloc_site(site).has_value();
  ++attempts_[i];
  bool fail = false;
  for (Armed& a : rules_) {
    // "any" (no site) counts allocations only.
    if (a.done || (a.rule.site ? *a.rule.site != site : !alloc)) continue;
    ++a.seen;
    if (a.seen == a.rule.nth || (a.rule.persistent && a.seen > a.rule.nth)) {
      fail = true;
      if (!a.rule.persistent) a.done = true;
    }
  }
  if (random_p_ > 0 && (random_site_ ? *random_site_ == site : alloc)) {
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    if (dist(rng_) < random_p_) fail = true;
  }
  if (fail) ++failures_[i];
  if (on_attempt) {
    // The innermost naming scope overrides the site's default function; the site's own
    // address wins over any scope's.
    bool named = false;
    for (const Caller* c = caller_; c && (!named || !addr); c = c->outer) {
      if (!named && !c->function.empty()) {
        function = c->function;
        named = true;
      }
      if (!addr && c->addr) addr = c->addr;
    }
    on_attempt(Event{site, attempts_[i], attempts_total(), fail, function, addr});
  }
  return fail;
}

void FaultInjector::fail_nth(InjectSite site, std::uint64_t nth, bool persistent) {
  rules_.push_back(Armed{InjectRule{site, nth, persistent}});
}

void FaultInjector::fail_nth_any(std::uint64_t nth, bool persistent) {
  rules_.push_back(Armed{InjectRule{std::nullopt, nth, persistent}});
}

void FaultInjector::fail_random(double p, std::uint64_t seed, std::optional<InjectSite> site) {
  random_p_ = p;
  random_site_ = site;
  rng_.seed(seed);
}

void FaultInjector::disarm() {
  rules_.clear();
  random_p_ = 0;
  random_site_.reset();
}

std::uint64_t FaultInjector::attempts_total() const {
  std::uint64_t n = 0;
  for (AllocSite s : kAllAllocSites)
    n += attempts(s);
  return n;
}

std::uint64_t FaultInjector::failures_total() const {
  std::uint64_t n = 0;
  for (AllocSite s : kAllAllocSites)
    n += failures(s);
  return n;
}

void FaultInjector::reset_counts() {
  attempts_.fill(0);
  failures_.fill(0);
}

std::optional<InjectRule> parse_inject_rule(std::string_view spec) {
  const auto colon = spec.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view name = spec.substr(0, colon);
  std::string_view num = spec.substr(colon + 1);
  InjectRule rule;
  if (!num.empty() && num.back() == '+') {
    rule.persistent = true;
    num.remove_suffix(1);
  }
  if (name != "any") {
    rule.site = parse_inject_site(name);
    if (!rule.site) return std::nullopt;
  }
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc() || p != num.data() + num.size() || n == 0) return std::nullopt;
  rule.nth = n;
  return rule;
}

}  // namespace mmemu
