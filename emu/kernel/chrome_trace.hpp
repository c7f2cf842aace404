// --trace-format chrome: the run's trace events as Chrome trace-event JSON (the
// {"traceEvents": [...]} object form that Perfetto and chrome://tracing open), written as
// the events come (a trace can be large): one track per guest process (process_name and
// thread_name metadata: pid and program), each system call a complete slice ("ph":"X",
// args: the call's arguments, ret, errno), every other event an instant ("ph":"i") with
// its fields as args; a failed fork's walkers are instants of their own.
//
// Time is virtual and counts only what the guest's run decides: the K-th event that is not
// a TLB fill is at ts = 10 * K (the format's microseconds). TLB fills (tlb_fill, tlb_dirty)
// are left out of the clock because their number is not the program's: the CPU's TLB
// (QEMU's, inside Unicorn) resizes itself by host time, so a loaded host misses more. A
// fill is drawn at 10 * K + 2, K the events before it; a system call's slice spans from
// 10 * K + 5, K the events before it began, to its own event, so what happened inside the
// call (faults, TLB flushes, a fork, an injected failure) lies inside its slice. Trace seq
// numbers count the fills, so they are not copied into args. Two runs of one program thus
// write the same file apart from the TLB-fill instants.
//
// Nothing here fails once constructed; the closing "]}" is written by finish() or, at the
// latest, by the destructor, whichever way the run ended. Stream errors are the stream's.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "emu/kernel/trace.hpp"

namespace mmemu {

class ChromeTrace final : public TraceSink {
 public:
  // Writes the opening. `program`: the initial process's program (the first guest pid seen).
  ChromeTrace(std::ostream& out, std::string program);
  ~ChromeTrace() override;
  ChromeTrace(const ChromeTrace&) = delete;
  ChromeTrace& operator=(const ChromeTrace&) = delete;

  void event(const nlohmann::json& ev) override;
  // Writes the closing (once; later events are dropped).
  void finish();

  static constexpr std::uint64_t kTick = 10;  // ts units per clock step

 private:
  void write(const nlohmann::json& e);
  void name_track(int pid, const std::string& name);  // process_name + thread_name
  void seen(int pid);                                 // names a new track
  void instant(const nlohmann::json& ev, std::string name, const char* cat, nlohmann::json args);

  std::ostream& out_;
  std::string program_;
  bool any_guest_ = false;  // the initial program's track is named
  bool first_ = true;       // no event written yet (no comma)
  bool done_ = false;
  std::map<int, std::string> names_;  // the program each track shows
  // The virtual clock: events so far that are not TLB fills, and for each such event its
  // trace seq and clock (both increasing), to place a call's start given as a seq.
  std::uint64_t clock_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> clock_at_seq_;
  std::uint64_t clock_of(std::uint64_t seq) const;  // clock after the events up to seq
};

}  // namespace mmemu
