// The syntax of mmemu scripts (.mms): one statement per line, '#' starts a comment.
//   [VAR =] COMMAND ARG...      ARG is a word, a key=value pair or a "quoted string"
//   repeat COUNT [VAR] ... end  a block run COUNT times (VAR = 0, 1, ...)
// This file turns text into statements with line:column positions; what each command
// accepts is checked against the command table (script_spec.hpp).
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmemu::script {

struct CmdSpec;

struct ScriptError {
  int line = 0;
  int col = 0;
  std::string msg;
};

// One argument as written. Positional arguments and flags have an empty key.
struct Arg {
  std::string key;
  std::string value;
  bool quoted = false;  // value came from a "string"
  int col = 0;          // column of the argument (of the key for key=value)
  int value_col = 0;    // column of the value
};

struct Stmt {
  int line = 0;
  int col = 0;         // column of the first token
  std::string text;    // the statement as written, comment and outer blanks removed
  std::string assign;  // VAR of "VAR = command", else empty
  std::string cmd;     // command name; for a subform ("expect vmas") the full spec name
  int cmd_col = 0;
  // The command's row in the command table.
  const CmdSpec* spec = nullptr;
  std::vector<Arg> pos;    // positional arguments (the subform word removed)
  std::vector<Arg> flags;  // bare words the command knows as flags
  std::vector<Arg> keys;   // key=value arguments
  std::vector<Stmt> body;  // repeat's block
  int depth = 0;           // nesting depth (0 at top level)

  const Arg* key(std::string_view k) const;
  bool flag(std::string_view f) const;
};

struct Program {
  std::string name;  // file name for messages ("-" for standard input)
  std::vector<Stmt> stmts;
};

// Parses and checks a whole script: tokens, command names, argument counts and kinds,
// key names, and that every $variable and mm name is introduced before it is used.
// Returns every error found (in line order), not just the first.
std::expected<Program, std::vector<ScriptError>> parse_script(std::string_view src,
                                                              std::string name);

// --- expressions: NUM[K|M|G] | $VAR, joined by + - * (the usual precedence), no spaces ---
bool is_identifier(std::string_view s);
// A syntax check; on error, the offset of the bad character and what is wrong.
struct ExprError {
  std::size_t offset;
  std::string msg;
};
std::expected<void, ExprError> check_expr(std::string_view s);
// Variables referenced by an expression (without the '$').
std::vector<std::string> expr_vars(std::string_view s);
// Evaluates with wrapping 64-bit arithmetic; `lookup` returns nullopt for an unknown variable.
using VarLookup = std::function<std::optional<std::uint64_t>(std::string_view)>;
std::expected<std::uint64_t, ExprError> eval_expr(std::string_view s, const VarLookup& lookup);

// A number with an optional K/M/G suffix (powers of 1024): "4096", "0x1000", "64K", "2M".
std::expected<std::uint64_t, std::string> parse_size(std::string_view s);
// "64K" for 65536, "2M", "0x1234" when not a whole number of KiB.
std::string format_size(std::uint64_t n);

}  // namespace mmemu::script
