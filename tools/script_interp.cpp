// The interpreter's core: the statement loop, which runs each statement's handler from the
// command table, output of steps, the end-of-script teardown with the leak and invariant
// checks, and `let`.
#include "tools/script_interp.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "emu/kernel/trace.hpp"
#include "tools/dump.hpp"
#include "tools/script_spec.hpp"
#include "vma/exit_mmap.hpp"
#include "vma/file.hpp"
#include "vma/fork_report.hpp"
#include "vma/validate.hpp"

namespace mmemu::script {

using json = nlohmann::json;

Interp::Interp(const Program& p, const Options& o, std::ostream& out, std::ostream& err)
    : prog(p), opts(o), machine(o.phys_bytes), recovery(o.recovery), out_(out), err_(err) {}

Interp::~Interp() {
  // On a script error the remaining address spaces go away quietly (mmput runs exit_mmap).
  mms.clear();
  for (auto& [name, f] : files)
    f->put();
  files.clear();
}

// ---------------------------------------------------------------- helpers

void Interp::fail(const Stmt& st, const Arg* at, std::string msg) {
  throw RuntimeError{st.line, at ? at->value_col : st.cmd_col, std::move(msg)};
}

Interp::MmSlot& Interp::slot(const Stmt& st, std::size_t i) {
  const Arg& a = st.pos.at(i);
  for (auto& s : mms)
    if (s.name == a.value) return s;
  fail(st, &a, fmt::format("no live mm named '{}' (it exited, or its fork failed)", a.value));
}

Mm& Interp::mm_arg(const Stmt& st, std::size_t i) {
  return *slot(st, i).mm;
}

std::uint64_t Interp::expr(const Stmt& st, const Arg& a) {
  auto v = eval_expr(a.value, [this](std::string_view n) -> std::optional<std::uint64_t> {
    const auto it = vars.find(std::string(n));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
  if (!v) {
    std::string msg = v.error().msg;
    // "$x is not set": say which step failed to set it.
    for (const auto& [name, line] : unset_by)
      if (line && msg == "$" + name + " is not set")
        msg += fmt::format(" (the step on line {} that sets it failed)", line);
    throw RuntimeError{st.line, a.value_col + static_cast<int>(v.error().offset), msg};
  }
  return *v;
}

StepOut Interp::errno_result(Result<void> r) {
  StepOut o;
  if (r) {
    o.result = o.status = "ok";
  } else {
    o.ok = false;
    o.result = o.status = std::string(errno_name(r.error().code));
  }
  return o;
}

File* Interp::file_named(const std::string& name, std::uint64_t size, bool create, const Stmt& st,
                         const Arg* at, bool writable) {
  if (auto it = files.find(name); it != files.end()) return it->second;
  if (!create)
    fail(st, at, fmt::format("no file named '{}' (create it with file {} size=N)", name, name));
  // Recognisable contents: each page starts with "<name> page <n>\n", the rest is zero.
  std::vector<std::uint8_t> data(size, 0);
  for (std::uint64_t pg = 0; pg * PAGE_SIZE < size; ++pg) {
    const std::string tag = fmt::format("{} page {}\n", name, pg);
    const std::uint64_t n = std::min<std::uint64_t>(tag.size(), size - pg * PAGE_SIZE);
    std::copy_n(tag.begin(), n, data.begin() + static_cast<std::ptrdiff_t>(pg * PAGE_SIZE));
  }
  File* f = File::create(machine, name, std::move(data), true, writable, 0x801,
                         1000000 + files.size());  // 08:01, inodes numbered per script
  files.emplace(name, f);
  return f;
}

std::vector<const Mm*> Interp::live_mms() const {
  std::vector<const Mm*> v;
  for (const auto& s : mms)
    v.push_back(s.mm.get());
  return v;
}

std::string Interp::mm_label(const Mm& mm) const {
  for (const auto& s : mms)
    if (s.mm.get() == &mm) return s.name;
  return fmt::format("mm{}", mm.id());
}

StepOut Interp::exit_mm(const std::string& name) {
  auto it = std::find_if(mms.begin(), mms.end(), [&](const MmSlot& s) { return s.name == name; });
  const std::uint64_t free_before = machine.phys.nr_free();
  ExitMmapReport r;
  (void)mmput(*it->mm, &r);  // the script's only use: exit_mmap runs
  mms.erase(it);             // the last mm_count went with it: the struct and its pgd
  const std::uint64_t back = machine.phys.nr_free() - free_before;
  StepOut o;
  o.result = fmt::format("exit_mmap: {}; {} frame{} back on the free list",
                         exit_mmap_report_text(r), back, back == 1 ? "" : "s");
  o.status = "ok";
  o.data["exit_mmap"] = r;  // the exit_mmap trace event's JSON (emu/kernel/trace.hpp)
  o.data["frames_freed"] = back;
  return o;
}

Interp::TableSet Interp::table_set(const Mm& mm) {
  TableSet t;
  mm.pt().for_each_table([&](pfn_t pfn, Level l, vaddr_t base) { t[{l, base}] = pfn; });
  return t;
}

// Which page tables a step freed or allocated in each address space that lived through it:
// what munmap's free_pgtables kept between neighbours is exactly what is not listed.
void Interp::report_table_changes(const std::vector<std::pair<const Mm*, TableSet>>& before,
                                  StepOut& o) {
  json freed = json::array(), added = json::array();
  for (const auto& [mm, old] : before) {
    if (std::none_of(mms.begin(), mms.end(), [&](const MmSlot& s) { return s.mm.get() == mm; }))
      continue;  // exited in this step
    const TableSet now = table_set(*mm);
    const std::string who = mm_label(*mm);
    auto line = [&](const char* what, Level l, vaddr_t base, pfn_t pfn) {
      const vaddr_t last =
          l == Level::Pgd ? ~0ULL
                          : base + ((static_cast<vaddr_t>(PTRS_PER_TABLE) << level_shift(l)) - 1);
      o.detail.push_back(fmt::format("{}: {} {} table {:#x} (va {:#x}..{:#x})", who, what,
                                     level_name(l), pfn, base, last));
      return json{{"mm", who},
                  {"level", level_name(l)},
                  {"pfn", fmt::format("{:#x}", pfn)},
                  {"va_start", fmt::format("{:#x}", base)}};
    };
    for (const auto& [k, pfn] : old)
      if (auto it = now.find(k); it == now.end() || it->second != pfn)
        freed.push_back(line("freed", k.first, k.second, pfn));
    for (const auto& [k, pfn] : now)
      if (auto it = old.find(k); it == old.end() || it->second != pfn)
        added.push_back(line("new", k.first, k.second, pfn));
  }
  if (!freed.empty()) o.data["tables_freed"] = freed;
  if (!added.empty()) o.data["tables_new"] = added;
}

// ---------------------------------------------------------------- the statement loop

int Interp::run() {
  if (opts.on_start) opts.on_start(machine.inject.counts());
  machine.inject.on_attempt = [this](const FaultInjector::Event& e) {
    if (opts.on_attempt) opts.on_attempt(e, machine.inject.context());
    if (e.failed)
      step_failures.push_back(fmt::format("{} {} #{}", site_name(e.site),
                                          alloc_site(e.site) ? "allocation" : "check", e.attempt));
  };
  for (std::size_t i = 0; i < kInjectSites; ++i)
    attempt_base[i] = machine.inject.attempts(static_cast<InjectSite>(i));
  for (const InjectRule& r : opts.inject) {
    if (r.site)
      machine.inject.fail_nth(*r.site, r.nth, r.persistent);
    else
      machine.inject.fail_nth_any(r.nth, r.persistent);
  }
  try {
    exec_block(prog.stmts);
  } catch (const RuntimeError& e) {
    out_.flush();
    err_ << fmt::format("{}:{}:{}: error: {}\n", prog.name, e.line, e.col, e.msg);
    return kExitUsage;
  }
  return finish();
}

void Interp::exec_block(const std::vector<Stmt>& body) {
  for (const Stmt& st : body)
    exec(st);
}

void Interp::exec(const Stmt& st) {
  machine.inject.set_context(fmt::format("line {}: {}", st.line, st.text));
  if (st.cmd == "repeat") {
    const std::uint64_t n = pos_expr(st, 0);
    for (std::uint64_t i = 0; i < n; ++i) {
      if (st.pos.size() > 1) vars[st.pos[1].value] = i;
      exec_block(st.body);
    }
    return;
  }
  if (st.cmd == "echo") {
    const std::string text = *unescape(st.pos[0].value);
    emit_plain(text, {{"line", st.line}, {"cmd", "echo"}, {"text", text}});
    return;
  }
  step_failures.clear();
  const CmdSpec& spec = *st.spec;
  if (!spec.run) fail(st, nullptr, "command not implemented: " + st.cmd);
  const bool is_op = spec.role == Role::Op;
  std::vector<std::pair<const Mm*, TableSet>> before;
  if (is_op)
    for (const auto& s : mms)
      before.emplace_back(s.mm.get(), table_set(*s.mm));
  const std::size_t uaf_before = machine.freed_in_use.size();
  StepOut o = (this->*spec.run)(st);
  if (spec.role == Role::Expect && !o.ok) ++expect_failures;
  if (is_op) report_table_changes(before, o);
  if (!st.assign.empty()) {
    if (o.value) {
      vars[st.assign] = *o.value;
      unset_by[st.assign] = 0;
      o.result += fmt::format(" (${})", st.assign);
    } else {
      vars.erase(st.assign);
      unset_by[st.assign] = st.line;
    }
  }
  if (is_op) last_status = o.status;
  if (is_op && o.status == "ENOMEM") ++enomem_steps;
  if (!step_failures.empty()) {
    o.result += " [injected: ";
    for (std::size_t i = 0; i < step_failures.size(); ++i)
      o.result += (i ? ", " : "") + step_failures[i];
    o.result += "]";
    o.data["injected"] = step_failures;
  }
  // A page table freed while in use is reported where it happened, as KASAN would.
  if (machine.freed_in_use.size() > uaf_before) {
    json uaf = json::array();
    for (std::size_t i = uaf_before; i < machine.freed_in_use.size(); ++i) {
      const FreedInUseTable& t = machine.freed_in_use[i];
      uaf.push_back(t);
      std::string report = kasan_report(t);
      report.pop_back();
      for (std::size_t at = 0, nl; at <= report.size(); at = nl + 1) {
        nl = std::min(report.find('\n', at), report.size());
        o.detail.push_back(report.substr(at, nl - at));
      }
    }
    o.result +=
        fmt::format(" [{} page table{} freed in use]", uaf.size(), uaf.size() == 1 ? "" : "s");
    o.data["freed_in_use"] = uaf;
  }
  if (opts.check_each && is_op) {
    const auto mmsv = live_mms();
    const auto problems = validate_mms(mmsv);
    if (!problems.empty()) {
      invariants_broken = true;
      o.detail.push_back(
          fmt::format("--check: {} problem{}", problems.size(), problems.size() == 1 ? "" : "s"));
      for (const auto& p : problems)
        o.detail.push_back("  " + p);
      o.data["check"] = problems;
    }
  }
  emit(st, o);
}

// The one command on the interpreter's own variables.
StepOut Interp::cmd_let(const Stmt& st) {
  const std::uint64_t v = pos_expr(st, 1);
  vars[st.pos[0].value] = v;
  StepOut o;
  o.result = fmt::format("${} = {:#x}", st.pos[0].value, v);
  o.status = "ok";
  o.data["value"] = fmt::format("{:#x}", v);
  return o;
}

// ---------------------------------------------------------------- output

void Interp::emit(const Stmt& st, StepOut& o) {
  if (opts.json) {
    json j{{"line", st.line},    {"text", st.text},    {"cmd", st.cmd}, {"ok", o.ok},
           {"status", o.status}, {"result", o.result}, {"data", o.data}};
    out_ << j.dump() << "\n";
    return;
  }
  const std::string indent(static_cast<std::size_t>(2 * st.depth), ' ');
  const std::string lhs = indent + st.text;
  out_ << fmt::format("{:>4}  {:<46} => {}\n", st.line, lhs, o.result);
  for (const auto& d : o.detail)
    out_ << "      " << indent << d << "\n";
}

void Interp::emit_plain(const std::string& line, const json& obj) {
  if (opts.json)
    out_ << obj.dump() << "\n";
  else
    out_ << line << "\n";
}

int Interp::finish() {
  // Invariants over everything still alive, then every mm exits, then the script's file
  // references go, and whatever is still live leaked.
  if (!mms.empty()) {
    const auto problems = validate_mms(live_mms());
    if (!problems.empty()) invariants_broken = true;
    json jp = problems;
    std::string line =
        problems.empty()
            ? fmt::format("end: invariants ok over {} mm{}", mms.size(), mms.size() == 1 ? "" : "s")
            : fmt::format("end: {} invariant problem{}", problems.size(),
                          problems.size() == 1 ? "" : "s");
    for (const auto& p : problems)
      line += "\n      " + p;
    emit_plain(line, {{"cmd", "end-check"}, {"ok", problems.empty()}, {"problems", jp}});
  }
  while (!mms.empty()) {
    const std::string name = mms.front().name;
    StepOut o = exit_mm(name);
    emit_plain(fmt::format("end: exit {} => {}", name, o.result),
               {{"cmd", "end-exit"}, {"mm", name}, {"data", o.data}});
  }
  for (auto& [name, f] : files)
    f->put();
  files.clear();

  bool leaked = false;
  for (AllocSite s : kAllAllocSites)
    if (machine.live.live(s) != 0) leaked = true;
  if (machine.live.unknown_frees() != 0) leaked = true;
  std::string line;
  if (!leaked) {
    line = fmt::format("end: leak check ok: nothing live, {} of {} frames free",
                       machine.phys.nr_free(), machine.phys.nr_frames());
  } else {
    line = "end: LEAKED:\n" + dump::live_objects_text(machine);
    if (machine.live.unknown_frees())
      line += fmt::format("{} frees of objects never recorded\n", machine.live.unknown_frees());
    line.pop_back();
  }
  emit_plain(line, {{"cmd", "end-leaks"},
                    {"ok", !leaked},
                    {"live", dump::live_objects_json(machine)},
                    {"unknown_frees", machine.live.unknown_frees()},
                    {"free_frames", machine.phys.nr_free()}});
  const std::size_t uaf = machine.freed_in_use.size();
  if (uaf) {
    std::string l =
        fmt::format("end: {} page table{} freed while in use", uaf, uaf == 1 ? "" : "s");
    json lines = json::array();
    for (const FreedInUseTable& t : machine.freed_in_use) {
      l += "\n      " + freed_in_use_summary(t);
      lines.push_back(freed_in_use_summary(t));
    }
    emit_plain(l, {{"cmd", "end-freed-in-use"}, {"ok", false}, {"problems", lines}});
  }
  const int status = (leaked || invariants_broken || uaf) ? kExitLeak
                     : expect_failures                    ? kExitExpect
                                                          : kExitOk;
  if (!opts.json && status != kExitOk)
    out_ << fmt::format("end: exit status {} ({})\n", status,
                        status == kExitLeak
                            ? "leaks, broken invariants or page tables freed in use"
                            : fmt::format("{} expect line{} failed", expect_failures,
                                          expect_failures == 1 ? "" : "s"));
  if (opts.json) {
    // The run's summary for tools (`mmemu sweep`): what went wrong, by kind, and the
    // attempts per injection site since the --inject rules were armed.
    json attempts = json::object();
    for (std::size_t i = 0; i < kInjectSites; ++i) {
      const auto site = static_cast<InjectSite>(i);
      attempts[std::string(site_name(site))] = machine.inject.attempts(site) - attempt_base[i];
    }
    out_ << json{{"cmd", "end"},
                 {"exit_status", status},
                 {"expect_failures", expect_failures},
                 {"leaked", leaked},
                 {"invariants_broken", invariants_broken},
                 {"freed_in_use", uaf},
                 {"enomem_steps", enomem_steps},
                 {"attempts", attempts}}
                .dump()
         << "\n";
  }
  return status;
}

int run_script(const Program& prog, const Options& opts, std::ostream& out, std::ostream& err) {
  Interp in(prog, opts, out, err);
  return in.run();
}

}  // namespace mmemu::script
