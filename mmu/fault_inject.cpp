#include "mmu/fault_inject.hpp"

#include <charconv>

namespace mmemu {

namespace {
constexpr std::array<std::string_view, kAllocSites> kSiteNames{"vma", "anon_vma", "maple_node",
                                                               "pgtable", "page"};
}

std::string_view site_name(AllocSite s) {
  return kSiteNames[static_cast<std::size_t>(s)];
}

std::optional<AllocSite> parse_site(std::string_view name) {
  for (std::size_t i = 0; i < kAllocSites; ++i)
    if (kSiteNames[i] == name) return static_cast<AllocSite>(i);
  return std::nullopt;
}

bool FaultInjector::should_fail(AllocSite site) {
  const std::size_t i = idx(site);
  ++attempts_[i];
  bool fail = false;
  for (Armed& a : rules_) {
    if (a.done || (a.rule.site && *a.rule.site != site)) continue;
    ++a.seen;
    if (a.seen == a.rule.nth || (a.rule.persistent && a.seen > a.rule.nth)) {
      fail = true;
      if (!a.rule.persistent) a.done = true;
    }
  }
  if (random_p_ > 0 && (!random_site_ || *random_site_ == site)) {
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    if (dist(rng_) < random_p_) fail = true;
  }
  if (fail) ++failures_[i];
  if (on_attempt) on_attempt(Event{site, attempts_[i], attempts_total(), fail});
  return fail;
}

void FaultInjector::fail_nth(AllocSite site, std::uint64_t nth, bool persistent) {
  rules_.push_back(Armed{InjectRule{site, nth, persistent}});
}

void FaultInjector::fail_nth_any(std::uint64_t nth, bool persistent) {
  rules_.push_back(Armed{InjectRule{std::nullopt, nth, persistent}});
}

void FaultInjector::fail_random(double p, std::uint64_t seed, std::optional<AllocSite> site) {
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
  for (auto v : attempts_)
    n += v;
  return n;
}

std::uint64_t FaultInjector::failures_total() const {
  std::uint64_t n = 0;
  for (auto v : failures_)
    n += v;
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
    rule.site = parse_site(name);
    if (!rule.site) return std::nullopt;
  }
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc() || p != num.data() + num.size() || n == 0) return std::nullopt;
  rule.nth = n;
  return rule;
}

}  // namespace mmemu
