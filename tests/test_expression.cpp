// Tests for the pipeline expression language: parsing, typing, vectorized evaluation,
// null propagation and error messages.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "pipeline/expression.hpp"
#include "sluice/column.hpp"

namespace sluice::pipeline {
namespace {

/// The column as a JSON array: "[1,null,3]".
std::string json_of(const Column& column) {
  std::string out = "[";
  for (size_t r = 0; r < column.size(); ++r) {
    if (r) out += ',';
    column.append_json(r, out);
  }
  return out + "]";
}

Column column_of(TypeId type, const std::vector<Value>& values, bool nullable = false) {
  Column c(type, nullable);
  for (const Value& v : values) c.append_value(v);
  return c;
}

const Value N = std::monostate{};

/// Three rows covering every scalar type, with nulls in the nullable fields.
Table sample_table() {
  Schema schema{
      {"name", TypeId::String, false, {}},  {"price", TypeId::Float64, true, {}}, {"qty", TypeId::Int64, false, {}},
      {"small", TypeId::Int32, false, {}},  {"ratio", TypeId::Float32, false, {}}, {"active", TypeId::Bool, true, {}},
      {"note", TypeId::String, true, {}},
  };
  std::vector<Column> columns;
  columns.push_back(column_of(TypeId::String, {"apple", "Banana", "cherry"}));
  columns.push_back(column_of(TypeId::Float64, {1.5, N, 4.0}, true));
  columns.push_back(column_of(TypeId::Int64, {int64_t{3}, int64_t{0}, int64_t{-7}}));
  columns.push_back(column_of(TypeId::Int32, {int64_t{10}, int64_t{-2}, int64_t{7}}));
  columns.push_back(column_of(TypeId::Float32, {0.5, 2.0, -1.25}));
  columns.push_back(column_of(TypeId::Bool, {true, false, N}, true));
  columns.push_back(column_of(TypeId::String, {"  hi  ", N, "x"}, true));
  return Table(schema, std::move(columns));
}

/// Evaluates @p text over the sample table and returns its values as JSON.
std::string eval(const std::string& text) { return json_of(Expression::parse(text).evaluate(sample_table())); }

TypeId type_of(const std::string& text) { return Expression::parse(text).result_type(sample_table().schema()); }

/// The message of the sluice::Error that @p f throws ("" when it does not throw).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::string& text) {
  return error_of([&] { Expression::parse(text); });
}

std::string type_error(const std::string& text) {
  return error_of([&] { type_of(text); });
}

// ------------------------------------------------------------------ literals and fields

TEST(Expression, LiteralsAreRepeatedForEveryRow) {
  EXPECT_EQ(eval("42"), "[42,42,42]");
  EXPECT_EQ(eval("1.5"), "[1.5,1.5,1.5]");
  EXPECT_EQ(eval("2e3"), "[2000.0,2000.0,2000.0]");
  EXPECT_EQ(eval("'a b'"), "[\"a b\",\"a b\",\"a b\"]");
  EXPECT_EQ(eval("\"dq\""), "[\"dq\",\"dq\",\"dq\"]");
  EXPECT_EQ(eval("true"), "[true,true,true]");
  EXPECT_EQ(eval("null"), "[null,null,null]");
  EXPECT_EQ(eval("-3"), "[-3,-3,-3]");
  EXPECT_EQ(eval("'it\\'s' == \"it's\""), "[true,true,true]");
  EXPECT_EQ(eval("len('a\\nb\\t')"), "[4,4,4]");
}

TEST(Expression, BareFieldKeepsItsTypeAndNulls) {
  const Table t = sample_table();
  const Column small = Expression::parse("small").evaluate(t);
  EXPECT_EQ(small.type(), TypeId::Int32);
  EXPECT_EQ(json_of(small), "[10,-2,7]");
  const Column ratio = Expression::parse("ratio").evaluate(t);
  EXPECT_EQ(ratio.type(), TypeId::Float32);
  EXPECT_EQ(json_of(ratio), "[0.5,2.0,-1.25]");
  EXPECT_EQ(eval("price"), "[1.5,null,4.0]");
  EXPECT_EQ(eval("(note)"), "[\"  hi  \",null,\"x\"]");
}

TEST(Expression, BackquotedFieldNames) {
  Schema schema{{"unit price", TypeId::Int64, false, {}}, {"and", TypeId::Int64, false, {}}};
  Table t(schema, {column_of(TypeId::Int64, {int64_t{2}, int64_t{5}}), column_of(TypeId::Int64, {int64_t{1}, int64_t{1}})});
  EXPECT_EQ(json_of(Expression::parse("`unit price` * 10 + `and`").evaluate(t)), "[21,51]");
}

// ------------------------------------------------------------------ arithmetic

TEST(Expression, ArithmeticPromotesInt32ToInt64ToFloat64) {
  EXPECT_EQ(eval("qty * 2 + 1"), "[7,1,-13]");
  EXPECT_EQ(type_of("qty * 2 + 1"), TypeId::Int64);
  EXPECT_EQ(eval("small + qty"), "[13,-2,0]");
  EXPECT_EQ(type_of("small + small"), TypeId::Int64);
  EXPECT_EQ(eval("ratio * 2"), "[1.0,4.0,-2.5]");
  EXPECT_EQ(type_of("ratio * 2"), TypeId::Float64);
  EXPECT_EQ(eval("qty + 0.5"), "[3.5,0.5,-6.5]");
  EXPECT_EQ(eval("qty - small"), "[-7,2,-14]");
  EXPECT_EQ(eval("-qty"), "[-3,0,7]");
  EXPECT_EQ(eval("- -ratio"), "[0.5,2.0,-1.25]");
}

TEST(Expression, IntegerDivisionTruncatesAndDivisionByZeroIsNull) {
  EXPECT_EQ(eval("qty / 2"), "[1,0,-3]");
  EXPECT_EQ(eval("qty % 2"), "[1,0,-1]");
  EXPECT_EQ(eval("10 / qty"), "[3,null,-1]");
  EXPECT_EQ(eval("10 % qty"), "[1,null,3]");
  EXPECT_EQ(eval("7.0 / 2"), "[3.5,3.5,3.5]");
  EXPECT_EQ(eval("price / 0"), "[null,null,null]");
  EXPECT_EQ(eval("price % 1.0"), "[0.5,null,0.0]");
  EXPECT_EQ(eval("1 / 0"), "[null,null,null]");
  // Division always makes the result nullable, even when no divisor is zero.
  const Column c = Expression::parse("qty / 2").evaluate(sample_table());
  EXPECT_TRUE(c.nullable());
  EXPECT_EQ(c.null_count(), 0u);
}

TEST(Expression, IntegerOverflowWraps) {
  EXPECT_EQ(eval("9223372036854775807 + 1"), "[-9223372036854775808,-9223372036854775808,-9223372036854775808]");
  EXPECT_EQ(eval("(-9223372036854775807 - 1) / -1"), "[-9223372036854775808,-9223372036854775808,-9223372036854775808]");
  EXPECT_EQ(eval("(-9223372036854775807 - 1) % -1"), "[0,0,0]");
}

TEST(Expression, PrecedenceAndParentheses) {
  EXPECT_EQ(eval("1 + 2 * 3"), "[7,7,7]");
  EXPECT_EQ(eval("(1 + 2) * 3"), "[9,9,9]");
  EXPECT_EQ(eval("10 - 4 - 3"), "[3,3,3]");
  EXPECT_EQ(eval("-2 * 3"), "[-6,-6,-6]");
  EXPECT_EQ(eval("2 * -qty"), "[-6,0,14]");
  EXPECT_EQ(eval("not 1 == 2"), "[true,true,true]");
  EXPECT_EQ(eval("1 + 2 > 2 and 3 < 4 or false"), "[true,true,true]");
  EXPECT_EQ(eval("false and true or true"), "[true,true,true]");
  EXPECT_EQ(eval("TRUE AND NOT False"), "[true,true,true]");
}

// ------------------------------------------------------------------ comparisons and logic

TEST(Expression, Comparisons) {
  EXPECT_EQ(eval("price > 2"), "[false,null,true]");
  EXPECT_EQ(eval("qty >= small"), "[false,true,false]");
  EXPECT_EQ(eval("qty != 0"), "[true,false,true]");
  EXPECT_EQ(eval("qty <= 0.5"), "[false,true,true]");
  EXPECT_EQ(eval("name == 'apple'"), "[true,false,false]");
  EXPECT_EQ(eval("name < 'b'"), "[true,true,false]");  // byte order: 'B' < 'b'
  EXPECT_EQ(eval("active == true"), "[true,false,null]");
  EXPECT_EQ(eval("note == null"), "[null,null,null]");
  EXPECT_EQ(type_of("price > 2"), TypeId::Bool);
}

TEST(Expression, AndOrAreThreeValued) {
  // rows: active = true, false, null; price > 1 = true, null, true
  EXPECT_EQ(eval("active and price > 1"), "[true,false,null]");
  EXPECT_EQ(eval("active or price > 2"), "[true,null,true]");
  EXPECT_EQ(eval("price > 1 and active"), "[true,false,null]");
  EXPECT_EQ(eval("not active"), "[false,true,null]");
  EXPECT_EQ(eval("null and false"), "[false,false,false]");
  EXPECT_EQ(eval("null or true"), "[true,true,true]");
  EXPECT_EQ(eval("null and true"), "[null,null,null]");
}

TEST(Expression, MaskTreatsNullAsFalse) {
  const Table t = sample_table();
  EXPECT_EQ(Expression::parse("price > 1 and active").evaluate_mask(t), (std::vector<uint8_t>{1, 0, 0}));
  EXPECT_EQ(Expression::parse("price > 1").evaluate_mask(t), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(Expression::parse("active").evaluate_mask(t), (std::vector<uint8_t>{1, 0, 0}));
  EXPECT_EQ(Expression::parse("true").evaluate_mask(t), (std::vector<uint8_t>{1, 1, 1}));
  EXPECT_EQ(Expression::parse("null").evaluate_mask(t), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(Expression::parse("contains(name, 'an')").evaluate_mask(t), (std::vector<uint8_t>{0, 1, 0}));
  const Table kept = t.filter(Expression::parse("qty > 0 or small > 5").evaluate_mask(t));
  EXPECT_EQ(json_of(kept.column("name")), "[\"apple\",\"cherry\"]");
}

// ------------------------------------------------------------------ functions

TEST(Expression, StringFunctions) {
  EXPECT_EQ(eval("len(name)"), "[5,6,6]");
  EXPECT_EQ(eval("len(note)"), "[6,null,1]");
  EXPECT_EQ(eval("lower(name)"), "[\"apple\",\"banana\",\"cherry\"]");
  EXPECT_EQ(eval("upper(name)"), "[\"APPLE\",\"BANANA\",\"CHERRY\"]");
  EXPECT_EQ(eval("trim(note)"), "[\"hi\",null,\"x\"]");
  EXPECT_EQ(eval("trim('   ')"), "[\"\",\"\",\"\"]");
  EXPECT_EQ(eval("concat(name, '-', qty)"), "[\"apple-3\",\"Banana-0\",\"cherry--7\"]");
  EXPECT_EQ(eval("concat(name, note)"), "[\"apple  hi  \",null,\"cherryx\"]");
  EXPECT_EQ(eval("concat(price, '/', active)"), "[\"1.5/true\",null,null]");
  EXPECT_EQ(eval("substr(name, 1, 3)"), "[\"ppl\",\"ana\",\"her\"]");
  EXPECT_EQ(eval("substr(name, -3, 10)"), "[\"ple\",\"ana\",\"rry\"]");
  EXPECT_EQ(eval("substr(name, 10, 2)"), "[\"\",\"\",\"\"]");
  EXPECT_EQ(eval("substr(name, 0, -1)"), "[\"\",\"\",\"\"]");
  EXPECT_EQ(eval("substr(note, qty, 1)"), "[\"i\",null,\"x\"]");
  EXPECT_EQ(eval("contains(name, 'an')"), "[false,true,false]");
  EXPECT_EQ(eval("starts_with(name, 'ch')"), "[false,false,true]");
  EXPECT_EQ(eval("ends_with(name, 'a')"), "[false,true,false]");
  EXPECT_EQ(eval("contains(note, '')"), "[true,null,true]");
  EXPECT_EQ(type_of("len(name)"), TypeId::Int64);
  EXPECT_EQ(type_of("upper(name)"), TypeId::String);
}

TEST(Expression, NumericFunctions) {
  EXPECT_EQ(eval("abs(qty)"), "[3,0,7]");
  EXPECT_EQ(eval("abs(ratio)"), "[0.5,2.0,1.25]");
  EXPECT_EQ(eval("floor(ratio)"), "[0.0,2.0,-2.0]");
  EXPECT_EQ(eval("ceil(ratio)"), "[1.0,2.0,-1.0]");
  EXPECT_EQ(eval("round(ratio)"), "[1.0,2.0,-1.0]");  // half away from zero
  EXPECT_EQ(eval("round(-2.5)"), "[-3.0,-3.0,-3.0]");
  EXPECT_EQ(eval("floor(qty)"), "[3,0,-7]");
  EXPECT_EQ(type_of("floor(qty)"), TypeId::Int64);
  EXPECT_EQ(type_of("floor(price)"), TypeId::Float64);
  EXPECT_EQ(eval("abs(price - 2)"), "[0.5,null,2.0]");
  EXPECT_EQ(eval("min(qty, small)"), "[3,-2,-7]");
  EXPECT_EQ(eval("max(qty, small)"), "[10,0,7]");
  EXPECT_EQ(eval("max(price, qty)"), "[3.0,null,4.0]");
  EXPECT_EQ(type_of("max(price, qty)"), TypeId::Float64);
  EXPECT_EQ(eval("min(name, 'b')"), "[\"apple\",\"Banana\",\"b\"]");
}

TEST(Expression, ConditionalsAndNulls) {
  EXPECT_EQ(eval("if(qty > 0, 'pos', 'not pos')"), "[\"pos\",\"not pos\",\"not pos\"]");
  EXPECT_EQ(eval("if(active, 1, 2.5)"), "[1.0,2.5,null]");
  EXPECT_EQ(eval("if(qty > 0, price, null)"), "[1.5,null,null]");
  EXPECT_EQ(type_of("if(active, 1, 2.5)"), TypeId::Float64);
  EXPECT_EQ(eval("coalesce(price, 0)"), "[1.5,0.0,4.0]");
  EXPECT_EQ(eval("coalesce(note, name)"), "[\"  hi  \",\"Banana\",\"x\"]");
  EXPECT_EQ(eval("coalesce(null, note, 'none')"), "[\"  hi  \",\"none\",\"x\"]");
  EXPECT_EQ(eval("is_null(price)"), "[false,true,false]");
  EXPECT_EQ(eval("is_null(qty)"), "[false,false,false]");
  EXPECT_EQ(eval("is_null(null)"), "[true,true,true]");
  EXPECT_EQ(eval("not is_null(active) and active"), "[true,false,false]");

  const Table table = sample_table();
  const Schema& schema = table.schema();
  EXPECT_FALSE(Expression::parse("coalesce(price, 0)").result_nullable(schema));
  EXPECT_FALSE(Expression::parse("is_null(price)").result_nullable(schema));
  EXPECT_TRUE(Expression::parse("price + 1").result_nullable(schema));
  EXPECT_FALSE(Expression::parse("qty + 1").result_nullable(schema));
  EXPECT_TRUE(Expression::parse("qty / 1").result_nullable(schema));
  EXPECT_TRUE(Expression::parse("price").result_nullable(schema));
  EXPECT_FALSE(Expression::parse("coalesce(price, qty)").evaluate(sample_table()).nullable());
}

TEST(Expression, Conversions) {
  EXPECT_EQ(eval("int(price)"), "[1,null,4]");
  EXPECT_EQ(eval("int(ratio)"), "[0,2,-1]");
  EXPECT_EQ(eval("int(active)"), "[1,0,null]");
  EXPECT_EQ(eval("int('12')"), "[12,12,12]");
  EXPECT_EQ(eval("int(name)"), "[null,null,null]");
  EXPECT_EQ(eval("int(' 12')"), "[null,null,null]");
  EXPECT_EQ(eval("int(1e300)"), "[null,null,null]");
  EXPECT_EQ(eval("int(concat(qty, '0'))"), "[30,0,-70]");
  EXPECT_EQ(eval("float(qty)"), "[3.0,0.0,-7.0]");
  EXPECT_EQ(eval("float('1.5')"), "[1.5,1.5,1.5]");
  EXPECT_EQ(eval("float('1.5x')"), "[null,null,null]");
  EXPECT_EQ(eval("float(active)"), "[1.0,0.0,null]");
  EXPECT_EQ(eval("string(qty)"), "[\"3\",\"0\",\"-7\"]");
  EXPECT_EQ(eval("string(price)"), "[\"1.5\",null,\"4.0\"]");
  EXPECT_EQ(eval("string(active)"), "[\"true\",\"false\",null]");
  EXPECT_EQ(eval("string(name)"), "[\"apple\",\"Banana\",\"cherry\"]");
  EXPECT_EQ(type_of("int(name)"), TypeId::Int64);
  EXPECT_EQ(type_of("float(name)"), TypeId::Float64);
  EXPECT_EQ(type_of("string(qty)"), TypeId::String);
}

TEST(Expression, TypesOfResults) {
  EXPECT_EQ(type_of("small"), TypeId::Int32);
  EXPECT_EQ(type_of("ratio"), TypeId::Float32);
  EXPECT_EQ(type_of("qty + small"), TypeId::Int64);
  EXPECT_EQ(type_of("concat(name, 1)"), TypeId::String);
  EXPECT_EQ(type_of("null"), TypeId::Bool);
  EXPECT_EQ(type_of("null + 1"), TypeId::Int64);
  EXPECT_EQ(type_of("coalesce(null, 'a')"), TypeId::String);
}

TEST(Expression, ReferencedFields) {
  EXPECT_EQ(Expression::parse("price * qty + price > `unit cost`").referenced_fields(),
            (std::vector<std::string>{"price", "qty", "unit cost"}));
  EXPECT_EQ(Expression::parse("1 + 2").referenced_fields(), std::vector<std::string>{});
  EXPECT_EQ(Expression::parse("  qty  ").text(), "  qty  ");
}

TEST(Expression, EmptyTableGivesEmptyColumn) {
  const Table empty = Table::empty(sample_table().schema());
  const Column c = Expression::parse("qty * 2 + len(name)").evaluate(empty);
  EXPECT_EQ(c.type(), TypeId::Int64);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(Expression::parse("price > 1").evaluate_mask(empty).size(), 0u);
  EXPECT_EQ(Expression::parse("1").evaluate(empty).size(), 0u);
}

// Every combination of column and constant operands, checked against a row-by-row reference.
TEST(Expression, VectorizedResultsMatchRowByRowReference) {
  std::mt19937_64 rng(7);
  const size_t rows = 5000;
  Column a(TypeId::Int64, true), b(TypeId::Int64, false), x(TypeId::Float64, true);
  for (size_t i = 0; i < rows; ++i) {
    const int64_t av = static_cast<int64_t>(rng() % 201) - 100;
    if (rng() % 10 == 0) a.append_null();
    else a.append<int64_t>(av);
    b.append<int64_t>(static_cast<int64_t>(rng() % 11) - 5);  // zeros included
    if (rng() % 7 == 0) x.append_null();
    else x.append<double>(static_cast<double>(rng() % 1000) / 8.0 - 60.0);
  }
  Table t(Schema{{"a", TypeId::Int64, true, {}}, {"b", TypeId::Int64, false, {}}, {"x", TypeId::Float64, true, {}}},
          {a, b, x});

  const Column r1 = Expression::parse("a / b + 3 * a - b % 3").evaluate(t);
  const Column r2 = Expression::parse("7 / b").evaluate(t);
  const Column r3 = Expression::parse("x * 2 > a or b == 0").evaluate(t);
  const Column r4 = Expression::parse("if(x > 0, a, b) - 1.5").evaluate(t);
  ASSERT_EQ(r1.size(), rows);
  for (size_t i = 0; i < rows; ++i) {
    const bool a_ok = a.is_valid(i), x_ok = x.is_valid(i);
    const int64_t av = a_ok ? a.values<int64_t>()[i] : 0, bv = b.values<int64_t>()[i];
    const double xv = x_ok ? x.values<double>()[i] : 0;
    // r1: null when a is null or b is 0
    if (!a_ok || bv == 0) {
      EXPECT_FALSE(r1.is_valid(i)) << i;
    } else {
      ASSERT_TRUE(r1.is_valid(i)) << i;
      EXPECT_EQ(r1.values<int64_t>()[i], av / bv + 3 * av - bv % 3) << i;
    }
    EXPECT_EQ(r2.is_valid(i), bv != 0) << i;
    if (bv != 0) {
      EXPECT_EQ(r2.values<int64_t>()[i], 7 / bv) << i;
    }
    // r3: three-valued or
    const bool left_known = x_ok && a_ok;
    const bool left = left_known && xv * 2 > static_cast<double>(av);
    const bool right = bv == 0;
    if (right || (left_known && left)) {
      ASSERT_TRUE(r3.is_valid(i)) << i;
      EXPECT_EQ(r3.values<uint8_t>()[i], 1) << i;
    } else if (!left_known) {
      EXPECT_FALSE(r3.is_valid(i)) << i;
    } else {
      ASSERT_TRUE(r3.is_valid(i)) << i;
      EXPECT_EQ(r3.values<uint8_t>()[i], 0) << i;
    }
    // r4: null when the condition or the chosen branch is null
    if (!x_ok || (xv > 0 && !a_ok)) {
      EXPECT_FALSE(r4.is_valid(i)) << i;
    } else {
      ASSERT_TRUE(r4.is_valid(i)) << i;
      EXPECT_DOUBLE_EQ(r4.values<double>()[i], static_cast<double>(xv > 0 ? av : bv) - 1.5) << i;
    }
  }
}

// ------------------------------------------------------------------ errors

TEST(ExpressionErrors, ParseErrorsNameTheTextAndColumn) {
  EXPECT_EQ(parse_error("x +"), "expression 'x +': expected a value at column 4");
  EXPECT_EQ(parse_error("1 +* 2"), "expression '1 +* 2': expected a value at column 4");
  EXPECT_EQ(parse_error("(1 + 2"),
            "expression '(1 + 2': expected ')' to close the '(' at column 1, got end of expression at column 7");
  EXPECT_EQ(parse_error("1 2"), "expression '1 2': unexpected '2' after a complete expression at column 3");
  EXPECT_EQ(parse_error("a)"), "expression 'a)': unmatched ')' at column 2");
  EXPECT_EQ(parse_error("'abc"), "expression ''abc': unterminated string at column 1");
  EXPECT_EQ(parse_error("`abc + 1"), "expression '`abc + 1': unterminated `field name` at column 1");
  EXPECT_EQ(parse_error("a = 1"), "expression 'a = 1': '=' is not an operator (use == to compare) at column 3");
  EXPECT_EQ(parse_error("a && b"), "expression 'a && b': '&&' is not an operator (use and / or) at column 3");
  EXPECT_EQ(parse_error("1 < 2 < 3"),
            "expression '1 < 2 < 3': comparisons cannot be chained (join them with 'and') at column 7");
  EXPECT_EQ(parse_error("12x"), "expression '12x': malformed number '12x' at column 1");
  EXPECT_EQ(parse_error("99999999999999999999"),
            "expression '99999999999999999999': integer 99999999999999999999 is out of range for int64 at column 1");
  EXPECT_EQ(parse_error("a # b"), "expression 'a # b': unexpected character '#' at column 3");
  EXPECT_EQ(parse_error(""), "expression '': expected a value at column 1");
  EXPECT_EQ(parse_error("a and or b"), "expression 'a and or b': expected a value, got 'or' at column 7");
  EXPECT_EQ(parse_error("substr('a', 1)"), "expression 'substr('a', 1)': substr() takes 3 arguments, got 2 at column 1");
  EXPECT_EQ(parse_error("len()"), "expression 'len()': len() takes 1 argument, got 0 at column 1");
  EXPECT_EQ(parse_error("coalesce(a)"), "expression 'coalesce(a)': coalesce() takes at least 2 arguments, got 1 at column 1");
  EXPECT_EQ(parse_error("max(a b)"),
            "expression 'max(a b)': expected ',' or ')' in the arguments of max(), got 'b' at column 7");
  const std::string unknown = parse_error("1 + foo(2)");
  EXPECT_NE(unknown.find("expression '1 + foo(2)': unknown function 'foo' (functions: len, lower, upper"), std::string::npos)
      << unknown;
  EXPECT_NE(unknown.find("at column 5"), std::string::npos) << unknown;
}

TEST(ExpressionErrors, UnknownFieldNamesItAndListsTheSchema) {
  const std::string e = type_error("pricee > 3");
  EXPECT_EQ(e,
            "expression 'pricee > 3': unknown field 'pricee' (fields: name: string, price: float64?, qty: int64, "
            "small: int32, ratio: float32, active: bool?, note: string?) at column 1");
  EXPECT_NE(error_of([] { Expression::parse("qty + nope").evaluate(sample_table()); }).find("unknown field 'nope'"),
            std::string::npos);
  EXPECT_NE(error_of([] { Expression::parse("nope").evaluate_mask(sample_table()); }).find("unknown field 'nope'"),
            std::string::npos);
  EXPECT_NE(type_error("nope").find("unknown field 'nope'"), std::string::npos);
}

TEST(ExpressionErrors, TypeErrorsNameOperatorTypesAndColumn) {
  EXPECT_EQ(type_error("name + 1"),
            "expression 'name + 1': operator + needs numbers, got string and int64 (use concat(a, b) to join strings) at "
            "column 6");
  EXPECT_EQ(type_error("qty * active"), "expression 'qty * active': operator * needs numbers, got int64 and bool at column 5");
  EXPECT_EQ(type_error("qty == 'a'"), "expression 'qty == 'a'': operator == cannot compare int64 with string at column 5");
  EXPECT_EQ(type_error("len(qty)"), "expression 'len(qty)': len() needs a string, got int64 at column 1");
  EXPECT_EQ(type_error("qty and true"), "expression 'qty and true': operator and needs a bool, got int64 at column 5");
  EXPECT_EQ(type_error("not name"), "expression 'not name': operator not needs a bool, got string at column 1");
  EXPECT_EQ(type_error("-name"), "expression '-name': unary - needs a number, got string at column 1");
  EXPECT_EQ(type_error("if(qty, 1, 2)"), "expression 'if(qty, 1, 2)': the condition of if() needs a bool, got int64 at column 1");
  EXPECT_EQ(type_error("if(active, 1, 'a')"),
            "expression 'if(active, 1, 'a')': if() needs both branches of one type, got int64 and string at column 1");
  EXPECT_EQ(type_error("coalesce(price, 'a')"),
            "expression 'coalesce(price, 'a')': coalesce() needs arguments of one type, got float64, string at column 1");
  EXPECT_EQ(type_error("min(active, true)"),
            "expression 'min(active, true)': min() needs two numbers or two strings, got bool and bool at column 1");
  EXPECT_EQ(type_error("abs(name)"), "expression 'abs(name)': abs() needs a number, got string at column 1");
  EXPECT_EQ(type_error("substr(name, 1.5, 2)"),
            "expression 'substr(name, 1.5, 2)': the start of substr() needs an int64, got float64 at column 1");
}

TEST(ExpressionErrors, MaskNeedsABool) {
  EXPECT_EQ(error_of([] { Expression::parse("qty + 1").evaluate_mask(sample_table()); }),
            "expression 'qty + 1' gives int64, but a filter needs a bool condition");
  EXPECT_EQ(error_of([] { Expression::parse("name").evaluate_mask(sample_table()); }),
            "expression 'name' gives string, but a filter needs a bool condition");
}

TEST(ExpressionErrors, ListFieldsAreNotScalars) {
  Field items{"items", TypeId::List, false, {{"id", TypeId::Int64, false, {}}}};
  const Schema schema{items};
  EXPECT_EQ(Expression::parse("items").result_type(schema), TypeId::List);
  EXPECT_EQ(error_of([&] { Expression::parse("len(items)").result_type(schema); }),
            "expression 'len(items)': field 'items' is a list; expressions compute on scalar fields at column 5");
}

}  // namespace
}  // namespace sluice::pipeline
