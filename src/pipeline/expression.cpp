#include "pipeline/expression.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <span>

namespace sluice::pipeline {

// ======================================================================= syntax tree

namespace detail {

enum class Op : uint8_t { Neg, Not, Mul, Div, Mod, Add, Sub, Eq, Ne, Lt, Le, Gt, Ge, And, Or };

enum class Fn : uint8_t {
  Len, Lower, Upper, Trim, Concat, Substr, Contains, StartsWith, EndsWith, Abs, Floor, Ceil,
  Round, Min, Max, If, Coalesce, IsNull, Int, Float, String,
};

struct ExprNode {
  enum class Kind : uint8_t { Literal, Field, Unary, Binary, Call };
  Kind kind = Kind::Literal;
  size_t column = 1;   // 1-based position in the text, for error messages
  Value literal;       // Literal
  std::string name;    // Field: field name; Call: function name
  Op op = Op::Add;     // Unary, Binary
  Fn fn = Fn::Len;     // Call
  std::vector<std::unique_ptr<ExprNode>> args;
};

}  // namespace detail

namespace {

using detail::ExprNode;
using detail::Fn;
using detail::Op;

constexpr size_t kAnyNumber = std::numeric_limits<size_t>::max();

struct FunctionInfo {
  std::string_view name;
  Fn fn;
  size_t min_args;
  size_t max_args;
};

constexpr FunctionInfo kFunctions[] = {
    {"len", Fn::Len, 1, 1},
    {"lower", Fn::Lower, 1, 1},
    {"upper", Fn::Upper, 1, 1},
    {"trim", Fn::Trim, 1, 1},
    {"concat", Fn::Concat, 1, kAnyNumber},
    {"substr", Fn::Substr, 3, 3},
    {"contains", Fn::Contains, 2, 2},
    {"starts_with", Fn::StartsWith, 2, 2},
    {"ends_with", Fn::EndsWith, 2, 2},
    {"abs", Fn::Abs, 1, 1},
    {"floor", Fn::Floor, 1, 1},
    {"ceil", Fn::Ceil, 1, 1},
    {"round", Fn::Round, 1, 1},
    {"min", Fn::Min, 2, 2},
    {"max", Fn::Max, 2, 2},
    {"if", Fn::If, 3, 3},
    {"coalesce", Fn::Coalesce, 2, kAnyNumber},
    {"is_null", Fn::IsNull, 1, 1},
    {"int", Fn::Int, 1, 1},
    {"float", Fn::Float, 1, 1},
    {"string", Fn::String, 1, 1},
};

std::string_view function_name(Fn fn) {
  for (const auto& f : kFunctions)
    if (f.fn == fn) return f.name;
  return "?";
}

std::string_view op_spelling(Op op) {
  switch (op) {
    case Op::Neg: return "-";
    case Op::Not: return "not";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::Mod: return "%";
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Eq: return "==";
    case Op::Ne: return "!=";
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
    case Op::And: return "and";
    case Op::Or: return "or";
  }
  return "?";
}

std::string single_quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

[[noreturn]] void fail_at(std::string_view text, size_t column, const std::string& what) {
  throw Error("expression " + single_quoted(text) + ": " + what + " at column " + std::to_string(column));
}

// ======================================================================= tokenizer

struct Token {
  enum class Kind : uint8_t { Integer, Decimal, String, Identifier, QuotedIdentifier, Operator, LParen, RParen, Comma, End };
  Kind kind = Kind::End;
  std::string text;   // identifier, operator, number spelling, or the decoded string
  size_t column = 1;  // 1-based
};

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::vector<Token> tokenize(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  auto push = [&](Token::Kind kind, std::string spelling, size_t start) {
    tokens.push_back(Token{kind, std::move(spelling), start + 1});
  };
  while (i < text.size()) {
    const char c = text[i];
    const size_t start = i;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (is_digit(c) || (c == '.' && i + 1 < text.size() && is_digit(text[i + 1]))) {
      bool decimal = false;
      while (i < text.size() && is_digit(text[i])) ++i;
      if (i < text.size() && text[i] == '.') {
        decimal = true;
        ++i;
        while (i < text.size() && is_digit(text[i])) ++i;
      }
      if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        if (j < text.size() && is_digit(text[j])) {
          decimal = true;
          i = j;
          while (i < text.size() && is_digit(text[i])) ++i;
        }
      }
      if (i < text.size() && (is_ident_char(text[i]) || text[i] == '.')) {
        size_t end = i;
        while (end < text.size() && (is_ident_char(text[end]) || text[end] == '.')) ++end;
        fail_at(text, start + 1, "malformed number " + single_quoted(text.substr(start, end - start)));
      }
      push(decimal ? Token::Kind::Decimal : Token::Kind::Integer, std::string(text.substr(start, i - start)), start);
    } else if (c == '\'' || c == '"') {
      std::string decoded;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char d = text[i++];
        if (d == c) {
          closed = true;
          break;
        }
        if (d == '\\' && i < text.size()) {
          const char e = text[i++];
          switch (e) {
            case 'n': d = '\n'; break;
            case 'r': d = '\r'; break;
            case 't': d = '\t'; break;
            default: d = e; break;  // \\ \' \" and anything else stand for themselves
          }
        }
        decoded += d;
      }
      if (!closed) fail_at(text, start + 1, "unterminated string");
      push(Token::Kind::String, std::move(decoded), start);
    } else if (c == '`') {
      const size_t close = text.find('`', i + 1);
      if (close == std::string_view::npos) fail_at(text, start + 1, "unterminated `field name`");
      if (close == i + 1) fail_at(text, start + 1, "empty `field name`");
      push(Token::Kind::QuotedIdentifier, std::string(text.substr(i + 1, close - i - 1)), start);
      i = close + 1;
    } else if (is_ident_start(c)) {
      while (i < text.size() && is_ident_char(text[i])) ++i;
      push(Token::Kind::Identifier, std::string(text.substr(start, i - start)), start);
    } else if (c == '(') {
      push(Token::Kind::LParen, "(", start), ++i;
    } else if (c == ')') {
      push(Token::Kind::RParen, ")", start), ++i;
    } else if (c == ',') {
      push(Token::Kind::Comma, ",", start), ++i;
    } else {
      const std::string_view two = text.substr(i, 2);
      if (two == "==" || two == "!=" || two == "<=" || two == ">=") {
        push(Token::Kind::Operator, std::string(two), start);
        i += 2;
      } else if (c == '+' || c == '-' || c == '*' || c == '/' || c == '%' || c == '<' || c == '>') {
        push(Token::Kind::Operator, std::string(1, c), start);
        ++i;
      } else if (c == '=') {
        fail_at(text, start + 1, "'=' is not an operator (use == to compare)");
      } else if (two == "&&" || two == "||") {
        fail_at(text, start + 1, single_quoted(two) + " is not an operator (use and / or)");
      } else if (c == '!') {
        fail_at(text, start + 1, "'!' is not an operator (use != or not)");
      } else {
        fail_at(text, start + 1, "unexpected character " + single_quoted(text.substr(i, 1)));
      }
    }
  }
  tokens.push_back(Token{Token::Kind::End, "", text.size() + 1});
  return tokens;
}

// ======================================================================= parser

bool equals_lowercase(std::string_view word, std::string_view keyword) {
  return word.size() == keyword.size() &&
         std::equal(word.begin(), word.end(), keyword.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), tokens_(tokenize(text)) {}

  std::unique_ptr<ExprNode> parse_all() {
    auto expr = parse_or();
    if (peek().kind != Token::Kind::End) {
      if (peek().kind == Token::Kind::RParen) fail(peek().column, "unmatched ')'");
      fail(peek().column, "unexpected " + describe(peek()) + " after a complete expression");
    }
    return expr;
  }

 private:
  [[noreturn]] void fail(size_t column, const std::string& what) const { fail_at(text_, column, what); }

  const Token& peek() const { return tokens_[pos_]; }
  const Token& advance() { return tokens_[pos_++]; }
  bool at_keyword(std::string_view keyword) const {
    return peek().kind == Token::Kind::Identifier && equals_lowercase(peek().text, keyword);
  }
  bool at_operator(std::string_view op) const { return peek().kind == Token::Kind::Operator && peek().text == op; }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Token::Kind::End: return "end of expression";
      case Token::Kind::String: return "string " + single_quoted(t.text);
      default: return single_quoted(t.text);
    }
  }

  static std::unique_ptr<ExprNode> binary(Op op, size_t column, std::unique_ptr<ExprNode> lhs, std::unique_ptr<ExprNode> rhs) {
    auto node = std::make_unique<ExprNode>();
    node->kind = ExprNode::Kind::Binary;
    node->op = op;
    node->column = column;
    node->args.push_back(std::move(lhs));
    node->args.push_back(std::move(rhs));
    return node;
  }

  static std::unique_ptr<ExprNode> unary(Op op, size_t column, std::unique_ptr<ExprNode> operand) {
    auto node = std::make_unique<ExprNode>();
    node->kind = ExprNode::Kind::Unary;
    node->op = op;
    node->column = column;
    node->args.push_back(std::move(operand));
    return node;
  }

  static std::unique_ptr<ExprNode> literal(Value v, size_t column) {
    auto node = std::make_unique<ExprNode>();
    node->kind = ExprNode::Kind::Literal;
    node->literal = std::move(v);
    node->column = column;
    return node;
  }

  std::unique_ptr<ExprNode> parse_or() {
    auto lhs = parse_and();
    while (at_keyword("or")) {
      const size_t column = advance().column;
      lhs = binary(Op::Or, column, std::move(lhs), parse_and());
    }
    return lhs;
  }

  std::unique_ptr<ExprNode> parse_and() {
    auto lhs = parse_not();
    while (at_keyword("and")) {
      const size_t column = advance().column;
      lhs = binary(Op::And, column, std::move(lhs), parse_not());
    }
    return lhs;
  }

  std::unique_ptr<ExprNode> parse_not() {
    if (at_keyword("not")) {
      const size_t column = advance().column;
      return unary(Op::Not, column, parse_not());
    }
    return parse_comparison();
  }

  std::optional<Op> comparison_at() const {
    if (peek().kind != Token::Kind::Operator) return std::nullopt;
    const std::string& t = peek().text;
    if (t == "==") return Op::Eq;
    if (t == "!=") return Op::Ne;
    if (t == "<") return Op::Lt;
    if (t == "<=") return Op::Le;
    if (t == ">") return Op::Gt;
    if (t == ">=") return Op::Ge;
    return std::nullopt;
  }

  std::unique_ptr<ExprNode> parse_comparison() {
    auto lhs = parse_additive();
    if (auto op = comparison_at()) {
      const size_t column = advance().column;
      lhs = binary(*op, column, std::move(lhs), parse_additive());
      if (comparison_at()) fail(peek().column, "comparisons cannot be chained (join them with 'and')");
    }
    return lhs;
  }

  std::unique_ptr<ExprNode> parse_additive() {
    auto lhs = parse_term();
    while (at_operator("+") || at_operator("-")) {
      const Token& t = advance();
      lhs = binary(t.text == "+" ? Op::Add : Op::Sub, t.column, std::move(lhs), parse_term());
    }
    return lhs;
  }

  std::unique_ptr<ExprNode> parse_term() {
    auto lhs = parse_unary();
    while (at_operator("*") || at_operator("/") || at_operator("%")) {
      const Token& t = advance();
      const Op op = t.text == "*" ? Op::Mul : t.text == "/" ? Op::Div : Op::Mod;
      lhs = binary(op, t.column, std::move(lhs), parse_unary());
    }
    return lhs;
  }

  std::unique_ptr<ExprNode> parse_unary() {
    if (at_operator("-")) {
      const size_t column = advance().column;
      auto operand = parse_unary();
      // Fold "-3" into a literal so that negative constants cost nothing per batch.
      if (operand->kind == ExprNode::Kind::Literal) {
        if (auto* i = std::get_if<int64_t>(&operand->literal)) {
          return literal(static_cast<int64_t>(0ull - static_cast<uint64_t>(*i)), column);
        }
        if (auto* d = std::get_if<double>(&operand->literal)) return literal(-*d, column);
      }
      return unary(Op::Neg, column, std::move(operand));
    }
    return parse_primary();
  }

  std::unique_ptr<ExprNode> parse_primary() {
    const Token& t = peek();
    switch (t.kind) {
      case Token::Kind::Integer: {
        advance();
        int64_t v = 0;
        auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc() || end != t.text.data() + t.text.size())
          fail(t.column, "integer " + t.text + " is out of range for int64");
        return literal(v, t.column);
      }
      case Token::Kind::Decimal: {
        advance();
        double v = 0;
        auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc() || end != t.text.data() + t.text.size())
          fail(t.column, "number " + t.text + " is out of range for float64");
        return literal(v, t.column);
      }
      case Token::Kind::String: advance(); return literal(t.text, t.column);
      case Token::Kind::QuotedIdentifier: {
        advance();
        auto node = std::make_unique<ExprNode>();
        node->kind = ExprNode::Kind::Field;
        node->name = t.text;
        node->column = t.column;
        return node;
      }
      case Token::Kind::Identifier: {
        if (equals_lowercase(t.text, "true")) return advance(), literal(true, t.column);
        if (equals_lowercase(t.text, "false")) return advance(), literal(false, t.column);
        if (equals_lowercase(t.text, "null")) return advance(), literal(std::monostate{}, t.column);
        if (equals_lowercase(t.text, "and") || equals_lowercase(t.text, "or") || equals_lowercase(t.text, "not"))
          fail(t.column, "expected a value, got " + single_quoted(t.text));
        advance();
        if (peek().kind == Token::Kind::LParen) return parse_call(t);
        auto node = std::make_unique<ExprNode>();
        node->kind = ExprNode::Kind::Field;
        node->name = t.text;
        node->column = t.column;
        return node;
      }
      case Token::Kind::LParen: {
        advance();
        auto inner = parse_or();
        if (peek().kind != Token::Kind::RParen)
          fail(peek().column, "expected ')' to close the '(' at column " + std::to_string(t.column) + ", got " +
                                  describe(peek()));
        advance();
        return inner;
      }
      default: fail(t.column, "expected a value");
    }
  }

  std::unique_ptr<ExprNode> parse_call(const Token& name) {
    const FunctionInfo* info = nullptr;
    for (const auto& f : kFunctions)
      if (f.name == name.text) info = &f;
    if (!info) {
      std::string known;
      for (const auto& f : kFunctions) known += (known.empty() ? "" : ", ") + std::string(f.name);
      fail(name.column, "unknown function " + single_quoted(name.text) + " (functions: " + known + ")");
    }
    advance();  // '('
    auto node = std::make_unique<ExprNode>();
    node->kind = ExprNode::Kind::Call;
    node->fn = info->fn;
    node->name = name.text;
    node->column = name.column;
    if (peek().kind != Token::Kind::RParen) {
      while (true) {
        node->args.push_back(parse_or());
        if (peek().kind == Token::Kind::Comma) {
          advance();
          continue;
        }
        if (peek().kind == Token::Kind::RParen) break;
        fail(peek().column, "expected ',' or ')' in the arguments of " + name.text + "(), got " + describe(peek()));
      }
    }
    advance();  // ')'
    const size_t n = node->args.size();
    if (n < info->min_args || n > info->max_args) {
      std::string expected = info->max_args == kAnyNumber ? "at least " + std::to_string(info->min_args)
                                                          : std::to_string(info->min_args);
      fail(name.column, name.text + "() takes " + expected + " argument" + (info->min_args == 1 && info->max_args == 1 ? "" : "s") +
                            ", got " + std::to_string(n));
    }
    return node;
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

// ======================================================================= vectors

/// @brief An intermediate result: one typed value per row, or one value standing for every
/// row (a constant, from literals). Values are viewed through spans that point either into
/// the input table (field references, no copy) or into the vectors this Vec owns.
/// Types are Bool, Int64, Float64 or String: int32 and float32 fields are widened on load.
struct Vec {
  TypeId type = TypeId::Bool;
  bool null_literal = false;  // the literal `null`: takes whichever type its context needs
  bool constant = false;      // row 0 stands for every row
  bool nullable = false;      // valid holds one byte per row (1 = valid)

  std::span<const uint8_t> bools;
  std::span<const int64_t> ints;
  std::span<const double> floats;
  std::span<const int32_t> offsets;  // strings: one more than the rows
  std::span<const char> chars;
  std::span<const uint8_t> valid;

  std::vector<uint8_t> own_bools;
  std::vector<int64_t> own_ints;
  std::vector<double> own_floats;
  std::vector<int32_t> own_offsets;
  std::vector<char> own_chars;
  std::vector<uint8_t> own_valid;

  Vec() = default;
  // Moving a std::vector keeps its buffer, so the spans stay valid; copies would not.
  Vec(Vec&&) = default;
  Vec& operator=(Vec&&) = default;
  Vec(const Vec&) = delete;
  Vec& operator=(const Vec&) = delete;

  size_t at(size_t row) const { return constant ? 0 : row; }
  bool valid_at(size_t row) const { return !nullable || valid[at(row)]; }
  std::string_view str(size_t row) const {
    const size_t r = at(row);
    return {chars.data() + offsets[r], static_cast<size_t>(offsets[r + 1] - offsets[r])};
  }
};

Vec bool_vec(std::vector<uint8_t> values, bool constant) {
  Vec v;
  v.type = TypeId::Bool;
  v.constant = constant;
  v.own_bools = std::move(values);
  v.bools = v.own_bools;
  return v;
}

Vec int_vec(std::vector<int64_t> values, bool constant) {
  Vec v;
  v.type = TypeId::Int64;
  v.constant = constant;
  v.own_ints = std::move(values);
  v.ints = v.own_ints;
  return v;
}

Vec float_vec(std::vector<double> values, bool constant) {
  Vec v;
  v.type = TypeId::Float64;
  v.constant = constant;
  v.own_floats = std::move(values);
  v.floats = v.own_floats;
  return v;
}

/// Builds string results row by row into Arrow offsets and characters.
struct StringsBuilder {
  std::vector<int32_t> offsets{0};
  std::vector<char> chars;

  void reserve(size_t rows, size_t bytes) {
    offsets.reserve(rows + 1);
    chars.reserve(bytes);
  }
  void add(std::string_view s) {
    chars.insert(chars.end(), s.begin(), s.end());
    close_row();
  }
  void close_row() {
    SLUICE_EXPECTS(chars.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                   "expression result exceeds 2 GiB of characters in one batch");
    offsets.push_back(static_cast<int32_t>(chars.size()));
  }
  Vec finish(bool constant) && {
    Vec v;
    v.type = TypeId::String;
    v.constant = constant;
    v.own_offsets = std::move(offsets);
    v.own_chars = std::move(chars);
    v.offsets = v.own_offsets;
    v.chars = v.own_chars;
    return v;
  }
};

Vec& with_validity(Vec& v, bool nullable, std::vector<uint8_t> valid) {
  v.nullable = nullable;
  v.own_valid = std::move(valid);
  v.valid = v.own_valid;
  return v;
}

/// A constant null of @p type (what the literal `null` becomes once its type is known).
Vec typed_null(TypeId type) {
  Vec v;
  switch (type) {
    case TypeId::Bool: v = bool_vec({0}, true); break;
    case TypeId::Int64: v = int_vec({0}, true); break;
    case TypeId::Float64: v = float_vec({0.0}, true); break;
    default: {
      StringsBuilder b;
      b.add("");
      v = std::move(b).finish(true);
    }
  }
  with_validity(v, true, {0});
  return v;
}

// Loops over rows with a constant side read once: one tight loop per case so each vectorizes.
template <class R, class A, class B, class F>
std::vector<R> map2(std::span<const A> a, bool a_const, std::span<const B> b, bool b_const, size_t n, F f) {
  std::vector<R> out(n);
  if (a_const && b_const) {
    if (n) out[0] = f(a[0], b[0]);
  } else if (a_const) {
    const A x = a[0];
    for (size_t i = 0; i < n; ++i) out[i] = f(x, b[i]);
  } else if (b_const) {
    const B y = b[0];
    for (size_t i = 0; i < n; ++i) out[i] = f(a[i], y);
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  }
  return out;
}

template <class R, class A, class F>
std::vector<R> map1(std::span<const A> a, F f) {
  std::vector<R> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = f(a[i]);
  return out;
}

/// @p v's validity bytes repeated out to @p n rows.
std::vector<uint8_t> validity_of(const Vec& v, size_t n) {
  if (!v.nullable) return std::vector<uint8_t>(n, 1);
  if (v.constant) return std::vector<uint8_t>(n, n ? v.valid[0] : 1);
  return {v.valid.begin(), v.valid.end()};
}

/// Validity of an operation that is null where either input is: empty when neither can be.
std::vector<uint8_t> both_valid(const Vec& a, const Vec& b, size_t n) {
  if (!a.nullable && !b.nullable) return {};
  if (!b.nullable) return validity_of(a, n);
  if (!a.nullable) return validity_of(b, n);
  return map2<uint8_t>(a.valid, a.constant, b.valid, b.constant, n, [](uint8_t x, uint8_t y) -> uint8_t { return x & y; });
}

int64_t wrapping_add(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }
int64_t wrapping_sub(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); }
int64_t wrapping_mul(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); }
int64_t wrapping_neg(int64_t a) { return static_cast<int64_t>(0ull - static_cast<uint64_t>(a)); }

/// Float text as JSON spells it: shortest round trip, "2.0" rather than "2". Every NaN is
/// "nan": the sign of a NaN says nothing (x86 makes inf - inf negative, a GPU positive), and
/// the device writes the same text (kernels/float_text.cuh).
void append_float_text(double d, std::string& out) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  const std::string_view text(buf, static_cast<size_t>(end - buf));
  out += text;
  if (std::isfinite(d) && text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

bool parse_int_strict(std::string_view s, int64_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

bool parse_float_strict(std::string_view s, double& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// ======================================================================= evaluator

class Evaluator {
 public:
  Evaluator(const Table& table, const std::string& text) : table_(table), text_(text), rows_(table.num_rows()) {}

  Vec eval(const ExprNode& node) {
    switch (node.kind) {
      case ExprNode::Kind::Literal: return literal(node.literal);
      case ExprNode::Kind::Field: return load_field(node);
      case ExprNode::Kind::Unary: return unary(node, eval(*node.args[0]));
      case ExprNode::Kind::Binary: {
        Vec a = eval(*node.args[0]);
        Vec b = eval(*node.args[1]);
        return binary(node, std::move(a), std::move(b));
      }
      case ExprNode::Kind::Call: {
        std::vector<Vec> args;
        args.reserve(node.args.size());
        for (const auto& arg : node.args) args.push_back(eval(*arg));
        return call(node, args);
      }
    }
    fail(node, "unknown expression node");
  }

  /// Field index of a Field node; throws naming the field and listing the schema.
  size_t field_index(const ExprNode& node) const {
    const int index = table_.schema().find(node.name);
    if (index < 0)
      fail(node, "unknown field " + single_quoted(node.name) + " (fields: " + table_.schema().to_string() + ")");
    return static_cast<size_t>(index);
  }

  [[noreturn]] void fail(const ExprNode& node, const std::string& what) const { fail_at(text_, node.column, what); }

  /// One column of @p rows rows from @p v (constants are repeated).
  static Column to_column(const Vec& v, size_t rows) {
    if (v.null_literal) {
      Column out(TypeId::Bool, true);
      for (size_t r = 0; r < rows; ++r) out.append_null();
      return out;
    }
    Column out(v.type, v.nullable);
    out.reserve(rows, v.type == TypeId::String ? (v.constant ? rows * v.str(0).size() : v.chars.size()) : 0);
    for (size_t r = 0; r < rows; ++r) {
      if (!v.valid_at(r)) {
        out.append_null();
        continue;
      }
      const size_t i = v.at(r);
      switch (v.type) {
        case TypeId::Bool: out.append<uint8_t>(v.bools[i]); break;
        case TypeId::Int64: out.append<int64_t>(v.ints[i]); break;
        case TypeId::Float64: out.append<double>(v.floats[i]); break;
        default: out.append_string(v.str(r)); break;
      }
    }
    return out;
  }

 private:
  // ---------------------------------------------------------- leaves

  Vec literal(const Value& value) const {
    if (std::holds_alternative<std::monostate>(value)) {
      Vec v = bool_vec({0}, true);
      v.null_literal = true;
      with_validity(v, true, {0});
      return v;
    }
    if (auto* b = std::get_if<bool>(&value)) return bool_vec({static_cast<uint8_t>(*b)}, true);
    if (auto* i = std::get_if<int64_t>(&value)) return int_vec({*i}, true);
    if (auto* d = std::get_if<double>(&value)) return float_vec({*d}, true);
    StringsBuilder b;
    b.add(std::get<std::string>(value));
    return std::move(b).finish(true);
  }

  Vec load_field(const ExprNode& node) const {
    const size_t index = field_index(node);
    const Column& col = table_.column(index);
    Vec v;
    switch (col.type()) {
      case TypeId::Bool:
        v.type = TypeId::Bool;
        v.bools = col.values<uint8_t>();
        break;
      case TypeId::Int64:
        v.type = TypeId::Int64;
        v.ints = col.values<int64_t>();
        break;
      case TypeId::Float64:
        v.type = TypeId::Float64;
        v.floats = col.values<double>();
        break;
      case TypeId::Int32:
        v = int_vec(map1<int64_t>(col.values<int32_t>(), [](int32_t x) { return static_cast<int64_t>(x); }), false);
        break;
      case TypeId::Float32:
        v = float_vec(map1<double>(col.values<float>(), [](float x) { return static_cast<double>(x); }), false);
        break;
      case TypeId::String:
        v.type = TypeId::String;
        v.offsets = col.offsets();
        v.chars = col.chars();
        break;
      case TypeId::List:
        fail(node, "field " + single_quoted(node.name) + " is a list; expressions compute on scalar fields");
    }
    if (col.nullable()) {
      std::vector<uint8_t> valid(rows_);
      for (size_t r = 0; r < rows_; ++r) valid[r] = col.is_valid(r);
      with_validity(v, true, std::move(valid));
    }
    return v;
  }

  // ---------------------------------------------------------- typing helpers

  size_t rows_for(bool all_constant) const { return all_constant ? 1 : rows_; }

  static std::string with_article(TypeId type) {
    const std::string name(type_name(type));
    return (name[0] == 'i' ? "an " : "a ") + name;
  }

  static std::string type_of(const Vec& v) { return v.null_literal ? "null" : std::string(type_name(v.type)); }

  /// The one type that @p args can share: numbers promote to float64 when any is a float;
  /// null literals take the others' type (@p all_null_type when every one is null).
  std::optional<TypeId> common_type(std::span<const Vec> args, TypeId all_null_type) const {
    std::optional<TypeId> common;
    for (const Vec& a : args) {
      if (a.null_literal) continue;
      if (!common) {
        common = a.type;
      } else if (*common != a.type) {
        if (is_numeric(*common) && is_numeric(a.type)) common = TypeId::Float64;
        else return std::nullopt;
      }
    }
    return common ? *common : all_null_type;
  }

  /// @p v as @p type: null literals become typed nulls, integers become floats.
  static Vec coerce(Vec v, TypeId type) {
    if (v.null_literal) return typed_null(type);
    if (v.type == type) return v;
    if (v.type == TypeId::Int64 && type == TypeId::Float64) {
      Vec out = float_vec(map1<double>(v.ints, [](int64_t x) { return static_cast<double>(x); }), v.constant);
      with_validity(out, v.nullable, std::vector<uint8_t>(v.valid.begin(), v.valid.end()));
      return out;
    }
    throw Error("internal: cannot coerce " + std::string(type_name(v.type)) + " to " + std::string(type_name(type)));
  }

  void expect_type(const ExprNode& node, const Vec& v, TypeId type, std::string_view what) const {
    if (!v.null_literal && v.type != type)
      fail(node, std::string(what) + " needs " + with_article(type) + ", got " + type_of(v));
  }

  void expect_numeric(const ExprNode& node, const Vec& v, std::string_view what) const {
    if (!v.null_literal && !is_numeric(v.type)) fail(node, std::string(what) + " needs a number, got " + type_of(v));
  }

  // ---------------------------------------------------------- operators

  Vec unary(const ExprNode& node, Vec a) const {
    if (node.op == Op::Not) {
      expect_type(node, a, TypeId::Bool, "operator not");
      a = coerce(std::move(a), TypeId::Bool);
      Vec out = bool_vec(map1<uint8_t>(a.bools, [](uint8_t x) -> uint8_t { return !x; }), a.constant);
      return std::move(with_validity(out, a.nullable, {a.valid.begin(), a.valid.end()}));
    }
    expect_numeric(node, a, "unary -");
    const TypeId type = a.null_literal ? TypeId::Int64 : a.type;
    a = coerce(std::move(a), type);
    Vec out = a.type == TypeId::Int64 ? int_vec(map1<int64_t>(a.ints, [](int64_t x) { return wrapping_neg(x); }), a.constant)
                                      : float_vec(map1<double>(a.floats, [](double x) { return -x; }), a.constant);
    return std::move(with_validity(out, a.nullable, {a.valid.begin(), a.valid.end()}));
  }

  Vec binary(const ExprNode& node, Vec a, Vec b) const {
    switch (node.op) {
      case Op::And:
      case Op::Or: return logical(node, std::move(a), std::move(b));
      case Op::Eq:
      case Op::Ne:
      case Op::Lt:
      case Op::Le:
      case Op::Gt:
      case Op::Ge: return comparison(node, std::move(a), std::move(b));
      default: return arithmetic(node, std::move(a), std::move(b));
    }
  }

  Vec arithmetic(const ExprNode& node, Vec a, Vec b) const {
    const std::string op(op_spelling(node.op));
    const bool numbers = (a.null_literal || is_numeric(a.type)) && (b.null_literal || is_numeric(b.type));
    if (!numbers) {
      std::string message = "operator " + op + " needs numbers, got " + type_of(a) + " and " + type_of(b);
      if (node.op == Op::Add && (a.type == TypeId::String || b.type == TypeId::String))
        message += " (use concat(a, b) to join strings)";
      fail(node, message);
    }
    Vec pair[] = {std::move(a), std::move(b)};
    const TypeId type = *common_type(pair, TypeId::Int64);
    const Vec x = coerce(std::move(pair[0]), type);
    const Vec y = coerce(std::move(pair[1]), type);
    const bool constant = x.constant && y.constant;
    const size_t n = rows_for(constant);
    std::vector<uint8_t> valid = both_valid(x, y, n);
    bool nullable = x.nullable || y.nullable;

    Vec out;
    if (type == TypeId::Int64) {
      const auto p = x.ints;
      const auto q = y.ints;
      const bool pc = x.constant, qc = y.constant;
      switch (node.op) {
        case Op::Add: out = int_vec(map2<int64_t>(p, pc, q, qc, n, [](int64_t u, int64_t v) { return wrapping_add(u, v); }), constant); break;
        case Op::Sub: out = int_vec(map2<int64_t>(p, pc, q, qc, n, [](int64_t u, int64_t v) { return wrapping_sub(u, v); }), constant); break;
        case Op::Mul: out = int_vec(map2<int64_t>(p, pc, q, qc, n, [](int64_t u, int64_t v) { return wrapping_mul(u, v); }), constant); break;
        // Zero divisors give 0 here and null below; INT64_MIN / -1 wraps instead of trapping.
        case Op::Div:
          out = int_vec(map2<int64_t>(p, pc, q, qc, n, [](int64_t u, int64_t v) {
                          return v == 0 ? 0 : v == -1 ? wrapping_neg(u) : u / v;
                        }), constant);
          break;
        default:
          out = int_vec(map2<int64_t>(p, pc, q, qc, n, [](int64_t u, int64_t v) {
                          return v == 0 || v == -1 ? 0 : u % v;
                        }), constant);
          break;
      }
      if (node.op == Op::Div || node.op == Op::Mod) {
        std::vector<uint8_t> nonzero = map1<uint8_t>(q, [](int64_t v) -> uint8_t { return v != 0; });
        valid = divisor_validity(std::move(valid), nullable, nonzero, qc, n);
        nullable = true;
      }
    } else {
      const auto p = x.floats;
      const auto q = y.floats;
      const bool pc = x.constant, qc = y.constant;
      switch (node.op) {
        case Op::Add: out = float_vec(map2<double>(p, pc, q, qc, n, [](double u, double v) { return u + v; }), constant); break;
        case Op::Sub: out = float_vec(map2<double>(p, pc, q, qc, n, [](double u, double v) { return u - v; }), constant); break;
        case Op::Mul: out = float_vec(map2<double>(p, pc, q, qc, n, [](double u, double v) { return u * v; }), constant); break;
        case Op::Div:
          out = float_vec(map2<double>(p, pc, q, qc, n, [](double u, double v) { return v == 0 ? 0.0 : u / v; }), constant);
          break;
        default:
          out = float_vec(map2<double>(p, pc, q, qc, n, [](double u, double v) { return v == 0 ? 0.0 : std::fmod(u, v); }),
                          constant);
          break;
      }
      if (node.op == Op::Div || node.op == Op::Mod) {
        std::vector<uint8_t> nonzero = map1<uint8_t>(q, [](double v) -> uint8_t { return v != 0; });
        valid = divisor_validity(std::move(valid), nullable, nonzero, qc, n);
        nullable = true;
      }
    }
    return std::move(with_validity(out, nullable, std::move(valid)));
  }

  /// Validity after a division: the inputs' validity and a non-zero divisor.
  static std::vector<uint8_t> divisor_validity(std::vector<uint8_t> valid, bool nullable, const std::vector<uint8_t>& nonzero,
                                               bool divisor_constant, size_t n) {
    if (!nullable) valid.assign(n, 1);
    const std::span<const uint8_t> flags = nonzero;
    return map2<uint8_t>(std::span<const uint8_t>(valid), false, flags, divisor_constant, n,
                         [](uint8_t u, uint8_t v) -> uint8_t { return u & v; });
  }

  template <class T>
  static std::vector<uint8_t> compare_values(Op op, std::span<const T> a, bool ac, std::span<const T> b, bool bc, size_t n) {
    switch (op) {
      case Op::Eq: return map2<uint8_t>(a, ac, b, bc, n, [](T x, T y) -> uint8_t { return x == y; });
      case Op::Ne: return map2<uint8_t>(a, ac, b, bc, n, [](T x, T y) -> uint8_t { return x != y; });
      case Op::Lt: return map2<uint8_t>(a, ac, b, bc, n, [](T x, T y) -> uint8_t { return x < y; });
      case Op::Le: return map2<uint8_t>(a, ac, b, bc, n, [](T x, T y) -> uint8_t { return x <= y; });
      case Op::Gt: return map2<uint8_t>(a, ac, b, bc, n, [](T x, T y) -> uint8_t { return x > y; });
      default: return map2<uint8_t>(a, ac, b, bc, n, [](T x, T y) -> uint8_t { return x >= y; });
    }
  }

  Vec comparison(const ExprNode& node, Vec a, Vec b) const {
    Vec pair[] = {std::move(a), std::move(b)};
    const auto type = common_type(pair, TypeId::Bool);
    if (!type)
      fail(node, "operator " + std::string(op_spelling(node.op)) + " cannot compare " + type_of(pair[0]) + " with " +
                     type_of(pair[1]));
    const Vec x = coerce(std::move(pair[0]), *type);
    const Vec y = coerce(std::move(pair[1]), *type);
    const bool constant = x.constant && y.constant;
    const size_t n = rows_for(constant);
    std::vector<uint8_t> result;
    switch (*type) {
      case TypeId::Bool: result = compare_values<uint8_t>(node.op, x.bools, x.constant, y.bools, y.constant, n); break;
      case TypeId::Int64: result = compare_values<int64_t>(node.op, x.ints, x.constant, y.ints, y.constant, n); break;
      case TypeId::Float64: result = compare_values<double>(node.op, x.floats, x.constant, y.floats, y.constant, n); break;
      default: {
        result.resize(n);
        for (size_t i = 0; i < n; ++i) {
          const int c = x.str(i).compare(y.str(i));
          switch (node.op) {
            case Op::Eq: result[i] = c == 0; break;
            case Op::Ne: result[i] = c != 0; break;
            case Op::Lt: result[i] = c < 0; break;
            case Op::Le: result[i] = c <= 0; break;
            case Op::Gt: result[i] = c > 0; break;
            default: result[i] = c >= 0; break;
          }
        }
      }
    }
    Vec out = bool_vec(std::move(result), constant);
    return std::move(with_validity(out, x.nullable || y.nullable, both_valid(x, y, n)));
  }

  /// Three-valued and/or: a known false decides `and`, a known true decides `or`.
  Vec logical(const ExprNode& node, Vec a, Vec b) const {
    const std::string what = "operator " + std::string(op_spelling(node.op));
    expect_type(node, a, TypeId::Bool, what);
    expect_type(node, b, TypeId::Bool, what);
    const Vec x = coerce(std::move(a), TypeId::Bool);
    const Vec y = coerce(std::move(b), TypeId::Bool);
    const bool constant = x.constant && y.constant;
    const size_t n = rows_for(constant);
    const bool is_and = node.op == Op::And;
    std::vector<uint8_t> values =
        is_and ? map2<uint8_t>(x.bools, x.constant, y.bools, y.constant, n, [](uint8_t u, uint8_t v) -> uint8_t { return u & v; })
               : map2<uint8_t>(x.bools, x.constant, y.bools, y.constant, n, [](uint8_t u, uint8_t v) -> uint8_t { return u | v; });
    std::vector<uint8_t> valid;
    const bool nullable = x.nullable || y.nullable;
    if (nullable) {
      valid.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const uint8_t vx = x.valid_at(i), vy = y.valid_at(i);
        const uint8_t px = x.bools[x.at(i)], py = y.bools[y.at(i)];
        // Known when both are known, or when one known side decides alone.
        valid[i] = is_and ? ((vx & vy) | (vx & !px) | (vy & !py)) : ((vx & vy) | (vx & px) | (vy & py));
        if (valid[i]) values[i] = is_and ? ((!vx || px) && (!vy || py)) : ((vx && px) || (vy && py));
      }
    }
    Vec out = bool_vec(std::move(values), constant);
    return std::move(with_validity(out, nullable, std::move(valid)));
  }

  // ---------------------------------------------------------- functions

  Vec call(const ExprNode& node, std::vector<Vec>& args) const {
    const std::string what = std::string(function_name(node.fn)) + "()";
    switch (node.fn) {
      case Fn::Len: {
        expect_type(node, args[0], TypeId::String, what);
        const Vec s = coerce(std::move(args[0]), TypeId::String);
        std::vector<int64_t> lengths(s.offsets.size() - 1);
        for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = s.offsets[i + 1] - s.offsets[i];
        Vec out = int_vec(std::move(lengths), s.constant);
        return std::move(with_validity(out, s.nullable, {s.valid.begin(), s.valid.end()}));
      }
      case Fn::Lower:
      case Fn::Upper: {
        expect_type(node, args[0], TypeId::String, what);
        const Vec s = coerce(std::move(args[0]), TypeId::String);
        // Case mapping keeps every length, so the offsets are reused and the characters
        // transformed in one pass.
        StringsBuilder b;
        b.offsets.assign(s.offsets.begin(), s.offsets.end());
        b.chars.assign(s.chars.begin(), s.chars.end());
        if (node.fn == Fn::Lower) {
          for (char& c : b.chars) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
        } else {
          for (char& c : b.chars) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
        }
        Vec out = std::move(b).finish(s.constant);
        return std::move(with_validity(out, s.nullable, {s.valid.begin(), s.valid.end()}));
      }
      case Fn::Trim: {
        expect_type(node, args[0], TypeId::String, what);
        const Vec s = coerce(std::move(args[0]), TypeId::String);
        const size_t n = s.offsets.size() - 1;
        StringsBuilder b;
        b.reserve(n, s.chars.size());
        constexpr std::string_view kSpace = " \t\r\n\f\v";
        for (size_t i = 0; i < n; ++i) {
          std::string_view v = s.str(i);
          const size_t first = v.find_first_not_of(kSpace);
          if (first == std::string_view::npos) {
            b.add("");
          } else {
            b.add(v.substr(first, v.find_last_not_of(kSpace) - first + 1));
          }
        }
        Vec out = std::move(b).finish(s.constant);
        return std::move(with_validity(out, s.nullable, {s.valid.begin(), s.valid.end()}));
      }
      case Fn::Concat: return concat(args);
      case Fn::Substr: return substr(node, what, args);
      case Fn::Contains:
      case Fn::StartsWith:
      case Fn::EndsWith: {
        expect_type(node, args[0], TypeId::String, what);
        expect_type(node, args[1], TypeId::String, what);
        const Vec s = coerce(std::move(args[0]), TypeId::String);
        const Vec p = coerce(std::move(args[1]), TypeId::String);
        const bool constant = s.constant && p.constant;
        const size_t n = rows_for(constant);
        std::vector<uint8_t> result(n);
        for (size_t i = 0; i < n; ++i) {
          const std::string_view text = s.str(i), part = p.str(i);
          result[i] = node.fn == Fn::Contains     ? text.find(part) != std::string_view::npos
                      : node.fn == Fn::StartsWith ? text.starts_with(part)
                                                  : text.ends_with(part);
        }
        Vec out = bool_vec(std::move(result), constant);
        return std::move(with_validity(out, s.nullable || p.nullable, both_valid(s, p, n)));
      }
      case Fn::Abs:
      case Fn::Floor:
      case Fn::Ceil:
      case Fn::Round: {
        expect_numeric(node, args[0], what);
        const TypeId type = args[0].null_literal ? TypeId::Int64 : args[0].type;
        Vec x = coerce(std::move(args[0]), type);
        Vec out;
        if (x.type == TypeId::Int64) {
          if (node.fn != Fn::Abs) return x;  // integers are already whole
          out = int_vec(map1<int64_t>(x.ints, [](int64_t v) { return v < 0 ? wrapping_neg(v) : v; }), x.constant);
        } else {
          switch (node.fn) {
            case Fn::Abs: out = float_vec(map1<double>(x.floats, [](double v) { return std::fabs(v); }), x.constant); break;
            case Fn::Floor: out = float_vec(map1<double>(x.floats, [](double v) { return std::floor(v); }), x.constant); break;
            case Fn::Ceil: out = float_vec(map1<double>(x.floats, [](double v) { return std::ceil(v); }), x.constant); break;
            default: out = float_vec(map1<double>(x.floats, [](double v) { return std::round(v); }), x.constant); break;
          }
        }
        return std::move(with_validity(out, x.nullable, {x.valid.begin(), x.valid.end()}));
      }
      case Fn::Min:
      case Fn::Max: return min_max(node, what, args);
      case Fn::If: return if_then_else(node, what, args);
      case Fn::Coalesce: return coalesce(node, what, args);
      case Fn::IsNull: {
        const Vec& x = args[0];
        const bool constant = x.constant;
        std::vector<uint8_t> result = x.nullable ? map1<uint8_t>(x.valid, [](uint8_t v) -> uint8_t { return !v; })
                                                 : std::vector<uint8_t>(rows_for(constant), 0);
        return bool_vec(std::move(result), constant);
      }
      case Fn::Int: return to_int(node, what, std::move(args[0]));
      case Fn::Float: return to_float(node, what, std::move(args[0]));
      case Fn::String: return to_string(std::move(args[0]));
    }
    fail(node, "unknown function");
  }

  Vec concat(std::vector<Vec>& args) const {
    std::vector<Vec> parts;
    bool constant = true, nullable = false;
    for (Vec& a : args) {
      parts.push_back(to_string(std::move(a)));
      constant = constant && parts.back().constant;
      nullable = nullable || parts.back().nullable;
    }
    const size_t n = rows_for(constant);
    size_t bytes = 0;
    for (const Vec& p : parts) bytes += p.constant ? n * p.str(0).size() : p.chars.size();
    StringsBuilder b;
    b.reserve(n, bytes);
    std::vector<uint8_t> valid(nullable ? n : 0, 1);
    for (size_t i = 0; i < n; ++i) {
      for (const Vec& p : parts) {
        if (nullable && !p.valid_at(i)) valid[i] = 0;
        const std::string_view s = p.str(i);
        b.chars.insert(b.chars.end(), s.begin(), s.end());
      }
      b.close_row();
    }
    Vec out = std::move(b).finish(constant);
    return std::move(with_validity(out, nullable, std::move(valid)));
  }

  Vec substr(const ExprNode& node, const std::string& what, std::vector<Vec>& args) const {
    expect_type(node, args[0], TypeId::String, "the string of " + what);
    expect_type(node, args[1], TypeId::Int64, "the start of " + what);
    expect_type(node, args[2], TypeId::Int64, "the length of " + what);
    const Vec s = coerce(std::move(args[0]), TypeId::String);
    const Vec start = coerce(std::move(args[1]), TypeId::Int64);
    const Vec length = coerce(std::move(args[2]), TypeId::Int64);
    const bool constant = s.constant && start.constant && length.constant;
    const size_t n = rows_for(constant);
    StringsBuilder b;
    b.reserve(n, s.chars.size());
    for (size_t i = 0; i < n; ++i) {
      const std::string_view v = s.str(i);
      const int64_t size = static_cast<int64_t>(v.size());
      int64_t first = start.ints[start.at(i)];
      if (first < 0) first = std::max<int64_t>(0, size + first);
      first = std::min(first, size);
      const int64_t count = std::clamp<int64_t>(length.ints[length.at(i)], 0, size - first);
      b.add(v.substr(static_cast<size_t>(first), static_cast<size_t>(count)));
    }
    const bool nullable = s.nullable || start.nullable || length.nullable;
    std::vector<uint8_t> valid;
    if (nullable) {
      valid.resize(n);
      for (size_t i = 0; i < n; ++i) valid[i] = s.valid_at(i) && start.valid_at(i) && length.valid_at(i);
    }
    Vec out = std::move(b).finish(constant);
    return std::move(with_validity(out, nullable, std::move(valid)));
  }

  Vec min_max(const ExprNode& node, const std::string& what, std::vector<Vec>& args) const {
    const auto type = common_type(args, TypeId::Int64);
    if (!type || *type == TypeId::Bool)
      fail(node, what + " needs two numbers or two strings, got " + type_of(args[0]) + " and " + type_of(args[1]));
    const Vec x = coerce(std::move(args[0]), *type);
    const Vec y = coerce(std::move(args[1]), *type);
    const bool constant = x.constant && y.constant;
    const size_t n = rows_for(constant);
    const bool is_min = node.fn == Fn::Min;
    Vec out;
    if (*type == TypeId::Int64) {
      out = int_vec(is_min ? map2<int64_t>(x.ints, x.constant, y.ints, y.constant, n, [](int64_t u, int64_t v) { return std::min(u, v); })
                           : map2<int64_t>(x.ints, x.constant, y.ints, y.constant, n, [](int64_t u, int64_t v) { return std::max(u, v); }),
                    constant);
    } else if (*type == TypeId::Float64) {
      out = float_vec(is_min ? map2<double>(x.floats, x.constant, y.floats, y.constant, n, [](double u, double v) { return std::min(u, v); })
                             : map2<double>(x.floats, x.constant, y.floats, y.constant, n, [](double u, double v) { return std::max(u, v); }),
                      constant);
    } else {
      StringsBuilder b;
      for (size_t i = 0; i < n; ++i) {
        const std::string_view u = x.str(i), v = y.str(i);
        b.add(is_min ? std::min(u, v) : std::max(u, v));
      }
      out = std::move(b).finish(constant);
    }
    return std::move(with_validity(out, x.nullable || y.nullable, both_valid(x, y, n)));
  }

  /// Row by row: picks from @p sources[pick(i)] at row i, or null when pick gives -1.
  template <class Pick>
  Vec select_rows(TypeId type, std::span<const Vec> sources, bool constant, bool nullable, Pick pick) const {
    const size_t n = rows_for(constant);
    std::vector<uint8_t> valid(nullable ? n : 0, 1);
    auto chosen = [&](size_t i) -> const Vec* {
      const int k = pick(i);
      if (k < 0) {
        valid[i] = 0;
        return nullptr;
      }
      const Vec& v = sources[static_cast<size_t>(k)];
      if (nullable && !v.valid_at(i)) valid[i] = 0;
      return &v;
    };
    Vec out;
    switch (type) {
      case TypeId::Bool: {
        std::vector<uint8_t> r(n, 0);
        for (size_t i = 0; i < n; ++i)
          if (const Vec* v = chosen(i)) r[i] = v->bools[v->at(i)];
        out = bool_vec(std::move(r), constant);
        break;
      }
      case TypeId::Int64: {
        std::vector<int64_t> r(n, 0);
        for (size_t i = 0; i < n; ++i)
          if (const Vec* v = chosen(i)) r[i] = v->ints[v->at(i)];
        out = int_vec(std::move(r), constant);
        break;
      }
      case TypeId::Float64: {
        std::vector<double> r(n, 0.0);
        for (size_t i = 0; i < n; ++i)
          if (const Vec* v = chosen(i)) r[i] = v->floats[v->at(i)];
        out = float_vec(std::move(r), constant);
        break;
      }
      default: {
        StringsBuilder b;
        b.reserve(n, 0);
        for (size_t i = 0; i < n; ++i) {
          if (const Vec* v = chosen(i)) b.add(v->str(i));
          else b.add("");
        }
        out = std::move(b).finish(constant);
      }
    }
    return std::move(with_validity(out, nullable, std::move(valid)));
  }

  Vec if_then_else(const ExprNode& node, const std::string& what, std::vector<Vec>& args) const {
    expect_type(node, args[0], TypeId::Bool, "the condition of " + what);
    const auto type = common_type(std::span<const Vec>(args).subspan(1), TypeId::Bool);
    if (!type) fail(node, what + " needs both branches of one type, got " + type_of(args[1]) + " and " + type_of(args[2]));
    const Vec cond = coerce(std::move(args[0]), TypeId::Bool);
    const Vec branches[] = {coerce(std::move(args[1]), *type), coerce(std::move(args[2]), *type)};
    const bool constant = cond.constant && branches[0].constant && branches[1].constant;
    const bool nullable = cond.nullable || branches[0].nullable || branches[1].nullable;
    return select_rows(*type, branches, constant, nullable, [&](size_t i) -> int {
      if (!cond.valid_at(i)) return -1;
      return cond.bools[cond.at(i)] ? 0 : 1;
    });
  }

  Vec coalesce(const ExprNode& node, const std::string& what, std::vector<Vec>& args) const {
    const auto type = common_type(args, TypeId::Bool);
    if (!type) {
      std::string types;
      for (const Vec& a : args) types += (types.empty() ? "" : ", ") + type_of(a);
      fail(node, what + " needs arguments of one type, got " + types);
    }
    std::vector<Vec> sources;
    bool constant = true, nullable = true;
    for (Vec& a : args) {
      sources.push_back(coerce(std::move(a), *type));
      constant = constant && sources.back().constant;
      nullable = nullable && sources.back().nullable;  // one never-null argument settles every row
    }
    return select_rows(*type, sources, constant, nullable, [&](size_t i) -> int {
      for (size_t k = 0; k < sources.size(); ++k)
        if (sources[k].valid_at(i)) return static_cast<int>(k);
      return -1;
    });
  }

  Vec to_int(const ExprNode& node, const std::string& what, Vec x) const {
    if (x.null_literal) return typed_null(TypeId::Int64);
    const size_t n = x.constant ? 1 : rows_;
    std::vector<uint8_t> valid = validity_of(x, n);
    Vec out;
    switch (x.type) {
      case TypeId::Int64: return x;
      case TypeId::Bool:
        out = int_vec(map1<int64_t>(x.bools, [](uint8_t b) { return static_cast<int64_t>(b != 0); }), x.constant);
        return std::move(with_validity(out, x.nullable, {x.valid.begin(), x.valid.end()}));
      case TypeId::Float64: {
        // The int64 range is [-2^63, 2^63); NaN fails both comparisons.
        constexpr double kLimit = 9223372036854775808.0;
        std::vector<int64_t> r(n);
        for (size_t i = 0; i < n; ++i) {
          const double d = x.floats[i];
          if (d >= -kLimit && d < kLimit) r[i] = static_cast<int64_t>(d);
          else valid[i] = 0;
        }
        out = int_vec(std::move(r), x.constant);
        break;
      }
      case TypeId::String: {
        std::vector<int64_t> r(n);
        for (size_t i = 0; i < n; ++i)
          if (valid[i] && !parse_int_strict(x.str(i), r[i])) valid[i] = 0;
        out = int_vec(std::move(r), x.constant);
        break;
      }
      default: fail(node, what + " cannot convert a " + type_of(x));
    }
    return std::move(with_validity(out, true, std::move(valid)));
  }

  Vec to_float(const ExprNode& node, const std::string& what, Vec x) const {
    if (x.null_literal) return typed_null(TypeId::Float64);
    Vec out;
    switch (x.type) {
      case TypeId::Float64: return x;
      case TypeId::Int64: return coerce(std::move(x), TypeId::Float64);
      case TypeId::Bool:
        out = float_vec(map1<double>(x.bools, [](uint8_t b) { return b ? 1.0 : 0.0; }), x.constant);
        return std::move(with_validity(out, x.nullable, {x.valid.begin(), x.valid.end()}));
      case TypeId::String: {
        const size_t n = x.constant ? 1 : rows_;
        std::vector<uint8_t> valid = validity_of(x, n);
        std::vector<double> r(n);
        for (size_t i = 0; i < n; ++i)
          if (valid[i] && !parse_float_strict(x.str(i), r[i])) valid[i] = 0;
        out = float_vec(std::move(r), x.constant);
        return std::move(with_validity(out, true, std::move(valid)));
      }
      default: fail(node, what + " cannot convert a " + type_of(x));
    }
  }

  Vec to_string(Vec x) const {
    if (x.null_literal) return typed_null(TypeId::String);
    if (x.type == TypeId::String) return x;
    const size_t n = x.constant ? 1 : rows_;
    StringsBuilder b;
    b.reserve(n, n * 8);
    std::string text;
    for (size_t i = 0; i < n; ++i) {
      text.clear();
      switch (x.type) {
        case TypeId::Bool: text = x.bools[i] ? "true" : "false"; break;
        case TypeId::Int64: text = std::to_string(x.ints[i]); break;
        default: append_float_text(x.floats[i], text); break;
      }
      b.add(text);
    }
    Vec out = std::move(b).finish(x.constant);
    return std::move(with_validity(out, x.nullable, {x.valid.begin(), x.valid.end()}));
  }

  const Table& table_;
  const std::string& text_;
  size_t rows_;
};

// ======================================================================= row programs

/// Compiles an expression tree into a RowProgram. The typing follows the Evaluator above
/// (same promotions, same nullability) on a tree that result_type() has already checked, so
/// type errors cannot reach it. Throws Unsupported for what the device does not run.
class RowProgramCompiler {
 public:
  struct Unsupported {};

  explicit RowProgramCompiler(const Schema& schema) : schema_(schema) {}

  RowProgram compile(const ExprNode& root) && {
    if (root.kind == ExprNode::Kind::Field) throw Unsupported{};  // a column copy, not a kernel
    Reg result = node(root);
    if (result.null_literal) result = coerce(result, TypeId::Bool);  // a bare `null` is a bool
    program_.result = result.index;
    program_.result_type = static_cast<int32_t>(result.type);
    program_.result_nullable = result.nullable;
    return std::move(program_);
  }

 private:
  using Instr = RowProgram::Instruction;
  using POp = RowProgram::Op;

  /// A compiled value: the register holding it, or, for the literal `null`, no register yet
  /// (it takes the type its context needs, as Vec::null_literal does).
  struct Reg {
    int32_t index = -1;
    TypeId type = TypeId::Bool;
    bool nullable = false;
    bool null_literal = false;
  };

  Reg emit(POp op, TypeId type, bool nullable, std::initializer_list<int32_t> args = {}, int32_t flags = 0) {
    return emit_instruction(op, type, nullable, args, flags, 0, 0.0);
  }

  Reg emit_instruction(POp op, TypeId type, bool nullable, std::initializer_list<int32_t> args, int32_t flags, int64_t int_value,
                       double float_value) {
    // Every FloatToString's text takes registers from the top of the file.
    if (op == POp::FloatToString) float_texts_++;
    if (program_.instructions.size() + static_cast<size_t>(float_texts_ * RowProgram::kFloatTextRegisters) >=
        static_cast<size_t>(RowProgram::kMaxInstructions))
      throw Unsupported{};
    Instr ins;
    ins.op = op;
    ins.type = static_cast<int32_t>(type);
    size_t k = 0;
    for (int32_t a : args) ins.args[k++] = a;
    ins.flags = flags;
    ins.int_value = int_value;
    ins.float_value = float_value;
    program_.instructions.push_back(ins);
    return Reg{static_cast<int32_t>(program_.instructions.size() - 1), type, nullable, false};
  }

  /// As Evaluator::common_type, on a well-typed tree.
  static TypeId common_type(const std::vector<Reg>& regs, TypeId all_null_type) {
    std::optional<TypeId> common;
    for (const Reg& r : regs) {
      if (r.null_literal) continue;
      if (!common) common = r.type;
      else if (*common != r.type) common = TypeId::Float64;  // two different numbers
    }
    return common ? *common : all_null_type;
  }

  /// As Evaluator::coerce: null literals become typed nulls, integers become floats.
  Reg coerce(const Reg& r, TypeId type) {
    if (r.null_literal) return emit(POp::ConstNull, type, true);
    if (r.type == type) return r;
    if (r.type == TypeId::Int64 && type == TypeId::Float64) return emit(POp::IntToFloat, TypeId::Float64, r.nullable, {r.index});
    throw Error("internal: row program cannot coerce " + std::string(type_name(r.type)) + " to " + std::string(type_name(type)));
  }

  Reg node(const ExprNode& n) {
    switch (n.kind) {
      case ExprNode::Kind::Literal: return literal(n.literal);
      case ExprNode::Kind::Field: return load(n);
      case ExprNode::Kind::Unary: return unary(n);
      case ExprNode::Kind::Binary: return binary(n);
      case ExprNode::Kind::Call: return call(n);
    }
    throw Error("internal: unknown expression node");
  }

  Reg literal(const Value& value) {
    if (std::holds_alternative<std::monostate>(value)) return Reg{-1, TypeId::Bool, true, true};
    if (auto* b = std::get_if<bool>(&value)) return emit_instruction(POp::ConstBool, TypeId::Bool, false, {}, 0, *b ? 1 : 0, 0.0);
    if (auto* i = std::get_if<int64_t>(&value)) return emit_instruction(POp::ConstInt, TypeId::Int64, false, {}, 0, *i, 0.0);
    if (auto* d = std::get_if<double>(&value)) return emit_instruction(POp::ConstFloat, TypeId::Float64, false, {}, 0, 0, *d);
    const std::string& s = std::get<std::string>(value);
    SLUICE_EXPECTS(program_.literal_bytes.size() + s.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                   "expression string literals exceed 2 GiB");
    const auto index = static_cast<int32_t>(program_.literal_offsets.size() - 1);
    program_.literal_bytes += s;
    program_.literal_offsets.push_back(static_cast<int32_t>(program_.literal_bytes.size()));
    return emit(POp::ConstString, TypeId::String, false, {index});
  }

  /// One load per field however often the expression names it.
  Reg load(const ExprNode& n) {
    const size_t column = schema_.index_of(n.name);
    if (auto it = loaded_.find(column); it != loaded_.end()) return it->second;
    const Field& field = schema_[column];
    POp op = POp::LoadBool;
    TypeId type = field.type;
    switch (field.type) {
      case TypeId::Bool: op = POp::LoadBool; break;
      case TypeId::Int32: op = POp::LoadInt32, type = TypeId::Int64; break;
      case TypeId::Int64: op = POp::LoadInt64; break;
      case TypeId::Float32: op = POp::LoadFloat32, type = TypeId::Float64; break;
      case TypeId::Float64: op = POp::LoadFloat64; break;
      case TypeId::String: op = POp::LoadString; break;
      case TypeId::List: throw Error("internal: row program reads a list field");
    }
    const auto position = static_cast<int32_t>(program_.fields.size());
    program_.fields.push_back(column);
    const Reg r = emit(op, type, field.nullable, {position}, field.nullable ? 1 : 0);
    loaded_.emplace(column, r);
    return r;
  }

  Reg unary(const ExprNode& n) {
    const Reg a = node(*n.args[0]);
    if (n.op == Op::Not) {
      const Reg x = coerce(a, TypeId::Bool);
      return emit(POp::Not, TypeId::Bool, x.nullable, {x.index});
    }
    const Reg x = coerce(a, a.null_literal ? TypeId::Int64 : a.type);
    return emit(x.type == TypeId::Int64 ? POp::NegInt : POp::NegFloat, x.type, x.nullable, {x.index});
  }

  static int32_t comparison_of(Op op) {
    using C = RowProgram::Comparison;
    switch (op) {
      case Op::Eq: return static_cast<int32_t>(C::Eq);
      case Op::Ne: return static_cast<int32_t>(C::Ne);
      case Op::Lt: return static_cast<int32_t>(C::Lt);
      case Op::Le: return static_cast<int32_t>(C::Le);
      case Op::Gt: return static_cast<int32_t>(C::Gt);
      default: return static_cast<int32_t>(C::Ge);
    }
  }

  Reg binary(const ExprNode& n) {
    const Reg a = node(*n.args[0]);
    const Reg b = node(*n.args[1]);
    switch (n.op) {
      case Op::And:
      case Op::Or: {
        const Reg x = coerce(a, TypeId::Bool), y = coerce(b, TypeId::Bool);
        return emit(n.op == Op::And ? POp::And : POp::Or, TypeId::Bool, x.nullable || y.nullable, {x.index, y.index});
      }
      case Op::Eq:
      case Op::Ne:
      case Op::Lt:
      case Op::Le:
      case Op::Gt:
      case Op::Ge: {
        const TypeId type = common_type({a, b}, TypeId::Bool);
        const Reg x = coerce(a, type), y = coerce(b, type);
        const POp op = type == TypeId::Bool    ? POp::CompareBool
                       : type == TypeId::Int64 ? POp::CompareInt
                       : type == TypeId::Float64 ? POp::CompareFloat
                                                 : POp::CompareString;
        return emit(op, TypeId::Bool, x.nullable || y.nullable, {x.index, y.index}, comparison_of(n.op));
      }
      default: {
        const TypeId type = common_type({a, b}, TypeId::Int64);
        const Reg x = coerce(a, type), y = coerce(b, type);
        const bool integer = type == TypeId::Int64;
        POp op = POp::AddInt;
        switch (n.op) {
          case Op::Add: op = integer ? POp::AddInt : POp::AddFloat; break;
          case Op::Sub: op = integer ? POp::SubInt : POp::SubFloat; break;
          case Op::Mul: op = integer ? POp::MulInt : POp::MulFloat; break;
          case Op::Div: op = integer ? POp::DivInt : POp::DivFloat; break;
          default: op = integer ? POp::ModInt : POp::ModFloat; break;
        }
        const bool can_divide_by_zero = n.op == Op::Div || n.op == Op::Mod;
        return emit(op, type, x.nullable || y.nullable || can_divide_by_zero, {x.index, y.index});
      }
    }
  }

  /// As Evaluator::to_string: strings as they are, numbers as their text, bools as "true" or
  /// "false" (an if over two literals).
  Reg text_of(const Reg& r) {
    if (r.null_literal) return coerce(r, TypeId::String);
    switch (r.type) {
      case TypeId::String: return r;
      case TypeId::Int64: return emit(POp::IntToString, TypeId::String, r.nullable, {r.index});
      case TypeId::Float64: return emit(POp::FloatToString, TypeId::String, r.nullable, {r.index});
      case TypeId::Bool: {
        if (!bool_texts_) bool_texts_ = {literal(Value(std::string("true"))).index, literal(Value(std::string("false"))).index};
        return emit(POp::If, TypeId::String, r.nullable, {r.index, bool_texts_->first, bool_texts_->second});
      }
      default: throw Unsupported{};
    }
  }

  std::optional<std::pair<int32_t, int32_t>> bool_texts_;  // the registers of "true" and "false", once made
  int32_t float_texts_ = 0;                                 // FloatToString instructions so far

  Reg call(const ExprNode& n) {
    std::vector<Reg> args;
    for (const auto& arg : n.args) args.push_back(node(*arg));
    if (n.fn == Fn::String) return text_of(args[0]);
    if (n.fn == Fn::Concat) {
      Reg out = text_of(args[0]);
      for (size_t k = 1; k < args.size(); ++k) {
        const Reg next = text_of(args[k]);
        out = emit(POp::Concat, TypeId::String, out.nullable || next.nullable, {out.index, next.index});
      }
      return out;
    }
    switch (n.fn) {
      case Fn::Len: {
        const Reg s = coerce(args[0], TypeId::String);
        return emit(POp::Length, TypeId::Int64, s.nullable, {s.index});
      }
      case Fn::Lower:
      case Fn::Upper:
      case Fn::Trim: {
        const Reg s = coerce(args[0], TypeId::String);
        const POp op = n.fn == Fn::Lower ? POp::Lower : n.fn == Fn::Upper ? POp::Upper : POp::Trim;
        return emit(op, TypeId::String, s.nullable, {s.index});
      }
      case Fn::Substr: {
        const Reg s = coerce(args[0], TypeId::String);
        const Reg start = coerce(args[1], TypeId::Int64), length = coerce(args[2], TypeId::Int64);
        return emit(POp::Substr, TypeId::String, s.nullable || start.nullable || length.nullable,
                    {s.index, start.index, length.index});
      }
      case Fn::Contains:
      case Fn::StartsWith:
      case Fn::EndsWith: {
        const Reg s = coerce(args[0], TypeId::String), part = coerce(args[1], TypeId::String);
        const POp op = n.fn == Fn::Contains ? POp::Contains : n.fn == Fn::StartsWith ? POp::StartsWith : POp::EndsWith;
        return emit(op, TypeId::Bool, s.nullable || part.nullable, {s.index, part.index});
      }
      case Fn::Abs:
      case Fn::Floor:
      case Fn::Ceil:
      case Fn::Round: {
        const Reg x = coerce(args[0], args[0].null_literal ? TypeId::Int64 : args[0].type);
        if (x.type == TypeId::Int64) {
          if (n.fn != Fn::Abs) return x;  // integers are already whole
          return emit(POp::AbsInt, TypeId::Int64, x.nullable, {x.index});
        }
        const POp op = n.fn == Fn::Abs ? POp::AbsFloat : n.fn == Fn::Floor ? POp::FloorFloat : n.fn == Fn::Ceil ? POp::CeilFloat : POp::RoundFloat;
        return emit(op, TypeId::Float64, x.nullable, {x.index});
      }
      case Fn::Min:
      case Fn::Max: {
        const TypeId type = common_type(args, TypeId::Int64);
        const Reg x = coerce(args[0], type), y = coerce(args[1], type);
        const bool is_min = n.fn == Fn::Min;
        const POp op = type == TypeId::Int64     ? (is_min ? POp::MinInt : POp::MaxInt)
                       : type == TypeId::Float64 ? (is_min ? POp::MinFloat : POp::MaxFloat)
                                                 : (is_min ? POp::MinString : POp::MaxString);
        return emit(op, type, x.nullable || y.nullable, {x.index, y.index});
      }
      case Fn::If: {
        const Reg cond = coerce(args[0], TypeId::Bool);
        const TypeId type = common_type({args[1], args[2]}, TypeId::Bool);
        const Reg a = coerce(args[1], type), b = coerce(args[2], type);
        return emit(POp::If, type, cond.nullable || a.nullable || b.nullable, {cond.index, a.index, b.index});
      }
      case Fn::Coalesce: {
        const TypeId type = common_type(args, TypeId::Bool);
        std::vector<Reg> sources;
        for (const Reg& a : args) sources.push_back(coerce(a, type));
        // coalesce(a, b, c) = a if valid, else (b if valid, else c): a chain from the right.
        Reg chain = sources.back();
        for (size_t k = sources.size() - 1; k-- > 0;)
          chain = emit(POp::Coalesce, type, sources[k].nullable && chain.nullable, {sources[k].index, chain.index});
        return chain;
      }
      case Fn::IsNull: {
        const Reg x = coerce(args[0], args[0].null_literal ? TypeId::Bool : args[0].type);
        return emit(POp::IsNull, TypeId::Bool, false, {x.index});
      }
      case Fn::Int: {
        const Reg& x = args[0];
        if (x.null_literal) return coerce(x, TypeId::Int64);
        switch (x.type) {
          case TypeId::Int64: return x;
          case TypeId::Bool: return emit(POp::BoolToInt, TypeId::Int64, x.nullable, {x.index});
          case TypeId::Float64: return emit(POp::FloatToInt, TypeId::Int64, true, {x.index});
          default: return emit(POp::StringToInt, TypeId::Int64, true, {x.index});
        }
      }
      case Fn::Float: {
        const Reg& x = args[0];
        if (x.null_literal) return coerce(x, TypeId::Float64);
        switch (x.type) {
          case TypeId::Float64: return x;
          case TypeId::Int64: return coerce(x, TypeId::Float64);
          case TypeId::Bool: return emit(POp::BoolToFloat, TypeId::Float64, x.nullable, {x.index});
          default: return emit(POp::StringToFloat, TypeId::Float64, true, {x.index});
        }
      }
      default: break;
    }
    throw Error("internal: row program meets an unknown function");
  }

  const Schema& schema_;
  RowProgram program_;
  std::map<size_t, Reg> loaded_;  // table column -> its load
};

void collect_fields(const ExprNode& node, std::vector<std::string>& out) {
  if (node.kind == ExprNode::Kind::Field && std::find(out.begin(), out.end(), node.name) == out.end())
    out.push_back(node.name);
  for (const auto& arg : node.args) collect_fields(*arg, out);
}

}  // namespace

// ======================================================================= Expression

Expression::Expression(std::string text, std::shared_ptr<const detail::ExprNode> root)
    : text_(std::move(text)), root_(std::move(root)) {}

Expression Expression::parse(std::string_view text) {
  Parser parser(text);
  std::shared_ptr<const detail::ExprNode> root = parser.parse_all();
  return Expression(std::string(text), std::move(root));
}

TypeId Expression::result_type(const Schema& schema) const {
  const Table empty = Table::empty(schema);
  Evaluator evaluator(empty, text_);
  if (root_->kind == ExprNode::Kind::Field) return schema[evaluator.field_index(*root_)].type;
  const Vec v = evaluator.eval(*root_);
  return v.null_literal ? TypeId::Bool : v.type;
}

bool Expression::result_nullable(const Schema& schema) const {
  const Table empty = Table::empty(schema);
  Evaluator evaluator(empty, text_);
  if (root_->kind == ExprNode::Kind::Field) return schema[evaluator.field_index(*root_)].nullable;
  return evaluator.eval(*root_).nullable;
}

Column Expression::evaluate(const Table& table) const {
  Evaluator evaluator(table, text_);
  // A bare field keeps its exact type and layout (int32, float32, lists).
  if (root_->kind == ExprNode::Kind::Field) return table.column(evaluator.field_index(*root_));
  return Evaluator::to_column(evaluator.eval(*root_), table.num_rows());
}

std::vector<uint8_t> Expression::evaluate_mask(const Table& table) const {
  Evaluator evaluator(table, text_);
  const Vec v = evaluator.eval(*root_);
  const size_t rows = table.num_rows();
  if (v.null_literal) return std::vector<uint8_t>(rows, 0);
  if (v.type != TypeId::Bool)
    throw Error("expression " + single_quoted(text_) + " gives " + std::string(type_name(v.type)) +
                ", but a filter needs a bool condition");
  if (v.constant) return std::vector<uint8_t>(rows, v.valid_at(0) ? v.bools[0] : 0);
  if (!v.nullable) return {v.bools.begin(), v.bools.end()};
  return map2<uint8_t>(v.bools, false, v.valid, false, rows, [](uint8_t b, uint8_t ok) -> uint8_t { return b & ok; });
}

std::optional<RowProgram> Expression::compile(const Schema& schema) const {
  (void)result_type(schema);  // reports unknown fields and type errors as the host does
  try {
    return RowProgramCompiler(schema).compile(*root_);
  } catch (const RowProgramCompiler::Unsupported&) {
    return std::nullopt;
  }
}

std::optional<std::string> Expression::bare_field() const {
  if (root_->kind == ExprNode::Kind::Field) return root_->name;
  return std::nullopt;
}

std::vector<std::string> Expression::referenced_fields() const {
  std::vector<std::string> names;
  collect_fields(*root_, names);
  return names;
}

}  // namespace sluice::pipeline
