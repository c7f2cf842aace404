// The command table of the script language: for every command (and every subform such as
// "expect vmas"), its positional arguments with their kinds, its flags and key=value keys.
// The parser checks statements against it; the interpreter dispatches on the same names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmemu::script {

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
  Prob,        // probability 0..1
  Data,        // "quoted string" (escapes \n \t \\ \" \xHH)
  Errno,       // errno name or OK
  Fault,       // fault result name
  Walker,      // concurrent walker name
  Outcome,     // walker outcome
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

struct CmdSpec {
  std::string_view name;   // "mmap", or a subform "expect vmas"
  std::string_view usage;  // shown with argument errors
  std::vector<Kind> required;
  std::vector<Kind> optional;
  std::vector<std::string_view> flags;
  std::vector<KeySpec> keys;
  bool assignable = false;  // may be written "VAR = cmd ..." (result is an address)
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
