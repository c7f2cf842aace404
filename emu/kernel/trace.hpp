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
struct ForkReport;       // vma/fork.hpp
struct WalkerReport;     // vma/fork.hpp

// exit_mmap's report as JSON, each field under its own name: the trace's exit_mmap event
// and `mmemu script`'s exit reports (nlohmann's ADL hook: `nlohmann::json j = report;`).
void to_json(nlohmann::json& j, const ExitMmapReport& r);
// A page table freed while in use, as JSON (addresses and frames in hex): the trace's
// pgtable_use_after_free event and `mmemu script`'s JSON output.
void to_json(nlohmann::json& j, const FreedInUseTable& t);
// A fork's report (emu/kernel/report_json.cpp), the one JSON form of it: the trace's fork
// event, the `fork` object of a failed fork's dump (`mmemu run --format json`) and `mmemu
// script`'s fork data. Always: ok, recovery, vmas_copied, ptes_copied, ptes_wrprotected,
// pages_copied, walkers; for a failed fork also failed_step, failed_vma, failure_point,
// tree_max, xa_zero {first, last}, torn_down, recovery_note, child_flags (names),
// child_mm_users, child_mm_count, errors, exit_mmap (addresses in hex, null when unset).
void to_json(nlohmann::json& j, const ForkReport& r);
// A walker's report: walker, point, checks, outcome, met {first, last} (the XA_ZERO range it
// met), vmas_seen, pages_reaped, mm_users, mm_count, ref; rmap walks add via, via_pfn and
// visits [{mm, dying, mm_flags, tree_empty, vma_start, vma_end, addr, pte, frame}] with pte
// one of "present", "none", "no-table", "not-looked-into".
void to_json(nlohmann::json& j, const WalkerReport& w);

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

// Where trace events go instead of JSON lines (--trace-format chrome: chrome_trace.hpp).
// It gets every event as the JSON object the line would hold, in seq order.
class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void event(const nlohmann::json& ev) = 0;
};

class Trace {
 public:
  bool on() const { return out_ != nullptr || sink_ != nullptr; }
  void set_stream(std::ostream* out) { out_ = out; }
  // Events go to `sink` (not owned; nullptr: back to the stream) instead of JSON lines.
  void set_sink(TraceSink* sink) { sink_ = sink; }
  // The seq of the last event written (0 before the first): the trace's virtual clock.
  std::uint64_t seq() const { return seq_; }
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
  //   syscall      name, args (emu/syscalls/syscall_args.hpp), ret (hex for addresses),
  //                errno (on failure), start_seq (the seq when it began)
  //                                              dump  when, label
  void emit(std::string_view ev, int pid, nlohmann::json fields = nlohmann::json::object());

 private:
  std::ostream* out_ = nullptr;
  TraceSink* sink_ = nullptr;
  std::uint64_t seq_ = 0;
};

}  // namespace mmemu
