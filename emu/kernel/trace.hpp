// mmemu's own output channels during a run: the message log (stderr or --log FILE), the
// event trace (--trace FILE, one JSON object per line) and the counters (--stats). Every
// traced event is also counted, so --stats is the trace summed up.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

namespace mmemu {

struct ExitMmapReport;   // vma/mm.hpp
struct FreedInUseTable;  // mmu/freed_in_use.hpp

// exit_mmap's report as JSON, each field under its own name: the trace's exit_mmap event
// and `mmemu script`'s exit reports (nlohmann's ADL hook: `nlohmann::json j = report;`).
void to_json(nlohmann::json& j, const ExitMmapReport& r);
// A page table freed while in use, as JSON (addresses and frames in hex): the trace's
// pgtable_use_after_free event and `mmemu script`'s JSON output.
void to_json(nlohmann::json& j, const FreedInUseTable& t);

class Log {
 public:
  explicit Log(std::ostream* out = nullptr) : out_(out) {}  // nullptr: std::cerr
  void set_stream(std::ostream* out) { out_ = out; }
  // One line, prefixed "mmemu: " (newline appended).
  void msg(std::string_view line);
  std::ostream& stream();

 private:
  std::ostream* out_;
};

class Stats {
 public:
  void add(std::string_view key, std::uint64_t n = 1);
  std::uint64_t get(std::string_view key) const;
  const std::map<std::string, std::uint64_t, std::less<>>& all() const { return counts_; }

 private:
  std::map<std::string, std::uint64_t, std::less<>> counts_;
};

class Trace {
 public:
  bool on() const { return out_ != nullptr; }
  void set_stream(std::ostream* out) { out_ = out; }
  // Writes {"seq":N,"ev":ev,"pid":pid, ...fields} on one line. Event names in use:
  //   fault        access, addr, pc (when the fault stopped the CPU), result ("ok",
  //                "segv-maperr", "segv-accerr", "segv-pkuerr", "segv-gp", "sigbus", "oom")
  //   tlb_fill     addr, pfn, perms              tlb_dirty  addr (a write fill set D)
  //   tlb_flush    start, end
  // (the tlb_* events are traced, and counted in the stats when the CPU goes)
  //   pgtable_alloc pfn                          pgtable_free pfn
  //   inject       site, attempt, global, function, addr, context (an injected allocation
  //                failure, or fatal_signal: a kill)
  //   alloc        alloc, site, nth, function, addr, context, failed: every allocation
  //                attempt and fatal_signal check (alloc/nth as --inject counts them from
  //                the --inject-from point, null before it; alloc null for a check)
  //   fork         child, ok, recovery, failed_step, attempts_/checks_before/after, ...
  //   exec         path
  //   exit         status ("exited N" / "killed by SIGx")  exit_mmap  (the ExitMmapReport)
  //   signal       sig, code, addr, action ("handler", "terminate", "core", "ignore", ...)
  //   syscall      name, ret                     dump  when, label
  void emit(std::string_view ev, int pid, nlohmann::json fields = nlohmann::json::object());

 private:
  std::ostream* out_ = nullptr;
  std::uint64_t seq_ = 0;
};

}  // namespace mmemu
