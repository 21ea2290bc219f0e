// Chains of row operations (kernels/row_chain.cuh: filter, map/select, flatMap split) run on
// the CPU through HostExec, the same __host__ __device__ code the GPU runs, against the host
// operators applied step by step (Expression::evaluate_mask + Table::filter,
// Expression::evaluate, sluice::split_strings + Column::gather). Every final column must be
// the host's exactly: type, nullability, validity bitmap bytes, values bit for bit (null rows
// hold 0 on both sides), string offsets and bytes; and a column reported as an unchanged input
// must be one.
//
// Random chains of 1 to 5 steps over random tables of every column type cover the
// combinations; hand-written cases pin down gathers of each type (all-null sources, token
// sources with `ends`), empty results, passthrough maps and malformed steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/kernel_inputs.hpp"
#include "cuda/prune_row_chain.hpp"
#include "hash_join.cuh"
#include "host_exec.cuh"
#include "join_result.hpp"
#include "owned_column_on_host.cuh"
#include "pipeline/expression.hpp"
#include "row_chain.cuh"
#include "sort_rows.cuh"
#include "sluice/backend.hpp"
#include "sluice/column.hpp"

namespace sluice::gpu {
namespace {

using pipeline::Expression;

// ------------------------------------------------------------------ comparing columns

std::string describe(const Column& c) {
  return std::string(type_name(c.type())) + (c.nullable() ? " nullable" : "") + " of " + std::to_string(c.size()) + " rows";
}

/// The same column in the same bytes: nothing is allowed to differ, not even a value under a
/// null or a padding bit of the bitmap.
::testing::AssertionResult same_column(const Column& expected, const Column& actual) {
  if (expected.type() != actual.type() || expected.size() != actual.size() || expected.nullable() != actual.nullable())
    return ::testing::AssertionFailure() << "expected " << describe(expected) << ", got " << describe(actual);
  const size_t rows = expected.size();
  if (expected.nullable()) {
    const size_t bytes = (rows + 7) / 8;
    if (bytes && std::memcmp(expected.validity_bitmap(), actual.validity_bitmap(), bytes) != 0) {
      for (size_t r = 0; r < rows; ++r)
        if (expected.is_valid(r) != actual.is_valid(r))
          return ::testing::AssertionFailure() << describe(expected) << ": row " << r << " is " << (actual.is_valid(r) ? "valid" : "null");
      return ::testing::AssertionFailure() << describe(expected) << ": the validity bitmaps' padding bits differ";
    }
  }
  if (expected.type() == TypeId::String) {
    for (size_t r = 0; r < rows; ++r)
      if (expected.string_at(r) != actual.string_at(r))
        return ::testing::AssertionFailure() << describe(expected) << ": row " << r << " is '" << actual.string_at(r)
                                             << "', expected '" << expected.string_at(r) << "'";
    if (!std::equal(expected.offsets().begin(), expected.offsets().end(), actual.offsets().begin(), actual.offsets().end()) ||
        !std::equal(expected.chars().begin(), expected.chars().end(), actual.chars().begin(), actual.chars().end()))
      return ::testing::AssertionFailure() << describe(expected) << ": the same strings in other offsets or bytes";
    return ::testing::AssertionSuccess();
  }
  const size_t width = fixed_width(expected.type());
  for (size_t r = 0; r < rows; ++r)
    if (std::memcmp(expected.data() + r * width, actual.data() + r * width, width) != 0)
      return ::testing::AssertionFailure() << describe(expected) << ": row " << r << " differs ("
                                           << (expected.is_valid(r) ? "valid" : "null") << ")";
  return ::testing::AssertionSuccess();
}

std::vector<ColumnView> views_of(const Table& table) {
  std::vector<ColumnView> views;
  for (const Column& c : table.columns()) views.push_back(host_view(c));
  return views;
}

// ------------------------------------------------------------------ random tables

enum class Kind { Bool, Int, Float, Str };

Kind kind_of(TypeId t) {
  switch (t) {
    case TypeId::Bool: return Kind::Bool;
    case TypeId::Int32:
    case TypeId::Int64: return Kind::Int;
    case TypeId::Float32:
    case TypeId::Float64: return Kind::Float;
    default: return Kind::Str;
  }
}

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  template <class T> const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(below(static_cast<int>(v.size())))]; }

  /// Every column type, nullable and not, with nulls in runs now and then (whole bitmap bytes).
  Table table(size_t rows) {
    const Schema schema{{"i32", TypeId::Int32},          {"n_i32", TypeId::Int32, true},   {"i64", TypeId::Int64},
                        {"n_i64", TypeId::Int64, true},  {"f32", TypeId::Float32},         {"n_f32", TypeId::Float32, true},
                        {"f64", TypeId::Float64},        {"n_f64", TypeId::Float64, true}, {"b", TypeId::Bool},
                        {"n_b", TypeId::Bool, true},     {"s", TypeId::String},            {"n_s", TypeId::String, true}};
    std::vector<Column> columns;
    for (const Field& f : schema) {
      Column c(f.type, f.nullable);
      const double null_rate = pick<double>({0.0, 0.2, 0.5, 1.0});
      for (size_t r = 0; r < rows; ++r) {
        if (f.nullable && chance(null_rate)) {
          c.append_null();
          continue;
        }
        switch (f.type) {
          case TypeId::Int32: c.append<int32_t>(static_cast<int32_t>(integer())); break;
          case TypeId::Int64: c.append<int64_t>(integer()); break;
          case TypeId::Float32: c.append<float>(static_cast<float>(real())); break;
          case TypeId::Float64: c.append<double>(real()); break;
          case TypeId::Bool: c.append<uint8_t>(chance(0.5)); break;
          default: c.append_string(text()); break;
        }
      }
      columns.push_back(std::move(c));
    }
    return Table(schema, std::move(columns));
  }

  int64_t integer() {
    if (chance(0.1)) return pick<int64_t>({0, -1, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), INT32_MIN});
    return std::uniform_int_distribution<int64_t>(-20, 20)(rng_);
  }
  double real() {
    if (chance(0.1)) return pick<double>({0.0, -0.0, std::nan(""), INFINITY, -1.5, 2.5});
    return std::uniform_real_distribution<double>(-50, 50)(rng_);
  }
  /// Short texts that split: commas (empty tokens too), whitespace runs, both cases, bytes
  /// above 0x7f; "ab" for the two-byte separator.
  std::string text() {
    static const std::string alphabet = {'a', 'b', 'A', 'B', 'z', ',', ',', ' ', ' ', '\t', '\n', '-', '\xe9', '\0'};
    if (chance(0.1)) return pick<std::string>({"", ",", " ", "a,b,,c", "  lead and trail  ", "abab", "x"});
    const size_t n = static_cast<size_t>(below(chance(0.1) ? 30 : 7));
    std::string s;
    for (size_t k = 0; k < n; ++k) s += pick<char>({alphabet.begin(), alphabet.end()});
    return s;
  }


 private:
  std::mt19937_64 rng_;
};

// ------------------------------------------------------------------ random expressions

/// Well-typed expressions over the fields of one schema, all of which compile (no text of a
/// float and no null literal); a bare field reference does not compile, and the caller asks
/// again.
class ExpressionGenerator {
 public:
  ExpressionGenerator(Generator& g, const Schema& schema) : g_(g), schema_(schema) {}

  std::string next(Kind kind) {
    nodes_ = 0;
    return gen(kind, 0);
  }

 private:
  std::vector<std::string> fields_of(Kind kind) const {
    std::vector<std::string> names;
    for (const Field& f : schema_)
      if (kind_of(f.type) == kind) names.push_back(f.name);
    return names;
  }

  std::string leaf(Kind kind) {
    const std::vector<std::string> fields = fields_of(kind);
    if (!fields.empty() && g_.chance(0.8)) return g_.pick(fields);
    switch (kind) {
      case Kind::Bool: return g_.pick<std::string>({"true", "false"});
      case Kind::Int: return std::to_string(g_.integer() % 7);
      case Kind::Float: return g_.pick<std::string>({"1.5", "-0.25", "3.0"});
      default: return g_.pick<std::string>({"'a'", "'B,b'", "''", "' x '"});
    }
  }

  std::string gen(Kind kind, int depth) {
    ++nodes_;
    if (depth >= 3 || nodes_ > 14 || g_.chance(0.15 + 0.2 * depth)) return leaf(kind);
    const int d = depth + 1;
    auto op = [&](Kind k, const std::vector<std::string>& ops) { return "(" + gen(k, d) + " " + g_.pick(ops) + " " + gen(k, d) + ")"; };
    switch (kind) {
      case Kind::Bool:
        switch (g_.below(8)) {
          case 0: return op(g_.chance(0.5) ? Kind::Int : Kind::Float, {"==", "!=", "<", "<=", ">", ">="});
          case 1: return op(Kind::Str, {"==", "<", ">="});
          case 2: return g_.pick<std::string>({"contains", "starts_with", "ends_with"}) + "(" + gen(Kind::Str, d) + ", " +
                         g_.pick<std::string>({"'a'", "','", "'b'", "''"}) + ")";
          case 3: return "is_null(" + gen(static_cast<Kind>(g_.below(4)), d) + ")";
          case 4: return "not " + gen(Kind::Bool, d);
          case 5: return op(Kind::Bool, {"and", "or"});
          case 6: return "(len(" + gen(Kind::Str, d) + ") < " + std::to_string(g_.below(6)) + ")";
          default: return "(" + gen(Kind::Int, d) + " % 3 == 0)";
        }
      case Kind::Int:
        switch (g_.below(7)) {
          case 0: return op(Kind::Int, {"+", "-", "*", "/", "%"});
          case 1: return "len(" + gen(Kind::Str, d) + ")";
          case 2: return "abs(" + gen(Kind::Int, d) + ")";
          case 3: return "if(" + gen(Kind::Bool, d) + ", " + gen(Kind::Int, d) + ", " + gen(Kind::Int, d) + ")";
          case 4: return "coalesce(" + gen(Kind::Int, d) + ", " + gen(Kind::Int, d) + ")";
          case 5: return "int(" + gen(Kind::Float, d) + ")";
          default: return leaf(Kind::Int);
        }
      case Kind::Float:
        switch (g_.below(6)) {
          case 0: return op(Kind::Float, {"+", "-", "*", "/"});
          case 1: return "(" + gen(Kind::Float, d) + " * " + gen(Kind::Int, d) + ")";
          case 2: return g_.pick<std::string>({"floor", "round", "abs"}) + "(" + gen(Kind::Float, d) + ")";
          case 3: return "min(" + gen(Kind::Float, d) + ", " + gen(Kind::Float, d) + ")";
          case 4:  // float() of a string: mostly null for these texts; the literals parse or fail on purpose
            return "float(" +
                   (g_.chance(0.5) ? gen(Kind::Str, d)
                                   : g_.pick<std::string>({"'1.5e300'", "'-2e-324'", "' 1'", "'0.30000000000000004'", "'nan(x)'", "'1e'"})) +
                   ")";
          default: return leaf(Kind::Float);
        }
      default:
        switch (g_.below(8)) {
          case 5: return "concat(" + gen(Kind::Str, d) + ", " + g_.pick<std::string>({"','", "' '", "'-'"}) + ", " + gen(Kind::Int, d) + ")";
          case 6: return "string(" + gen(Kind::Bool, d) + ")";
          case 0: return g_.pick<std::string>({"lower", "upper", "trim"}) + "(" + gen(Kind::Str, d) + ")";
          case 1: return "substr(" + gen(Kind::Str, d) + ", " + std::to_string(g_.below(5) - 2) + ", " + std::to_string(g_.below(4)) + ")";
          case 2: return "if(" + gen(Kind::Bool, d) + ", " + gen(Kind::Str, d) + ", " + gen(Kind::Str, d) + ")";
          case 3: return "coalesce(" + gen(Kind::Str, d) + ", " + gen(Kind::Str, d) + ")";
          case 4: return "max(" + gen(Kind::Str, d) + ", " + gen(Kind::Str, d) + ")";
          default: return leaf(Kind::Str);
        }
    }
  }

  Generator& g_;
  const Schema& schema_;
  int nodes_ = 0;
};

// ------------------------------------------------------------------ chains and their reference

/// A chain's steps (pointing into `programs`) and, step by step, what the host operators make
/// of the input table; `origin` is, per final column, the input column it still is unchanged
/// (the rows never changed: filters kept every row, splits saw no rows), or -1.
struct Chain {
  std::deque<RowProgram> programs;
  std::vector<RowChainStep> steps;
  std::vector<std::string> described;
  Table reference;
  std::vector<int32_t> origin;
};

Table table_of(std::vector<Column> columns, const std::vector<std::string>& names) {
  std::vector<Field> fields;
  for (size_t k = 0; k < columns.size(); ++k) fields.push_back(Field{names[k], columns[k].type(), columns[k].nullable(), {}});
  return Table(Schema(std::move(fields)), std::move(columns));
}

class ChainBuilder {
 public:
  ChainBuilder(Generator& g, const Table& input) : g_(g) {
    chain_.reference = input;
    for (size_t k = 0; k < input.num_columns(); ++k) chain_.origin.push_back(static_cast<int32_t>(k));
  }

  /// A compiled expression of @p kind over the current schema, with its program stored.
  std::pair<Expression, const RowProgram*> expression(Kind kind) {
    ExpressionGenerator e(g_, chain_.reference.schema());
    for (;;) {
      Expression expr = Expression::parse(e.next(kind));
      if (std::optional<RowProgram> p = expr.compile(chain_.reference.schema())) {
        chain_.programs.push_back(std::move(*p));
        return {expr, &chain_.programs.back()};
      }
    }
  }

  void filter() {
    auto [expr, program] = expression(Kind::Bool);
    RowChainStep step;
    step.kind = RowChainStep::kFilter;
    step.programs = {program};
    chain_.steps.push_back(step);
    chain_.described.push_back("filter " + expr.text());
    const std::vector<uint8_t> mask = expr.evaluate_mask(chain_.reference);
    if (std::count(mask.begin(), mask.end(), uint8_t{1}) != static_cast<std::ptrdiff_t>(mask.size())) forget_origins();
    chain_.reference = chain_.reference.filter(mask);
  }

  /// Outputs are kept columns (reordered, repeated, dropped) and computed ones, strings too;
  /// @p select_only keeps columns only.
  void map(bool select_only) {
    const Table& in = chain_.reference;
    RowChainStep step;
    step.kind = RowChainStep::kMap;
    std::vector<Column> columns;
    std::vector<std::string> names;
    std::vector<int32_t> origin;
    std::string text = select_only ? "select" : "map";
    const int outputs = 1 + g_.below(5);
    for (int k = 0; k < outputs; ++k) {
      names.push_back("c" + std::to_string(next_name_++));
      if (in.num_columns() > 0 && (select_only || g_.chance(0.45))) {
        const int32_t source = g_.below(static_cast<int>(in.num_columns()));
        step.sources.push_back(source);
        columns.push_back(in.column(static_cast<size_t>(source)));
        origin.push_back(chain_.origin[static_cast<size_t>(source)]);
        text += " #" + std::to_string(source);
        continue;
      }
      // A program used twice is one column made once (and copied for the second output).
      if (!step.programs.empty() && g_.chance(0.1)) {
        const int32_t p = g_.below(static_cast<int>(step.programs.size()));
        step.sources.push_back(-p - 1);
        columns.push_back(columns[static_cast<size_t>(std::find(step.sources.begin(), step.sources.end(), -p - 1) - step.sources.begin())]);
        origin.push_back(-1);
        text += " again(" + std::to_string(p) + ")";
        continue;
      }
      auto [expr, program] = expression(g_.chance(0.35) ? Kind::Str : static_cast<Kind>(g_.below(3)));
      step.programs.push_back(program);
      step.sources.push_back(-static_cast<int32_t>(step.programs.size()));
      columns.push_back(expr.evaluate(in));
      origin.push_back(-1);
      text += " [" + expr.text() + "]";
    }
    chain_.steps.push_back(step);
    chain_.described.push_back(text);
    chain_.origin = std::move(origin);
    chain_.reference = table_of(std::move(columns), names);
  }

  /// False when there is no string column to split.
  bool split() {
    const Table& in = chain_.reference;
    std::vector<int32_t> strings;
    for (size_t k = 0; k < in.num_columns(); ++k)
      if (in.column(k).type() == TypeId::String) strings.push_back(static_cast<int32_t>(k));
    if (strings.empty()) return false;
    RowChainStep step;
    step.kind = RowChainStep::kSplit;
    step.split_field = g_.pick(strings);
    step.separator = g_.pick<std::string>({"", ",", ",", " ", "ab"});
    chain_.steps.push_back(step);
    chain_.described.push_back("split #" + std::to_string(step.split_field) + " at '" + step.separator + "'");
    SplitStrings split = sluice::split_strings(in.column(static_cast<size_t>(step.split_field)), step.separator);
    std::vector<Column> columns;
    std::vector<std::string> names;
    for (size_t k = 0; k < in.num_columns(); ++k) {
      names.push_back(in.schema()[k].name);
      columns.push_back(static_cast<int32_t>(k) == step.split_field ? std::move(split.tokens) : in.column(k).gather(split.source_rows));
    }
    if (in.num_rows() > 0) forget_origins();
    chain_.origin[static_cast<size_t>(step.split_field)] = -1;
    chain_.reference = table_of(std::move(columns), names);
    return true;
  }

  void random_step() {
    const int kind = g_.below(10);
    if (kind < 3) return filter();
    if (kind < 5 && split()) return;
    map(kind == 9);
  }

  Chain take() { return std::move(chain_); }

 private:
  void forget_origins() { std::fill(chain_.origin.begin(), chain_.origin.end(), -1); }

  Generator& g_;
  Chain chain_;
  int next_name_ = 0;
};

std::string describe(const Chain& chain) {
  std::string out;
  for (size_t s = 0; s < chain.described.size(); ++s) out += "\n  step " + std::to_string(s) + ": " + chain.described[s];
  return out;
}

/// The chain on HostExec against its reference, column for column.
::testing::AssertionResult same_as_reference(const Table& input, const Chain& chain) {
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), chain.steps);
  const Table& expected = chain.reference;
  if (result.rows != expected.num_rows() || result.input_column.size() != expected.num_columns() ||
      result.columns.size() != expected.num_columns())
    return ::testing::AssertionFailure() << "chain of " << input.num_rows() << " rows gives " << result.rows << " rows, "
                                         << result.input_column.size() << " columns; the host " << expected.num_rows()
                                         << " rows, " << expected.num_columns() << " columns" << describe(chain);
  for (size_t k = 0; k < expected.num_columns(); ++k) {
    const int32_t from = result.input_column[k];
    if (from != chain.origin[k])
      return ::testing::AssertionFailure() << "column " << k << " is reported as input " << from << ", but is "
                                           << (chain.origin[k] < 0 ? "a new column" : "input " + std::to_string(chain.origin[k]))
                                           << describe(chain);
    if (from >= 0 && (result.columns[k].rows != 0 || result.columns[k].values.size() != 0 || result.columns[k].offsets.size() != 0))
      return ::testing::AssertionFailure() << "column " << k << " is an unchanged input but holds buffers" << describe(chain);
    const Column actual = from >= 0 ? input.column(static_cast<size_t>(from)) : to_column(result.columns[k]);
    if (::testing::AssertionResult same = same_column(expected.column(k), actual); !same)
      return ::testing::AssertionFailure() << "column " << k << " of " << input.num_rows() << " input rows: " << same.message()
                                           << describe(chain);
  }
  return ::testing::AssertionSuccess();
}

TEST(RowChainOnHost, RandomChainsEqualTheHostOperators) {
  Generator g(20240611);
  size_t chains = 0, input_rows = 0, output_rows = 0;
  size_t steps_of_kind[3] = {0, 0, 0};
  const std::vector<size_t> sizes = {0, 1, 2, 7, 9, 63, 65, 333, 1001};
  for (int round = 0; round < 400; ++round) {
    const size_t rows = round % 40 == 39 ? 20001 : g.pick(sizes);
    const Table input = g.table(rows);
    ChainBuilder builder(g, input);
    const int length = 1 + g.below(5);
    for (int s = 0; s < length; ++s) builder.random_step();
    const Chain chain = builder.take();
    ASSERT_TRUE(same_as_reference(input, chain)) << "round " << round;
    ++chains;
    for (const RowChainStep& step : chain.steps) ++steps_of_kind[step.kind];
    input_rows += rows;
    output_rows += chain.reference.num_rows();
  }
  std::printf("[ chains   ] %zu random chains (%zu filters, %zu maps, %zu splits), %zu input rows, %zu output rows\n", chains,
              steps_of_kind[0], steps_of_kind[1], steps_of_kind[2], input_rows, output_rows);
}

// ------------------------------------------------------------------ pruned chains

/// Output column @p k of a chain's result over @p inputs (the batch's columns it read).
Column output_column(const RowChainResult<HostExec>& result, size_t k, const Table& input, const std::vector<size_t>& inputs) {
  const int32_t from = result.input_column[k];
  return from >= 0 ? input.column(inputs[static_cast<size_t>(from)]) : to_column(result.columns[k]);
}

/// Runs @p steps whole and pruned to @p needed; the needed columns must be equal.
::testing::AssertionResult pruned_gives_the_needed_columns(const Table& input, const std::vector<RowChainStep>& steps,
                                                          const std::vector<bool>& needed, size_t* inputs_read = nullptr) {
  HostExec exec;
  std::vector<size_t> all(input.num_columns());
  for (size_t c = 0; c < all.size(); ++c) all[c] = c;
  const RowChainResult<HostExec> whole = run_row_chain(exec, views_of(input), input.num_rows(), steps);
  const PrunedRowChain pruned = prune_row_chain(input.num_columns(), steps, needed);
  if (inputs_read) *inputs_read = pruned.inputs.size();
  std::vector<ColumnView> views;
  for (size_t c : pruned.inputs) views.push_back(host_view(input.column(c)));
  const RowChainResult<HostExec> cut = run_row_chain(exec, views, input.num_rows(), pruned.steps);
  if (cut.rows != whole.rows)
    return ::testing::AssertionFailure() << "pruned: " << cut.rows << " rows, whole: " << whole.rows;
  for (size_t k = 0; k < needed.size(); ++k) {
    if (!needed[k]) continue;
    const int32_t at = pruned.output_of[k];
    if (at < 0 || static_cast<size_t>(at) >= cut.input_column.size())
      return ::testing::AssertionFailure() << "needed column " << k << " is not among the pruned outputs (" << at << ")";
    if (::testing::AssertionResult same =
            same_column(output_column(whole, k, input, all), output_column(cut, static_cast<size_t>(at), input, pruned.inputs));
        !same)
      return ::testing::AssertionFailure() << "column " << k << ": " << same.message();
  }
  return ::testing::AssertionSuccess();
}

TEST(RowChainOnHost, PrunedChainsGiveTheColumnsTheirConsumersRead) {
  Generator g(99);
  size_t chains = 0, columns = 0, read = 0;
  for (int round = 0; round < 300; ++round) {
    const Table input = g.table(g.pick(std::vector<size_t>{0, 1, 9, 65, 333, 1001}));
    ChainBuilder builder(g, input);
    const int length = 1 + g.below(5);
    for (int s = 0; s < length; ++s) builder.random_step();
    const Chain chain = builder.take();
    std::vector<bool> needed(chain.reference.num_columns());
    for (size_t k = 0; k < needed.size(); ++k) needed[k] = g.below(3) == 0;
    needed[g.below(static_cast<int>(needed.size()))] = true;
    size_t inputs_read = 0;
    ASSERT_TRUE(pruned_gives_the_needed_columns(input, chain.steps, needed, &inputs_read)) << "round " << round << describe(chain);
    ++chains;
    columns += input.num_columns();
    read += inputs_read;
  }
  std::printf("[ pruned   ] %zu random chains read %zu of their inputs' %zu columns\n", chains, read, columns);
}

// ------------------------------------------------------------------ gathers

Column gathered(const ColumnView& view, const std::vector<int64_t>& rows) {
  HostExec exec;
  return to_column(gather_column(exec, view, rows.data(), rows.size()));
}

TEST(RowChainOnHost, GatherEveryTypeAsTheHostDoes) {
  Generator g(7);
  const Table table = g.table(203);
  const std::vector<std::vector<int64_t>> row_lists = {
      {}, {0}, {202, 0, 5, 5, 5, 17, 201}, {3, 2, 1, 0, 9, 10, 11, 12, 13, 14, 15, 16, 17}};
  std::vector<int64_t> every_other;
  for (int64_t r = 202; r >= 0; r -= 2) every_other.push_back(r);
  for (const Column& c : table.columns()) {
    for (const std::vector<int64_t>& rows : row_lists) EXPECT_TRUE(same_column(c.gather(rows), gathered(host_view(c), rows))) << describe(c);
    EXPECT_TRUE(same_column(c.gather(every_other), gathered(host_view(c), every_other))) << describe(c);
  }
}

// cogroup's keys of both sides: one column, the first side's rows then the second's, as the
// host appends them; every type, either side empty, bitmaps on one side only.
TEST(RowChainOnHost, ConcatenatedColumnsEqualTheHostsAppend) {
  Generator g(13);
  const Table first = g.table(57), second = g.table(31), none = g.table(0);
  HostExec exec;
  for (size_t k = 0; k < first.num_columns(); ++k) {
    const Column& a = first.column(k);
    if (a.type() == TypeId::List) continue;
    for (const Column* b : {&second.column(k), &none.column(k)}) {
      for (bool nullable : {false, true}) {
        for (bool swapped : {false, true}) {
          const Column& x = swapped ? *b : a;
          const Column& y = swapped ? a : *b;
          Column want = x.gather({});
          if (nullable || x.nullable() || y.nullable()) want.make_nullable();
          want.append_all(x);
          want.append_all(y);
          const bool any_nullable = nullable || x.nullable() || y.nullable();  // as the backends ask
          const Column got = to_column(concatenate_columns(exec, host_view(x), x.size(), host_view(y), y.size(), any_nullable));
          EXPECT_TRUE(same_column(want, got)) << describe(a) << (nullable ? ", nullable" : "") << (swapped ? ", swapped" : "");
          EXPECT_EQ(got.nullable(), want.nullable()) << describe(a);
        }
      }
    }
  }
  // Sides of differing nullability, with and without nulls, and empty.
  Column plain(TypeId::Int64), with_nulls(TypeId::Int64, true), without_nulls(TypeId::Int64, true), empty_nullable(TypeId::Int64, true);
  for (int64_t v : {4, -2, 9}) plain.append<int64_t>(v), without_nulls.append<int64_t>(v * 10);
  with_nulls.append<int64_t>(7), with_nulls.append_null(), with_nulls.append<int64_t>(8);
  for (const Column* x : {&plain, &with_nulls, &without_nulls, &empty_nullable}) {
    for (const Column* y : {&plain, &with_nulls, &without_nulls, &empty_nullable}) {
      Column want = x->gather({});
      if (x->nullable() || y->nullable()) want.make_nullable();
      want.append_all(*x);
      want.append_all(*y);
      const Column got = to_column(concatenate_columns(exec, host_view(*x), x->size(), host_view(*y), y->size(),
                                                       x->nullable() || y->nullable()));
      EXPECT_TRUE(same_column(want, got)) << x->size() << " rows and " << y->size() << " rows";
      EXPECT_EQ(got.nullable(), want.nullable()) << x->size() << " rows and " << y->size() << " rows";
    }
  }
  Column ints(TypeId::Int64), words(TypeId::String);
  EXPECT_THROW(concatenate_columns(exec, host_view(ints), 0, host_view(words), 0, false), Error);
}

TEST(RowChainOnHost, GatherOfAllNullColumnsHoldsZerosAndNoBytes) {
  for (TypeId type : {TypeId::Bool, TypeId::Int32, TypeId::Int64, TypeId::Float32, TypeId::Float64, TypeId::String}) {
    Column c(type, true);
    for (int r = 0; r < 19; ++r) c.append_null();
    const std::vector<int64_t> rows = {18, 0, 3, 3, 9, 10, 11, 12, 13};
    const Column out = gathered(host_view(c), rows);
    EXPECT_TRUE(same_column(c.gather(rows), out)) << type_name(type);
    EXPECT_EQ(out.null_count(), rows.size());
  }
}

TEST(RowChainOnHost, GatherOfNonNullableColumnsHasNoBitmap) {
  Column c(TypeId::Int64);
  for (int64_t v : {5, 6, 7}) c.append<int64_t>(v);
  const Column out = gathered(host_view(c), {2, 2, 0});
  EXPECT_FALSE(out.nullable());
  EXPECT_EQ(std::vector<int64_t>(out.values<int64_t>().begin(), out.values<int64_t>().end()), (std::vector<int64_t>{7, 7, 5}));
}

TEST(RowChainOnHost, GatherOfTokenSpansMakesCompactStrings) {
  // Spans of one text, with gaps (separators) between them, as split and parse make them.
  const std::string text = "hello world,,foo  bar";
  const std::vector<int32_t> offsets = {0, 6, 12, 13, 18, 21};
  const std::vector<int32_t> ends = {5, 11, 12, 16, 21};
  const std::vector<uint8_t> validity = {0b11011};  // span 2 is null
  ColumnView view;
  view.type = kString;
  view.offsets = offsets.data();
  view.ends = ends.data();
  view.chars = text.data();
  const std::vector<int64_t> rows = {4, 0, 2, 3, 1, 1};
  Column expected(TypeId::String);
  for (const char* s : {"bar", "hello", "", "foo", "world", "world"}) expected.append_string(s);
  EXPECT_TRUE(same_column(expected, gathered(view, rows)));

  view.validity = validity.data();
  Column expected_nullable(TypeId::String, true);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] == 2) expected_nullable.append_null();
    else expected_nullable.append_string(expected.string_at(i));
  }
  EXPECT_TRUE(same_column(expected_nullable, gathered(view, rows)));
}

// transform's sort_by and limit: the kernel's order gathers the same rows, byte for byte, as
// the host's stable sort, for every key type (NaN, -0.0, nulls, bytes above 0x7f, many ties),
// one to three keys in either order, and limits below, at and above the rows.
// A join's result columns gathered by the kernel from the pairs the device join finds, against
// join_tables on the host: every kind, every column type, one and two keys (a key and its
// nullable twin are of one type), sides of 0 to 60 rows.
TEST(RowChainOnHost, JoinResultColumnsEqualTheHostJoin) {
  Generator g(41);
  size_t rows_gathered = 0, null_filled = 0;
  for (int round = 0; round < 400; ++round) {
    const Table left = g.table(static_cast<size_t>(g.below(61)));
    const Table right = g.table(static_cast<size_t>(g.below(61)));
    std::vector<size_t> left_keys, right_keys;
    for (int k = 0; k < 1 + g.below(2); ++k) {
      const size_t f = static_cast<size_t>(g.below(static_cast<int>(left.num_columns())));
      if (std::find(left_keys.begin(), left_keys.end(), f) != left_keys.end()) continue;
      left_keys.push_back(f);
      right_keys.push_back(f ^ static_cast<size_t>(g.below(2)));  // itself or its twin
    }
    const auto kind = static_cast<sluice::JoinKind>(g.below(4));
    const Table want = sluice::join_tables(left, left_keys, right, right_keys, kind);
    std::vector<ColumnView> lk, rk;
    for (size_t k : left_keys) lk.push_back(host_view(left.column(k)));
    for (size_t k : right_keys) rk.push_back(host_view(right.column(k)));
    HostExec exec;
    const JoinPairs pairs = join_on_device(exec, lk, left.num_rows(), rk, right.num_rows(), static_cast<JoinKind>(kind));
    const size_t n = pairs.left_rows.size();
    ASSERT_EQ(n, want.num_rows()) << "round " << round;
    const std::vector<JoinResultColumn> result = join_result_columns(left.schema(), left_keys, right.schema(), right_keys, kind);
    ASSERT_EQ(result.size(), want.num_columns());
    for (size_t o = 0; o < result.size(); ++o) {
      const JoinResultColumn& c = result[o];
      ASSERT_EQ(c.field, want.schema()[o]) << "round " << round;
      const int32_t from = c.from == JoinResultColumn::From::Keys ? kJoinFromKeys
                           : c.from == JoinResultColumn::From::Left ? kJoinFromLeft
                                                                     : kJoinFromRight;
      const ColumnView l = from == kJoinFromRight ? ColumnView{} : host_view(left.column(c.left_field));
      const ColumnView r = from == kJoinFromLeft ? ColumnView{} : host_view(right.column(c.right_field));
      const Column got = to_column(gather_join_column(exec, l, left.num_rows(), r, from, c.field.nullable, pairs.left_rows.data(),
                                                      pairs.right_rows.data(), pairs.rows_with_left, n));
      ASSERT_TRUE(same_column(want.column(o), got)) << "round " << round << ", kind " << static_cast<int>(kind) << ", column " << c.field.name;
    }
    rows_gathered += n;
    null_filled += n - pairs.rows_with_left + static_cast<size_t>(std::count(pairs.right_rows.begin(), pairs.right_rows.end(), -1));
  }
  std::printf("[ joins    ] %zu result rows gathered, %zu of them with one side null\n", rows_gathered, null_filled);
  EXPECT_GT(null_filled, 1000u);
  EXPECT_GT(rows_gathered - null_filled, 1000u);
}

TEST(RowChainOnHost, AJoinResultColumnOfKeysOfTwoTypesIsAnError) {
  Column a(TypeId::Int64), b(TypeId::String);
  a.append<int64_t>(1);
  b.append_string("1");
  const std::vector<int64_t> left_at = {0, -1}, right_at = {-1, 0};
  HostExec exec;
  EXPECT_THROW(
      {
        try {
          gather_join_column(exec, host_view(a), 1, host_view(b), kJoinFromKeys, true, left_at.data(), right_at.data(), 1, 2);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("left key column is of type"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
}

TEST(RowChainOnHost, SortsEqualTheHostSort) {
  Generator g(31);
  size_t radix_sorts = 0, merge_sorts = 0, rows_sorted = 0;
  for (int round = 0; round < 300; ++round) {
    const Table t = g.table(static_cast<size_t>(g.below(150)));
    std::vector<SortKey> keys(static_cast<size_t>(g.below(4)));
    for (SortKey& k : keys) k = SortKey{static_cast<size_t>(g.below(static_cast<int>(t.num_columns()))), g.chance(0.5)};
    const int64_t limit = g.chance(0.4) ? -1 : g.below(160);
    std::vector<SortKeyView> views;
    for (const SortKey& k : keys) views.push_back(SortKeyView{host_view(t.column(k.column)), k.descending ? 1 : 0});
    HostExec exec;
    const SortedRows<HostExec> sorted = sort_rows(exec, views, t.num_rows(), limit);
    const std::vector<int64_t> order(sorted.order.data(), sorted.order.data() + sorted.rows);
    const Table want = sluice::sort_rows(t, keys, limit);
    ASSERT_EQ(order.size(), want.num_rows()) << "round " << round;
    const Table got = t.gather(order);
    for (size_t c = 0; c < t.num_columns(); ++c)
      ASSERT_TRUE(same_column(want.column(c), got.column(c))) << "round " << round << ", " << t.schema()[c].name;
    if (t.num_rows() < 2 || sorted.rows == 0 || keys.empty()) continue;  // nothing was sorted
    const bool radix = keys.size() == 1 && views[0].column.type != kString && views[0].column.validity == nullptr;
    ++(radix ? radix_sorts : merge_sorts);
    rows_sorted += t.num_rows();
  }
  std::printf("[ sorts    ] %zu radix and %zu merge sorts of %zu rows in all\n", radix_sorts, merge_sorts, rows_sorted);
  EXPECT_GT(radix_sorts, 20u);
  EXPECT_GT(merge_sorts, 100u);
}

// The order itself, on a fixed table: every special value of each type, ascending and
// descending, through the radix path (one key, no bitmap) and the merge path (a bitmap).
TEST(RowChainOnHost, SortOrderOfSpecialValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<double> doubles = {1.5, -nan, -inf, 0.0, nan, -0.0, inf, -2.0, 0.0};
  const std::vector<float> floats = {1.5f, -static_cast<float>(nan), -static_cast<float>(inf), 0.0f, static_cast<float>(nan), -0.0f,
                                     static_cast<float>(inf), -2.0f, 0.0f};
  const std::vector<int32_t> ints = {5, INT32_MIN, -1, 0, INT32_MAX, 0, -1, 7, INT32_MIN};
  const std::vector<uint8_t> bools = {1, 0, 255, 2, 0, 1, 2, 255, 1};  // raw bytes, ordered as numbers
  // Ties keep their input order in both directions: descending reverses the order of the
  // runs of equal keys, not the rows within a run.
  struct Case {
    const char* name;
    Column column;
    std::vector<int64_t> ascending;
    std::vector<int64_t> descending;
  };
  auto column_of = [](auto values, TypeId type) {
    Column c(type);
    for (auto v : values) c.append(v);
    return c;
  };
  const std::vector<Case> cases = {
      // -inf, -2, -0.0 = 0.0 = 0.0 (input order), 1.5, inf, NaN = -NaN (input order)
      {"float64", column_of(doubles, TypeId::Float64), {2, 7, 3, 5, 8, 0, 6, 1, 4}, {1, 4, 6, 0, 3, 5, 8, 7, 2}},
      {"float32", column_of(floats, TypeId::Float32), {2, 7, 3, 5, 8, 0, 6, 1, 4}, {1, 4, 6, 0, 3, 5, 8, 7, 2}},
      {"int32", column_of(ints, TypeId::Int32), {1, 8, 2, 6, 3, 5, 0, 7, 4}, {4, 7, 0, 3, 5, 2, 6, 1, 8}},
      {"bool bytes", column_of(bools, TypeId::Bool), {1, 4, 0, 5, 8, 3, 6, 2, 7}, {2, 7, 3, 6, 0, 5, 8, 1, 4}},
  };
  for (const Case& c : cases) {
    for (const bool descending : {false, true}) {
      const std::vector<int64_t>& want = descending ? c.descending : c.ascending;
      const Table t(Schema{{"x", c.column.type()}}, {c.column});
      const std::vector<SortKey> keys = {SortKey{0, descending}};
      const Table host = sluice::sort_rows(t, keys, -1);
      EXPECT_TRUE(same_column(t.column(0).gather(want), host.column(0))) << c.name << (descending ? " desc" : " asc") << " on the host";
      HostExec exec;
      const SortedRows<HostExec> radix = sort_rows(exec, {SortKeyView{host_view(t.column(0)), descending}}, t.num_rows(), -1);
      EXPECT_EQ(std::vector<int64_t>(radix.order.data(), radix.order.data() + radix.rows), want) << c.name << " radix";
      // With a bitmap (no null in it), the same key goes through the comparator.
      Column nullable = c.column;
      nullable.make_nullable();
      const Table n(Schema{{"x", c.column.type(), true}}, {nullable});
      const SortedRows<HostExec> merge = sort_rows(exec, {SortKeyView{host_view(n.column(0)), descending}}, n.num_rows(), -1);
      EXPECT_EQ(std::vector<int64_t>(merge.order.data(), merge.order.data() + merge.rows), want) << c.name << " merge";
    }
  }
  // Nulls go first ascending and last descending; a limit keeps the first rows of the order.
  Column with_nulls(TypeId::Int64, true);
  for (const Value& v : std::vector<Value>{int64_t{3}, Value{}, int64_t{1}, Value{}, int64_t{2}}) with_nulls.append_value(v);
  const Table t(Schema{{"x", TypeId::Int64, true}}, {with_nulls});
  const std::vector<SortKey> asc = {SortKey{0, false}}, desc = {SortKey{0, true}};
  EXPECT_EQ(sluice::sort_rows(t, asc, 3), t.gather(std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(sluice::sort_rows(t, desc, -1), t.gather(std::vector<int64_t>{0, 4, 2, 1, 3}));
}

TEST(RowChainOnHost, ASortKeyThatIsNotAColumnTypeIsAnError) {
  SortKeyView list_key;
  list_key.column.type = 99;
  HostExec exec;
  EXPECT_THROW(sort_rows(exec, {list_key}, 3, -1), Error);
  const Table t(Schema{{"x", TypeId::Int64}}, {Column(TypeId::Int64)});
  const std::vector<SortKey> out_of_range = {SortKey{1, false}};
  EXPECT_THROW(sluice::sort_rows(t, out_of_range, -1), Error);
}

TEST(RowChainOnHost, StringOffsetsThatWouldOverflowAreAnError) {
  HostExec exec;
  std::vector<int32_t> offsets = {INT32_MAX, 1, 0};
  try {
    lengths_to_offsets(exec, offsets.data(), 2, "gather of a string column");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2147483648 bytes"), std::string::npos) << e.what();
  }
}

TEST(RowChainOnHost, PackValidityWritesZeroPaddingBits) {
  HostExec exec;
  const std::vector<uint8_t> valid = {1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 2};
  const auto bitmap = pack_validity(exec, valid.data(), valid.size());
  ASSERT_EQ(bitmap.size(), 2u);
  EXPECT_EQ(bitmap.data()[0], 0b10001101);
  EXPECT_EQ(bitmap.data()[1], 0b101);
}

// ------------------------------------------------------------------ hand-written chains

/// A compiled program kept alive for a chain.
const RowProgram* compiled(std::deque<RowProgram>& store, const std::string& text, const Schema& schema) {
  std::optional<RowProgram> p = Expression::parse(text).compile(schema);
  EXPECT_TRUE(p.has_value()) << text;
  store.push_back(std::move(*p));
  return &store.back();
}

RowChainStep filter_step(const RowProgram* predicate) {
  RowChainStep s;
  s.kind = RowChainStep::kFilter;
  s.programs = {predicate};
  return s;
}
RowChainStep map_step(std::vector<const RowProgram*> programs, std::vector<int32_t> sources) {
  RowChainStep s;
  s.kind = RowChainStep::kMap;
  s.programs = std::move(programs);
  s.sources = std::move(sources);
  return s;
}
RowChainStep split_step(int32_t field, std::string separator) {
  RowChainStep s;
  s.kind = RowChainStep::kSplit;
  s.split_field = field;
  s.separator = std::move(separator);
  return s;
}

TEST(RowChainOnHost, AFilterThatKeepsNothingLeavesEmptyColumnsOfTheirTypes) {
  Generator g(3);
  const Table input = g.table(100);
  std::deque<RowProgram> store;
  const std::vector<RowChainStep> steps = {filter_step(compiled(store, "b and not b", input.schema()))};
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), steps);
  EXPECT_EQ(result.rows, 0u);
  ASSERT_EQ(result.columns.size(), input.num_columns());
  for (size_t k = 0; k < input.num_columns(); ++k) {
    EXPECT_EQ(result.input_column[k], -1);
    EXPECT_TRUE(same_column(input.column(k).gather({}), to_column(result.columns[k])));
  }
}

TEST(RowChainOnHost, StepsAfterAnEmptyFilterRunOnNoRows) {
  Generator g(4);
  const Table input = g.table(50);
  std::deque<RowProgram> store;
  const Schema& schema = input.schema();
  // After the filter: a map computing a string and a nullable int, a split of the string.
  const Schema mapped{{"low", TypeId::String}, {"n_s", TypeId::String, true}, {"q", TypeId::Int64, true}};
  const std::vector<RowChainStep> steps = {
      filter_step(compiled(store, "i64 != i64", schema)),
      map_step({compiled(store, "lower(s)", schema), compiled(store, "i64 / 0", schema)}, {-1, 11, -2}),
      split_step(0, ","),
      filter_step(compiled(store, "is_null(q)", mapped))};
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), steps);
  EXPECT_EQ(result.rows, 0u);
  ASSERT_EQ(result.input_column, (std::vector<int32_t>{-1, -1, -1}));
  EXPECT_TRUE(same_column(Column(TypeId::String), to_column(result.columns[0])));
  EXPECT_TRUE(same_column(Column(TypeId::String, true), to_column(result.columns[1])));
  EXPECT_TRUE(same_column(Column(TypeId::Int64, true), to_column(result.columns[2])));
}

TEST(RowChainOnHost, MapsOnlyReportPassthroughColumnsAsInputs) {
  Generator g(5);
  const Table input = g.table(77);
  const Schema& schema = input.schema();
  std::deque<RowProgram> store;
  const RowProgram* lower_s = compiled(store, "lower(s)", schema);
  const RowProgram* plus_one = compiled(store, "i64 + 1", schema);
  // Step 1: n_s, lower(s), i64, i64, i64 + 1, lower(s) again. Step 2 (a select): reorders,
  // drops and repeats, the computed columns included.
  const std::vector<RowChainStep> steps = {map_step({lower_s, plus_one}, {11, -1, 2, 2, -2, -1}),
                                           map_step({}, {4, 0, 5, 3, 1, 1})};
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), steps);
  EXPECT_EQ(result.rows, 77u);
  EXPECT_EQ(result.input_column, (std::vector<int32_t>{-1, 11, -1, 2, -1, -1}));
  const Column lower = Expression::parse("lower(s)").evaluate(input);
  EXPECT_TRUE(same_column(Expression::parse("i64 + 1").evaluate(input), to_column(result.columns[0])));
  EXPECT_TRUE(same_column(lower, to_column(result.columns[2])));
  // Each output owns its buffers, also when outputs are one column.
  EXPECT_TRUE(same_column(lower, to_column(result.columns[4])));
  EXPECT_TRUE(same_column(lower, to_column(result.columns[5])));
  EXPECT_NE(result.columns[4].chars.data(), result.columns[5].chars.data());
}

TEST(RowChainOnHost, AFilterThatKeepsEveryRowLeavesInputsUnchanged) {
  Generator g(6);
  const Table input = g.table(40);
  std::deque<RowProgram> store;
  const std::vector<RowChainStep> steps = {filter_step(compiled(store, "b or not b", input.schema())),
                                           map_step({}, {10, 0})};
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), steps);
  EXPECT_EQ(result.rows, 40u);
  EXPECT_EQ(result.input_column, (std::vector<int32_t>{10, 0}));
}

TEST(RowChainOnHost, ASplitWithoutTokensEmptiesEveryColumn) {
  Column text(TypeId::String, true);
  text.append_null();
  text.append_string(" \t ");
  text.append_string("");
  text.append_null();
  Column numbers(TypeId::Int32, true);
  for (int32_t v : {1, 2, 3, 4}) numbers.append<int32_t>(v);
  const Table input(Schema{{"t", TypeId::String, true}, {"n", TypeId::Int32, true}}, {text, numbers});
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), {split_step(0, "")});
  EXPECT_EQ(result.rows, 0u);
  EXPECT_EQ(result.input_column, (std::vector<int32_t>{-1, -1}));
  EXPECT_TRUE(same_column(Column(TypeId::String), to_column(result.columns[0])));
  EXPECT_TRUE(same_column(Column(TypeId::Int32, true), to_column(result.columns[1])));
}

TEST(RowChainOnHost, ASplitOfTokensWithEmptyOnesRepeatsTheOtherColumns) {
  Column text(TypeId::String);
  for (const char* s : {"a,,b", "", ",", "abc"}) text.append_string(s);
  Column numbers(TypeId::Int64);
  for (int64_t v : {1, 2, 3, 4}) numbers.append<int64_t>(v);
  const Table input(Schema{{"n", TypeId::Int64}, {"t", TypeId::String}}, {numbers, text});
  HostExec exec;
  const RowChainResult<HostExec> result = run_row_chain(exec, views_of(input), input.num_rows(), {split_step(1, ",")});
  ASSERT_EQ(result.rows, 7u);
  const Column tokens = to_column(result.columns[1]);
  const Column repeated = to_column(result.columns[0]);
  const std::vector<std::string> expected_tokens = {"a", "", "b", "", "", "", "abc"};
  const std::vector<int64_t> expected_numbers = {1, 1, 1, 2, 3, 3, 4};
  for (size_t t = 0; t < 7; ++t) {
    EXPECT_EQ(tokens.string_at(t), expected_tokens[t]) << t;
    EXPECT_EQ(repeated.values<int64_t>()[t], expected_numbers[t]) << t;
  }
}

// ------------------------------------------------------------------ malformed steps

void expect_chain_error(const Table& input, const std::vector<RowChainStep>& steps, const std::string& step_name,
                        const std::string& what) {
  HostExec exec;
  try {
    run_row_chain(exec, views_of(input), input.num_rows(), steps);
    ADD_FAILURE() << "no error; expected '" << what << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(step_name), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  }
}

TEST(RowChainOnHost, MalformedStepsAreErrorsNamingTheStep) {
  Generator g(8);
  const Table input = g.table(10);
  const Schema& schema = input.schema();
  std::deque<RowProgram> store;
  const RowProgram* lower_s = compiled(store, "lower(s)", schema);
  const RowProgram* positive = compiled(store, "i64 > 0", schema);
  const RowChainStep keep_two = map_step({}, {0, 1});  // i32, n_i32

  // A program that reads a field the step's input lacks (compiled for the wider table).
  expect_chain_error(input, {keep_two, filter_step(positive)}, "step 1", "reads field 2 of 2 columns");
  // A program whose load type is not its column's.
  expect_chain_error(input, {map_step({}, {2, 0}), filter_step(compiled(store, "i32 > 0", schema))}, "step 1",
                     "field 0 is loaded as type 1, but its column has type 2");
  expect_chain_error(input, {map_step({}, {0, 12})}, "step 0", "output 1 is column 12 of 12");
  expect_chain_error(input, {map_step({lower_s}, {-1, -2})}, "step 0", "output 1 is program 1 of 1");
  expect_chain_error(input, {map_step({nullptr}, {-1})}, "step 0", "output program 0 has no program");
  expect_chain_error(input, {split_step(0, ",")}, "step 0", "split field 0 has type 1, not string");
  expect_chain_error(input, {keep_two, split_step(2, ",")}, "step 1", "split field 2 of 2 columns");
  expect_chain_error(input, {split_step(-1, ",")}, "step 0", "split field -1 of 12 columns");
  expect_chain_error(input, {filter_step(lower_s)}, "step 0", "not bool");
  RowChainStep two_predicates = filter_step(positive);
  two_predicates.programs.push_back(positive);
  expect_chain_error(input, {two_predicates}, "step 0", "a filter takes 1 program, not 2");
  RowChainStep unknown;
  unknown.kind = 7;
  expect_chain_error(input, {keep_two, unknown}, "step 1", "unknown kind 7");
  // What the upload checks is named with the step.
  RowProgram broken = *positive;
  broken.result = 99;
  expect_chain_error(input, {filter_step(&broken)}, "step 0", "result register 99 out of range");
}

TEST(RowChainOnHost, APrunedChainReadsOnlyWhatItsStepsAndConsumerRead) {
  Generator g(8);
  const Table input = g.table(200);
  const Schema& schema = input.schema();
  std::deque<RowProgram> store;
  // filter on i64, then a map keeping s and computing from f64 and b; the consumer reads the
  // computed column only.
  const RowProgram* keep = compiled(store, "i64 > 0", schema);
  const RowProgram* scaled = compiled(store, "if(b, f64 * 2.0, 0.0)", schema);
  const std::vector<RowChainStep> steps = {filter_step(keep), map_step({scaled}, {static_cast<int32_t>(schema.index_of("s")), -1})};
  const std::vector<bool> needed = {false, true};
  const PrunedRowChain pruned = prune_row_chain(input.num_columns(), steps, needed);
  std::vector<size_t> expected = {schema.index_of("i64"), schema.index_of("f64"), schema.index_of("b")};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(pruned.inputs, expected);
  EXPECT_EQ(pruned.output_of, (std::vector<int32_t>{-1, 0}));
  EXPECT_TRUE(pruned_gives_the_needed_columns(input, steps, needed));
  // A program used by two needed outputs runs once; a chain that reads no column runs on
  // none (it still has the batch's rows).
  const RowProgram* constant = compiled(store, "1 + 2", schema);
  const std::vector<RowChainStep> constants = {map_step({constant}, {-1, -1, 0})};
  const PrunedRowChain from_nothing = prune_row_chain(input.num_columns(), constants, {true, true, false});
  EXPECT_TRUE(from_nothing.inputs.empty());
  ASSERT_EQ(from_nothing.steps.size(), 1u);
  EXPECT_EQ(from_nothing.steps[0].programs.size(), 1u);
  EXPECT_EQ(from_nothing.steps[0].sources, (std::vector<int32_t>{-1, -1}));
  EXPECT_TRUE(pruned_gives_the_needed_columns(input, constants, {true, true, false}));
  // Flags that do not match the outputs, and steps naming columns or programs that do not
  // exist, are errors.
  EXPECT_THROW(prune_row_chain(input.num_columns(), steps, {true}), Error);
  EXPECT_THROW(prune_row_chain(input.num_columns(), {map_step({}, {999})}, {true}), Error);
  EXPECT_THROW(prune_row_chain(input.num_columns(), {map_step({}, {-1})}, {true}), Error);
  EXPECT_THROW(prune_row_chain(input.num_columns(), {map_step({constant}, {INT32_MIN})}, {true}), Error);
}

}  // namespace

}  // namespace sluice::gpu
