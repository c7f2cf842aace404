#include "tools/script_syntax.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "tools/script_spec.hpp"

namespace mmemu::script {

const Arg* Stmt::key(std::string_view k) const {
  for (const auto& a : keys)
    if (a.key == k) return &a;
  return nullptr;
}

bool Stmt::flag(std::string_view f) const {
  return std::any_of(flags.begin(), flags.end(), [&](const Arg& a) { return a.value == f; });
}

bool is_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// ---------------------------------------------------------------- numbers and expressions

namespace {

struct NumScan {
  std::uint64_t value = 0;
  std::size_t len = 0;  // characters consumed
};

// A number with an optional K/M/G suffix at the start of s.
std::expected<NumScan, ExprError> scan_number(std::string_view s, std::size_t at) {
  std::size_t i = 0;
  unsigned base = 10;
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  const std::size_t digits_from = i;
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    unsigned d = 0;
    if (std::isdigit(c))
      d = c - '0';
    else if (base == 16 && std::isxdigit(c))
      d = static_cast<unsigned>(std::tolower(c) - 'a' + 10);
    else
      break;
    if (v > (~0ULL - d) / base) return std::unexpected(ExprError{at, "number too large"});
    v = v * base + d;
  }
  if (i == digits_from) return std::unexpected(ExprError{at, "expected a number"});
  if (i < s.size()) {
    unsigned shift = 0;
    switch (s[i]) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift) {
      if (v > (~0ULL >> shift)) return std::unexpected(ExprError{at, "number too large"});
      v <<= shift;
      ++i;
    }
  }
  if (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_'))
    return std::unexpected(ExprError{at + i, fmt::format("unexpected '{}' in number", s[i])});
  return NumScan{v, i};
}

// Recursive descent over "atom (* atom)* ((+|-) term)*". With lookup == nullptr it only checks.
class ExprParser {
 public:
  ExprParser(std::string_view s, const VarLookup* lookup) : s_(s), lookup_(lookup) {}

  std::expected<std::uint64_t, ExprError> parse() {
    if (s_.empty()) return std::unexpected(ExprError{0, "expected a number or $variable"});
    auto v = sum();
    if (!v) return v;
    if (pos_ != s_.size())
      return std::unexpected(ExprError{pos_, fmt::format("unexpected '{}'", s_[pos_])});
    return v;
  }
  std::vector<std::string> vars;

 private:
  std::expected<std::uint64_t, ExprError> sum() {
    auto v = product();
    if (!v) return v;
    while (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
      const char op = s_[pos_++];
      auto r = product();
      if (!r) return r;
      *v = op == '+' ? *v + *r : *v - *r;
    }
    return v;
  }
  std::expected<std::uint64_t, ExprError> product() {
    auto v = atom();
    if (!v) return v;
    while (pos_ < s_.size() && s_[pos_] == '*') {
      ++pos_;
      auto r = atom();
      if (!r) return r;
      *v *= *r;
    }
    return v;
  }
  std::expected<std::uint64_t, ExprError> atom() {
    if (pos_ >= s_.size())
      return std::unexpected(ExprError{pos_, "expected a number or $variable at the end"});
    if (s_[pos_] == '$') {
      const std::size_t from = ++pos_;
      while (pos_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
        ++pos_;
      const std::string_view name = s_.substr(from, pos_ - from);
      if (!is_identifier(name))
        return std::unexpected(ExprError{from, "expected a variable name after '$'"});
      vars.emplace_back(name);
      if (!lookup_) return 0;
      auto v = (*lookup_)(name);
      if (!v) return std::unexpected(ExprError{from - 1, fmt::format("${} is not set", name)});
      return *v;
    }
    auto n = scan_number(s_.substr(pos_), pos_);
    if (!n) return std::unexpected(n.error());
    pos_ += n->len;
    return n->value;
  }

  std::string_view s_;
  const VarLookup* lookup_;
  std::size_t pos_ = 0;
};

}  // namespace

std::expected<void, ExprError> check_expr(std::string_view s) {
  ExprParser p(s, nullptr);
  if (auto r = p.parse(); !r) return std::unexpected(r.error());
  return {};
}

std::vector<std::string> expr_vars(std::string_view s) {
  ExprParser p(s, nullptr);
  (void)p.parse();
  return p.vars;
}

std::expected<std::uint64_t, ExprError> eval_expr(std::string_view s, const VarLookup& lookup) {
  ExprParser p(s, &lookup);
  return p.parse();
}

std::expected<std::uint64_t, std::string> parse_size(std::string_view s) {
  auto n = scan_number(s, 0);
  if (!n) return std::unexpected(n.error().msg);
  if (n->len != s.size()) return std::unexpected(fmt::format("unexpected '{}'", s[n->len]));
  return n->value;
}

std::string format_size(std::uint64_t n) {
  if (n != 0 && n % (1ULL << 30) == 0) return fmt::format("{}G", n >> 30);
  if (n != 0 && n % (1ULL << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n != 0 && n % (1ULL << 10) == 0) return fmt::format("{}K", n >> 10);
  return n < 10 ? fmt::format("{}", n) : fmt::format("{:#x}", n);
}

// ---------------------------------------------------------------- lexer

namespace {

enum class TokKind : std::uint8_t { Word, Str, Kv, Eq };

struct Token {
  TokKind kind;
  std::string text;   // word / string contents (raw, escapes kept) / key of a Kv
  std::string value;  // value of a Kv
  bool value_quoted = false;
  int col;
  int value_col = 0;
};

struct Line {
  int number;
  std::vector<Token> toks;
  std::string text;  // without comment, trimmed
  int end_col;       // column just after the last token
};

// Reads a "string" starting at s[i] == '"'; returns the index after the closing quote.
std::expected<std::size_t, ScriptError> scan_string(std::string_view s, std::size_t i, int line,
                                                    std::string* out) {
  const std::size_t start = i++;
  while (i < s.size() && s[i] != '"') {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    ++i;
  }
  if (i >= s.size())
    return std::unexpected(
        ScriptError{line, static_cast<int>(start) + 1, "unterminated string (missing '\"')"});
  *out = std::string(s.substr(start + 1, i - start - 1));
  return i + 1;
}

std::expected<Line, ScriptError> lex_line(std::string_view s, int number) {
  Line ln{number, {}, {}, 1};
  std::size_t i = 0;
  std::size_t text_end = 0;
  std::size_t text_begin = std::string_view::npos;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') break;
    if (text_begin == std::string_view::npos) text_begin = i;
    const int col = static_cast<int>(i) + 1;
    if (c == '"') {
      Token t{TokKind::Str, {}, {}, false, col};
      auto e = scan_string(s, i, number, &t.text);
      if (!e) return std::unexpected(e.error());
      i = *e;
      ln.toks.push_back(std::move(t));
    } else if (c == '=') {
      ln.toks.push_back(Token{TokKind::Eq, "=", {}, false, col});
      ++i;
    } else {
      std::size_t j = i;
      while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '#' &&
             s[j] != '=' && s[j] != '"')
        ++j;
      Token t{TokKind::Word, std::string(s.substr(i, j - i)), {}, false, col};
      if (j < s.size() && s[j] == '=') {
        // key=value (no blanks around '='); the value may be a "string"
        t.kind = TokKind::Kv;
        std::size_t k = j + 1;
        t.value_col = static_cast<int>(k) + 1;
        if (k < s.size() && s[k] == '"') {
          auto e = scan_string(s, k, number, &t.value);
          if (!e) return std::unexpected(e.error());
          t.value_quoted = true;
          k = *e;
        } else {
          std::size_t m = k;
          while (m < s.size() && s[m] != ' ' && s[m] != '\t' && s[m] != '\r' && s[m] != '#' &&
                 s[m] != '"')
            ++m;
          t.value = std::string(s.substr(k, m - k));
          if (t.value.empty())
            return std::unexpected(
                ScriptError{number, t.value_col, fmt::format("missing value after '{}='", t.text)});
          k = m;
        }
        j = k;
      } else if (j < s.size() && s[j] == '"') {
        return std::unexpected(ScriptError{number, static_cast<int>(j) + 1,
                                           "a string must be separated from the word before it"});
      }
      i = j;
      ln.toks.push_back(std::move(t));
    }
    text_end = i;
  }
  if (text_begin != std::string_view::npos)
    ln.text = std::string(s.substr(text_begin, text_end - text_begin));
  ln.end_col = static_cast<int>(text_end) + 1;
  return ln;
}

// ---------------------------------------------------------------- parser

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

class Parser {
 public:
  std::vector<ScriptError> errors;

  void parse_lines(std::string_view src, std::vector<Stmt>& out) {
    int number = 0;
    std::size_t pos = 0;
    struct Open {
      Stmt stmt;
    };
    std::vector<Open> stack;
    auto sink = [&]() -> std::vector<Stmt>& {
      return stack.empty() ? out : stack.back().stmt.body;
    };
    while (pos <= src.size()) {
      const std::size_t nl = src.find('\n', pos);
      const std::string_view raw =
          src.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      ++number;
      pos = nl == std::string_view::npos ? src.size() + 1 : nl + 1;
      auto ln = lex_line(raw, number);
      if (!ln) {
        errors.push_back(ln.error());
        continue;
      }
      if (ln->toks.empty()) continue;
      auto st = parse_stmt(*ln);
      if (!st) continue;
      st->depth = static_cast<int>(stack.size());
      if (st->cmd == "repeat") {
        stack.push_back(Open{std::move(*st)});
      } else if (st->cmd == "end") {
        if (stack.empty()) {
          errors.push_back({st->line, st->cmd_col, "'end' without 'repeat'"});
          continue;
        }
        Stmt rep = std::move(stack.back().stmt);
        stack.pop_back();
        sink().push_back(std::move(rep));
      } else {
        sink().push_back(std::move(*st));
      }
    }
    while (!stack.empty()) {
      errors.push_back(
          {stack.back().stmt.line, stack.back().stmt.cmd_col, "'repeat' without a matching 'end'"});
      stack.pop_back();
    }
  }

 private:
  std::set<std::string, std::less<>> vars_;
  std::set<std::string, std::less<>> mms_;

  void error(int line, int col, std::string msg) { errors.push_back({line, col, std::move(msg)}); }

  // Checks one value of a kind, including that names and $variables were introduced before.
  bool check_value(const Stmt& st, Kind kind, const Arg& a, std::string_view what) {
    // Expressions point at the offending character.
    if (!a.quoted && (kind == Kind::Expr || kind == Kind::AddrOrAuto || kind == Kind::Brk) &&
        a.value != "auto") {
      const std::size_t skip =
          kind == Kind::Brk && (a.value[0] == '+' || a.value[0] == '-') ? 1 : 0;
      if (auto r = check_expr(std::string_view(a.value).substr(skip)); !r) {
        error(st.line, a.value_col + static_cast<int>(skip + r.error().offset),
              fmt::format("{}: {}", what, r.error().msg));
        return false;
      }
    }
    if (auto err = check_kind(kind, a.value, a.quoted)) {
      error(st.line, a.value_col, fmt::format("{}: {}", what, *err));
      return false;
    }
    if (kind == Kind::Mm && !mms_.contains(a.value)) {
      error(
          st.line, a.value_col,
          fmt::format("no mm named {} (create it with 'mm {}' or fork)", quote(a.value), a.value));
      return false;
    }
    if (kind == Kind::NewMm) mms_.insert(a.value);
    if (kind == Kind::Expr || kind == Kind::AddrOrAuto || kind == Kind::Brk) {
      std::string_view e = a.value;
      if (kind == Kind::Brk && !e.empty() && (e[0] == '+' || e[0] == '-')) e.remove_prefix(1);
      for (const auto& v : expr_vars(e == "auto" ? std::string_view{} : e)) {
        if (!vars_.contains(v)) {
          const auto at = a.value.find("$" + v);
          error(st.line, a.value_col + static_cast<int>(at == std::string::npos ? 0 : at),
                fmt::format("${} is used before it is set", v));
          return false;
        }
      }
    }
    return true;
  }

  std::optional<Stmt> parse_stmt(const Line& ln) {
    Stmt st;
    st.line = ln.number;
    st.text = ln.text;
    st.col = ln.toks.front().col;
    std::size_t i = 0;
    const auto& t = ln.toks;
    std::string pending_assign;
    if (t.size() >= 2 && t[1].kind == TokKind::Eq && t[0].kind == TokKind::Word) {
      if (!is_identifier(t[0].text)) {
        error(ln.number, t[0].col, fmt::format("{} is not a variable name", quote(t[0].text)));
        return std::nullopt;
      }
      pending_assign = t[0].text;
      i = 2;
      if (i >= t.size()) {
        error(ln.number, t[1].col + 1, "expected a command after '='");
        return std::nullopt;
      }
    }
    if (t[i].kind != TokKind::Word) {
      error(ln.number, t[i].col,
            t[i].kind == TokKind::Kv ? fmt::format("expected a command, found {}=...", t[i].text)
                                     : std::string("expected a command"));
      return std::nullopt;
    }
    const std::string cmd = t[i].text;
    st.cmd_col = t[i].col;
    ++i;
    if (!is_command(cmd)) {
      error(ln.number, st.cmd_col, fmt::format("unknown command {}", quote(cmd)));
      return std::nullopt;
    }
    // "let VAR = EXPR"
    if (cmd == "let") {
      if (!pending_assign.empty() || t.size() != i + 3 || t[i].kind != TokKind::Word ||
          t[i + 1].kind != TokKind::Eq || t[i + 2].kind != TokKind::Word) {
        error(ln.number, st.cmd_col, "usage: let VAR = EXPR");
        return std::nullopt;
      }
      st.cmd = "let";
      st.pos.push_back(Arg{{}, t[i].text, false, t[i].col, t[i].col});
      st.pos.push_back(Arg{{}, t[i + 2].text, false, t[i + 2].col, t[i + 2].col});
      st.spec = find_spec("let");
      if (!check_value(st, Kind::Expr, st.pos[1], "let")) return std::nullopt;
      if (!check_value(st, Kind::Ident, st.pos[0], "let")) return std::nullopt;
      vars_.insert(st.pos[0].value);
      return st;
    }
    // A subform ("expect vmas") when the command has them.
    const CmdSpec* spec = nullptr;
    const auto subs = subforms(cmd);
    if (!subs.empty() && i < t.size() && t[i].kind == TokKind::Word &&
        std::find(subs.begin(), subs.end(), t[i].text) != subs.end()) {
      spec = find_spec(cmd + " " + t[i].text);
      ++i;
    } else {
      spec = find_spec(cmd);
    }
    if (!spec) {
      std::string list;
      for (auto s : subs)
        list += (list.empty() ? "" : "|") + std::string(s);
      error(ln.number, i < t.size() ? t[i].col : ln.end_col,
            fmt::format("{} needs one of: {}", cmd, list));
      return std::nullopt;
    }
    st.cmd = std::string(spec->name);
    st.spec = spec;
    if (!pending_assign.empty()) {
      if (!spec->assignable) {
        error(ln.number, t[0].col, fmt::format("{} has no result to assign", quote(cmd)));
        return std::nullopt;
      }
      st.assign = pending_assign;
    }
    bool ok = true;
    for (; i < t.size(); ++i) {
      const Token& tok = t[i];
      if (tok.kind == TokKind::Eq) {
        error(ln.number, tok.col, "unexpected '=' (write key=value without blanks)");
        return std::nullopt;
      }
      if (tok.kind == TokKind::Kv) {
        const auto ks = std::find_if(spec->keys.begin(), spec->keys.end(),
                                     [&](const KeySpec& k) { return k.key == tok.text; });
        if (ks == spec->keys.end()) {
          error(ln.number, tok.col,
                fmt::format("unknown option {}= for {}; usage: {}", tok.text, spec->name,
                            spec->usage));
          return std::nullopt;
        }
        if (st.key(tok.text)) {
          error(ln.number, tok.col, fmt::format("option {}= given twice", tok.text));
          return std::nullopt;
        }
        st.keys.push_back(Arg{tok.text, tok.value, tok.value_quoted, tok.col, tok.value_col});
        ok = check_value(st, ks->kind, st.keys.back(), tok.text + "=") && ok;
        continue;
      }
      const bool quoted = tok.kind == TokKind::Str;
      Arg a{{}, tok.text, quoted, tok.col, tok.col};
      if (!quoted &&
          std::find(spec->flags.begin(), spec->flags.end(), tok.text) != spec->flags.end()) {
        if (st.flag(tok.text)) {
          error(ln.number, tok.col, fmt::format("{} given twice", quote(tok.text)));
          return std::nullopt;
        }
        st.flags.push_back(std::move(a));
        continue;
      }
      const std::size_t n = st.pos.size();
      if (n >= spec->required.size() + spec->optional.size()) {
        error(ln.number, tok.col,
              fmt::format("unexpected argument {}; usage: {}", quote(tok.text), spec->usage));
        return std::nullopt;
      }
      const Kind kind =
          n < spec->required.size() ? spec->required[n] : spec->optional[n - spec->required.size()];
      st.pos.push_back(std::move(a));
      ok = check_value(st, kind, st.pos.back(), fmt::format("argument {}", n + 1)) && ok;
    }
    if (st.pos.size() < spec->required.size()) {
      error(ln.number, ln.end_col,
            fmt::format("missing argument {}; usage: {}", st.pos.size() + 1, spec->usage));
      return std::nullopt;
    }
    if (!ok) return std::nullopt;
    if (st.cmd == "repeat" && st.pos.size() > 1) vars_.insert(st.pos[1].value);
    if (!st.assign.empty()) vars_.insert(st.assign);
    return st;
  }
};

}  // namespace

std::expected<Program, std::vector<ScriptError>> parse_script(std::string_view src,
                                                              std::string name) {
  Program prog;
  prog.name = std::move(name);
  Parser p;
  p.parse_lines(src, prog.stmts);
  if (!p.errors.empty()) {
    std::stable_sort(p.errors.begin(), p.errors.end(),
                     [](const ScriptError& a, const ScriptError& b) { return a.line < b.line; });
    return std::unexpected(std::move(p.errors));
  }
  return prog;
}

}  // namespace mmemu::script
