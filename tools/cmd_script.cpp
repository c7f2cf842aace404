// `mmemu script`: runs a script of mm operations against address spaces, without a CPU.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "tools/alloc_list.hpp"
#include "tools/commands.hpp"
#include "tools/script_interp.hpp"

namespace mmemu::cli {

namespace {

struct ScriptArgs {
  std::string file;
  std::string arch = "x86_64";
  std::string format = "text";
  std::string out;
  std::string phys_mem = "1G";
  bool check = false;
  bool list_allocations = false;
  std::string recovery = "tree-max";
  std::vector<std::string> inject;
};

// The source line of an error with a caret under its column.
std::string caret(const std::string& src, int line, int col) {
  std::istringstream in(src);
  std::string l;
  for (int i = 0; i < line && std::getline(in, l); ++i) {
  }
  const std::size_t pad = col > 1 ? static_cast<std::size_t>(col - 1) : 0;
  std::string marks;
  for (std::size_t i = 0; i < pad && i < l.size(); ++i)
    marks += l[i] == '\t' ? '\t' : ' ';
  return fmt::format("  {}\n  {}^\n", l, marks);
}

int run(const ScriptArgs& a) {
  script::Options opts;
  opts.arch = a.arch == "arm64" ? Arch::Arm64 : Arch::X86_64;
  opts.json = a.format == "json";
  opts.check_each = a.check;
  opts.recovery = *parse_recovery(a.recovery);
  const auto phys = script::parse_size(a.phys_mem);
  if (!phys || *phys < (1ULL << 20) || *phys % PAGE_SIZE != 0 || *phys > (64ULL << 30)) {
    std::cerr << fmt::format(
        "mmemu script: --phys-mem {}: expected a size from 1M to 64G in "
        "whole pages (like 256M)\n",
        a.phys_mem);
    return script::kExitUsage;
  }
  opts.phys_bytes = *phys;
  for (const std::string& list : a.inject) {
    for (std::size_t at = 0; at <= list.size();) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      const std::string spec = list.substr(at, comma - at);
      auto r = parse_inject_rule(spec);
      if (!r) {
        std::cerr << fmt::format(
            "mmemu script: --inject {}: expected SITE:N or SITE:N+ with SITE one of {}, any\n",
            spec, inject_site_names(", "));
        return script::kExitUsage;
      }
      opts.inject.push_back(*r);
      at = comma + 1;
    }
  }

  std::string src;
  std::string name = a.file;
  if (a.file == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    src = ss.str();
    name = "<stdin>";
  } else {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) {
      std::cerr << fmt::format("mmemu script: cannot read {}: {}\n", a.file, std::strerror(errno));
      return script::kExitUsage;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    src = ss.str();
  }
  auto prog = script::parse_script(src, name);
  if (!prog) {
    for (const auto& e : prog.error())
      std::cerr << fmt::format("{}:{}:{}: error: {}\n", name, e.line, e.col, e.msg)
                << caret(src, e.line, e.col);
    return script::kExitUsage;
  }
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (!a.out.empty()) {
    file.open(a.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << fmt::format("mmemu script: cannot write {}: {}\n", a.out, std::strerror(errno));
      return script::kExitUsage;
    }
    out = &file;
  }
  // --list-allocations: numbered from the script's first line, printed after its output.
  std::optional<AllocList> allocs;
  if (a.list_allocations) {
    opts.on_start = [&allocs](const FaultInjector::Counts& base) { allocs.emplace(base); };
    opts.on_attempt = [&allocs](const FaultInjector::Event& e, const std::string& context) {
      if (allocs) allocs->add(e, std::nullopt, context);
    };
  }
  const int status = script::run_script(*prog, opts, *out, std::cerr);
  if (a.list_allocations) {
    if (!allocs) allocs.emplace(FaultInjector::Counts{});
    if (opts.json) {
      allocs->render_json(*out);
    } else {
      allocs->render_text(*out);
    }
  }
  out->flush();
  return status;
}

}  // namespace

void add_script_command(CLI::App& app, int& status) {
  auto args = std::make_shared<ScriptArgs>();
  CLI::App* sub = app.add_subcommand(
      "script",
      "Run a script of mm operations (mmap, touch, fork, inject, dump, ...) without a CPU.\n"
      "Exit status: 0 ok, 1 an expect failed, 2 script or usage error, 70 leak, broken "
      "invariant or page table freed while in use.");
  sub->add_option("file", args->file, "script file (.mms), or - for standard input")->required();
  sub->add_option("--arch", args->arch, "architecture of 'mm NAME' without arch=")
      ->check(CLI::IsMember({"x86_64", "arm64"}))
      ->capture_default_str();
  sub->add_option("--format", args->format, "text, or json (one object per step)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->add_option("--out", args->out, "write the output to FILE instead of standard output");
  sub->add_option("--phys-mem", args->phys_mem, "emulated physical memory (K/M/G suffixes)")
      ->capture_default_str();
  sub->add_flag("--check", args->check, "check every invariant after every step");
  sub->add_flag("--list-allocations", args->list_allocations,
                "after the output, list every allocation attempt (and fatal_signal check), "
                "numbered as 'inject' counts them from the first line, with the kernel function "
                "asking and the address");
  sub->add_option("--recovery", args->recovery,
                  "fork-failure recovery until a 'recovery' line: xa-zero, tree-max, partial")
      ->check(CLI::IsMember({"xa-zero", "tree-max", "partial"}))
      ->capture_default_str();
  sub->add_option("--inject", args->inject,
                  "fail allocations: SITE:N[,SITE:N...] counted from the first statement (as "
                  "the script's own inject line counts from where it stands)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->callback([args, &status] { status = run(*args); });
}

}  // namespace mmemu::cli
