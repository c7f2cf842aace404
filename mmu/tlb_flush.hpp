// The flush interface: every change to a present PTE reaches whatever caches
// translations (the emulator's software TLB) through one of these calls.
#pragma once

#include <vector>

#include "mmu/types.hpp"

namespace mmemu {

class TlbFlusher {
 public:
  virtual ~TlbFlusher() = default;
  virtual void flush_page(vaddr_t va) = 0;
  virtual void flush_range(vaddr_t start, vaddr_t end) = 0;  // [start, end)
  virtual void flush_all() = 0;                              // the whole address space
};

// Records every flush; tests assert on it.
class RecordingFlusher final : public TlbFlusher {
 public:
  enum class Kind { Page, Range, All };
  struct Event {
    Kind kind;
    vaddr_t start;
    vaddr_t end;
    friend bool operator==(const Event&, const Event&) = default;
  };
  void flush_page(vaddr_t va) override { events.push_back({Kind::Page, va, va + PAGE_SIZE}); }
  void flush_range(vaddr_t s, vaddr_t e) override { events.push_back({Kind::Range, s, e}); }
  void flush_all() override { events.push_back({Kind::All, 0, 0}); }
  // True if some recorded flush covers [start, end).
  bool covers(vaddr_t start, vaddr_t end) const {
    for (const auto& ev : events)
      if (ev.kind == Kind::All || (ev.start <= start && end <= ev.end)) return true;
    return false;
  }
  std::vector<Event> events;
};

}  // namespace mmemu
