// The Chrome trace-event writer (see chrome_trace.hpp).
#include "emu/kernel/chrome_trace.hpp"

#include <algorithm>
#include <string_view>

namespace mmemu {

namespace {

std::string basename_of(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The category an instant event is filed under (Perfetto filters by it).
const char* category(std::string_view ev) {
  if (ev.starts_with("tlb_")) return "tlb";
  if (ev.starts_with("pgtable_")) return "pgtable";
  if (ev == "fault" || ev == "oom_kill" || ev == "trap" || ev == "vsyscall") return "fault";
  if (ev == "fork" || ev == "exec" || ev == "exit" || ev == "exit_mmap") return "process";
  if (ev == "inject") return "inject";
  if (ev == "signal" || ev == "host_signal" || ev == "syscall_interrupted") return "signal";
  if (ev.starts_with("syscall")) return "syscall";
  return "mmemu";
}

}  // namespace

ChromeTrace::ChromeTrace(std::ostream& out, std::string program)
    : out_(out), program_(basename_of(program)) {
  out_ << "{\"traceEvents\":[\n";
}

ChromeTrace::~ChromeTrace() {
  finish();
}

void ChromeTrace::finish() {
  if (done_) return;
  done_ = true;
  const nlohmann::json other{
      {"producer", "mmemu"},
      {"clock", "virtual: ts = 10 x the event's seq in the JSON-lines trace (not time)"}};
  out_ << "\n],\"displayTimeUnit\":\"ms\",\"otherData\":" << other.dump() << "}\n";
  out_.flush();
}

void ChromeTrace::write(const nlohmann::json& e) {
  if (done_) return;
  if (!first_) out_ << ",\n";
  first_ = false;
  out_ << e.dump();
}

void ChromeTrace::name_track(int pid, const std::string& name) {
  names_[pid] = name;
  const std::string& shown = name;  // Perfetto shows the pid beside it
  write({{"ph", "M"},
         {"name", "process_name"},
         {"pid", pid},
         {"tid", pid},
         {"args", {{"name", shown}}}});
  write({{"ph", "M"},
         {"name", "thread_name"},
         {"pid", pid},
         {"tid", pid},
         {"args", {{"name", shown}}}});
}

void ChromeTrace::seen(int pid) {
  if (names_.contains(pid)) return;
  if (pid == 0) {
    name_track(0, "mmemu (no process)");
  } else if (!any_guest_) {
    any_guest_ = true;
    name_track(pid, program_);
  } else {
    name_track(pid, "?");
  }
}

void ChromeTrace::instant(const nlohmann::json& ev, std::string name, const char* cat,
                          nlohmann::json args) {
  const int pid = ev.value("pid", 0);
  write({{"ph", "i"},
         {"s", "t"},
         {"name", std::move(name)},
         {"cat", cat},
         {"pid", pid},
         {"tid", pid},
         {"ts", ev.value("seq", std::uint64_t{0}) * kTick},
         {"args", std::move(args)}});
}

void ChromeTrace::event(const nlohmann::json& ev) {
  if (done_) return;
  const std::string kind = ev.value("ev", std::string("?"));
  const int pid = ev.value("pid", 0);
  const std::uint64_t seq = ev.value("seq", std::uint64_t{0});
  seen(pid);
  nlohmann::json args = nlohmann::json::object();
  for (const auto& [k, v] : ev.items())
    if (k != "ev" && k != "pid") args[k] = v;

  if (kind == "syscall") {
    const std::uint64_t start = std::min(ev.value("start_seq", seq - 1), seq - 1);
    const std::uint64_t ts = start * kTick + kTick / 2;
    args.erase("name");
    write({{"ph", "X"},
           {"name", ev.value("name", std::string("?"))},
           {"cat", "syscall"},
           {"pid", pid},
           {"tid", pid},
           {"ts", ts},
           {"dur", seq * kTick - ts},
           {"args", std::move(args)}});
    return;
  }
  if (kind == "exec") {
    instant(ev, "exec", category(kind), args);
    const std::string name = basename_of(ev.value("path", std::string("?")));
    if (names_[pid] != name) name_track(pid, name);  // the track shows the new program
    return;
  }
  if (kind == "fork") {
    const int child = ev.value("child", 0);
    if (child > 0 && !names_.contains(child)) name_track(child, names_[pid]);
    instant(ev, child > 0 ? "fork" : "fork failed", category(kind), args);
    // The walkers a failed fork ran at its lock-drop point (or in the child's exit_mmap).
    if (ev.contains("walkers"))
      for (const nlohmann::json& w : ev["walkers"])
        instant(ev, "walker " + w.value("walker", std::string("?")), "walker", w);
    return;
  }
  std::string name = kind;
  if (kind == "inject") name = "inject " + ev.value("site", std::string("?"));
  instant(ev, std::move(name), category(kind), std::move(args));
}

}  // namespace mmemu
