// Live-object accounting for leak checks: every object of an allocation site that is
// created is recorded with where it came from, and forgotten when it is freed. After an
// address space is gone, whatever is still recorded leaked.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmu/fault_inject.hpp"

namespace mmemu {

class LiveObjects {
 public:
  struct Record {
    AllocSite site;
    std::uint64_t key;      // pfn for frames and tables, address for host objects
    std::uint64_t attempt;  // the injector's global attempt number that created it
    std::string context;    // the injector's context at creation
  };

  explicit LiveObjects(const FaultInjector& inj) : inj_(&inj) {}

  void created(AllocSite site, std::uint64_t key);
  void destroyed(AllocSite site, std::uint64_t key);
  template <class T>
  void created(AllocSite site, const T* p) {
    created(site, reinterpret_cast<std::uintptr_t>(p));
  }
  template <class T>
  void destroyed(AllocSite site, const T* p) {
    destroyed(site, reinterpret_cast<std::uintptr_t>(p));
  }

  std::int64_t live(AllocSite s) const { return live_[static_cast<std::size_t>(s)]; }
  std::int64_t peak(AllocSite s) const { return peak_[static_cast<std::size_t>(s)]; }
  std::array<std::int64_t, kAllocSites> snapshot() const { return live_; }
  // Records still live, oldest first.
  std::vector<Record> records() const;
  // Records of `site` still live (all sites if nullopt), oldest first.
  std::vector<Record> records(AllocSite site) const;
  // Destroying an object that was never created is an accounting bug; counted, not fatal.
  std::uint64_t unknown_frees() const { return unknown_frees_; }

  // Observers for tracing (the emulator's --trace), called after the record changed.
  std::function<void(AllocSite, std::uint64_t key)> on_created;
  std::function<void(AllocSite, std::uint64_t key)> on_destroyed;

 private:
  const FaultInjector* inj_;
  std::array<std::int64_t, kAllocSites> live_{};
  std::array<std::int64_t, kAllocSites> peak_{};
  std::array<std::unordered_map<std::uint64_t, Record>, kAllocSites> recs_;
  std::uint64_t unknown_frees_ = 0;
};

}  // namespace mmemu
