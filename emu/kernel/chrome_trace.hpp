// --trace-format chrome: the run's trace events as Chrome trace-event JSON (the
// {"traceEvents": [...]} object form that Perfetto and chrome://tracing open), written as
// the events come (a trace can be large): one track per guest process (process_name and
// thread_name metadata: pid and program), each system call a complete slice ("ph":"X",
// args: the call's arguments, ret, errno), every other event an instant ("ph":"i") with
// its fields as args; a failed fork's walkers are instants of their own.
//
// Time is virtual, so the same run writes the same file: an event with trace seq N is at
// ts = 10 * N (the format's microseconds); a system call's slice spans from just after the
// event before it began (10 * start_seq + 5) to its own event, so what happened inside the
// call (faults, TLB flushes, a fork, an injected failure) lies inside its slice.
//
// Nothing here fails once constructed; the closing "]}" is written by finish() or, at the
// latest, by the destructor, whichever way the run ended. Stream errors are the stream's.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

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

  static constexpr std::uint64_t kTick = 10;  // ts units per trace seq

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
};

}  // namespace mmemu
