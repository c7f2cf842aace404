// The interpreter of mmemu scripts: runs parsed statements against address spaces on one
// emulated machine, printing one line (text) or one JSON object (json) per step.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "mmu/machine.hpp"
#include "tools/script_syntax.hpp"
#include "vma/fork.hpp"
#include "vma/mm.hpp"

namespace mmemu {
class File;
}

namespace mmemu::script {

struct Options {
  Arch arch = Arch::X86_64;  // for "mm NAME" without arch=
  bool json = false;
  std::uint64_t phys_bytes = 1ULL << 30;
  bool check_each = false;  // validate every mm after every step
  ForkRecovery recovery = ForkRecovery::TreeMax;
  // --inject SITE:N rules, armed before the first statement (counts start there).
  std::vector<InjectRule> inject;
  // --list-allocations: given the injector's counts before the first line, then every
  // allocation attempt and fatal_signal check from there with the step's context label.
  std::function<void(const FaultInjector::Counts&)> on_start;
  std::function<void(const FaultInjector::Event&, const std::string& context)> on_attempt;
};

// Exit statuses of `mmemu script`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitExpect = 1;  // an expect line failed
inline constexpr int kExitUsage = 2;   // script error (syntax, bad argument, unknown name)
inline constexpr int kExitLeak = 70;   // leaks or broken invariants

// Runs the program; returns the exit status. Step output goes to `out`, script errors
// ("NAME:LINE:COL: error: ...") to `err`.
int run_script(const Program& prog, const Options& opts, std::ostream& out, std::ostream& err);

// ---------------------------------------------------------------- internals

// A script error found while running (an mm that no longer exists, $var unset, ...).
struct RuntimeError {
  int line;
  int col;
  std::string msg;
};

// What one step printed: a result, optional detail lines, and JSON data.
struct StepOut {
  bool ok = true;      // the operation succeeded / the expectation held
  std::string result;  // short result ("0x7f..", "ENOMEM", "SEGV_MAPERR at 0x..", "ok")
  std::string status;  // "ok", an errno name, a fault name, "pass", "FAIL"
  std::vector<std::string> detail;     // further text lines (dumps, fork report)
  std::optional<std::uint64_t> value;  // what "VAR = command" assigns (an address)
  nlohmann::json data = nlohmann::json::object();
};

// The state of an address space the script created: enough to compare against later.
struct Snapshot {
  std::vector<std::string> vmas;        // maps lines + flags
  std::map<vaddr_t, std::string> ptes;  // va -> frame, prot, young, dirty
  std::map<std::string, pfn_t> tables;  // "level base" -> frame
  std::map<pfn_t, std::string> frames;  // frame -> refcount/mapcount
  std::string counters;
  std::uint64_t attempt_mark = 0;  // the injector's global attempt count when it was taken
};

class Interp {
 public:
  Interp(const Program& prog, const Options& opts, std::ostream& out, std::ostream& err);
  ~Interp();
  int run();

  // --- helpers for the command implementations ---
  struct MmSlot {
    std::string name;
    std::unique_ptr<Mm> mm;
    std::optional<Snapshot> snap;
  };
  Mm& mm_arg(const Stmt& st, std::size_t i);  // positional i names a live mm
  MmSlot& slot(const Stmt& st, std::size_t i);
  std::uint64_t expr(const Stmt& st, const Arg& a);  // evaluate an expression argument
  std::uint64_t pos_expr(const Stmt& st, std::size_t i) { return expr(st, st.pos.at(i)); }
  [[noreturn]] void fail(const Stmt& st, const Arg* at, std::string msg);
  static StepOut errno_result(Result<void> r);
  // The script's file NAME; created (readable, writable unless told) when missing and `create`.
  File* file_named(const std::string& name, std::uint64_t size, bool create, const Stmt& st,
                   const Arg* at, bool writable = true);
  std::vector<const Mm*> live_mms() const;
  std::string mm_label(const Mm& mm) const;  // the script name of an mm

  // --- command handlers; the command table (script_spec.cpp) names the one for each row ---
  // script_cmd_mm.cpp
  StepOut cmd_mm(const Stmt& st);
  StepOut cmd_file(const Stmt& st);
  StepOut cmd_mmap(const Stmt& st);
  StepOut cmd_munmap(const Stmt& st);
  StepOut cmd_free_pgd_range(const Stmt& st);
  StepOut cmd_unmap_region(const Stmt& st);
  StepOut cmd_mprotect(const Stmt& st);
  StepOut cmd_mremap(const Stmt& st);
  StepOut cmd_madvise(const Stmt& st);
  StepOut cmd_mseal(const Stmt& st);
  StepOut cmd_mlock(const Stmt& st);
  StepOut cmd_munlock(const Stmt& st);
  StepOut cmd_mlockall(const Stmt& st);
  StepOut cmd_munlockall(const Stmt& st);
  StepOut cmd_brk(const Stmt& st);
  StepOut cmd_touch(const Stmt& st);
  StepOut cmd_write(const Stmt& st);
  StepOut cmd_read(const Stmt& st);
  // script_cmd_life.cpp
  StepOut cmd_fork(const Stmt& st);
  StepOut cmd_exit(const Stmt& st);
  StepOut cmd_inject(const Stmt& st);
  StepOut cmd_inject_random(const Stmt& st);
  StepOut cmd_inject_off(const Stmt& st);
  StepOut cmd_recovery(const Stmt& st);
  StepOut cmd_walker(const Stmt& st);
  StepOut cmd_walker_clear(const Stmt& st);
  // script_cmd_inspect.cpp
  StepOut cmd_dump(const Stmt& st);
  StepOut dump_html(const Stmt& st, const Mm& mm, const std::string& path);
  StepOut cmd_check(const Stmt& st);
  StepOut cmd_snapshot(const Stmt& st);
  StepOut cmd_leaks(const Stmt& st);
  StepOut expect_status(const Stmt& st);  // expect ok, expect errno, expect fault
  StepOut expect_value(const Stmt& st);
  StepOut expect_vmas(const Stmt& st);
  StepOut expect_vma(const Stmt& st);
  StepOut expect_rss(const Stmt& st);
  StepOut expect_tables(const Stmt& st);
  StepOut expect_live(const Stmt& st);
  StepOut expect_bytes(const Stmt& st);
  StepOut expect_mapcount(const Stmt& st);
  StepOut expect_shared(const Stmt& st);
  StepOut expect_distinct(const Stmt& st);
  StepOut expect_unchanged(const Stmt& st);
  StepOut expect_no_leaks_since(const Stmt& st);
  StepOut expect_walker(const Stmt& st);
  // script_interp.cpp
  StepOut cmd_let(const Stmt& st);

  // Exits an mm (exit_mmap, then mmput) and describes the exit_mmap report.
  StepOut exit_mm(const std::string& name);
  Snapshot take_snapshot(const Mm& mm) const;
  using TableSet = std::map<std::pair<Level, vaddr_t>, pfn_t>;
  static TableSet table_set(const Mm& mm);
  void report_table_changes(const std::vector<std::pair<const Mm*, TableSet>>& before, StepOut& o);

  const Program& prog;
  const Options& opts;
  Machine machine;
  std::vector<MmSlot> mms;  // in creation order
  std::map<std::string, File*> files;
  std::map<std::string, std::uint64_t> vars;
  std::map<std::string, int> unset_by;  // variable -> line whose failed step left it unset
  ForkRecovery recovery;
  struct WalkerSlot {
    std::unique_ptr<ConcurrentWalker> walker;
    WalkerPoint at;  // where later forks run it
  };
  std::vector<WalkerSlot> walkers;
  std::string last_status = "ok";  // status of the last operation step, for expect
  std::optional<ForkReport> last_fork;
  std::vector<std::string> step_failures;  // injected failures during the current step
  int expect_failures = 0;
  bool invariants_broken = false;
  int enomem_steps = 0;  // operation steps that returned ENOMEM (the end summary's)
  // The injector's attempts per site when the --inject rules were armed.
  std::array<std::uint64_t, kInjectSites> attempt_base{};
  // dump ... format=html out="FILE": the dumps written to each FILE so far (each dump
  // rewrites the file's page with all of them, so a script's dumps become its timeline).
  std::map<std::string, std::vector<nlohmann::json>> html_pages;

 private:
  void exec_block(const std::vector<Stmt>& body);
  void exec(const Stmt& st);
  void emit(const Stmt& st, StepOut& o);
  void emit_plain(const std::string& line, const nlohmann::json& obj);
  int finish();

  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace mmemu::script
