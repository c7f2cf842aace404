// Script commands of the address-space lifecycle: fork (dup_mm with a recovery and the
// registered walkers), exit, failure injection (inject, inject random, inject off), the
// recovery of later forks, and walker selection (walker, walker clear).
#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "emu/kernel/trace.hpp"
#include "tools/script_interp.hpp"
#include "vma/fork_report.hpp"
#include "vma/walkers.hpp"

namespace mmemu::script {

using json = nlohmann::json;

namespace {

// The step of a command that cannot fail once its arguments parsed.
StepOut done(std::string result) {
  StepOut o;
  o.status = "ok";
  o.result = std::move(result);
  return o;
}

}  // namespace

StepOut Interp::cmd_fork(const Stmt& st) {
  Mm& parent = mm_arg(st, 0);
  const std::string& child = st.pos[1].value;
  if (std::any_of(mms.begin(), mms.end(), [&](const MmSlot& s) { return s.name == child; }))
    fail(st, &st.pos[1], fmt::format("mm '{}' already exists", child));
  const ForkRecovery rec =
      st.key("recovery") ? *parse_recovery(st.key("recovery")->value) : recovery;
  std::vector<ConcurrentWalker*> ws, exit_ws;
  for (auto& w : walkers) {
    if (at_lock_drop(w.at)) ws.push_back(w.walker.get());
    if (at_exit_unlock(w.at)) exit_ws.push_back(w.walker.get());
  }
  ForkReport rep;
  auto r = dup_mm(parent, rec, &rep, ws, exit_ws);
  last_fork = rep;

  StepOut o;
  json d = rep;
  if (r) {
    Mm& c = **r;
    o.status = "ok";
    o.result = fmt::format("ok: child mm {}, {} VMAs, {} PTEs copied, {} write-protected", c.id(),
                           c.map_count, rep.ptes_copied, rep.ptes_wrprotected);
    if (rep.pages_copied) o.result += fmt::format(", {} pinned pages copied", rep.pages_copied);
    d["child"] = c.id();
    mms.push_back(MmSlot{child, std::move(*r), std::nullopt});
  } else {
    o.ok = false;
    o.status = std::string(errno_name(r.error().code));
    o.result = fmt::format("{}: {}", o.status, fork_failure_headline(rep));
    for (std::string& line : fork_failure_details(rep))
      o.detail.push_back(std::move(line));
  }
  o.data = std::move(d);
  return o;
}

StepOut Interp::cmd_exit(const Stmt& st) {
  (void)slot(st, 0);  // must be live
  return exit_mm(st.pos[0].value);
}

StepOut Interp::cmd_inject(const Stmt& st) {
  std::string_view rest = st.pos[0].value;
  std::string desc;
  while (true) {
    const auto comma = rest.find(',');
    const InjectRule rule = *parse_inject_rule(rest.substr(0, comma));
    if (rule.site)
      machine.inject.fail_nth(*rule.site, rule.nth, rule.persistent);
    else
      machine.inject.fail_nth_any(rule.nth, rule.persistent);
    const bool check = rule.site && !alloc_site(*rule.site);
    desc += fmt::format("{}{} {} #{}{} from now", desc.empty() ? "" : ", ",
                        rule.site ? site_name(*rule.site) : "any", check ? "check" : "allocation",
                        rule.nth, rule.persistent ? " and every later one" : "");
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return done("armed: " + desc + " fails");
}

StepOut Interp::cmd_inject_random(const Stmt& st) {
  const double p = std::stod(st.pos[0].value);
  const std::uint64_t s = pos_expr(st, 2);
  std::optional<InjectSite> site;
  if (const Arg* sa = st.key("site")) site = parse_inject_site(sa->value);
  machine.inject.fail_random(p, s, site);
  const bool check = site && !alloc_site(*site);
  return done(fmt::format("each {} {} fails with probability {} (seed {})",
                          site ? site_name(*site) : "any", check ? "check" : "allocation", p, s));
}

StepOut Interp::cmd_inject_off(const Stmt&) {
  machine.inject.disarm();
  return done("injector disarmed");
}

StepOut Interp::cmd_recovery(const Stmt& st) {
  recovery = *parse_recovery(st.pos[0].value);
  return done(fmt::format("later forks recover with {}", recovery_name(recovery)));
}

StepOut Interp::cmd_walker(const Stmt& st) {
  const auto parsed = parse_walker(st.pos[0].value);
  if (!parsed) fail(st, &st.pos[0], "unknown walker " + st.pos[0].value);
  const WalkerPoint at =
      st.key("at") ? *parse_walker_point(st.key("at")->value) : WalkerPoint::LockDrop;
  walkers.push_back({make_walker(parsed->first, parsed->second), at});
  std::string drop, unlock;
  for (const auto& w : walkers) {
    if (at_lock_drop(w.at)) drop += (drop.empty() ? "" : ", ") + w.walker->name();
    if (at_exit_unlock(w.at)) unlock += (unlock.empty() ? "" : ", ") + w.walker->name();
  }
  std::string out;
  if (!drop.empty()) out = "walkers at the lock-drop point: " + drop;
  if (!unlock.empty())
    out +=
        (out.empty() ? "" : "; ") + std::string("walkers in exit_mmap's unlock window: ") + unlock;
  return done(out);
}

StepOut Interp::cmd_walker_clear(const Stmt&) {
  walkers.clear();
  return done("no walkers");
}

}  // namespace mmemu::script
