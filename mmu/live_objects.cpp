#include "mmu/live_objects.hpp"

#include <algorithm>

namespace mmemu {

void LiveObjects::created(AllocSite site, std::uint64_t key) {
  const auto i = static_cast<std::size_t>(site);
  recs_[i].insert_or_assign(key, Record{site, key, inj_->attempts_total(), inj_->context()});
  ++live_[i];
  peak_[i] = std::max(peak_[i], live_[i]);
  if (on_created) on_created(site, key);
}

void LiveObjects::destroyed(AllocSite site, std::uint64_t key) {
  const auto i = static_cast<std::size_t>(site);
  if (recs_[i].erase(key) == 0) {
    ++unknown_frees_;
    return;
  }
  --live_[i];
  if (on_destroyed) on_destroyed(site, key);
}

std::vector<LiveObjects::Record> LiveObjects::records(AllocSite site) const {
  const auto& m = recs_[static_cast<std::size_t>(site)];
  std::vector<Record> out;
  out.reserve(m.size());
  for (const auto& [k, r] : m)
    out.push_back(r);
  std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) {
    return a.attempt != b.attempt ? a.attempt < b.attempt : a.key < b.key;
  });
  return out;
}

std::vector<LiveObjects::Record> LiveObjects::records() const {
  std::vector<Record> out;
  for (AllocSite s : kAllAllocSites) {
    auto part = records(s);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace mmemu
