// The command table of the script language: one row for every command (and every subform
// such as "expect vmas") with its positional arguments and their kinds, its flags and
// key=value keys, the Interp member that runs it and how the statement loop treats its step.
// The parser checks statements against the row; the interpreter calls the row's handler, so
// a new command is one new row and its handler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmemu::script {

class Interp;
struct StepOut;
struct Stmt;

enum class Kind : std::uint8_t {
  NewMm,       // introduces an mm name
  Mm,          // an mm name introduced before
  Ident,       // a variable name
  Expr,        // number / $var expression
  AddrOrAuto,  // "auto" or an expression
  Brk,         // an expression, or +EXPR / -EXPR relative to the current break
  Prot,        // rwx string: "rw-", "r-x", "---"
  Perms,       // /proc maps permissions "rw-p", or "none"
  Advice,      // madvise advice name
  Recovery,    // xa-zero | tree-max | partial
  InjectSpec,  // SITE:N[+][,SITE:N...]
  Site,        // allocation site name
  InjectSite,  // injection site name: an allocation site or fatal_signal
  Prob,        // probability 0..1
  Data,        // "quoted string" (escapes \n \t \\ \" \xHH)
  Errno,       // errno name or OK
  Fault,       // fault result name
  Walker,      // concurrent walker name
  Outcome,     // walker outcome
  Point,       // where walkers run: lock-drop | exit-unlock | both
  RssType,     // anon | file | shmem | swap
  Level,       // pgd | pud | pmd | pte
  Arch,        // x86_64 | arm64
  YesNo,       // yes | no
  SeedWord,    // the word "seed"
  Word,        // anything
};

struct KeySpec {
  std::string_view key;
  Kind kind;
};

// How the statement loop treats a command's step.
enum class Role : std::uint8_t {
  Op,      // changes address spaces: its status is the one "expect ok|errno|fault" tests,
           // the page tables it frees or adds are listed, --check validates after it
  Other,   // looks, or sets the interpreter's own state (inject, walker, let, ...)
  Expect,  // an expectation: a failed one makes the script exit with status 1
};

using Handler = StepOut (Interp::*)(const Stmt&);

struct CmdSpec {
  std::string_view name;   // "mmap", or a subform "expect vmas"
  std::string_view usage;  // shown with argument errors
  // "= {}" lets rows name only what they have (designated initializers, no warning).
  std::vector<Kind> required = {};
  std::vector<Kind> optional = {};
  std::vector<std::string_view> flags = {};
  std::vector<KeySpec> keys = {};
  bool assignable = false;  // may be written "VAR = cmd ..." (result is an address)
  // Runs one statement; null for the structure the statement loop handles itself
  // (repeat ... end, echo).
  Handler run = nullptr;
  Role role = Role::Op;
};

// The spec named exactly `name` ("mmap", "expect vmas", "inject"), or null.
const CmdSpec* find_spec(std::string_view name);
// Subform words of a command with subforms ("expect" -> ok, errno, ...), else empty.
std::vector<std::string_view> subforms(std::string_view cmd);
bool is_command(std::string_view word);
std::vector<std::string_view> command_names();

// Checks the syntax of one value of `kind`; returns what is wrong.
std::optional<std::string> check_kind(Kind kind, std::string_view value, bool quoted);

// Value tables shared with the interpreter.
std::optional<int> advice_value(std::string_view name);  // "dontneed" -> MADV_DONTNEED
std::vector<std::string_view> advice_names();
std::optional<int> errno_by_name(std::string_view name);  // "ENOMEM" -> ENOMEM, "OK" -> 0
std::vector<std::string_view> walker_names();
std::vector<std::string_view> fault_names();
std::vector<std::string_view> outcome_names();
// "rw-" -> PROT_READ|PROT_WRITE
std::optional<int> parse_prot(std::string_view s);
// Decodes a quoted string's escapes; nullopt if an escape is malformed.
std::optional<std::string> unescape(std::string_view s);

}  // namespace mmemu::script
