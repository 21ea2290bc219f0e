#pragma once
/// @file expression.hpp
/// @brief The expression language of pipeline files (`filter: price > 10 and not is_null(name)`),
/// evaluated a column at a time over a Table.
///
/// Grammar, loosest binding first:
///
///     expr       := or
///     or         := and ("or" and)*
///     and        := not ("and" not)*
///     not        := "not" not | comparison
///     comparison := additive (("==" | "!=" | "<" | "<=" | ">" | ">=") additive)?   (no chaining)
///     additive   := term (("+" | "-") term)*
///     term       := unary (("*" | "/" | "%") unary)*
///     unary      := "-" unary | primary
///     primary    := integer | decimal | 'string' | "string" | true | false | null
///                 | identifier | `backquoted field name` | function "(" args ")" | "(" expr ")"
///
/// Keywords (and, or, not, true, false, null) are case-insensitive; field and function names
/// are not. Strings accept the escapes \\ \' \" \n \r \t. Integers are int64, decimals
/// (`1.5`, `2e3`) float64.
///
/// Types and values:
/// - Numbers promote int32 -> int64 -> float64. A bare field reference keeps its own type
///   (an int32 field stays int32); every computed number is int64 or float64.
/// - `+ - * / %` need numbers (`+` on strings is an error: use concat). Integer arithmetic
///   wraps on overflow. `/` on two integers is integer division truncating toward zero, and
///   `%` takes the sign of the dividend (as in C++ and SQL). Division or remainder by zero
///   gives null, for integers and floats alike, so `/` and `%` always give a nullable column.
/// - Comparisons take two numbers, two strings (byte-wise order) or two bools, giving bool.
/// - Nulls propagate: an operator or function with a null argument gives null, except
///   `and`/`or` (three-valued: `false and null` is false, `true or null` is true),
///   `is_null(x)` (never null), `coalesce(a, b, ...)` (first non-null) and `if(c, a, b)`
///   (null when c is null, otherwise the chosen branch). The literal `null` takes the type
///   its context needs; a bare `null` is a bool.
/// - Strings are byte strings: len() and substr() count bytes; lower() and upper() change
///   ASCII letters only; trim() strips ASCII whitespace.
///
/// Functions:
///     len(s) -> int64            lower(s), upper(s), trim(s) -> string
///     concat(a, b, ...) -> string (arguments that are not strings are converted as string(x))
///     substr(s, start, length)    start is 0-based; a negative start counts from the end
///     contains(s, sub), starts_with(s, prefix), ends_with(s, suffix) -> bool
///     abs(x)                      same numeric type
///     floor(x), ceil(x), round(x) float64 for floats (round: half away from zero), integers unchanged
///     min(a, b), max(a, b)        two numbers (promoted) or two strings
///     if(cond, a, b)              a and b of one type (numbers promote)
///     coalesce(a, b, ...)         first non-null argument; arguments of one type
///     is_null(x) -> bool
///     int(x)    -> int64          floats truncate toward zero; bools 0/1; strings parsed strictly
///                                 ("12", not " 12" or "12x"); unparsable text, NaN or an
///                                 out-of-range float gives null
///     float(x)  -> float64        strings parsed strictly; unparsable text gives null
///     string(x) -> string         as JSON spells numbers and bools ("2.0", "true")
///
/// Evaluation is vectorized: each operator runs one type-specialised loop over whole columns;
/// literals stay single values rather than being repeated per row.
///
/// Example:
/// @code
///   auto expr = Expression::parse("if(qty > 0, price * qty, 0.0)");
///   Column total = expr.evaluate(batch);            // float64, one value per row
///   auto keep = Expression::parse("region == 'eu'").evaluate_mask(batch);
/// @endcode

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/column.hpp"
#include "sluice/row_program.hpp"
#include "sluice/types.hpp"

namespace sluice::pipeline {

namespace detail {
struct ExprNode;
}

/// @brief A parsed expression. Immutable and cheap to copy (the tree is shared); its const
/// members may run on several threads at once.
class Expression {
 public:
  /// @brief Parses @p text.
  /// @throw sluice::Error naming the text, what was expected and the 1-based column, e.g.
  ///        "expression 'x +': expected a value at column 4". Unknown functions and wrong
  ///        argument counts are reported here; unknown fields and type errors by result_type().
  static Expression parse(std::string_view text);

  /// @brief Type-checks the expression against @p schema and returns its result type.
  /// A bare field reference gives the field's own type (List included).
  /// @throw sluice::Error for an unknown field (naming it and listing the schema) or a type
  ///        error (naming the operator or function, the types it got and the column).
  TypeId result_type(const Schema& schema) const;

  /// @brief True when evaluate() over a table of @p schema gives a nullable column: a nullable
  /// field is read, or an operation that can make nulls (`/`, `%`, int(), float(), null) is used.
  bool result_nullable(const Schema& schema) const;

  /// @brief One value per row of @p table (literals are repeated). A bare field reference
  /// returns a copy of that column.
  /// @throw sluice::Error as result_type() does for the table's schema.
  Column evaluate(const Table& table) const;

  /// @brief For filters: one byte per row, 1 where the expression is true, 0 where it is
  /// false or null.
  /// @throw sluice::Error when the expression is not a bool (or as result_type() does).
  std::vector<uint8_t> evaluate_mask(const Table& table) const;

  /// @brief Compiles the expression, for tables of @p schema, into a program that a device
  /// thread runs per row (kernels/row_program.cuh), with results equal to evaluate()'s bit
  /// for bit; its result_type and result_nullable are those of result_type(@p schema) and
  /// result_nullable(@p schema).
  ///
  /// Returns nullopt for what the device does not run:
  /// - a bare field reference, parenthesized or not (copying a column needs no kernel), which
  ///   is also the only way to get a List result;
  /// - programs longer than RowProgram::kMaxInstructions.
  /// Everything else compiles. Results are bool, int64, float64 or string; strings, in the
  /// middle or as the result, are string fields (not bare at the top), literals,
  /// if/coalesce/min/max of strings, concat() and string() of strings, numbers and bools, and
  /// lower, upper, trim, substr, which narrow what they read or set a case mapping the
  /// readers apply (see RowProgram). Strings feed comparisons, len,
  /// contains, starts_with, ends_with and int(). A string result has result_type String and
  /// runs through evaluate_string_rows (kernels/row_program.cuh), not evaluate_rows.
  /// @throw sluice::Error as result_type() does for @p schema.
  std::optional<RowProgram> compile(const Schema& schema) const;

  /// @brief The text the expression was parsed from.
  const std::string& text() const { return text_; }

  /// @brief Names of the fields the expression reads, in order of first appearance.
  std::vector<std::string> referenced_fields() const;

  /// @brief The field's name when the whole expression is one field reference (its value is
  /// that column, unchanged), otherwise nullopt.
  std::optional<std::string> bare_field() const;

 private:
  Expression(std::string text, std::shared_ptr<const detail::ExprNode> root);

  std::string text_;
  std::shared_ptr<const detail::ExprNode> root_;
};

}  // namespace sluice::pipeline
